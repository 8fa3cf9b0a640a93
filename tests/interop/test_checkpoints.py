"""sluice's checkpoints are PyTorch state_dicts: the `safetensors` package reads them, current
torchvision's models load them strictly and compute sluice's eval logits from them.

For each of torchvision's resnet18, resnet50, efficientnet_b0 and vgg16 the test makes a real sluice
checkpoint cheaply (`sluice train` for one or two steps at 64x64 on the sample ImageNet or flowers shards;
the class count is the dataset's, read back from the checkpoint's metadata), then checks against the
registry's safetensors 0.8, torch and torchvision 0.29:

* every `*.safetensors` in the run dir (numbered and final checkpoints) opens with `safe_open` and
  `safetensors.torch.load_file`; `__metadata__` is metadata, not a tensor;
* the tensors are torchvision's `state_dict()` keys with the same shapes and dtypes (float32 weights and
  BN statistics, int64 `num_batches_tracked`), and `load_state_dict(strict=True)` accepts them. The other
  keys are named and checked here, not silently dropped: each is `<torchvision key>.<slot>` with the key's
  shape, where the slot is an optimizer's state (`momentum_buffer` for momentum, `square_avg` and
  `momentum_buffer` for RMSProp) or `ema`, the moving average that the EfficientNet recipe keeps;
* `sluice eval --dump-inputs X.npy --dump-logits Y.npy` writes the network's exact inputs (NHWC) and
  logits; torchvision's model in eval mode on those inputs (as NCHW) gives the same logits within 1e-3
  of the largest logit (max |torch - sluice| / max |sluice|). Measured on the sample data (x86-64,
  2 threads): resnet18 2e-6, resnet50 1e-6, efficientnet_b0 8e-6 (its moving averages, evaluated with
  `--moving-averages` against torchvision loaded with the `.ema` tensors, 6e-7), vgg16 6e-7: float
  rounding only.

Things the user must know, made explicit here:
* torchvision's efficientnet_b0 builds its batch norms with PyTorch's default eps 1e-5; sluice's TPU
  EfficientNet recipe uses eps 1e-3 (TF's) and stores it as the `bn_epsilon` metadata. The test sets
  every BatchNorm's eps from that metadata; left at 1e-5, the logits are off by 2e4 times the largest
  one here.
* The runs are made so that a wrong layout cannot hide: bn_momentum=0 (TF's convention, so the stored
  running statistics are the last batch's, not ~(0, 1) after two steps: a swapped mean/var or a wrong
  eps shows), and the ResNets train with zero_init_last_bn=false and no warmup (with the recipe's
  zero-initialised last BN gamma every residual branch would be near zero and its weights untested).
* vgg16 at 64x64 gives 2x2 feature maps; torchvision's AdaptiveAvgPool2d((7, 7)) expands them to 7x7
  for the 25088-input classifier, and sluice's vgg16-imagenet must do the same to match.

No TensorFlow here (it cannot share a process with torch). Threads: torch.set_num_threads(2).
"""

import glob
import json
import os
import shutil

import numpy as np
import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import run_cli

torch.set_num_threads(2)

# Keys besides torchvision's: "<state_dict key>.<slot>" for these slots (sluice's optimizer state and
# moving averages; see train/include/sluice/train/checkpoint.h).
OPTIMIZER_SLOTS = {"momentum": {"momentum_buffer"}, "rmsprop": {"square_avg", "momentum_buffer"}, "sgd": set()}
EMA = "ema"

_NO_WARMUP = ["--set", "zero_init_last_bn=false", "--set", "warmup_epochs=0"]
# BN statistics of the last batch alone (TF convention: running = m * running + (1 - m) * batch), not
# ~(0, 1) after two steps: a swapped mean/var or a wrong eps then shows in the logits.
_BN = ["--set", "bn_momentum=0"]
# id: (sluice --model, recipe, torchvision builder, shards, eval preset, extra train flags)
MODELS = {
    "resnet18": ("resnet18", "tpu-imagenet-resnet50", torchvision.models.resnet18, "flowers", "resnet-eval",
                 [*_NO_WARMUP, "--checkpoint-iters", "1"]),
    "resnet50": ("resnet50", "tpu-imagenet-resnet50", torchvision.models.resnet50, "imagenet", "resnet-eval",
                 _NO_WARMUP),
    "efficientnet_b0": ("efficientnet_b0", "tpu-efficientnet-b0", torchvision.models.efficientnet_b0, "imagenet",
                        "resnet-eval", ["--checkpoint-iters", "1"]),
    # 138 M parameters: one step, plain SGD (no optimizer slots), one checkpoint of 0.5 GB.
    "vgg16": ("vgg16-imagenet", "slim-vgg16", torchvision.models.vgg16, "imagenet", "vgg-eval",
              ["--train-steps", "1", "--optimizer", "sgd"]),
}
IMAGE_SIZE = 64
EVAL_IMAGES = 4


def _split_files(directory, split):
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    return [os.path.join(directory, s["file"]) for s in manifest["splits"][split]["shards"]]


def _torch_logits(model, inputs_nhwc):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(inputs_nhwc).permute(0, 3, 1, 2).contiguous()).numpy()


