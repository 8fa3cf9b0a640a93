#!/usr/bin/python3
"""Training throughput of sluice's trainer vs PyTorch 1.13 (Debian, oneDNN) on the same machine, in one run.

For each model: our bench/train_step_bench (forward + loss + backward + SGD momentum 0.9 wd 5e-4 on a fixed
random batch, 2 threads in one TBB arena) and ../shared/peers/train_bench.py (the same step protocol,
torch.set_num_threads(2)) in both NCHW and channels_last, alternating within each of ROUNDS rounds. Each
run is its own process, so its peak RSS (os.wait4) is that model's peak memory. Reports the median images/s
per tool, ours / the faster PyTorch mode, and peak RSS; also each tool's best round and that ratio
(steal on a shared host only slows runs down, so the best round is the least-disturbed measurement).

Models: resnet20 / resnet56 (batch 128, 32x32), resnet20 inference, vgg16 (128), resnet50 (32, 224x224),
efficientnet_b0 (batch 32, 128x128) and vgg16-imagenet (batch 16, 64x64), whose peer is torchvision's own
model in bench/train/torchvision_train_bench.py (the shared peer does not know them).
Note: the peer's CIFAR ResNets use option-A shortcuts (parameter-free), ours TF's projection shortcuts
(three more 1x1 convs + BN, ~2 % more FLOPs): the comparison is slightly in the peer's favour.

With --torch-python PY (e.g. build/venv-interop/bin/python, the registry's current torch from
scripts/setup.sh --interop) every peer runs through bench/train/torchvision_train_bench.py under that
interpreter (the CIFAR models are still the shared peer's definitions), and --compile adds a third
PyTorch mode, torch.compile (inductor) on channels_last; "faster PyTorch" is then the fastest of the three.

usage: bench/train/train_vs_pytorch.py [--rounds 3] [--models resnet20,resnet56,...] [--out FILE.md]
                                       [--torch-python PY] [--compile]
"""
import argparse, json, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.environ.get("PEERS_DIR", os.path.join(ROOT, "..", "shared", "peers"))
OURS = os.environ.get("SLUICE_TRAIN_BENCH", os.path.join(ROOT, "build", "release", "bench", "train_step_bench"))

# name -> (our benchmark, peer spec)
MODELS = {
    "resnet20": ("BM_Train_ResNet20", "resnet20:128:train:5:20"),
    "resnet56": ("BM_Train_ResNet56", "resnet56:128:train:3:12"),
    "resnet20-infer": ("BM_Infer_ResNet20", "resnet20:128:infer:5:30"),
    "vgg16": ("BM_Train_Vgg16", "vgg16bn:128:train:2:6"),
    "resnet50": ("BM_Train_ResNet50", "resnet50:32:train:1:3"),
    "efficientnet_b0": ("BM_Train_EfficientNetB0", "torchvision:efficientnet_b0:32:128:1000:train:1:3"),
    "vgg16-imagenet": ("BM_Train_Vgg16ImageNet", "torchvision:vgg16:16:64:1000:train:1:3"),
}
# The same peers as torchvision_train_bench.py specs (model:batch:res:classes:mode:warmup:steps).
TV_SPECS = {
    "resnet20": "resnet20:128:32:10:train:5:20",
    "resnet56": "resnet56:128:32:10:train:3:12",
    "resnet20-infer": "resnet20:128:32:10:infer:5:30",
    "vgg16": "vgg16bn:128:32:10:train:2:6",
    "resnet50": "resnet50:32:224:1000:train:1:3",
    "efficientnet_b0": "efficientnet_b0:32:128:1000:train:1:3",
    "vgg16-imagenet": "vgg16:16:64:1000:train:1:3",
}
TORCHVISION_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_train_bench.py")


