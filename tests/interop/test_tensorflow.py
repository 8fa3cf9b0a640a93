"""TensorFlow reads every shard sluice writes, and agrees with `sluice inspect` / `sluice verify` about it.

Shards: every kind the `shards` fixture ingests (ImageNet train and validation, flowers train and
validation, CIFAR-10 as PNG and as raw bytes, an image folder), plus GZIP and ZLIB files. sluice's own view
of a file is `sluice inspect --json` (bytes shown as {text} or {length, sha256}, so TensorFlow's bytes are
compared by SHA-256) and the ingest manifest; everything else comes from TensorFlow:

- `tf.data.TFRecordDataset` reads every record: as many as inspect lists and the manifest counts, each of
  the size inspect gives; the framed records (12 + size + 4 bytes) tile the file exactly.
- `tf.train.Example.FromString` (TF's protobuf) gives, for every record, exactly inspect's features: same
  keys, kinds and values (floats compared as float32).
- `tf.io.parse_single_example` with the feature specs the seeds used returns inspect's values, or the
  spec's default / an empty VarLen where sluice writes no such key:
    * tensorflow/tpu models/official/resnet/imagenet_input.py `dataset_parser` (ImageNet and the image
      folder, whose records follow inception's build_image_data.py): encoded, format (default 'jpeg'),
      class/label (-1), class/text (''), bbox xmin/ymin/xmax/ymax as VarLen float32 and
      image/object/class/label as VarLen int64. sluice, like inception's build_imagenet_data.py, writes
      the box labels under image/object/bbox/label, so the TPU spec's image/object/class/label is empty;
      the test checks exactly that (and that image/object/bbox/label has one label per box).
    * slim datasets/imagenet.py: the same keys_to_features as the TPU file, plus its BoundingBox handler
      (the four coordinates stacked to an [N, 4] tensor).
    * slim datasets/flowers.py (encoded, format default 'png', class/label default 0).
    * CIFAR-10: slim datasets/cifar10.py's keys_to_features (the keys sluice writes) plus TFDS cifar10's
      feature semantics: image (32, 32, 3) uint8, label a ClassLabel over TFDS's ten names, which must be
      the image/class/text sluice stores.
- `tf.io.decode_jpeg` / `tf.io.decode_png` (chosen by image/format, which must match the bytes' magic
  number) and `tf.io.decode_image` decode every image to the stored height, width and channels. RAW CIFAR
  records hold 32*32*3 bytes; `tf.io.decode_raw` reshaped HWC gives exactly the pixels TF decodes from the
  PNG shard of the same records.
- GZIP / ZLIB: sluice's example_tool writes compressed files of real sluice records (taken apart by TF's
  protobuf); TF reads them with `compression_type` and gets the original Examples. Real shards compressed
  with Python's gzip / zlib (whole-file framing) and written compressed by `tf.io.TFRecordWriter` read back
  by `sluice inspect --compression gzip|zlib` (and by extension) exactly as the uncompressed shard.
- Corruption: one byte flipped in a record's payload, data CRC, length or length CRC. `sluice verify` and
  `sluice inspect` exit 1 naming the record's start offset, and count as good exactly the records before it;
  TensorFlow yields the same number of records and then raises DataLossError "corrupted record at X".
  Difference by design: sluice always names the record's start (formats/doc/formats.md); TF names where
  its failing checksummed read began, the record start for the header, the record start + 12 (the payload)
  for a data CRC mismatch. The test asserts exactly that relation.

Runs in the interop venv (TensorFlow, no torch in this process); about 10 s on 2 cores.
"""

import collections
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import zlib

import numpy as np
import pytest

from conftest import inspect_json, run_cli, shard_files, tool

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

# ---------------------------------------------------------------------------------------------------
# The seeds' feature specs, from their public definitions.

# tensorflow/tpu models/official/resnet/imagenet_input.py, ImageNetInput.dataset_parser. slim's
# datasets/imagenet.py get_split uses the same keys, types and defaults.
IMAGENET_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "image/class/text": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
}
# slim datasets/flowers.py get_split.
FLOWERS_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="png"),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=0),
}
# slim datasets/cifar10.py get_split: the same three keys and defaults as flowers.
CIFAR_SPEC = dict(FLOWERS_SPEC)
# TFDS cifar10: ClassLabel names (the order of the dataset's batches.meta.txt).
TFDS_CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                      "truck"]
# The sizes every decoded image must have, keyed by sluice's feature names.
SHAPE_KEYS = ("image/height", "image/width", "image/channels")

