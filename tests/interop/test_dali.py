"""NVIDIA DALI reads sluice's shards, and sluice's .idx files are DALI's own index format.

Checked against the real DALI (nvidia-dali 2.4 from the registry), on the CPU only: the pipelines are
built with `device_id=None`, so DALI never looks for a GPU or a driver (none exists here).

* `fn.readers.tfrecord`, given sluice's shards and the `.idx` files `sluice ingest --write-index` wrote
  beside them, reads every record of every dataset kind sluice writes (ImageNet train + validation,
  flowers, CIFAR-10 as PNG and as raw bytes, an image folder). DALI parses each tf.Example with its own
  protobuf code, using the FixedLenFeature/VarLenFeature specs a DALI user writes for these datasets
  (every feature sluice stores is asked for, so nothing goes unread). For every record the test checks
  DALI's source (file and byte offset, from DALI's per-sample source info), its label, height, width,
  channels, text features, bounding boxes (float32, exact) and the SHA-256 of the encoded image
  bytes against `sluice inspect --json`, and that DALI's record count per kind is inspect's.
* DALI's CPU image decoder (`fn.decoders.image(device="cpu", output_type=RGB)`) decodes every JPEG and
  PNG to the height, width and channels stored in the record; raw CIFAR bytes are H*W*C long. RGB, not
  the file's native channels: like build_imagenet_data.py, sluice keeps ImageNet's grayscale JPEGs as
  they are and stores channels 3, the channels of TensorFlow's decode_jpeg(channels=3) (the sample data
  has such a file: train-00000 record 44 decodes natively to (400, 500, 1)). For CIFAR the pixels
  themselves are checked: DALI's decode of each PNG record equals the raw-bytes shard's record (HWC).
* The `.idx` files: DALI ships `tfrecord2idx` in its wheel (the venv's bin/). Its output for every shard
  must equal, byte for byte, both the `.idx` that ingest wrote and the one `sluice index` writes.

Why: DALI needs an index to read a TFRecord at all; an index that is off by one record, or records that
DALI's parser reads differently from TensorFlow's, would make a DALI training job fail or silently
mislabel. (DALI has no reader for GZIP/ZLIB TFRecords, so compressed shards are not part of this file.)
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nvidia.dali.fn as fn
import nvidia.dali.tfrecord as tfrec
import nvidia.dali.types as types
from nvidia.dali import pipeline_def

from conftest import inspect_json, run_cli, shard_files

KINDS = ["imagenet", "flowers", "cifar_png", "cifar_raw", "folder"]


def _shards(directory):
    """The TFRecord shards of an ingest output dir, as its manifest.json lists them."""
    return shard_files(directory)


def _text():
    return tfrec.FixedLenFeature((), tfrec.string, "")


def _int():
    return tfrec.FixedLenFeature([1], tfrec.int64, -1)


# What a DALI user asks for per dataset: the keys of build_imagenet_data.py's Examples (tensorflow/tpu's
# imagenet_input.py reads these, with the boxes as VarLenFeatures), slim's flowers decoder, and the
# CIFAR/folder Examples. Each spec must cover every feature sluice writes (checked per record).
_COMMON = {"image/encoded": _text, "image/format": _text, "image/class/label": _int, "image/height": _int,
           "image/width": _int}
SPECS = {
    "imagenet": {**_COMMON, "image/channels": _int, "image/colorspace": _text, "image/class/synset": _text,
                 "image/class/text": _text, "image/filename": _text,
                 **{f"image/object/bbox/{c}": lambda: tfrec.VarLenFeature(tfrec.float32, 0.0)
                    for c in ("xmin", "ymin", "xmax", "ymax")},
                 "image/object/bbox/label": lambda: tfrec.VarLenFeature(tfrec.int64, 0)},
    "flowers": dict(_COMMON),
    "cifar_png": {**_COMMON, "image/channels": _int, "image/class/text": _text},
    "cifar_raw": {**_COMMON, "image/channels": _int, "image/class/text": _text},
    "folder": {**_COMMON, "image/channels": _int, "image/colorspace": _text, "image/class/text": _text,
               "image/filename": _text},
}


def _dali_read(files, index_files, spec, batch_size, decode):
    """One epoch of DALI's TFRecord reader over `files` (in order, no shuffle) as one batch: per sample
    its source info and every feature of `spec` as NumPy arrays, plus the decoded image when asked."""
    keys = sorted(spec)

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        rec = fn.readers.tfrecord(path=list(files), index_path=list(index_files),
                                  features={k: make() for k, make in spec.items()},
                                  random_shuffle=False, name="Reader")
        outs = [rec[k] for k in keys]
        if decode:
            outs.append(fn.decoders.image(rec["image/encoded"], device="cpu", output_type=types.RGB))
        return tuple(outs)

    p = pipe()
    p.build()
    epoch = p.epoch_size("Reader")
    assert epoch == batch_size, f"DALI counts {epoch} records, sluice inspect {batch_size}"
    out = p.run()
    samples = []
    for i in range(batch_size):
        s = {k: np.array(out[j][i]) for j, k in enumerate(keys)}
        s["_source"] = out[0][i].source_info()
        if decode:
            s["_decoded"] = np.array(out[len(keys)][i])
        samples.append(s)
    return samples


def _check_feature(name, got, want, where):
    kind, values = want["kind"], want["values"]
    if kind == "int64":
        assert got.ravel().tolist() == values, f"{where} {name}: DALI {got.ravel().tolist()} != {values}"
    elif kind == "float":
        # Empty lists: DALI's VarLenFeature yields an empty tensor.
        assert got.dtype == np.float32, f"{where} {name}: DALI dtype {got.dtype}"
        np.testing.assert_array_equal(got.ravel(), np.array(values, dtype=np.float32), err_msg=f"{where} {name}")
    else:
        assert kind == "bytes" and len(values) == 1, f"{where} {name}: {want}"
        data = got.astype(np.uint8).tobytes()
        v = values[0]
        if "text" in v:
            assert data == v["text"].encode(), f"{where} {name}: DALI {data!r} != {v['text']!r}"
        else:
            assert len(data) == v["length"], f"{where} {name}: DALI {len(data)} bytes, sluice {v['length']}"
            assert hashlib.sha256(data).hexdigest() == v["sha256"], f"{where} {name}: bytes differ"


@pytest.mark.parametrize("kind", KINDS)
def test_dali_reads_every_record(shards, kind):
    files = _shards(shards[kind])
    records = [r for f in files for r in inspect_json(f)]
    assert records, kind
    spec = SPECS[kind]
    decode = kind != "cifar_raw"
    samples = _dali_read(files, [f + ".idx" for f in files], spec, len(records), decode)

    assert len(samples) == len(records)
    by_name = {os.path.basename(f): f for f in files}
    for rec, s in zip(records, samples):
        where = f"{rec['file']} record {rec['index']} (offset {rec['offset']})"
        # DALI names each sample "<path> at index <byte offset>": the reader is where inspect says.
        path = by_name[os.path.basename(rec["file"])]
        assert s["_source"] == f"{path} at index {rec['offset']}", f"{where}: DALI read {s['_source']}"
        feats = rec["features"]
        assert set(feats) == set(spec), f"{where}: sluice's features {sorted(feats)} vs spec {sorted(spec)}"
        for name, want in feats.items():
            _check_feature(name, s[name], want, where)

        h = feats["image/height"]["values"][0]
        w = feats["image/width"]["values"][0]
        c = feats["image/channels"]["values"][0] if "image/channels" in feats else 3  # slim flowers: RGB
        if decode:
            assert s["_decoded"].shape == (h, w, c), f"{where}: DALI decoded {s['_decoded'].shape}, stored {(h, w, c)}"
            assert s["_decoded"].dtype == np.uint8
        else:
            assert feats["image/format"]["values"][0]["text"] == "RAW"
            assert s["image/encoded"].size == h * w * c, f"{where}: raw bytes {s['image/encoded'].size} != {h}*{w}*{c}"


def test_dali_png_pixels_equal_raw_cifar(shards):
    """Both CIFAR ingests come from the same archive with the same seed, so record i of cifar_png and of
    cifar_raw is the same image: DALI's decode of the PNG equals the raw bytes read as (32, 32, 3) HWC,
    exactly (PNG is lossless). This checks the pixels DALI's decoder gets, not only their shape, and
    tells a DALI user that raw CIFAR records are HWC (fn.reshape(layout="HWC")), not CIFAR's planes."""
    png_files, raw_files = _shards(shards["cifar_png"]), _shards(shards["cifar_raw"])
    assert [os.path.basename(f) for f in png_files] == [os.path.basename(f) for f in raw_files]
    n = sum(len(inspect_json(f)) for f in png_files)
    png = _dali_read(png_files, [f + ".idx" for f in png_files], SPECS["cifar_png"], n, True)
    raw = _dali_read(raw_files, [f + ".idx" for f in raw_files], SPECS["cifar_raw"], n, False)
    for i, (p, r) in enumerate(zip(png, raw)):
        assert p["image/class/label"].tolist() == r["image/class/label"].tolist(), f"record {i}"
        pixels = r["image/encoded"].astype(np.uint8).reshape(32, 32, 3)
        np.testing.assert_array_equal(p["_decoded"], pixels, err_msg=f"{p['_source']} vs {r['_source']}")


