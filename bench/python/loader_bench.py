#!/usr/bin/python3
"""sluice.Loader from Python, side by side with its peers, on the same 1000 ImageNet-like JPEGs and
the same cores (the peers' set: ../shared/peers/make_images.py, ingested with `sluice ingest folder`):

  overhead   Loader(resnet-train, batch 256, threads 2, NHWC) vs `sluice pipeline bench` with the same
             flags: images/s of both, ratio (target: the Loader loses <= 3 %)
  peer       Loader vs torchvision's DataLoader (ImageFolder + RandomResizedCrop(224) + flip +
             ToTensor + Normalize, batch 256, 2 workers), ratio (target: the CLI's ratio or better)
  paced      the seeds' situation: an accelerator that takes STEP_MS per batch of 64 (a sleep: the
             host's cores are free), fed by each loader; input-wait fraction and images/s of the
             loop, measured by sluice.profile for both

Rounds alternate ours and the peer so drift on a shared host hits both; the table shows medians.
usage: PYTHONPATH=build/release/python bench/python/loader_bench.py [WORK_DIR] [RUNS]
environment: SLUICE (the CLI, default build/release/cli/sluice), PEERS_DIR (../shared/peers),
  EPOCHS (passes of the Loader and CLI runs, default 8), STEP_MS (default 40)
"""

import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "build", "release", "python"))
import sluice  # noqa: E402

WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sluice_bench/python"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CLI = os.environ.get("SLUICE", os.path.join(REPO, "build", "release", "cli", "sluice"))
PEERS = os.environ.get("PEERS_DIR", os.path.join(REPO, "..", "shared", "peers"))
EPOCHS = int(os.environ.get("EPOCHS", "8"))
STEP_MS = float(os.environ.get("STEP_MS", "40"))
THREADS = 2
JPEGS = "/tmp/peers/imagenet_synth/train"  # fixed by make_images.py


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def prepare():
    os.makedirs(WORK, exist_ok=True)
    if not os.path.isdir(JPEGS):
        log("making the peers' image set (make_images.py)")
        subprocess.run([sys.executable, os.path.join(PEERS, "make_images.py")], check=True,
                       stdout=subprocess.DEVNULL)
    shards = os.path.join(WORK, "imagenet")
    if not os.path.exists(os.path.join(shards, "manifest.json")):
        log(f"sluice ingest folder {JPEGS}")
        subprocess.run([CLI, "ingest", "folder", "--root", JPEGS, "--out", shards, "--shards", "8"],
                       check=True, stderr=subprocess.DEVNULL)
    return os.path.join(shards, "train-*")


def cli_rate(pattern):
    r = subprocess.run([CLI, "pipeline", "bench", "--data", pattern, "--preset", "resnet-train",
                        "--batch", "256", "--threads", str(THREADS), "--epochs", str(EPOCHS)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"= ([0-9.]+) images/s", r.stderr)
    return float(m.group(1))


def loader_rate(pattern, layout):
    loader = sluice.Loader(pattern, preset="resnet-train", batch_size=256, threads=THREADS,
                           epochs=EPOCHS, layout=layout)
    for _ in loader:
        pass
    return loader.stats()["images_per_sec"]


def torch_loader(batch, reps):
    import torch
    from torch.utils.data import DataLoader, Dataset
    from torchvision import datasets, transforms as T

    class Repeat(Dataset):
        def __init__(self, ds, n):
            self.ds, self.n = ds, n

        def __len__(self):
            return len(self.ds) * self.n

        def __getitem__(self, i):
            return self.ds[i % len(self.ds)]

    torch.set_num_threads(1)
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    ds = Repeat(datasets.ImageFolder(JPEGS, transform=tf), reps)
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=THREADS,
                      persistent_workers=True)


def torch_rate(dl):
    t0 = time.perf_counter()
    n = sum(x.shape[0] for x, _ in dl)
    return n / (time.perf_counter() - t0)


def paced(iterable, batches):
    """A loop whose step takes STEP_MS (an accelerator: the host's cores stay free)."""
    prof = sluice.profile(iterable)
    for i, _ in enumerate(prof):
        time.sleep(STEP_MS / 1000)
        if i + 1 == batches:
            break
    return prof.stats()


def main():
    pattern = prepare()
    dl = torch_loader(256, 2)
    torch_rate(dl)  # warm-up: worker start-up, page cache
    rows = {"cli": [], "nhwc": [], "nchw": [], "torch": []}
    for r in range(RUNS):
        rows["cli"].append(cli_rate(pattern))
        rows["nhwc"].append(loader_rate(pattern, "nhwc"))
        rows["torch"].append(torch_rate(dl))
        rows["nchw"].append(loader_rate(pattern, "nchw"))
        log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items()))
    med = {k: statistics.median(v) for k, v in rows.items()}

    paced_batches = 60
    ours = paced(sluice.Loader(pattern, preset="resnet-train", batch_size=64, threads=THREADS), paced_batches)
    peer = paced(torch_loader(64, 10), paced_batches)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = [f"Host: {cpu}, {os.cpu_count()} cores. {RUNS} rounds, medians; resnet-train, batch 256, "
           f"{THREADS} threads / workers, {EPOCHS} passes (ours) over 1000 JPEGs.", "",
           "| figure | ours img/s | other img/s | ratio | target |", "|---|---|---|---|---|",
           f"| Loader (NHWC) vs `sluice pipeline bench` (overhead) | {med['nhwc']:.0f} | {med['cli']:.0f} (CLI) "
           f"| {med['nhwc'] / med['cli']:.3f}× | ≥ 0.97× |",
           f"| Loader (NCHW, PyTorch's layout) vs `sluice pipeline bench` (NHWC) | {med['nchw']:.0f} | "
           f"{med['cli']:.0f} (CLI) | {med['nchw'] / med['cli']:.3f}× | |",
           f"| Loader (NCHW) vs torchvision DataLoader (RRC224+flip, 2 workers) | {med['nchw']:.0f} | "
           f"{med['torch']:.0f} | {med['nchw'] / med['torch']:.2f}× | ≥ the CLI's ratio |",
           f"| `sluice pipeline bench` vs the same DataLoader (the CLI's ratio) | {med['cli']:.0f} | "
           f"{med['torch']:.0f} | {med['cli'] / med['torch']:.2f}× | |", "",
           f"Paced loop: a simulated accelerator step of {STEP_MS:.0f} ms per batch of 64 "
           f"({64000 / STEP_MS:.0f} img/s demand), {paced_batches} steps, measured with sluice.profile:", "",
           "| input | loop img/s | input wait | verdict |", "|---|---|---|---|",
           f"| sluice.Loader, 2 threads | {ours['images_per_sec']:.0f} | {100 * ours['input_wait_fraction']:.1f} % | {ours['verdict']} |",
           f"| torchvision DataLoader, 2 workers | {peer['images_per_sec']:.0f} | {100 * peer['input_wait_fraction']:.1f} % | {peer['verdict']} |",
           "", "Rounds: " + "; ".join(f"{k} " + " ".join(f"{v:.0f}" for v in vals) for k, vals in rows.items())]
    text = "\n".join(out)
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