# kind -> (shards fixture key, file name filter, specs to parse with).
KINDS = {
    "imagenet-train": ("imagenet", "train-", [IMAGENET_SPEC]),
    "imagenet-validation": ("imagenet", "validation-", [IMAGENET_SPEC]),
    "flowers-train": ("flowers", "_train_", [FLOWERS_SPEC]),
    "flowers-validation": ("flowers", "_validation_", [FLOWERS_SPEC]),
    "cifar_png": ("cifar_png", "", [CIFAR_SPEC]),
    "cifar_raw": ("cifar_raw", "", [CIFAR_SPEC]),
    "folder": ("folder", "", [IMAGENET_SPEC]),
}

# ---------------------------------------------------------------------------------------------------
# Reading a shard both ways, once per file.

_cache = {}


def tf_records(path, compression=""):
    key = ("tf", path, compression)
    if key not in _cache:
        _cache[key] = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]
    return _cache[key]


def sluice_records(path, compression="auto"):
    key = ("sluice", path, compression)
    if key not in _cache:
        _cache[key] = inspect_json(path, compression)
    return _cache[key]


def kind_files(shards, kind):
    key, name_filter, _ = KINDS[kind]
    # Shards are named NAME-xxxxx-of-yyyyy (or slim's NAME_xxxxx-of-yyyyy.tfrecord); shard_files() also
    # lists the labels.txt that folder and flowers ingests write.
    files = [f for f in shard_files(shards[key])
             if name_filter in os.path.basename(f) and "-of-" in os.path.basename(f)]
    assert files, kind
    return files


def manifest_shards(directory):
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    return {s["file"]: s for split in manifest["splits"].values() for s in split["shards"]}


def bytes_match(tf_value, shown):
    """sluice inspect shows short printable bytes as {text}, others as {length, sha256}."""
    if "text" in shown:
        return tf_value == shown["text"].encode()
    return len(tf_value) == shown["length"] and hashlib.sha256(tf_value).hexdigest() == shown["sha256"]


