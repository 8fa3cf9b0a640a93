#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of sluice from Debian packages.
# Idempotent: packages already present are skipped, and `apt-get update` runs only
# when something is missing. Works as root (CI) or through sudo.
#   scripts/setup.sh --peers   also the comparison peers of bench/ (torchvision, PIL; PyTorch
#                              itself is a test dependency: the trainer's parity tests use it)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang-14 libclang-rt-14-dev libfuzzer-14-dev
  libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev zlib1g-dev
  libprotobuf-dev protobuf-compiler
  libtbb-dev libeigen3-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libssl-dev libyaml-cpp-dev
  python3 python3-protobuf python3-numpy bc
  python3-torch python3-torchvision  # the trainer's parity tests (tests/train/torch_parity_interop.py)
  pybind11-dev python3-dev python3-pytest python3-venv  # the Python package (python/) and its tests
)
if [[ ${1:-} == --peers ]]; then
  PACKAGES+=(python3-torchvision python3-pil)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "setup: done" >&2
