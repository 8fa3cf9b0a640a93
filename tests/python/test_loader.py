"""sluice.Loader against the CLI's digests, its memory contract, resume and errors."""

import gc
import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest

import sluice


def digest(images, labels):
    # What `sluice pipeline bench --digest` prints per batch: sha256(image bytes || int64 LE labels).
    return hashlib.sha256(images.tobytes() + labels.astype("<i8").tobytes()).hexdigest()


def cli_digests(cli, pattern, preset, batch, threads, layout, epochs=1):
    out = cli("pipeline", "bench", "--data", pattern, "--preset", preset, "--batch", batch,
              "--threads", threads, "--epochs", epochs, "--layout", layout, "--digest").stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("batch ")]


CASES = [("imagenet", "train-*", "resnet-train"), ("imagenet", "train-*", "resnet-eval"),
         ("imagenet", "train-*", "vgg-train"), ("cifar", "train-*", "cifar-train")]


@pytest.mark.parametrize("dataset,split,preset", CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_batches_equal_the_cli_digests(cli, data, dataset, split, preset, threads):
    pattern = os.path.join(data[dataset], split)
    batch = 16 if dataset == "imagenet" else 64
    layout = "nhwc" if threads == 1 else "nchw"
    want = cli_digests(cli, pattern, preset, batch, threads, layout)
    got = [digest(x, y) for x, y in sluice.Loader(pattern, preset=preset, batch_size=batch,
                                                  threads=threads, epochs=1, layout=layout)]
    assert len(want) > 3
    assert got == want


def test_arrays_are_c_contiguous_with_the_layouts_shape(data):
    pattern = os.path.join(data["cifar"], "train-*")
    x, y = next(iter(sluice.Loader(pattern, preset="cifar-train", batch_size=8)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (8,) and y.dtype == np.int64
    assert x.ctypes.data % 64 == 0 and y.ctypes.data % 64 == 0, "64-byte aligned (XLA's DLPack rule)"
    x, _ = next(iter(sluice.Loader(pattern, preset="cifar-eval", batch_size=8, layout="nhwc",
                                   dtype="uint8")))
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.uint8


def test_batches_held_are_never_overwritten(data):
    loader = sluice.Loader(os.path.join(data["cifar"], "train-*"), preset="cifar-train",
                           batch_size=32, epochs=None)
    held, hashes = [], []
    for i, (x, y) in enumerate(loader):
        if i < 200:
            held.append((x, y))
            hashes.append(digest(x, y))
        if i == 400:
            break
    assert [digest(x, y) for x, y in held] == hashes
    assert len({h for h in hashes}) == 200, "every batch is its own memory"


def resident_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_memory_stays_bounded_on_an_endless_loop(data):
    loader = sluice.Loader(os.path.join(data["cifar"], "train-*"), preset="cifar-train",
                           batch_size=32, epochs=None, threads=2)
    rss = {}
    for i, (x, y) in enumerate(loader):
        if i in (500, 3000):
            gc.collect()
            rss[i] = resident_kb()
        if i == 3000:
            break
    assert rss[3000] - rss[500] < 20 * 1024, f"RSS grew {rss[3000] - rss[500]} kB over 2500 batches"


def test_state_dict_resumes_at_exactly_the_next_batch(data):
    pattern = os.path.join(data["imagenet"], "train-*")
    args = dict(preset="resnet-train", batch_size=12, epochs=3, threads=2, seed=7, image_size=64)
    whole = [(digest(x, y)) for x, y in sluice.Loader(pattern, **args)]
    assert len(whole) > 10
    for k in (2, 7, len(whole) // 2):  # mid-epoch and across an epoch boundary
        first = sluice.Loader(pattern, **args)
        for _ in range(k):
            next(first)
        sd = pickle.loads(pickle.dumps(first.state_dict()))
        first.close()
        rest = [digest(x, y) for x, y in sluice.Loader(pattern, state=sd, **args)]
        assert rest == whole[k:], f"resumed after batch {k}"


def test_a_state_from_other_settings_is_refused(data):
    pattern = os.path.join(data["cifar"], "train-*")
    loader = sluice.Loader(pattern, preset="cifar-train", batch_size=8)
    next(loader)
    with pytest.raises(ValueError, match="batch_size"):
        sluice.Loader(pattern, preset="cifar-train", batch_size=16, state=loader.state_dict())


def test_origins_name_each_samples_record(data):
    pattern = os.path.join(data["imagenet"], "train-*")
    loader = sluice.Loader(pattern, preset="resnet-train", batch_size=8, epochs=1, image_size=64,
                           return_origins=True)
    files = loader.files
    records = {f: dict(sluice.read_records(f)) for f in files}
    n = 0
    for _, labels, origins in loader:
        for label, o in zip(labels, origins):
            ex = sluice.parse_example(records[files[o["file"]]][int(o["offset"])])
            assert ex["image/class/label"] == [label]
            assert 0 < o["crop_width"] <= ex["image/width"][0]
            assert 0 < o["crop_height"] <= ex["image/height"][0]
            n += 1
    assert n > 0


def test_read_records_matches_the_cli_index(cli, data, tmp_path):
    shard = sorted(os.listdir(data["imagenet"]))
    shard = os.path.join(data["imagenet"], [s for s in shard if s.startswith("train-")][0])
    copy = tmp_path / "shard"
    shutil.copy(shard, copy)
    cli("index", str(copy))
    idx = [tuple(map(int, line.split())) for line in open(str(copy) + ".idx")]
    recs = list(sluice.read_records(copy))
    assert [off for off, _ in recs] == [off for off, _ in idx]
    assert [12 + len(r) + 4 for _, r in recs] == [size for _, size in idx]


def test_read_records_takes_gzip_and_zlib_by_extension_or_name(data, tmp_path):
    import gzip
    import zlib
    shard = os.path.join(data["cifar"], sorted(f for f in os.listdir(data["cifar"])
                                               if f.startswith("test-"))[0])
    raw = open(shard, "rb").read()
    want = list(sluice.read_records(shard))
    (tmp_path / "s.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "s.zz").write_bytes(zlib.compress(raw))
    (tmp_path / "s.bin").write_bytes(zlib.compress(raw))
    assert list(sluice.read_records(tmp_path / "s.gz")) == want
    assert list(sluice.read_records(tmp_path / "s.zz")) == want
    assert list(sluice.read_records(tmp_path / "s.bin", compression="zlib")) == want
    with pytest.raises(ValueError, match="compression"):
        sluice.read_records(shard, compression="lz4")


def test_corrupt_record_raises_data_loss_naming_file_and_offset(data, tmp_path):
    src = sorted(f for f in os.listdir(data["cifar"]) if f.startswith("train-"))[0]
    bad = tmp_path / "train-00000-of-00001"
    raw = bytearray(open(os.path.join(data["cifar"], src), "rb").read())
    recs = list(sluice.read_records(os.path.join(data["cifar"], src)))
    offset = recs[3][0]
    raw[offset + 20] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(sluice.DataLossError) as e:
        for _ in sluice.read_records(bad):
            pass
    assert isinstance(e.value, OSError)
    assert str(bad) in str(e.value) and str(offset) in str(e.value)
    with pytest.raises(sluice.DataLossError, match=str(offset)):
        for _ in sluice.Loader(str(bad), preset="cifar-eval", batch_size=4):
            pass


def test_bad_arguments_are_value_errors_naming_them(data):
    pattern = os.path.join(data["cifar"], "train-*")
    for kwargs, name in [({"preset": "resnet"}, "preset"), ({"layout": "hwc"}, "layout"),
                         ({"dtype": "float16"}, "dtype"), ({"batch_size": 0}, "batch_size"),
                         ({"worker_index": 2, "num_workers": 2}, "worker_index"),
                         ({"on_corrupt": "ignore"}, "on_corrupt")]:
        with pytest.raises(ValueError, match=name):
            sluice.Loader(pattern, **{"preset": "cifar-train", **kwargs})
    with pytest.raises(FileNotFoundError):
        sluice.Loader(os.path.join(data["cifar"], "nothing-*"), preset="cifar-train")


def test_workers_split_the_data_with_equal_batch_counts(data):
    pattern = os.path.join(data["imagenet"], "train-*")
    seen, counts = [], []
    for rank in range(2):
        batches = list(sluice.Loader(pattern, preset="resnet-eval", batch_size=4, epochs=1,
                                     image_size=32, num_workers=2, worker_index=rank,
                                     return_origins=True))
        counts.append(len(batches))
        seen.append({(int(o["file"]), int(o["record"])) for _, _, origins in batches for o in origins})
    assert counts[0] == counts[1] > 0
    assert not seen[0] & seen[1]


def test_stats_and_trace(data, tmp_path):
    loader = sluice.Loader(os.path.join(data["cifar"], "train-*"), preset="cifar-train",
                           batch_size=32, epochs=1, trace=True)
    for _ in loader:
        pass
    s = loader.stats()
    assert s["images"] == s["batches"] * 32 and s["images"] > 0
    assert 0 <= s["input_wait_fraction"] <= 1
    assert s["verdict"] in ("highly input-bound", "moderately input-bound", "not input-bound")
    assert s["limiting_stage"] in s["stages"]
    loader.write_trace(tmp_path / "trace.json")
    assert b'"traceEvents"' in (tmp_path / "trace.json").read_bytes()