def _relative_error(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def _check_checkpoint(path, build):
    """Opens `path` both ways, checks its keys against torchvision's model and loads it strictly.
    Returns (model, metadata, tensors)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    tensors = load_file(path)
    assert set(tensors) == keys and "__metadata__" not in keys, path
    assert meta and "num_classes" in meta, f"{path}: metadata {meta}"

    model = build(num_classes=int(meta["num_classes"]))
    ref = model.state_dict()
    missing = sorted(set(ref) - keys)
    assert not missing, f"{path} lacks torchvision's {missing[:5]}"
    for k, v in ref.items():
        assert tensors[k].shape == v.shape and tensors[k].dtype == v.dtype, \
            f"{path} {k}: {tuple(tensors[k].shape)} {tensors[k].dtype}, torchvision {tuple(v.shape)} {v.dtype}"

    slots = set(OPTIMIZER_SLOTS[meta.get("optimizer", "sgd") or "sgd"])
    if float(meta.get("moving_average_decay", 0)) > 0:
        slots.add(EMA)
    for k in sorted(keys - set(ref)):
        base, _, slot = k.rpartition(".")
        assert base in ref and slot in slots, f"{path}: unexpected tensor {k} (slots {sorted(slots)})"
        assert tensors[k].shape == ref[base].shape, f"{path} {k}: {tuple(tensors[k].shape)} vs {base}"
    for slot in slots:  # each declared slot is present for the float state it covers
        assert any(k.endswith("." + slot) for k in keys), f"{path}: no .{slot} tensors"

    result = model.load_state_dict({k: tensors[k] for k in ref}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model, meta, tensors


def _set_bn_eps(model, eps):
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eps = eps


@pytest.mark.parametrize("name", list(MODELS))
def test_torchvision_loads_and_reproduces(shards, tmp_path, name):
    model_name, recipe, build, kind, preset, extra = MODELS[name]
    run = tmp_path / "run"
    train_args = ["train", "--recipe", recipe, "--model", model_name, "--data-dir", shards[kind],
                  "--model-dir", run, "--batch", "4", "--set", f"image_size={IMAGE_SIZE}",
                  "--eval-limit", "4", "--train-threads", "2", "--pipeline-threads", "1", "--seed", "3"]
    if "--train-steps" not in extra:
        train_args += ["--train-steps", "2"]
    try:
        run_cli(*train_args, *_BN, *extra)
        checkpoints = sorted(glob.glob(str(run / "*.safetensors")))
        final = str(run / "checkpoint_iter_final.safetensors")
        assert final in checkpoints
        if "--checkpoint-iters" in extra:
            assert str(run / "checkpoint_iter_1.safetensors") in checkpoints
        for path in checkpoints:
            if path != final:
                _check_checkpoint(path, build)
        model, meta, tensors = _check_checkpoint(final, build)
        assert meta["model"] == model_name

        eps = float(meta["bn_epsilon"])
        if name == "efficientnet_b0":
            # torchvision's B0: PyTorch's default 1e-5; the TPU recipe's (and sluice's): 1e-3.
            assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            assert abs(eps - 1e-3) < 1e-9
        _set_bn_eps(model, eps)

        def dump(tag, *flags):
            x, y = tmp_path / f"x{tag}.npy", tmp_path / f"y{tag}.npy"
            run_cli("eval", "--checkpoint", final, "--data", *_split_files(shards[kind], "validation"),
                    "--preset", preset, "--image-size", IMAGE_SIZE, "--limit", EVAL_IMAGES, "--batch", EVAL_IMAGES,
                    "--threads", "1", "--dump-inputs", x, "--dump-logits", y, *flags)
            x, y = np.load(x), np.load(y)
            assert x.shape == (EVAL_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 3) and x.dtype == np.float32, x.shape
            assert y.shape == (EVAL_IMAGES, int(meta["num_classes"])) and y.dtype == np.float32, y.shape
            assert np.isfinite(y).all() and np.abs(y).max() > 0
            return x, y

        x, y = dump("")
        err = _relative_error(_torch_logits(model, x), y)
        print(f"{name}: max relative logit error {err:.3g} (max |logit| {np.abs(y).max():.3g})")
        assert err <= 1e-3, f"{name}: torchvision's logits differ from sluice's by {err:.3g} of the largest"

        if EMA in {k.rpartition(".")[2] for k in tensors}:
            # --moving-averages evaluates the .ema tensors; torchvision gets them as its weights and BN
            # statistics (num_batches_tracked has no average: a counter).
            ema_state = {k: tensors.get(k + "." + EMA, tensors[k]) for k in model.state_dict()}
            averaged = [k for k in ema_state if k + "." + EMA in tensors]
            assert all(k.endswith("num_batches_tracked") for k in set(ema_state) - set(averaged))
            model.load_state_dict(ema_state, strict=True)
            xe, ye = dump("_ema", "--moving-averages")
            np.testing.assert_array_equal(xe, x)
            assert not np.array_equal(ye, y), "moving averages gave the raw weights' logits"
            err = _relative_error(_torch_logits(model, xe), ye)
            print(f"{name} (moving averages): max relative logit error {err:.3g}")
            assert err <= 1e-3, f"{name} EMA: torchvision's logits differ from sluice's by {err:.3g}"
    finally:
        shutil.rmtree(run, ignore_errors=True)  # vgg16's checkpoint is 0.5 GB
