#!/usr/bin/env bash
# Runs one interop test file with the interop venv's pytest (ctest's interop.* tests).
#   run_pytest.sh VENV TEST_FILE [pytest args]
set -euo pipefail
venv=$1
shift
if [[ ! -x $venv/bin/python ]]; then
  echo "interop venv $venv is missing: run scripts/setup.sh --interop (scripts/test.sh does)" >&2
  exit 1
fi
# TensorFlow's start-up chatter (CPU feature notes, oneDNN notices) would bury a failure's output.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# No GPU here: DALI's and torch's CUDA libraries are installed but never initialised by these tests.
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$@"
