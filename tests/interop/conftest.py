"""Shared fixtures of the interop tests: sluice's shards of every kind, written once by the CLI from its
built-in sample data, and the ways to get sluice's own view of them (the CLI's `inspect --json`, and
pipeline batches from the `sluice` Python package).

These tests run in the interop venv (scripts/setup.sh --interop): TensorFlow, TensorBoard, DALI,
safetensors and current torch from the registry, with NumPy 2. sluice's batches come from the build
tree's extension run by Debian's python3 in a subprocess, because that extension is built against
Debian's pybind11 2.10 and NumPy 1.24 (the wheel `pip install .` builds is the one for NumPy 2).

ctest sets SLUICE_CLI, SLUICE_TOOLS, SLUICE_PYTHONPATH, SLUICE_DEBIAN_PYTHON and SLUICE_WORK
(tests/CMakeLists.txt); run by hand the same way:
  SLUICE_CLI=build/release/cli/sluice SLUICE_TOOLS=build/release/test_tools \
  SLUICE_PYTHONPATH=build/release/python SLUICE_WORK=/tmp/work_interop \
  tests/interop/run_pytest.sh build/venv-interop tests/interop/test_tensorflow.py
"""

import fcntl
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} must be set (see tests/interop/conftest.py)")
    return value


def run_cli(*args, check=True, **kw):
    r = subprocess.run([_env("SLUICE_CLI"), *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"sluice {' '.join(map(str, args))} exited {r.returncode}: {r.stderr[-3000:]}")
    return r


def tool(name):
    path = os.path.join(_env("SLUICE_TOOLS"), name)
    if not os.path.exists(path):
        raise RuntimeError(f"test tool {path} is not built")
    return path


def inspect_json(path, compression="auto"):
    """sluice's own reading of a shard: one dict per record (file, index, offset, size, features)."""
    out = run_cli("inspect", "--json", "--compression", compression, path).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


_DUMP = textwrap.dedent("""
    import json, sys
    import numpy as np
    import sluice
    args = json.loads(sys.argv[1])
    out = args.pop("out")
    limit = args.pop("limit")
    images, labels, origins = [], [], []
    with sluice.Loader(**args, return_origins=True) as loader:
        for i, (x, y, o) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            images.append(np.array(x)); labels.append(np.array(y)); origins.append(np.array(o))
    fields = {name: np.concatenate([o[name] for o in origins]) for name in origins[0].dtype.names}
    np.savez(out, images=np.concatenate(images), labels=np.concatenate(labels), files=np.array(loader.files),
             **{"origin_" + k: v for k, v in fields.items()})
""")


def sluice_batches(out_npz, files, preset, batch_size, limit=None, **kw):
    """Batches of sluice.Loader (run by Debian's python3 over the build tree's extension), as a dict:
    images, labels, files (the Loader's file list) and origin_<field> for every SampleOrigin field
    (file index, record, offset, epoch, index, crop_x/y/width/height, resize_side, flip)."""
    args = dict(paths=[str(f) for f in files], preset=preset, batch_size=batch_size, out=str(out_npz),
                limit=limit, **kw)
    env = dict(os.environ, PYTHONPATH=_env("SLUICE_PYTHONPATH"))
    r = subprocess.run([os.environ.get("SLUICE_DEBIAN_PYTHON", "/usr/bin/python3"), "-c", _DUMP,
                        json.dumps(args)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise AssertionError(f"sluice.Loader dump failed: {r.stderr[-3000:]}")
    with np.load(out_npz) as z:
        return {k: z[k] for k in z.files}


def _make_shards(work):
    raw = os.path.join(work, "raw")
    if not os.path.exists(os.path.join(raw, "cifar10", "cifar-10-binary.tar.gz")):
        run_cli("sample-data", raw)
    inet = os.path.join(raw, "imagenet")
    kinds = {
        "imagenet": ["ingest", "imagenet", "--train-archive", os.path.join(inet, "ILSVRC2012_img_train.tar"),
                     "--val-archive", os.path.join(inet, "ILSVRC2012_img_val.tar"),
                     "--val-labels", os.path.join(inet, "imagenet_2012_validation_synset_labels.txt"),
                     "--metadata", os.path.join(inet, "imagenet_metadata.txt"),
                     "--bboxes", os.path.join(inet, "ILSVRC2012_bbox_train_v2.tar.gz"),
                     "--train-shards", "4", "--val-shards", "2", "--write-index"],
        "flowers": ["ingest", "flowers", "--archive", os.path.join(raw, "flowers", "flower_photos.tgz"),
                    "--validation", "20", "--shards", "2", "--write-index"],
        "cifar_png": ["ingest", "cifar10", "--archive", os.path.join(raw, "cifar10", "cifar-10-binary.tar.gz"),
                      "--write-index"],
        "cifar_raw": ["ingest", "cifar10", "--archive", os.path.join(raw, "cifar10", "cifar-10-binary.tar.gz"),
                      "--encode", "raw", "--write-index"],
        "folder": ["ingest", "folder", "--root", os.path.join(raw, "flowers", "flower_photos.tgz"),
                   "--split", "0.8,0.2", "--shards", "2", "--write-index"],
    }
    out = {}
    for kind, args in kinds.items():
        d = os.path.join(work, kind)
        if not os.path.exists(os.path.join(d, "manifest.json")):
            run_cli(*args, "--out", d)
        out[kind] = d
    return out


@pytest.fixture(scope="session")
def work():
    w = _env("SLUICE_WORK")
    os.makedirs(w, exist_ok=True)
    return w


@pytest.fixture(scope="session")
def shards(work):
    """{kind: dir} for imagenet, flowers, cifar_png, cifar_raw and folder: shards with .idx files and
    manifest.json, made once per work dir (a file lock orders the test files ctest runs in parallel)."""
    with open(os.path.join(work, ".shards.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _make_shards(work)


def shard_files(directory, split=None):
    """The shards of an ingest output dir as its manifest.json lists them (all splits, or one), sorted."""
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    files = sorted(os.path.join(directory, s["file"]) for name, sp in manifest["splits"].items()
                   if split in (None, name) for s in sp["shards"])
    assert files, f"no shards in {directory} for split {split}"
    return files
