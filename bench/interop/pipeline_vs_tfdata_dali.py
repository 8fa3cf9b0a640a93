"""sluice's input pipeline vs the pipelines its users would otherwise run, on the same shards, the same
cores and in one run: tensorflow/tpu's ImageNet input pipeline on tf.data, and DALI's CPU pipeline.

Run with the interop venv's python (scripts/setup.sh --interop makes it):
  build/venv-interop/bin/python bench/interop/pipeline_vs_tfdata_dali.py [--rounds 3] [--threads 2]
      [--batch 128] [--images 1000] [--work /tmp/sluice_bench/interop] [--out FILE.md]

Data (--source): `peers` (default) is ../shared/peers/make_images.py's N photo-like ImageNet-sized JPEGs
(the images of the earlier pipeline tables in bench/RESULTS.md), ingested with `sluice ingest folder --split
0.5,0.5 --shards 8 --write-index`, so train and eval each read N/2 images; `sample` is `sluice sample-data
--images N` ingested with `sluice ingest imagenet --write-index` (8 train, 4 validation shards; val N/2).
Every tool reads the same shards.

The three, each the way its users write it (every one outputs float32 NHWC 224x224x3 batches, normalized
with ImageNet's mean/std, plus int labels):
  sluice   `sluice pipeline bench --preset resnet-train|resnet-eval --threads T --batch B`; its rate here is
           the steady one, like the peers': the images after the first batch / the time after it (its
           report's warm-up); the from-start rate (start-up included) is printed per round too.
  tf.data  tensorflow/tpu imagenet_input.py + resnet_preprocessing.py as their users run them: list_files,
           interleave of TFRecordDatasets (cycle 4, parallel), shuffle 1024 (train), map with AUTOTUNE of
           parse_single_example + (train) sample_distorted_bounding_box over the whole image (min covered
           0.1, aspect 3/4..4/3, area 0.08..1, 10 attempts) + decode_and_crop_jpeg + bicubic resize 224 +
           random flip, (eval) decode_and_crop_jpeg of the centre crop padded by 32 + bicubic resize 224,
           then mean/std normalization; batch(drop_remainder) with AUTOTUNE parallelism; prefetch(AUTOTUNE).
           A private thread pool of T threads, intra-op parallelism 1 (TF's input-pipeline advice).
  DALI     readers.tfrecord (with sluice's .idx files, shuffled in train) + decoders.image_random_crop
           (same area/aspect ranges) + resize 224x224 (cubic) + crop_mirror_normalize (random mirror) for
           train; decoders.image + resize shorter side 256 + crop_mirror_normalize centre 224 for eval (DALI's
           ResNet example's eval); num_threads=T, device_id=None (CPU only).
The peers' rates are images / time over the batches after their first two (their warm-up excluded). Rounds alternate the tools so drift on a shared host hits all three; the table gives the
medians and each tool's best round. Each peer runs in its own process (TensorFlow and DALI are never in
one interpreter with each other or with torch).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def tfdata_rate(files, train, batch, threads, batches):
    import tensorflow as tf
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    keys = {"image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1)}
    mean = tf.constant(MEAN, shape=[1, 1, 3])
    std = tf.constant(STD, shape=[1, 1, 3])

    def train_image(data):
        shape = tf.io.extract_jpeg_shape(data)
        bbox = tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4])
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=bbox, min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
        oy, ox, _ = tf.unstack(begin)
        h, w, _ = tf.unstack(size)
        image = tf.io.decode_and_crop_jpeg(data, tf.stack([oy, ox, h, w]), channels=3)
        image = tf.image.resize([image], [224, 224], method="bicubic")[0]
        return tf.image.random_flip_left_right(image)

    def eval_image(data):
        shape = tf.io.extract_jpeg_shape(data)
        h, w = shape[0], shape[1]
        crop = tf.cast((224 / (224 + 32)) * tf.cast(tf.minimum(h, w), tf.float32), tf.int32)
        oy, ox = ((h - crop) + 1) // 2, ((w - crop) + 1) // 2
        image = tf.io.decode_and_crop_jpeg(data, tf.stack([oy, ox, crop, crop]), channels=3)
        return tf.image.resize([image], [224, 224], method="bicubic")[0]

    def parse(record):
        f = tf.io.parse_single_example(record, keys)
        image = (train_image if train else eval_image)(f["image/encoded"])
        return (image - mean) / std, tf.cast(f["image/class/label"], tf.int32)

    ds = tf.data.Dataset.list_files(files, shuffle=train, seed=0)
    ds = ds.repeat()
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=8 << 20), cycle_length=4,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    if train:
        ds = ds.shuffle(1024, seed=0)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)
    return _time(iter(ds), batch, batches)


def dali_rate(files, train, batch, threads, batches):
    from nvidia.dali import fn, pipeline_def, types
    import nvidia.dali.tfrecord as tfrec
    index = [f + ".idx" for f in files]

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, seed=0)
    def pipe():
        inputs = fn.readers.tfrecord(
            path=files, index_path=index, random_shuffle=train, initial_fill=1024, name="reader",
            features={"image/encoded": tfrec.FixedLenFeature((), tfrec.string, ""),
                      "image/class/label": tfrec.FixedLenFeature([1], tfrec.int64, -1)})
        if train:
            images = fn.decoders.image_random_crop(inputs["image/encoded"], device="cpu", output_type=types.RGB,
                                                   random_aspect_ratio=[3 / 4, 4 / 3], random_area=[0.08, 1.0],
                                                   num_attempts=10)
            images = fn.resize(images, resize_x=224, resize_y=224, interp_type=types.INTERP_CUBIC)
            images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="HWC", mean=MEAN, std=STD,
                                              mirror=fn.random.coin_flip(probability=0.5))
        else:
            images = fn.decoders.image(inputs["image/encoded"], device="cpu", output_type=types.RGB)
            images = fn.resize(images, resize_shorter=256, interp_type=types.INTERP_CUBIC)
            images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="HWC", crop=(224, 224),
                                              mean=MEAN, std=STD)
        return images, inputs["image/class/label"]

    p = pipe()
    p.build()

    class Batches:
        def __next__(self):
            images, labels = p.run()
            return images.as_tensor(), labels

    return _time(Batches(), batch, batches)


def _time(it, batch, batches):
    for _ in range(2):  # warm-up: thread pools, autotuning, first reads
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t0)


def sluice_rate(sluice, files, preset, batch, threads, epochs, out_json):
    r = subprocess.run([sluice, "pipeline", "bench", "--data", *files, "--preset", preset, "--batch", str(batch),
                        "--threads", str(threads), "--epochs", str(epochs), "--json", out_json, "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sluice pipeline bench failed: {r.stderr[-3000:]}")
    with open(out_json) as f:
        d = json.load(f)
    c = d["consumer"]
    return (c["images"] - batch) / (d["wall_s"] - c["warmup_s"]), d["images_per_s"]


def child(a):
    files = sorted(glob.glob(os.path.join(a.work, "imagenet", "train-*" if a.train else "validation-*")))
    files = [f for f in files if not f.endswith(".idx")]
    rate = (tfdata_rate if a.child == "tfdata" else dali_rate)(files, a.train, a.batch, a.threads, a.batches)
    print(json.dumps({"images_per_s": rate}))


def prepare(sluice, work, images, source):
    out = os.path.join(work, "imagenet")
    if os.path.exists(os.path.join(out, "manifest.json")):
        return out
    if source == "peers":
        peers = os.environ.get("PEERS_DIR", os.path.join(ROOT, "..", "shared", "peers"))
        jpegs = os.path.join(work, "peer_images")
        if not os.path.isdir(os.path.join(jpegs, "train")):
            subprocess.run(["/usr/bin/python3", os.path.join(peers, "make_images.py"), "--n", str(images),
                            "--out", jpegs], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sluice, "ingest", "folder", "--root", os.path.join(jpegs, "train"), "--split", "0.5,0.5",
                        "--shards", "8", "--write-index", "--out", out], check=True, stdout=subprocess.DEVNULL)
        return out
    raw = os.path.join(work, "raw")
    subprocess.run([sluice, "sample-data", raw, "--images", str(images), "--val-images", str(images // 2)],
                   check=True, stdout=subprocess.DEVNULL)
    i = os.path.join(raw, "imagenet")
    subprocess.run([sluice, "ingest", "imagenet", "--train-archive", os.path.join(i, "ILSVRC2012_img_train.tar"),
                    "--val-archive", os.path.join(i, "ILSVRC2012_img_val.tar"),
                    "--val-labels", os.path.join(i, "imagenet_2012_validation_synset_labels.txt"),
                    "--train-shards", "8", "--val-shards", "4", "--write-index", "--out", out],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=1000, help="ImageNet-like train images (val: half)")
    ap.add_argument("--source", choices=["peers", "sample"], default="peers")
    ap.add_argument("--work", default="/tmp/sluice_bench/interop")
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build", "release", "cli", "sluice"))
    ap.add_argument("--out", default="")
    ap.add_argument("--child", choices=["tfdata", "dali"], help=argparse.SUPPRESS)
    ap.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    os.makedirs(a.work, exist_ok=True)
    data = prepare(a.sluice, a.work, a.images, a.source)
    with open(os.path.join(data, "manifest.json")) as f:
        records = {name: split["records"] for name, split in json.load(f)["splits"].items()}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"host: {cpu}, {os.cpu_count()} CPUs; threads {a.threads}, batch {a.batch}", file=sys.stderr)
    rows = []
    for preset, train in (("resnet-train", True), ("resnet-eval", False)):
        split = "train-*" if train else "validation-*"
        files = sorted(f for f in glob.glob(os.path.join(data, split)) if not f.endswith(".idx"))
        n = records["train" if train else "validation"]
        epochs = max(2, -(-4000 // n))  # about 4000 images per measurement
        batches = max(4, (epochs * n) // a.batch - 2)  # about the images sluice delivers, after 2 warm-up
        r = {"sluice": [], "tf.data": [], "DALI": []}
        for i in range(a.rounds):
            steady, from_start = sluice_rate(a.sluice, files, preset, a.batch, a.threads, epochs,
                                             os.path.join(a.work, f"{preset}.json"))
            r["sluice"].append(steady)
            for name, kind in (("tf.data", "tfdata"), ("DALI", "dali")):
                cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--work", a.work, "--batch",
                       str(a.batch), "--threads", str(a.threads), "--batches", str(batches)] + (["--train"] if train else [])
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    sys.exit(f"{name} failed: {out.stderr[-3000:]}")
                r[name].append(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])
            print(f"{preset} round {i + 1}: " + "  ".join(f"{k} {v[-1]:.1f}" for k, v in r.items()) +
                  f" img/s (sluice from start {from_start:.1f})",
                  file=sys.stderr, flush=True)
        rows.append((preset, r))
    lines = [f"| preset | sluice img/s (median / best) | tf.data (tpu imagenet_input) | DALI CPU | "
             f"sluice / tf.data (medians / best) | sluice / DALI (medians / best) |", "|---|---|---|---|---|---|"]
    for preset, r in rows:
        med = {k: statistics.median(v) for k, v in r.items()}
        top = {k: max(v) for k, v in r.items()}
        lines.append(f"| {preset} | {med['sluice']:.1f} / {top['sluice']:.1f} | {med['tf.data']:.1f} / "
                     f"{top['tf.data']:.1f} | {med['DALI']:.1f} / {top['DALI']:.1f} | "
                     f"**{med['sluice'] / med['tf.data']:.2f}x** / {top['sluice'] / top['tf.data']:.2f}x | "
                     f"**{med['sluice'] / med['DALI']:.2f}x** / {top['sluice'] / top['DALI']:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"host: {cpu}, {os.cpu_count()} CPUs; threads {a.threads}, batch {a.batch}\n\n{table}\n")


if __name__ == "__main__":
    main()
