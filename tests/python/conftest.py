"""Shared fixtures of the Python package's tests: real shards written by the `sluice` CLI from its
built-in sample data (ImageNet- and CIFAR-style), and the CLI itself as the reference.

ctest runs these with Debian's python3 and PYTHONPATH=<build>/python (tests/CMakeLists.txt), with
SLUICE_CLI and SLUICE_WORK set; run by hand the same way."""

import os
import subprocess

import pytest


def _cli():
    cli = os.environ.get("SLUICE_CLI")
    if not cli or not os.path.exists(cli):
        raise RuntimeError("SLUICE_CLI must name the built `sluice` binary")
    return cli


def run_cli(*args, check=True):
    r = subprocess.run([_cli(), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"sluice {' '.join(map(str, args))} exited {r.returncode}: {r.stderr[-2000:]}")
    return r


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def data():
    """{'imagenet': dir, 'cifar': dir} of ingested sample shards (made once per work dir)."""
    work = os.environ.get("SLUICE_WORK") or os.path.join(os.getcwd(), "work_python")
    os.makedirs(work, exist_ok=True)
    raw = os.path.join(work, "raw")
    if not os.path.exists(os.path.join(raw, "cifar10")):
        run_cli("sample-data", raw)
    out = {"imagenet": os.path.join(work, "imagenet"), "cifar": os.path.join(work, "cifar")}
    if not os.path.exists(os.path.join(out["imagenet"], "manifest.json")):
        inet = os.path.join(raw, "imagenet")
        run_cli("ingest", "imagenet", "--train-archive", os.path.join(inet, "ILSVRC2012_img_train.tar"),
                "--val-archive", os.path.join(inet, "ILSVRC2012_img_val.tar"),
                "--val-labels", os.path.join(inet, "imagenet_2012_validation_synset_labels.txt"),
                "--train-shards", "4", "--val-shards", "2", "--out", out["imagenet"])
    if not os.path.exists(os.path.join(out["cifar"], "manifest.json")):
        run_cli("ingest", "cifar10", "--archive", os.path.join(raw, "cifar10", "cifar-10-binary.tar.gz"),
                "--out", out["cifar"])
    return out
