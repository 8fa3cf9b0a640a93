#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of sluice from Debian packages.
# Idempotent: packages already present are skipped, and `apt-get update` runs only
# when something is missing. Works as root (CI) or through sudo.
#   scripts/setup.sh --peers   also the comparison peers of bench/ (torchvision, PIL; PyTorch
#                              itself is a test dependency: the trainer's parity tests use it)
#   scripts/setup.sh --interop also the venv of the interop tests and peer benchmarks: TensorFlow,
#                              TensorBoard, DALI, safetensors and current torch/torchvision from the
#                              Python registry, pinned in tests/interop/requirements.txt (about 8 GB,
#                              most of it the CUDA libraries torch's and DALI's wheels depend on).
#                              Made at $SLUICE_INTEROP_VENV (default build/venv-interop, which git
#                              ignores) with Debian's python3, and reused while the pins are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=0
INTEROP=0
for arg in "$@"; do
  case $arg in
    --peers) PEERS=1 ;;
    --interop) INTEROP=1 ;;
    *) echo "setup: unknown flag $arg (known: --peers --interop)" >&2; exit 2 ;;
  esac
done

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
  libopenmpi-dev openmpi-bin  # data-parallel training (mpirun -np N sluice train)
)
if [[ $PEERS == 1 ]]; then
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
else
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  echo "setup: done" >&2
fi

if [[ $INTEROP == 1 ]]; then
  venv=${SLUICE_INTEROP_VENV:-build/venv-interop}
  req=tests/interop/requirements.txt
  if [[ -f $venv/requirements.txt ]] && cmp -s "$req" "$venv/requirements.txt"; then
    echo "setup: interop venv $venv is current" >&2
  else
    echo "setup: making the interop venv $venv from $req" >&2
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$req" >&2
    # --no-deps: the file is the whole resolved set; a check that it is consistent instead.
    "$venv/bin/pip" check >&2
    cp "$req" "$venv/requirements.txt"  # last: a venv cut short is remade next time
    echo "setup: interop venv ready" >&2
  fi
fi