def example_features(raw):
    """{key: (kind, values)} of a serialized Example, as TF's protobuf reads it."""
    ex = tf.train.Example.FromString(raw)
    out = {}
    for key, feature in ex.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        out[key] = ({"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(kind, "none"),
                    values)
    return out


def assert_values_equal(key, kind, tf_values, shown_values):
    assert len(tf_values) == len(shown_values), (key, len(tf_values), len(shown_values))
    for a, b in zip(tf_values, shown_values):
        if kind == "bytes":
            assert bytes_match(bytes(a), b), (key, b)
        elif kind == "float":
            assert np.float32(a) == np.float32(b), (key, a, b)
        else:
            assert int(a) == int(b), (key, a, b)


def shown_values(record, key):
    f = record["features"].get(key)
    return (None, []) if f is None else (f["kind"], f["values"])


# ---------------------------------------------------------------------------------------------------
# Every record, every feature.

@pytest.mark.parametrize("kind", KINDS)
def test_tfrecorddataset_reads_every_record(shards, kind):
    manifest = manifest_shards(shards[KINDS[kind][0]])
    for path in kind_files(shards, kind):
        records, shown = tf_records(path), sluice_records(path)
        entry = manifest[os.path.basename(path)]
        assert len(records) == len(shown) == entry["records"] > 0, path
        offset = 0
        for i, (raw, rec) in enumerate(zip(records, shown)):
            assert (rec["index"], rec["offset"], rec["size"]) == (i, offset, len(raw)), (path, i)
            offset += 12 + len(raw) + 4
        assert offset == os.path.getsize(path) == entry["bytes"], path
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == entry["sha256"], path
        labels = collections.Counter(example_features(r)["image/class/label"][1][0] for r in records)
        assert {str(k): v for k, v in labels.items()} == entry["labels"], path


@pytest.mark.parametrize("kind", KINDS)
def test_tf_protobuf_reads_the_features_inspect_shows(shards, kind):
    for path in kind_files(shards, kind):
        for raw, rec in zip(tf_records(path), sluice_records(path)):
            features = example_features(raw)
            assert sorted(features) == sorted(rec["features"]), (path, rec["index"])
            for key, (k, values) in features.items():
                assert k == rec["features"][key]["kind"], (path, rec["index"], key)
                assert_values_equal(key, k, values, rec["features"][key]["values"])


def _parse_all(path, spec):
    """parse_single_example over every record; a VarLen feature's SparseTensor becomes its values."""
    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        return {k: v.values if isinstance(v, tf.SparseTensor) else v for k, v in parsed.items()}
    return list(tf.data.TFRecordDataset(path).map(parse).as_numpy_iterator())


@pytest.mark.parametrize("kind", KINDS)
def test_seed_feature_specs_parse_inspect_values(shards, kind):
    for spec in KINDS[kind][2]:
        for path in kind_files(shards, kind):
            parsed = _parse_all(path, spec)
            shown = sluice_records(path)
            assert len(parsed) == len(shown)
            for p, rec in zip(parsed, shown):
                where = (path, rec["index"])
                for key, feature in spec.items():
                    k, want = shown_values(rec, key)
                    if isinstance(feature, tf.io.VarLenFeature):
                        got = p[key].tolist()
                        assert_values_equal(key, k or "int64", got, want)
                    elif k is None:  # sluice writes no such key: the spec's default
                        default = feature.default_value
                        assert p[key] == (default.encode() if isinstance(default, str) else default), \
                            (where, key)
                    else:
                        assert len(want) == 1, (where, key)
                        assert_values_equal(key, k, [p[key]], want)
                if spec is IMAGENET_SPEC:
                    # slim's BoundingBox handler: [ymin, xmin, ymax, xmax] stacked to [N, 4].
                    coords = [p[f"image/object/bbox/{c}"] for c in ("ymin", "xmin", "ymax", "xmax")]
                    boxes = np.stack(coords, axis=1)
                    _, labels = shown_values(rec, "image/object/bbox/label")
                    assert boxes.shape == (len(labels), 4), where
                    assert ((0 <= boxes) & (boxes <= 1)).all(), where
                    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all(), where
                    assert p["image/object/class/label"].size == 0, where  # see the docstring
                    assert all(l == p["image/class/label"] for l in labels), where


def test_imagenet_train_has_boxes_and_validation_none(shards):
    """The box checks above must not pass vacuously: the train shards carry boxes from the bbox tar."""
    boxes = {kind: sum(len(shown_values(r, "image/object/bbox/xmin")[1])
                       for path in kind_files(shards, kind) for r in sluice_records(path))
             for kind in ("imagenet-train", "imagenet-validation")}
    assert boxes["imagenet-train"] > 0 and boxes["imagenet-validation"] == 0, boxes


# ---------------------------------------------------------------------------------------------------
# Every image decodes to its stored shape.

MAGIC = {b"JPEG": b"\xff\xd8\xff", b"jpg": b"\xff\xd8\xff", b"jpeg": b"\xff\xd8\xff", b"PNG": b"\x89PNG",
         b"png": b"\x89PNG"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_image_decodes_to_stored_shape(shards, kind):
    gray = check_images_decode(shards, kind)
    if kind == "imagenet-train":
        # The sample data holds grayscale JPEGs: the branch above is exercised.
        assert gray > 0


def check_images_decode(shards, kind):
    gray = 0
    for path in kind_files(shards, kind):
        for raw, rec in zip(tf_records(path), sluice_records(path)):
            where = (path, rec["index"])
            f = example_features(raw)
            encoded, fmt = f["image/encoded"][1][0], f["image/format"][1][0]
            stored = [f[k][1][0] if k in f else None for k in SHAPE_KEYS]
            if fmt == b"RAW":
                assert len(encoded) == 32 * 32 * 3 == int(np.prod(stored)), where
                image = tf.reshape(tf.io.decode_raw(encoded, tf.uint8), stored)
            else:
                assert encoded.startswith(MAGIC[fmt]), (where, fmt)
                decode = tf.io.decode_jpeg if MAGIC[fmt] == b"\xff\xd8\xff" else tf.io.decode_png
                natural = decode(encoded, channels=0)
                assert tuple(tf.io.decode_image(encoded, channels=0, expand_animations=False).shape) == \
                    tuple(natural.shape), where
                # A grayscale JPEG is kept as it is and stored as 3 channels, as inception's
                # build_imagenet_data.py does (every seed decodes with channels=3); PNGs are RGB.
                assert natural.shape[2] in ((1, 3) if decode is tf.io.decode_jpeg else (3,)), where
                gray += natural.shape[2] == 1
                image = decode(encoded, channels=3)
            assert image.dtype == tf.uint8
            h, w, c = image.shape
            assert (h, w) == (stored[0], stored[1]), (where, image.shape, stored)
            # flowers (slim's layout) stores no channel count; slim decodes it with channels=3.
            assert stored[2] in (3, None) and c == 3, (where, stored, image.shape)
    return gray


def test_cifar_raw_pixels_equal_png_pixels(shards):
    """Both ingests of the same archive hold the same records in the same order; RAW is HWC uint8."""
    raw_files, png_files = kind_files(shards, "cifar_raw"), kind_files(shards, "cifar_png")
    assert [os.path.basename(f) for f in raw_files] == [os.path.basename(f) for f in png_files]
    for raw_path, png_path in zip(raw_files, png_files):
        for a, b in zip(tf_records(raw_path), tf_records(png_path), strict=True):
            fa, fb = example_features(a), example_features(b)
            assert fa["image/class/label"] == fb["image/class/label"]
            pixels = tf.reshape(tf.io.decode_raw(fa["image/encoded"][1][0], tf.uint8), [32, 32, 3])
            np.testing.assert_array_equal(pixels.numpy(), tf.io.decode_png(fb["image/encoded"][1][0]).numpy())


@pytest.mark.parametrize("kind", ["cifar_png", "cifar_raw"])
def test_cifar_matches_tfds_features(shards, kind):
    for path in kind_files(shards, kind):
        for raw in tf_records(path):
            f = example_features(raw)
            label = f["image/class/label"][1][0]
            assert 0 <= label < 10
            assert f["image/class/text"][1][0].decode() == TFDS_CIFAR10_NAMES[label]
            assert [f[k][1][0] for k in SHAPE_KEYS] == [32, 32, 3]


# ---------------------------------------------------------------------------------------------------
# GZIP and ZLIB.

COMPRESSIONS = [("gzip", "GZIP", ".gz", gzip.compress), ("zlib", "ZLIB", ".zz", zlib.compress)]


def _same_inspect(a, b):
    strip = lambda recs: [{k: v for k, v in r.items() if k != "file"} for r in recs]  # noqa: E731
    assert strip(a) == strip(b)


@pytest.mark.parametrize("name,tf_name,ext,compress", COMPRESSIONS)
def test_example_tool_compressed_files_read_by_tf(shards, tmp_path, name, tf_name, ext, compress):
    val = kind_files(shards, "imagenet-validation")[0]
    train = kind_files(shards, "imagenet-train")[0]
    originals = tf_records(val) + tf_records(train)[:8]  # no boxes, then boxes
    spec = []
    for raw in originals:
        spec.append({key: {"kind": kind, "values": [v.hex() for v in values] if kind == "bytes" else values}
                     for key, (kind, values) in example_features(raw).items()})
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    out = str(tmp_path / f"records{ext}")
    r = subprocess.run([tool("example_tool"), "write", str(spec_path), out, name], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        head = f.read(2)
    if name == "gzip":
        assert head == b"\x1f\x8b", head  # RFC 1952 magic
    else:
        assert head[0] & 0x0F == 8 and (head[0] * 256 + head[1]) % 31 == 0, head  # RFC 1950 header
    got = tf_records(out, tf_name)
    assert len(got) == len(originals)
    for a, b in zip(got, originals):
        assert tf.train.Example.FromString(a) == tf.train.Example.FromString(b)
        # sluice encodes deterministically (keys sorted, lists packed): the very bytes of the shard.
        assert a == b
    # sluice reads its own compressed file (by extension and by name) as the uncompressed originals.
    expected = sluice_records(val) + sluice_records(train)[:8]
    shown = inspect_json(out, "auto")
    assert [r["features"] for r in shown] == [r["features"] for r in expected]
    assert [r["size"] for r in shown] == [len(r) for r in got]
    _same_inspect(shown, inspect_json(out, name))


@pytest.mark.parametrize("name,tf_name,ext,compress", COMPRESSIONS)
def test_compressed_real_shards_read_by_sluice_and_tf(shards, tmp_path, name, tf_name, ext, compress):
    for kind in ("cifar_png", "flowers-validation"):
        src = kind_files(shards, kind)[0]
        with open(src, "rb") as f:
            data = f.read()
        # Python's whole-file compression, named without and with the extension.
        plain_name = tmp_path / f"{kind}-{name}"
        plain_name.write_bytes(compress(data))
        named = tmp_path / f"{kind}{ext}"
        shutil.copy(plain_name, named)
        _same_inspect(inspect_json(str(plain_name), name), sluice_records(src))
        _same_inspect(inspect_json(str(named), "auto"), sluice_records(src))
        assert tf_records(str(plain_name), tf_name) == tf_records(src)
        # TensorFlow's own compressed writer.
        tf_written = str(tmp_path / f"{kind}-tf{ext}")
        with tf.io.TFRecordWriter(tf_written, options=tf_name) as w:
            for raw in tf_records(src):
                w.write(raw)
        _same_inspect(inspect_json(tf_written, "auto"), sluice_records(src))
        _same_inspect(inspect_json(tf_written, name), sluice_records(src))
        # Read uncompressed, a compressed file is not TFRecords: both readers must fail.
        assert run_cli("inspect", "--compression", "none", tf_written, check=False).returncode == 1
        with pytest.raises(tf.errors.DataLossError):
            tf_records(tf_written, "")


# ---------------------------------------------------------------------------------------------------
# A flipped byte: DataLoss at the offset sluice names.

# (where in record k, whether TF's checksummed read that fails starts at the payload)
FLIPS = {
    "length": (lambda rec: rec["offset"] + 0, False),
    "length-high-byte": (lambda rec: rec["offset"] + 5, False),
    "length-crc": (lambda rec: rec["offset"] + 9, False),
    "payload": (lambda rec: rec["offset"] + 12 + rec["size"] // 2, True),
    "data-crc": (lambda rec: rec["offset"] + 12 + rec["size"] + 2, True),
}


def tf_read_until_error(path):
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path):
            count += 1
    except tf.errors.DataLossError as e:
        return count, e.message
    return count, None


@pytest.mark.parametrize("flip", FLIPS)
@pytest.mark.parametrize("kind,k", [("imagenet-validation", 3), ("cifar_png", 17)])
def test_flipped_byte_is_data_loss_at_the_offset_sluice_names(shards, tmp_path, kind, k, flip):
    src = kind_files(shards, kind)[0]
    rec = sluice_records(src)[k]
    where, in_payload = FLIPS[flip]
    data = bytearray(open(src, "rb").read())
    data[where(rec)] ^= 0x10
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data))

    v = run_cli("verify", bad, check=False)
    assert v.returncode == 1, v.stderr
    named = [int(m) for m in re.findall(r"offset (\d+): corrupted record at (\d+)", v.stderr)[0]]
    assert named == [rec["offset"], rec["offset"]], v.stderr
    counts = re.search(r"\t(\d+) records\t(\d+) good\t(\d+) problems", v.stdout)
    assert counts and [int(x) for x in counts.groups()] == [k, k, 1], v.stdout

    i = run_cli("inspect", "--json", bad, check=False)
    assert i.returncode == 1
    assert len([line for line in i.stdout.splitlines() if line.strip()]) == k
    assert f"corrupted record at {rec['offset']} in {bad}" in i.stderr, i.stderr

    count, message = tf_read_until_error(str(bad))
    assert message is not None, "TensorFlow read the corrupted file without an error"
    m = re.search(r"corrupted record at (\d+)", message)
    assert m, message
    assert count == k
    assert int(m.group(1)) == rec["offset"] + (12 if in_payload else 0), (message, rec["offset"])