def run(cmd, env=None):
    """Runs cmd, returns (stdout, peak RSS in MB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{out[-2000:]}")
    return out, usage.ru_maxrss / 1024.0


def ours(bench):
    env = dict(os.environ, SLUICE_BENCH_THREADS="2")
    out, rss = run([OURS, f"--benchmark_filter=^{bench}/", "--benchmark_format=json"], env)
    data = json.loads(out[out.index("{"):])
    b = data["benchmarks"][0]
    return b["items_per_second"], rss, b.get("GFLOP/s", 0) / 1e9


def peer(name, spec, channels_last, torch_python=None, compile_model=False):
    script = os.path.join(PEERS, "train_bench.py")
    if spec.startswith("torchvision:"):
        script, spec = TORCHVISION_PEER, spec[len("torchvision:"):]
    if torch_python:
        script, spec = TORCHVISION_PEER, TV_SPECS[name]
        if compile_model:  # compilation happens in the warm-up steps: give it two
            parts = spec.split(":")
            parts[5] = str(max(2, int(parts[5])))
            spec = ":".join(parts)
    cmd = [torch_python or "/usr/bin/python3", script, "--threads", "2", spec]
    if channels_last:
        cmd.insert(4, "--channels-last")
    if compile_model:
        cmd.insert(4, "--compile")
    out, rss = run(cmd)
    m = re.search(r"^JSON (.*)$", out, re.M)
    return json.loads(m.group(1))["median"], rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="resnet20,resnet56,resnet20-infer,vgg16,resnet50")
    ap.add_argument("--out", default="")
    ap.add_argument("--torch-python", default="", help="interpreter of the PyTorch to compare with")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (needs --torch-python)")
    a = ap.parse_args()
    if a.compile and not a.torch_python:
        sys.exit("--compile needs --torch-python (Debian's PyTorch 1.13 has no working CPU inductor)")
    modes = [("nchw", False, False), ("cl", True, False)] + ([("compile", True, True)] if a.compile else [])
    import_line = subprocess.run([a.torch_python or "/usr/bin/python3", "-c", "import torch; print(torch.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
    print(f"PyTorch {import_line}", file=sys.stderr)
    rows = []
    for name in a.models.split(","):
        bench, spec = MODELS[name]
        r = {"ours": [], "nchw": [], "cl": [], "compile": [], "rss_ours": 0, "rss_peer": 0, "gflops": []}
        for i in range(a.rounds):
            ips, rss, gf = ours(bench)
            r["ours"].append(ips); r["gflops"].append(gf); r["rss_ours"] = max(r["rss_ours"], rss)
            for key, cl, comp in modes:
                ips, rss = peer(name, spec, cl, a.torch_python, comp)
                r[key].append(ips)
                if key == "cl":
                    r["rss_peer"] = max(r["rss_peer"], rss)
                if key == "compile":
                    r["rss_compile"] = max(r.get("rss_compile", 0), rss)
            print(f"{name} round {i + 1}: ours {r['ours'][-1]:.1f}  " +
                  "  ".join(f"torch {k} {r[k][-1]:.1f}" for k, _, _ in modes) + " img/s",
                  file=sys.stderr, flush=True)
        keys = ["ours", "gflops"] + [k for k, _, _ in modes]
        med = {k: statistics.median(r[k]) for k in keys}
        best = max(med[k] for k, _, _ in modes)
        rows.append((name, med, best, r))
    # Hypervisor steal on a shared host only ever slows a run down, so besides the median of the
    # rounds the table gives each tool's best round (the least-disturbed one) and that ratio.
    comp = a.compile
    lines = ["| Model | sluice img/s (median / best) | PyTorch NCHW | PyTorch channels_last | " +
             ("PyTorch compile (channels_last) | " if comp else "") +
             "ours / fastest PyTorch (medians) | (best rounds) | sluice GFLOP/s | "
             "peak RSS sluice / PyTorch (channels_last" + (" / compile" if comp else "") + ") |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if comp else "")]
    for name, med, best, r in rows:
        top = {k: max(r[k]) for k in ["ours"] + [k for k, _, _ in modes]}
        lines.append(f"| {name} | {med['ours']:.1f} / {top['ours']:.1f} | " +
                     "".join(f"{med[k]:.1f} / {top[k]:.1f} | " for k, _, _ in modes) +
                     f"**{med['ours'] / best:.2f}x** | "
                     f"**{top['ours'] / max(top[k] for k, _, _ in modes):.2f}x** | {med['gflops']:.0f} | "
                     f"{r['rss_ours']:.0f} / {r['rss_peer']:.0f}" +
                     (f" / {r.get('rss_compile', 0):.0f}" if comp else "") + " MB |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
