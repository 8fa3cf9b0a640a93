#!/usr/bin/python3
"""`sluice lottery` end to end, killed and resumed, with its masks checked by numpy.

Data: `sluice sample-data` (CIFAR-10 only) ingested by `sluice ingest cifar10`. Experiments (tiny: a
width-4 small ResNet, 40 dense steps of batch 32, rewind to step 10, densities 80 and 51.2, the
three modes, checkpoints every 10 steps):
  A  one-shot, run straight through.
  B  the same, SIGKILLed as soon as the lr-rewind 80 % run has written its step-20 checkpoint, then
     the same command again: it must report the finished runs complete, resume the killed one, and
     end with the same summary and bit-identical final checkpoints as A.
  C  iterative weight rewinding, densities 80 then 64.

Checked independently of sluice (safetensors parsed here, selection by numpy):
  1. The prunable tensors are exactly the 4-D conv weights and fc.weight (never BN, never biases).
  2. Each run's first checkpoint holds masks equal to numpy's selection: K = round(D/100 * N) of the
     prunable weights by a stable descending argsort of |w| over the tensors concatenated in file
     order (ties kept in that order), from the pruned checkpoint (dense final; for C's level 2,
     level 1's final among the weights its mask kept).
  3. Its weights and momentum are the source's times the mask exactly: the dense checkpoint at 10
     for weight rewinding, the dense final for LR rewinding and fine-tuning; its step is 10, 10, 40.
  4. Every final checkpoint has the same masks, and zeros under them in weights and momentum.
  5. summary.csv equals summary.json; summary.svg parses as XML with one polyline per mode, one
     point per density, and the dense line; the table printed lists every run.
  6. The same --out with another --train-steps is refused (exit 2), naming the setting.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats"))
import interop_common as ic  # noqa: E402  (arguments, Checker, the safetensors reader)

MODES = ["weight-rewind", "lr-rewind", "finetune"]
DENSITIES = ["80", "51.2"]
START = {"weight-rewind": 10, "lr-rewind": 10, "finetune": 40}

check = ic.Checker()


def run(cmd, expect=0):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != expect:
        print("FAIL:", " ".join(cmd), "exited", r.returncode, "expected", expect, "\n", r.stderr[-3000:])
        sys.exit(1)
    return r.stdout, r.stderr


def lottery_cmd(cli, data, out, extra=(), steps=40, densities=",".join(DENSITIES)):
    return [cli, "lottery", "--model", "small-resnet", "--width", "4", "--data-dir", data, "--out", out,
            "--rewind-iter", "10", "--train-steps", str(steps), "--batch", "32", "--eval-every", "10",
            "--log-every", "10", "--checkpoint-every", "10", "--train-threads", "2",
            "--pipeline-threads", "1", "--seed", "5", "--densities", densities, *extra]


def ckpt(run_dir, name):
    path = os.path.join(run_dir, f"checkpoint_iter_{name}.safetensors")
    check(os.path.exists(path), f"{path} exists")
    return ic.read_safetensors(path)


def numpy_mask(source, names, density, old_masks=None):
    """The expected masks: K largest |w| among the live weights, stable in file order."""
    flat = np.concatenate([np.abs(source[n].astype(np.float64)).ravel() for n in names])
    if old_masks is not None:
        live = np.concatenate([old_masks[n].ravel() for n in names])
        flat = np.where(live == 1, flat, -1.0)
    keep = int(np.floor(float(density) / 100 * flat.size + 0.5))
    order = np.argsort(-flat, kind="stable")
    chosen = np.zeros(flat.size, dtype=np.float32)
    chosen[order[:keep]] = 1
    out, at = {}, 0
    for n in names:
        size = source[n].size
        out[n] = chosen[at:at + size].reshape(source[n].shape)
        at += size
    return out, keep, flat.size


def check_start(run_dir, label, start_step, source_weights, pruned_from, density, old_masks=None):
    """2, 3: the run's first checkpoint against numpy's masks and the source tensors."""
    start, meta = ckpt(run_dir, start_step)
    names = [n[:-len(".mask")] for n in start if n.endswith(".mask")]
    expected_prunable = [n for n, a in pruned_from.items()
                         if not n.endswith((".momentum_buffer", ".mask"))
                         and (a.ndim == 4 or n == "fc.weight")]
    check(names == sorted(expected_prunable),
          f"{label}: masked tensors {names} == the conv weights and fc.weight")
    want, keep, total = numpy_mask(pruned_from, names, density, old_masks)
    for n in names:
        mask = start[n + ".mask"]
        check(np.array_equal(mask, want[n]),
              f"{label}: {n}.mask equals numpy's selection ({int((mask != want[n]).sum())} differ)")
        for t in (n, n + ".momentum_buffer"):
            check(np.array_equal(start[t], source_weights[t] * mask),
                  f"{label}: {t} is the source's times the mask")
    got = sum(int(start[n + ".mask"].sum()) for n in names)
    check(got == keep, f"{label}: kept {got} == round({density} % of {total}) = {keep}")
    check(meta["step"] == str(start_step), f"{label}: start step {meta['step']} == {start_step}")
    return {n: start[n + ".mask"] for n in names}, keep / total


def check_final(run_dir, label, masks):
    """4: the final checkpoint keeps the masks and zeros under them."""
    final, _ = ckpt(run_dir, "final")
    for n, mask in masks.items():
        check(np.array_equal(final[n + ".mask"], mask), f"{label}: final {n}.mask unchanged")
        for t in (n, n + ".momentum_buffer"):
            check(not np.any(final[t][mask == 0]), f"{label}: final {t} is zero under the mask")
    return final


def check_summary(out, rows_expected, modes, densities, stdout):
    """5: summary.csv, summary.json, summary.svg and the printed table."""
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    rows = summary["rows"]
    check(len(rows) == rows_expected, f"{out}: {len(rows)} summary rows == {rows_expected}")
    check(rows[0]["mode"] == "dense" and rows[0]["density"] == 100, "the first row is the dense run")
    with open(os.path.join(out, "summary.csv")) as f:
        table = list(csv.DictReader(f))
    check(len(table) == len(rows), "summary.csv has the rows of summary.json")
    for c, j in zip(table, rows):
        check(c["mode"] == j["mode"] and c["dir"] == j["dir"], f"csv row {c['dir']} matches json")
        for key in ("final_top1", "best_top1", "measured_density"):
            check(abs(float(c[key]) - j[key]) < 1e-6, f"csv {c['dir']} {key} {c[key]} == json {j[key]}")
        check(int(c["steps"]) == j["end_step"] - j["start_step"], f"csv {c['dir']} steps")
        check(0 <= j["final_top1"] <= j["final_top5"] <= 1, f"{j['dir']}: 0 <= top-1 <= top-5 <= 1")
        check(j["best_top1"] >= j["final_top1"], f"{j['dir']}: best >= final top-1")
    printed = [line.split() for line in stdout.splitlines() if line.split()[:1] in [["dense"], *[[m] for m in modes]]]
    check([(p[0], p[1]) for p in printed] == [(j["mode"], f"{j['density']:g}%") for j in rows],
          f"the printed table lists every run: {printed}")
    for p, j in zip(printed, rows):
        check(p[5] == f"{j['final_top1']:.4f}", f"printed final top-1 {p[5]} == {j['final_top1']:.4f}")
    svg = ET.parse(os.path.join(out, "summary.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = {p.get("data-mode"): p.get("points").split() for p in svg.iter(ns + "polyline")}
    check(sorted(lines) == sorted(modes), f"svg polylines {sorted(lines)} == modes {sorted(modes)}")
    for mode, points in lines.items():
        check(len(points) == len(densities), f"svg {mode}: {len(points)} points == {len(densities)}")
    check(any(l.get("class") == "dense" for l in svg.iter(ns + "line")), "svg has the dense line")
    return rows


def main():
    args = ic.parse_args()
    if args.cli == "none" or not os.path.exists(args.cli):
        print("lottery_interop: skipped (no CLI)")
        return
    cli, work = args.cli, args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sample, data = os.path.join(work, "sample"), os.path.join(work, "data")
    run([cli, "sample-data", sample, "--datasets", "cifar10", "--threads", "2"])
    run([cli, "ingest", "cifar10", "--archive", os.path.join(sample, "cifar10", "cifar-10-binary.tar.gz"),
         "--out", data, "--threads", "2"])

    # A: straight through.
    a = os.path.join(work, "A")
    stdout_a, _ = run(lottery_cmd(cli, data, a))
    rows_a = check_summary(a, 1 + len(MODES) * len(DENSITIES), MODES, DENSITIES, stdout_a)
    dense_final, _ = ckpt(os.path.join(a, "dense"), "final")
    dense_10, _ = ckpt(os.path.join(a, "dense"), 10)
    for mode in MODES:
        for d in DENSITIES:
            run_dir = os.path.join(a, "oneshot", mode, f"density_{d}")
            label = f"A {mode} {d}"
            source = dense_10 if mode == "weight-rewind" else dense_final
            masks, density = check_start(run_dir, label, START[mode], source, dense_final, d)
            check_final(run_dir, label, masks)
            row = next(r for r in rows_a if r["dir"] == f"oneshot/{mode}/density_{d}")
            check(abs(row["measured_density"] - density) < 1e-6,
                  f"{label}: summary density {row['measured_density']} == {density}")
            check(row["end_step"] - row["start_step"] == 30, f"{label}: retrains T - k = 30 steps")

    # B: killed mid-way through a retraining run, then resumed.
    b = os.path.join(work, "B")
    marker = os.path.join(b, "oneshot", "lr-rewind", "density_80", "checkpoint_iter_20.safetensors")
    proc = subprocess.Popen(lottery_cmd(cli, data, b), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not os.path.exists(marker) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    check(proc.poll() is None, "B was still running when the marker checkpoint appeared")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    check(not os.path.exists(os.path.join(b, "summary.json")), "B: killed before the summary")
    check(not os.path.exists(os.path.join(b, "oneshot", "lr-rewind", "density_80", "result.json")),
          "B: killed before lr-rewind 80 finished")
    stdout_b, stderr_b = run(lottery_cmd(cli, data, b))
    check("dense: complete" in stderr_b, "B resumed: the dense run is reported complete")
    check("oneshot/lr-rewind/density_80: lr-rewind to density 80 %, steps 10 -> 40 (resuming)" in stderr_b,
          "B resumed: the killed run continues from its checkpoint")
    rows_b = check_summary(b, len(rows_a), MODES, DENSITIES, stdout_b)
    check(rows_a == rows_b, "B's summary equals A's (resume is exact)")
    for row in rows_a:
        fa, _ = ckpt(os.path.join(a, row["dir"]), "final")
        fb, _ = ckpt(os.path.join(b, row["dir"]), "final")
        check(sorted(fa) == sorted(fb), f"{row['dir']}: the same tensors in A and B")
        for n in fa:
            check(np.array_equal(fa[n], fb[n]), f"{row['dir']}: {n} bit-identical in A and B")

    # C: iterative weight rewinding, 80 then 64.
    c = os.path.join(work, "C")
    stdout_c, _ = run(lottery_cmd(cli, data, c, ["--iterative", "--modes", "weight-rewind"],
                                  densities="80,64"))
    check_summary(c, 3, ["weight-rewind"], ["80", "64"], stdout_c)
    c_final, _ = ckpt(os.path.join(c, "dense"), "final")
    c_10, _ = ckpt(os.path.join(c, "dense"), 10)
    level1 = os.path.join(c, "iterative", "weight-rewind", "level_1_density_80")
    level2 = os.path.join(c, "iterative", "weight-rewind", "level_2_density_64")
    masks1, density1 = check_start(level1, "C level 1", 10, c_10, c_final, "80")
    check_final(level1, "C level 1", masks1)
    level1_final, _ = ckpt(level1, "final")
    masks2, density2 = check_start(level2, "C level 2", 10, c_10, level1_final, "64", old_masks=masks1)
    check_final(level2, "C level 2", masks2)
    check(abs(density1 - 0.8) < 1e-4 and abs(density2 - 0.64) < 1e-4,
          f"iterative densities compound: {density1:.5f}, {density2:.5f}")
    for n in masks2:
        check(not np.any(masks2[n][masks1[n] == 0]), f"C: {n} level-2 mask lies inside level 1's")

    # 6: another experiment's settings in the same directory.
    _, err = run(lottery_cmd(cli, data, a, steps=50), expect=2)
    check("other settings" in err and "hparams" in err, f"changed settings refused: {err.strip()[-300:]}")

    print(f"lottery_interop: {check.count} checks passed")


if __name__ == "__main__":
    main()