# DALI's tfrecord2idx opens files through tf.io.gfile when both tensorflow and tensorflow_io import, else
# with open(). tensorflow_io is not installed, so it always takes the open() path; making `tensorflow`
# unimportable only spares each run TensorFlow's multi-second import, it does not change the output.
_RUN_TFRECORD2IDX = textwrap.dedent("""
    import runpy, sys
    sys.modules["tensorflow"] = None
    script, pairs = sys.argv[1], sys.argv[2:]
    for src, dst in zip(pairs[::2], pairs[1::2]):
        sys.argv = [script, src, dst]
        runpy.run_path(script, run_name="__main__")
""")


def _tfrecord2idx(pairs):
    script = os.path.join(os.path.dirname(sys.executable), "tfrecord2idx")
    assert os.path.exists(script), f"DALI's tfrecord2idx is not at {script}"
    args = [a for pair in pairs for a in pair]
    r = subprocess.run([sys.executable, "-c", _RUN_TFRECORD2IDX, script, *args], capture_output=True, text=True)
    assert r.returncode == 0 and "Not a valid" not in r.stdout, f"tfrecord2idx: {r.stdout}{r.stderr}"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_idx_files_equal_tfrecord2idx(shards, tmp_path):
    """ingest's .idx files and `sluice index`'s, for every shard, equal DALI's tfrecord2idx output."""
    pairs, copies = [], []
    for kind in KINDS:
        out = tmp_path / kind
        (out / "copies").mkdir(parents=True)
        for f in _shards(shards[kind]):
            name = os.path.basename(f)
            pairs.append((f, str(out / (name + ".dali.idx"))))
            copy = out / "copies" / name
            shutil.copyfile(f, copy)
            copies.append(str(copy))
    _tfrecord2idx(pairs)
    run_cli("index", *copies)  # writes each copy's .idx beside it

    assert len(pairs) == len(copies) > 0
    for (shard, dali_idx), copy in zip(pairs, copies):
        want = _read(dali_idx)
        lines, n = want.count(b"\n"), len(inspect_json(shard))
        assert lines == n, f"tfrecord2idx indexed {lines} records of {shard}, inspect {n}"
        assert _read(shard + ".idx") == want, f"ingest's {shard}.idx differs from DALI's tfrecord2idx"
        assert _read(copy + ".idx") == want, f"`sluice index` {os.path.basename(shard)}.idx differs from tfrecord2idx"
