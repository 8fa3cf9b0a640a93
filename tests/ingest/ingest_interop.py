"""Cross-checks `sluice ingest imagenet` and `sluice ingest flowers` output with independent
implementations: Python's tarfile reads the TFDS fixture archives (including the nested per-synset
tars), and Python's protobuf runtime (message classes built from TensorFlow's field numbers in
tests/formats/interop_common.py) parses every record of every shard, whose framing and CRCs are checked
by that script's own CRC32C."""
import io
import json
import os
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "formats"))
import interop_common as ic  # noqa: E402

check = ic.Checker()


def features(msg):
    out = {}
    for key, feat in msg.features.feature.items():
        kind = feat.WhichOneof("kind")
        out[key] = list(getattr(feat, kind).value) if kind else []
    return out


def read_split(out_dir, prefix, Example):
    records = []
    for name in sorted(os.listdir(out_dir)):
        if name.startswith(prefix) and not name.endswith((".idx", ".tmp")):
            for _, rec in ic.read_records(open(os.path.join(out_dir, name), "rb").read()):
                msg = Example()
                msg.ParseFromString(rec)
                records.append(features(msg))
    return records


def main():
    args = ic.parse_args()
    tfds = os.path.join(args.fixtures, "tfds")
    if args.cli == "none" or not os.path.isdir(tfds):
        print("ingest_interop: skipped (no CLI or no fixtures)")
        return
    os.makedirs(args.work, exist_ok=True)
    Example = ic.example_classes()["Example"]

    # ImageNet train: tar of per-synset tars.
    train = os.path.join(tfds, "imagenet2012", "ILSVRC2012_img_train.tar")
    expected = {}
    with tarfile.open(train) as outer:
        for m in outer.getmembers():
            if not m.isfile():
                continue
            wnid = os.path.basename(m.name)[:-4]
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(m).read())) as inner:
                for im in inner.getmembers():
                    if im.isfile():
                        expected[os.path.basename(im.name)] = (wnid, inner.extractfile(im).read())
    synsets = sorted({w for w, _ in expected.values()})
    out = os.path.join(args.work, "imagenet")
    subprocess.run([args.cli, "ingest", "imagenet", "--train-archive", train, "--out", out,
                    "--train-shards", "3", "--seed", "5"], check=True)
    records = read_split(out, "train-", Example)
    check(len(records) == len(expected) == 100, f"{len(records)} records")
    seen = set()
    for f in records:
        name = f["image/filename"][0].decode()
        wnid, data = expected[name]
        seen.add(name)
        check(f["image/class/synset"] == [wnid.encode()], f"{name}: synset")
        check(f["image/class/label"] == [1 + synsets.index(wnid)], f"{name}: label")
        check(f["image/encoded"] == [data], f"{name}: bytes passed through")
        check(f["image/format"] == [b"JPEG"] and f["image/colorspace"] == [b"RGB"], f"{name}: fmt")
        check(f["image/channels"] == [3], f"{name}: channels")
        check(len(f) == 15, f"{name}: 15 features, got {sorted(f)}")
        # JPEG SOFn marker gives the size independently of our probe.
        h, w = sof_size(data)
        check(f["image/height"] == [h] and f["image/width"] == [w], f"{name}: size {h}x{w}")
    check(len(seen) == 100, "every image once")
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    check(manifest["splits"]["train"]["records"] == 100, "manifest records")

    # Flowers: the stray file is ignored, labels are sorted class indices.
    tgz = os.path.join(tfds, "tf_flowers", "flower_photos.tgz")
    out = os.path.join(args.work, "flowers")
    subprocess.run([args.cli, "ingest", "flowers", "--archive", tgz, "--out", out,
                    "--split", "1", "--shards", "2"], check=True)
    with tarfile.open(tgz) as t:
        images = {m.name: t.extractfile(m).read() for m in t.getmembers()
                  if m.isfile() and m.name.endswith(".jpg")}
    classes = sorted({n.split("/")[-2] for n in images})
    records = read_split(out, "flowers_train_", Example)
    check(len(records) == len(images), "flowers count")
    by_bytes = {v: k for k, v in images.items()}
    for f in records:
        name = by_bytes[f["image/encoded"][0]]
        check(f["image/class/label"] == [classes.index(name.split("/")[-2])], f"{name}: label")
        check(f["image/format"] == [b"jpg"], "slim format")
    labels = open(os.path.join(out, "labels.txt")).read()
    check(labels == "".join(f"{i}:{c}\n" for i, c in enumerate(classes)), "labels.txt")
    print(f"ingest_interop: {check.count} checks passed")


def sof_size(data):
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            return (data[i + 5] << 8 | data[i + 6], data[i + 7] << 8 | data[i + 8])
        length = data[i + 2] << 8 | data[i + 3]
        i += 2 + length
    raise ValueError("no SOF marker")


if __name__ == "__main__":
    main()
