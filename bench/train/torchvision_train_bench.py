#!/usr/bin/python3
"""PyTorch training / inference throughput at a chosen input size: the peer of
bench/train/train_step_bench.cc for the models ../shared/peers/train_bench.py does not know
(efficientnet_b0, vgg16), and for every model under a current PyTorch (run by the interop venv's
python: bench/train/train_vs_pytorch.py --torch-python), where it also offers torch.compile.
The CIFAR models (resnet20, resnet56, vgg16bn) and resnet50 are the shared peer's own definitions,
imported from PEERS_DIR (default ../shared/peers). Same protocol and output as that script: a training step
is zero_grad + forward + CrossEntropy + backward + SGD(momentum 0.9, wd 5e-4) on a fixed random
batch (data loading excluded); images/s = batch / median step time over `steps` timed steps after
`warmup`; the last line is "JSON {...}" with "median" in images/s.

Models are torchvision's own, in training mode with their default dropout and stochastic depth
(as sluice's benchmark runs them).

--compile wraps the model in torch.compile (inductor, its C++ CPU backend); the warm-up steps
include the compilation, so give it at least 2.

usage: torchvision_train_bench.py [--threads 2] [--channels-last] [--compile] spec ...
  spec = model:batch:res:classes:mode:warmup:steps   e.g. efficientnet_b0:32:128:1000:train:2:6
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision


def build(name, classes):
    if name in ("resnet20", "resnet56", "vgg16bn", "resnet50"):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        sys.path.insert(0, os.environ.get("PEERS_DIR", os.path.join(root, "..", "shared", "peers")))
        import train_bench  # the shared peer's model definitions
        model, _, peer_classes = train_bench.build(name)
        if peer_classes != classes:
            raise ValueError(f"{name} has {peer_classes} classes in the shared peer")
        return model
    if name == "efficientnet_b0":
        return torchvision.models.efficientnet_b0(num_classes=classes)
    if name == "vgg16":
        return torchvision.models.vgg16(num_classes=classes)
    raise ValueError(f"unknown model {name!r} (efficientnet_b0, vgg16)")


def bench(name, batch, res, classes, mode, warmup, steps, channels_last, compile_model=False):
    torch.manual_seed(0)
    model = build(name, classes)
    nparams = sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, classes, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if compile_model:
        model = torch.compile(model)
    times = []
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        lossf = nn.CrossEntropyLoss()
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(x), y)
            loss.backward()
            opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        with torch.inference_mode():
            for i in range(warmup + steps):
                t0 = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    r = {"model": name, "batch": batch, "mode": mode, "res": res, "params": nparams,
         "channels_last": channels_last, "compile": compile_model, "torch": torch.__version__,
         "threads": torch.get_num_threads(), "steps": steps,
         "median": round(batch / med, 1), "min": round(batch / max(times), 1),
         "max": round(batch / min(times), 1), "median_step_s": round(med, 4)}
    print(f"TRAIN {name} {mode} batch={batch} res={res} params={nparams} "
          f"cl={int(channels_last)}: images/s median={r['median']} (step {med * 1e3:.1f} ms)",
          flush=True)
    print("JSON " + json.dumps(r), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for s in a.specs:
        name, batch, res, classes, mode, warmup, steps = s.split(":")
        bench(name, int(batch), int(res), int(classes), mode, int(warmup), int(steps),
              a.channels_last, a.compile)


if __name__ == "__main__":
    main()
