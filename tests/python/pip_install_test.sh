#!/usr/bin/env bash
# `pip install .` on this tree into a fresh-enough venv (pinned registry packages, reused between
# runs), then a JAX training loop fed by the installed package through DLPack.
#   pip_install_test.sh VENV_DIR SLUICE_WORK
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$1
work=$2
req=$repo/tests/python/venv-requirements.txt
if [[ ! -f $venv/requirements.txt ]] || ! cmp -s "$req" "$venv/requirements.txt"; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
# The build dependencies are the venv's (pinned above): no second download per run.
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall \
  --config-settings=build-dir="$work/pip-build" "$repo"
cd "$work"
"$venv/bin/python" "$repo/tests/python/jax_loop.py" "$work"
