"""sluice: TFRecord input pipelines for PyTorch, JAX and TensorFlow training loops.

    import sluice, torch
    loader = sluice.Loader("shards/train-*", preset="resnet-train", batch_size=256)
    for images, labels in loader:          # NumPy arrays, C-contiguous; labels int64
        x = torch.from_numpy(images)       # zero-copy (torch.from_dlpack works too)
        ...
    print(loader.stats()["verdict"])       # is the loop input-bound, and which stage limits it

    prof = sluice.profile(any_iterable)    # a torch DataLoader too
    for batch in prof: ...
    prof.stats()                           # waiting for input vs loop body, same verdict

The decoding, augmentation and batching run in C++ threads (a TBB flow graph) with the GIL released;
batches are byte-identical to `sluice pipeline bench --digest` for the same files, preset, batch
size, seed, layout, dtype and epochs, for any thread count.
"""

from __future__ import annotations

import os as _os
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple, Union

from . import _sluice


def _check_numpy_abi() -> None:
    import numpy
    if int(numpy.__version__.split(".")[0]) >= 2 and tuple(_sluice._pybind11_version) < (2, 12):
        raise ImportError(
            f"this sluice extension was built with pybind11 {'.'.join(map(str, _sluice._pybind11_version))}, "
            f"which cannot read NumPy {numpy.__version__}'s arrays correctly (NumPy 2 needs pybind11 >= 2.12): "
            "use NumPy 1.x with it, or `pip install .`, which builds against the pinned pybind11")


_check_numpy_abi()

from ._sluice import DataLossError, parse_example  # noqa: E402

__all__ = ["Loader", "profile", "Profile", "read_records", "parse_example", "DataLossError",
           "PRESETS"]
__version__ = "0.1.0"

PRESETS = ("resnet-train", "resnet-eval", "vgg-train", "vgg-eval", "cifar-train", "cifar-eval")

_STATE_VERSION = 1


def _files(paths: Union[str, "_os.PathLike[str]", Sequence[Union[str, "_os.PathLike[str]"]]]) -> list:
    if isinstance(paths, (str, _os.PathLike)):
        paths = [paths]
    out = [_os.fspath(p) for p in paths]
    if not out:
        raise ValueError("paths: no shard files or patterns given")
    return out


