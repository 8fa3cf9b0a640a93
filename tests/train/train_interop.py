#!/usr/bin/python3
"""A `sluice train` run read by an independent implementation.

The run is made with the real CLI on data it generates: `sluice sample-data` (CIFAR-10 only),
`sluice ingest cifar10`, then 30 steps of a small ResNet with a training scalar every 10 steps and a
checkpoint at step 10. The Python side shares no code with sluice: TFRecord framing and CRC32C come
from tests/formats/interop_common.py and the Event / Summary message classes from
tests/formats/events_interop.py (built from TensorFlow's field numbers, parsed by Debian's
python3-protobuf); .npy files are read by numpy.

Checked:
  1. RUN/ and RUN/eval/ each hold events files whose every record passes both CRCs, parses as an
     Event and re-encodes to the same bytes; the first is file_version "brain.Event:2".
  2. RUN/ has loss, cross_entropy, learning_rate, images_per_sec and input_wait_fraction at steps
     10, 20, 30 exactly; RUN/eval/ has accuracy, top_1_accuracy, top_5_accuracy and loss at 30.
     learning_rate is the recipe's 0.1 * 32 / 128; each training scalar equals (as float32) the
     value of the same step in RUN/metrics.jsonl.
  3. `sluice results RUN` prints the top-1 the Python reader found (table: to its 4 decimals;
     --format json: the same float32).
  4. `sluice eval` of the final checkpoint with --dump-inputs/--dump-logits/--dump-labels: numpy's
     mean(argmax(logits) == labels) is the top-1 it printed (and the top-5 likewise), inputs are (N, 32, 32, 3) float32 for
     the N test images of the manifest, logits (N, 10), labels (N,) int64 in [0, 10).
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats"))
import events_interop as ev  # noqa: E402  (Event classes from TF's field numbers)
import interop_common as ic  # noqa: E402  (CRC32C and TFRecord framing)

STEPS = 30
LOG_EVERY = 10
BATCH = 32
TRAIN_TAGS = ["loss", "cross_entropy", "learning_rate", "images_per_sec", "input_wait_fraction"]
EVAL_TAGS = ["accuracy", "top_1_accuracy", "top_5_accuracy", "loss"]

check = ic.Checker()


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL:", " ".join(cmd), "exited", r.returncode, "\n", r.stderr[-3000:])
        sys.exit(1)
    return r.stdout, r.stderr


def read_events(directory, Event):
    """{tag: {step: value}} over every events file directly in `directory`."""
    files = sorted(n for n in os.listdir(directory) if "tfevents" in n)
    check(len(files) >= 1, f"events files in {directory}: {os.listdir(directory)}")
    scalars = {}
    for name in files:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            data = f.read()
        try:
            records = [rec for _, rec in ic.read_records(data)]
        except ValueError as e:
            check(False, f"{path}: {e}")
        check(len(records) >= 2, f"{path}: {len(records)} records")
        first = Event.FromString(records[0])
        check(first.WhichOneof("what") == "file_version" and first.file_version == "brain.Event:2",
              f"{path}: first record {first}")
        for rec in records[1:]:
            e = Event.FromString(rec)
            check(e.SerializeToString() == rec, f"{path}: record at step {e.step} re-encodes")
            check(e.WhichOneof("what") == "summary", f"{path}: summary event {e}")
            for v in e.summary.value:
                check(v.WhichOneof("value") == "simple_value", f"{path}: simple_value in {v}")
                scalars.setdefault(v.tag, {})[e.step] = v.simple_value
    return scalars


def main():
    args = ic.parse_args()
    if args.cli == "none" or not os.path.exists(args.cli):
        print("train_interop: skipped (no CLI)")
        return
    cli, work = args.cli, args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sample, data, model_dir = (os.path.join(work, n) for n in ("sample", "data", "run"))

    run([cli, "sample-data", sample, "--datasets", "cifar10", "--threads", "2"])
    run([cli, "ingest", "cifar10", "--archive",
         os.path.join(sample, "cifar10", "cifar-10-binary.tar.gz"), "--out", data, "--threads", "2"])
    with open(os.path.join(data, "manifest.json")) as f:
        test_images = json.load(f)["splits"]["test"]["records"]
    check(test_images > 0, "test records in the manifest")

    run([cli, "train", "--model", "small-resnet", "--width", "8", "--data-dir", data,
         "--model-dir", model_dir, "--train-steps", str(STEPS), "--batch", str(BATCH),
         "--log-every", str(LOG_EVERY), "--checkpoint-iters", "10", "--train-threads", "2",
         "--pipeline-threads", "1"])
    for name in ["checkpoint_iter_10.safetensors", "checkpoint_iter_final.safetensors",
                 "hparams.yaml", "metrics.jsonl"]:
        check(os.path.exists(os.path.join(model_dir, name)), f"{name} written")

    # 1, 2: the events files.
    Event = ev.build_classes()["Event"]
    train = read_events(model_dir, Event)
    evals = read_events(os.path.join(model_dir, "eval"), Event)
    logged = list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    for tag in TRAIN_TAGS:
        check(tag in train, f"training tag {tag} (have {sorted(train)})")
        check(sorted(train[tag]) == logged, f"{tag} steps {sorted(train[tag])} == {logged}")
    for tag in EVAL_TAGS:
        check(tag in evals, f"eval tag {tag} (have {sorted(evals)})")
        check(sorted(evals[tag]) == [STEPS], f"eval {tag} steps {sorted(evals[tag])}")
    for step in logged:
        check(train["learning_rate"][step] == ev.f32(0.1 * BATCH / 128),
              f"learning_rate at {step}: {train['learning_rate'][step]}")
        check(0 <= train["input_wait_fraction"][step] <= 1, "input_wait_fraction in [0, 1]")
        check(train["images_per_sec"][step] > 0, "images_per_sec > 0")
    top1 = evals["top_1_accuracy"][STEPS]
    check(evals["accuracy"][STEPS] == top1, "accuracy == top_1_accuracy")
    check(0 <= top1 <= evals["top_5_accuracy"][STEPS] <= 1, "0 <= top-1 <= top-5 <= 1")
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f]
    train_lines = [m for m in metrics if m["kind"] == "train"]
    check([m["step"] for m in train_lines] == logged, "metrics.jsonl train steps")
    for m in train_lines:
        for tag in TRAIN_TAGS:
            check(ev.f32(m[tag]) == train[tag][m["step"]],
                  f"{tag} at {m['step']}: metrics.jsonl {m[tag]} vs event {train[tag][m['step']]}")
    eval_lines = [m for m in metrics if m["kind"] == "eval"]
    check(len(eval_lines) == 1 and ev.f32(eval_lines[0]["top_1_accuracy"]) == top1,
          f"metrics.jsonl eval line {eval_lines}")
    print(f"events: {sum(len(v) for v in train.values())} training and "
          f"{sum(len(v) for v in evals.values())} eval scalars read; top-1 {top1:.4f}")

    # 3: sluice results.
    out, _ = run([cli, "results", model_dir])
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    check(len(rows) == 1 and rows[0][0] == str(STEPS), f"results table rows {rows}")
    check(abs(float(rows[0][1]) - top1) <= 5e-5 + 1e-9,
          f"results prints {rows[0][1]}, the events hold {top1}")
    out, _ = run([cli, "results", model_dir, "--format", "json"])
    points = json.loads(out)["runs"][0]["points"]
    check(points == [{"step": STEPS, "value": points[0]["value"]}] and
          ev.f32(points[0]["value"]) == top1, f"results json {points} vs {top1}")
    print(f"sluice results: {rows[0][1]} at step {STEPS}")

    # 4: sluice eval with dumps.
    x, y, z = (os.path.join(work, n) for n in ("X.npy", "Y.npy", "Z.npy"))
    out, _ = run([cli, "eval", "--checkpoint",
                  os.path.join(model_dir, "checkpoint_iter_final.safetensors"),
                  "--data", os.path.join(data, "test-*"), "--preset", "cifar-eval",
                  "--dump-inputs", x, "--dump-logits", y, "--dump-labels", z, "--threads", "1"])
    m = re.search(r"images (\d+)\s+top-1 ([0-9.]+)\s+top-5 ([0-9.]+)", out)
    check(m is not None, f"eval output {out!r}")
    images, eval_top1, eval_top5 = int(m.group(1)), float(m.group(2)), float(m.group(3))
    X, Y, Z = np.load(x), np.load(y), np.load(z)
    check(images == test_images, f"eval read {images} images, the manifest has {test_images}")
    check(X.dtype == np.float32 and X.shape == (images, 32, 32, 3), f"inputs {X.dtype} {X.shape}")
    check(Y.dtype == np.float32 and Y.shape == (images, 10), f"logits {Y.dtype} {Y.shape}")
    check(Z.dtype == np.int64 and Z.shape == (images,), f"labels {Z.dtype} {Z.shape}")
    check(Z.min() >= 0 and Z.max() < 10, "labels in [0, 10)")
    check(np.isfinite(X).all() and np.isfinite(Y).all(), "finite inputs and logits")
    # cifar-eval standardizes each image (per_image_standardization): mean 0, unit variance.
    means = X.reshape(images, -1).mean(axis=1)
    check(np.abs(means).max() < 1e-3, f"per-image means {np.abs(means).max()}")
    numpy_top1 = float(np.mean(np.argmax(Y, axis=1) == Z))
    check(abs(numpy_top1 - eval_top1) <= 5e-5 + 1e-9,
          f"numpy top-1 {numpy_top1} vs sluice eval {eval_top1}")
    # Top-5 depends on the ranking of every row, not only its maximum (a stronger check of the
    # row/label pairing while the model, after 30 steps, still predicts few classes).
    numpy_top5 = float(np.mean((np.argsort(-Y, axis=1, kind="stable")[:, :5] == Z[:, None]).any(1)))
    check(abs(numpy_top5 - eval_top5) <= 5e-5 + 1e-9,
          f"numpy top-5 {numpy_top5} vs sluice eval {eval_top5}")
    # Same checkpoint and images as the run's final evaluation (another batch size: allow one image).
    check(abs(numpy_top1 - top1) <= 1.0 / images + 1e-6,
          f"eval top-1 {numpy_top1} vs the run's {top1}")
    print(f"sluice eval: {images} images, top-1 {eval_top1:.4f} == numpy's {numpy_top1:.4f}")
    print(f"OK: {check.count} checks")


if __name__ == "__main__":
    main()
