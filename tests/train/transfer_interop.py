#!/usr/bin/python3
"""Transfer learning, evaluation, prediction and moving averages of `sluice train`, read by an
independent implementation.

The runs use the real CLI on data it generates (`sluice sample-data`, `sluice ingest imagenet` and
`sluice ingest flowers`): a small ResNet is trained on the ImageNet-style sample, then fine-tuned on
the flowers sample from that checkpoint with its classifier excluded. The Python side shares no code
with sluice: checkpoints are read by interop_common.read_safetensors (numpy), TFRecords by its
framing reader and the Example classes built from TensorFlow's field numbers (python3-protobuf),
predictions.csv by the csv module.

Checked:
  1. Pre-training reaches a top-1 well above chance on the ImageNet-style validation split.
  2. --init-from PRE --exclude fc: the step-0 checkpoint of the flowers run equals PRE in every
     tensor but fc.weight / fc.bias (weights and BN statistics bit for bit); fc has the flowers'
     5 rows; after a short run the flowers top-1 is well above chance (0.2), and above the same run
     from scratch.
  3. --mode eval prints the final checkpoint's top-1; --mode predict writes predictions.csv with one
     row per validation record in the shards' order (the records' labels, and their image/filename
     or else "<shard>:<record number>", read here from the TFRecords), class names from labels.txt, probabilities in (0, 1], descending,
     summing to <= 1; the share of rows whose class_1 equals the label is eval's top-1.
  4. --trainable fc: every tensor but fc (BN running statistics included: frozen BNs run in
     inference mode) is bit-identical to the starting checkpoint after training; fc moved.
  5. moving_average_decay: with a checkpoint at every step, each <name>.ema equals
     d * previous + (1 - d) * weights, d = min(decay, (1 + step) / (10 + step)), starting from the
     initial weights; the run's final evaluation is `sluice eval --moving-averages`'s (and differs
     from the raw weights' loss).
  6. Errors: an un-excluded head of another shape (--exclude "" clears the recipe's fc) names fc.weight and both shapes; a --trainable
     pattern matching nothing is refused.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats"))
import interop_common as ic  # noqa: E402

check = ic.Checker()
COMMON = ["--recipe", "flowers-finetune", "--model", "small-resnet", "--width", "8",
          "--set", "image_size=40", "--train-threads", "2", "--pipeline-threads", "1"]


def run(cmd, expect_ok=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if expect_ok and r.returncode != 0:
        print("FAIL:", " ".join(cmd), "exited", r.returncode, "\n", r.stderr[-3000:])
        sys.exit(1)
    return r


def final_top1(stdout):
    # "steps N  top-1 X  top-5 ..."
    fields = stdout.split()
    return float(fields[fields.index("top-1") + 1])


def tensors(path):
    t, meta = ic.read_safetensors(path)
    return t, meta


def main():
    args = ic.parse_args()
    if args.cli == "none" or not os.path.exists(args.cli):
        print("FAIL: --cli must name the sluice binary")
        return 1
    cli, work = args.cli, args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    raw = os.path.join(work, "raw")
    run([cli, "sample-data", raw])
    inet, flowers = os.path.join(work, "imagenet"), os.path.join(work, "flowers")
    i = os.path.join(raw, "imagenet")
    run([cli, "ingest", "imagenet", "--train-archive", f"{i}/ILSVRC2012_img_train.tar",
         "--val-archive", f"{i}/ILSVRC2012_img_val.tar",
         "--val-labels", f"{i}/imagenet_2012_validation_synset_labels.txt",
         "--metadata", f"{i}/imagenet_metadata.txt", "--train-shards", "4", "--val-shards", "2",
         "--out", inet])
    run([cli, "ingest", "flowers", "--archive", os.path.join(raw, "flowers", "flower_photos.tgz"),
         "--validation", "20", "--out", flowers])

    # 1. Pre-training.
    pre = os.path.join(work, "pre")
    r = run([cli, "train", *COMMON, "--data-dir", inet, "--model-dir", pre, "--batch", "32",
             "--train-steps", "250", "--learning-rate", "0.2", "--log-every", "50"])
    pre_top1 = final_top1(r.stdout)
    check(pre_top1 >= 0.6, f"pre-training top-1 {pre_top1} on the 10-class ImageNet sample (chance 0.1)")
    pre_ckpt = os.path.join(pre, "checkpoint_iter_final.safetensors")
    pre_t, _ = tensors(pre_ckpt)

    # 2. Fine-tuning from it, and the same run from scratch.
    ft = os.path.join(work, "ft")
    tune = ["--data-dir", flowers, "--batch", "16", "--train-steps", "30", "--learning-rate", "0.05",
            "--log-every", "10"]
    r = run([cli, "train", *COMMON, *tune, "--model-dir", ft, "--init-from", pre_ckpt,
             "--exclude", "fc", "--checkpoint-iters", "0"])
    ft_top1 = final_top1(r.stdout)
    start, _ = tensors(os.path.join(ft, "checkpoint_iter_0.safetensors"))
    weights = [n for n in start if not n.endswith(".momentum_buffer")]
    for name in weights:
        if name.startswith("fc."):
            check(start[name].shape[0] == 5, f"{name} has the flowers' 5 classes: {start[name].shape}")
            check(pre_t[name].shape[0] == 11, f"pre-training's {name} had 11 classes: {pre_t[name].shape}")
        else:
            check(start[name].shape == pre_t[name].shape and np.array_equal(start[name], pre_t[name]),
                  f"{name} at step 0 equals the --init-from checkpoint's")
    scratch = os.path.join(work, "scratch")
    r = run([cli, "train", *COMMON, *tune, "--model-dir", scratch])
    scratch_top1 = final_top1(r.stdout)
    print(f"top-1 on flowers after 30 steps: fine-tuned {ft_top1}, from scratch {scratch_top1}")
    check(ft_top1 >= 0.7, f"fine-tuned top-1 {ft_top1} well above chance 0.2")
    check(ft_top1 > scratch_top1, f"fine-tuned {ft_top1} beats scratch {scratch_top1}")

    # 3. eval and predict.
    r = run([cli, "train", "--data-dir", flowers, "--model-dir", ft, "--mode", "eval"])
    eval_top1 = final_top1(r.stdout)
    check(eval_top1 == ft_top1, f"--mode eval top-1 {eval_top1} == the run's final {ft_top1}")
    # `sluice eval` on the same checkpoint and split takes the same path: the same numbers.
    e = run([cli, "eval", "--checkpoint", os.path.join(ft, "checkpoint_iter_final.safetensors"),
             "--data", os.path.join(flowers, "flowers_validation_*"), "--preset", "resnet-eval",
             "--image-size", "40", "--batch", "16"])

    def numbers(out):
        fields = out.split()
        return [fields[fields.index(key) + 1] for key in ("top-1", "top-5", "loss")]

    check(numbers(e.stdout) == numbers(r.stdout),
          f"sluice eval {e.stdout.strip()!r} equals sluice train --mode eval {r.stdout.strip()!r}")
    preds = os.path.join(work, "predictions.csv")
    r = run([cli, "train", "--data-dir", flowers, "--model-dir", ft, "--mode", "predict",
             "--predictions", preds, "--top-k", "3"])
    with open(preds, newline="") as f:
        rows = list(csv.DictReader(f))
    Example = ic.example_classes()["Example"]
    manifest = json.load(open(os.path.join(flowers, "manifest.json")))
    files = sorted(os.path.join(flowers, s["file"]) for s in manifest["splits"]["validation"]["shards"])
    per_file = []
    for path in files:
        recs = []
        for k, (_, rec) in enumerate(ic.read_records(open(path, "rb").read())):
            ex = Example()
            ex.ParseFromString(rec)
            feat = ex.features.feature
            # slim's flowers records have no image/filename: then "<shard>:<record number>".
            given = feat["image/filename"].bytes_list.value if "image/filename" in feat else []
            recs.append((given[0].decode() if given else f"{os.path.basename(path)}:{k}",
                         feat["image/class/label"].int64_list.value[0]))
        per_file.append(recs)
    # The pipeline's unshuffled order: the sorted files, interleaved 4 at a time, one record each.
    order, open_files, pending = [], [], list(range(len(per_file)))
    pos = {}
    while pending or open_files:
        while len(open_files) < 4 and pending:
            k = pending.pop(0)
            open_files.append(k)
            pos[k] = 0
        for k in list(open_files):
            if pos[k] < len(per_file[k]):
                order.append(per_file[k][pos[k]])
                pos[k] += 1
            if pos[k] >= len(per_file[k]):
                open_files.remove(k)
    names = {}
    for line in open(os.path.join(flowers, "labels.txt")):
        k, v = line.rstrip("\n").split(":", 1)
        names[int(k)] = v
    check(len(rows) == 20 == len(order), f"predictions.csv has {len(rows)} rows, 20 validation records")
    hits = 0
    for n, (row, (filename, label)) in enumerate(zip(rows, order)):
        check(int(row["record"]) == n, f"row {n} record index {row['record']}")
        check(row["filename"] == filename, f"row {n} filename {row['filename']} == record's {filename}")
        check(int(row["label"]) == label, f"row {n} label {row['label']} == record's {label}")
        check(row["label_name"] == names[label], f"row {n} label_name {row['label_name']}")
        probs = [float(row[f"prob_{k}"]) for k in (1, 2, 3)]
        check(all(0 < p <= 1 for p in probs) and probs == sorted(probs, reverse=True)
              and sum(probs) <= 1 + 1e-5, f"row {n} probabilities {probs}")
        for k in (1, 2, 3):
            check(row[f"name_{k}"] == names[int(row[f"class_{k}"])], f"row {n} name_{k}")
        hits += int(row["class_1"]) == label
    check(abs(hits / 20 - eval_top1) < 1e-9, f"predict accuracy {hits / 20} == eval top-1 {eval_top1}")

    # 4. Only the head trains.
    probe = os.path.join(work, "probe")
    run([cli, "train", *COMMON, *tune, "--model-dir", probe, "--init-from", pre_ckpt,
         "--exclude", "fc", "--trainable", "fc", "--checkpoint-iters", "0"])
    first, _ = tensors(os.path.join(probe, "checkpoint_iter_0.safetensors"))
    last, _ = tensors(os.path.join(probe, "checkpoint_iter_final.safetensors"))
    for name in weights:
        if name.endswith("num_batches_tracked"):
            continue
        same = np.array_equal(first[name], last[name])
        if name.startswith("fc."):
            check(not same, f"{name} trained")
        else:
            check(same, f"frozen {name} unchanged (BN statistics included)")

    # 5. Moving averages.
    ema_run = os.path.join(work, "ema")
    decay = 0.8
    r = run([cli, "train", *COMMON, "--data-dir", flowers, "--batch", "8", "--train-steps", "4",
             "--model-dir", ema_run, "--set", f"moving_average_decay={decay}",
             "--checkpoint-iters", "0,1,2,3,4"])
    ema_top1 = final_top1(r.stdout)
    final = os.path.join(ema_run, "checkpoint_iter_final.safetensors")
    evals = {}
    for flag in ("--moving-averages", None):
        e = run([cli, "eval", "--checkpoint", final, "--data", os.path.join(flowers, "flowers_validation_*"),
                 "--preset", "resnet-eval", "--image-size", "40", *([flag] if flag else [])])
        evals[flag] = e.stdout
    check(final_top1(evals["--moving-averages"]) == ema_top1,
          f"the run evaluates its averages: sluice eval --moving-averages {evals['--moving-averages']!r} "
          f"vs the run's {ema_top1}")
    check(evals["--moving-averages"].split("loss")[1] != evals[None].split("loss")[1],
          f"averaged and raw weights give different losses: {evals}")
    states = [tensors(os.path.join(ema_run, f"checkpoint_iter_{s}.safetensors"))[0] for s in range(5)]
    averaged = [n[:-4] for n in states[0] if n.endswith(".ema")]
    check(len(averaged) > 20, f"{len(averaged)} averaged tensors")
    check(any("running_mean" in n for n in averaged), "BN statistics are averaged too")
    shadow = {n: states[0][n].astype(np.float64) for n in averaged}
    for n in averaged:
        check(np.array_equal(states[0][n + ".ema"], states[0][n]), f"{n}: the average starts at the weights")
    for s in range(1, 5):
        d = min(decay, (1 + s) / (10 + s))
        for n in averaged:
            shadow[n] = d * shadow[n] + (1 - d) * states[s][n]
            got = states[s][n + ".ema"]
            err = np.max(np.abs(got - shadow[n])) if got.size else 0
            check(err <= 1e-6 * max(1.0, np.max(np.abs(shadow[n]))), f"step {s} {n}.ema off by {err}")

    # 6. Errors.
    r = run([cli, "train", *COMMON, *tune, "--model-dir", os.path.join(work, "bad1"),
             "--init-from", pre_ckpt, "--exclude", ""], expect_ok=False)
    check(r.returncode != 0 and "fc.weight" in r.stderr and "(11, 32)" in r.stderr
          and "(5, 32)" in r.stderr, f"shape mismatch error: {r.stderr[-400:]}")
    r = run([cli, "train", *COMMON, *tune, "--model-dir", os.path.join(work, "bad2"),
             "--init-from", pre_ckpt, "--exclude", "fc", "--trainable", "classifier"], expect_ok=False)
    check(r.returncode != 0 and "classifier" in r.stderr and "matches no parameter" in r.stderr,
          f"--trainable typo error: {r.stderr[-300:]}")
    print(f"transfer interop: {check.count} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