class Loader:
    """Batches of preprocessed images from TFRecord shards of tf.Examples.

    Args:
      paths: a shard file, a glob ("shards/train-*"), or a list of them.
      preset: the preprocessing: "resnet-train" | "resnet-eval" (tensorflow/tpu
        resnet_preprocessing), "vgg-train" | "vgg-eval" (slim vgg_preprocessing),
        "cifar-train" | "cifar-eval" (TF official CIFAR-10).
      batch_size: images per batch.
      threads: decode/augment threads (None = all cores).
      seed: seed of the epoch plan (file and record shuffle) and of every augmentation draw.
      epochs: None = endless; N = stop after N epochs (StopIteration).
      layout: "nchw" (PyTorch) or "nhwc" (TensorFlow, JAX).
      dtype: "float32" (normalized, the preset's mean/std) or "uint8" (the augmented pixels).
      shuffle: None = the train presets shuffle, the eval presets read in file order.
      num_workers, worker_index: data-parallel ranks (e.g. world size and rank under torch DDP):
        each takes a disjoint share of the files with the same number of batches.
      on_corrupt: "fail" (raise DataLossError naming file and offset) or "skip-shard".
      state: a state_dict() of an earlier loader over the same data: continue at its next batch.
      image_size: output side (None = the preset's: 224, CIFAR 32).
      prefetch: finished batches waiting for the loop.
      drop_last: None = the train presets drop the short last batch of the run.
      max_bad: undecodable images skipped before the loader fails.
      trace: record a Chrome trace (write_trace).
      return_origins: also yield each sample's origin (file index, record, byte offset, epoch,
        plan index, crop window, flip) as a NumPy structured array.

    Each batch's arrays own its memory: keep them as long as you like (they are never reused
    while referenced); dropped batches return their buffers to the pipeline, so memory stays
    bounded. Errors raise DataLossError (corrupt data), FileNotFoundError, ValueError (a bad
    argument, naming it), with the CLI's words.
    """

    def __init__(self, paths, preset: str = "resnet-train", batch_size: int = 256,
                 threads: Optional[int] = None, seed: int = 0, epochs: Optional[int] = None,
                 layout: str = "nchw", dtype: str = "float32", shuffle: Optional[bool] = None,
                 num_workers: int = 1, worker_index: int = 0, on_corrupt: str = "fail",
                 state: Optional[dict] = None, *, image_size: Optional[int] = None,
                 prefetch: int = 2, drop_last: Optional[bool] = None, max_bad: int = 100,
                 trace: bool = False, return_origins: bool = False):
        files = _files(paths)
        if preset not in PRESETS:
            raise ValueError(f"preset: unknown preset {preset!r} (valid: {', '.join(PRESETS)})")
        self._args = dict(files=files, preset=preset, batch_size=int(batch_size), threads=threads,
                          seed=int(seed), epochs=epochs, layout=layout, dtype=dtype,
                          shuffle=shuffle, num_workers=int(num_workers),
                          worker_index=int(worker_index), on_corrupt=on_corrupt,
                          image_size=image_size, prefetch=int(prefetch), drop_last=drop_last,
                          max_bad=int(max_bad), trace=bool(trace))
        start_epoch, start_samples = 0, 0
        if state is not None:
            start_epoch, start_samples = self._check_state(state)
        self._native = _sluice._Loader(**self._args, start_epoch=start_epoch,
                                       start_samples=start_samples,
                                       with_origins=bool(return_origins))

    # The settings a state must share with the loader that continues it.
    _STATE_KEYS = ("preset", "batch_size", "seed", "shuffle", "num_workers", "worker_index",
                   "image_size")

    def _check_state(self, state: dict) -> Tuple[int, int]:
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(f"state: not a sluice.Loader state_dict (version {_STATE_VERSION})")
        for key in self._STATE_KEYS:
            if state.get(key) != self._args[key]:
                raise ValueError(f"state: {key} was {state.get(key)!r}, this loader has "
                                 f"{self._args[key]!r} (the data position would mean other samples)")
        return int(state["epoch"]), int(state["samples"])

    def __iter__(self) -> "Loader":
        return self

    def __next__(self):
        return self._native.next()

    def state_dict(self) -> dict:
        """Where the data stands after the last batch handed out: picklable; pass it as
        Loader(..., state=sd) to continue at exactly the next batch."""
        epoch, samples = self._native.cursor
        sd = {"version": _STATE_VERSION, "epoch": epoch, "samples": samples,
              "batches": self._native.batches}
        sd.update({k: self._args[k] for k in self._STATE_KEYS})
        return sd

    def stats(self) -> dict:
        """The stall profile so far: images_per_sec, input_wait_fraction (0..1, time the loop spent
        waiting for batches over its wall time, after the first batch), verdict ("highly
        input-bound" >= 20 %, "moderately input-bound" 5-20 %, "not input-bound" < 5 %),
        limiting_stage (the stage with the lowest capacity), stages {name: {...}}, queues."""
        return self._native.stats()

    def write_trace(self, path) -> None:
        """Writes a Chrome trace (chrome://tracing, Perfetto) of every stage; needs trace=True.
        Stops the loader."""
        self._native.write_trace(_os.fspath(path))

    def close(self) -> None:
        """Stops the pipeline's threads (also done when the loader is garbage-collected).
        Batches already handed out stay valid."""
        self._native.close()

    @property
    def files(self) -> list:
        """The input shards, expanded and sorted (origins' `file` indexes this list)."""
        return list(self._native.files)

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Profile:
    """Wraps any iterable and splits the loop's wall time into waiting for the next item (input)
    and the loop body; stats() gives the same verdict as Loader.stats(). See profile()."""

    def __init__(self, iterable: Iterable[Any]):
        self._iterable = iterable
        self._native = _sluice._LoopProfiler()

    def __iter__(self) -> Iterator[Any]:
        it = iter(self._iterable)
        native = self._native
        while True:
            native.start_wait()
            try:
                item = next(it)
            except StopIteration:
                native.end_of_input()
                return
            native.end_wait(_samples(item))
            yield item

    def stats(self) -> dict:
        """items, samples, images_per_sec, input_wait_fraction, verdict, warmup_s (the first
        wait), wait_s, step_s, wall_s."""
        return self._native.stats()


def _samples(item: Any) -> int:
    """Samples in one item: the length of its first element for (images, labels) batches."""
    first = item[0] if isinstance(item, (tuple, list)) and item else item
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return 1


def profile(iterable: Iterable[Any]) -> Profile:
    """Profiles any input loop: `for batch in sluice.profile(loader): ...` then `.stats()`."""
    return Profile(iterable)


def read_records(path, compression: str = "auto") -> Iterator[Tuple[int, bytes]]:
    """Yields (byte offset, record bytes) for every record of a TFRecord file, checking both CRCs.
    compression: "auto" (by extension: .gz gzip, .zz zlib, else none), "none", "gzip", "zlib".
    Raises DataLossError naming the file and offset for a corrupt or truncated record."""
    return _sluice._RecordIterator(_os.fspath(path), compression)
