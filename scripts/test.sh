#!/usr/bin/env bash
# Installs dependencies, builds everything, runs every test via ctest (the Python package's pytest
# suite and its `pip install .` + JAX check among them), then the AddressSanitizer+UBSan build of the
# formats tests and of the Python extension (its pytest suite under ASan), the ThreadSanitizer build of
# the pipeline tests, and a short libFuzzer smoke run of each fuzz target.
#   SLUICE_FUZZ_SECONDS=N  seconds per fuzz target (default 30; 0 skips the smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
FUZZ_SECONDS=${SLUICE_FUZZ_SECONDS:-30}

step() { printf '\n==> %s\n' "$*" >&2; }

step "dependencies"
scripts/setup.sh --interop

step "release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"

step "release tests"
ctest --preset release -j "$JOBS"

step "asan+ubsan build (formats tests, fuzz targets)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$JOBS"

step "asan+ubsan tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan -j "$JOBS"

step "asan+ubsan build of the Python extension (and formats + pipeline under it)"
cmake --preset asan-python >/dev/null
cmake --build --preset asan-python -j "$JOBS"

step "Python package tests under asan+ubsan (Debian's python3 preloading the ASan runtime)"
# The interpreter is not instrumented, so the runtime is preloaded and leak checking is off (CPython
# keeps its own objects to exit). The torch tests stay with the release run: PyTorch's own
# allocators and threads under a preloaded ASan are not what this step checks.
LD_PRELOAD=$(clang-14 -print-file-name=libclang_rt.asan-x86_64.so) \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  PYTHONPATH=build/asan-python/python SLUICE_CLI=build/release/cli/sluice \
  SLUICE_WORK=build/release/tests/work_python \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python/test_loader.py \
  tests/python/test_profile.py tests/python/test_lifecycle.py -k "not torch_multiprocessing"

step "tsan build (pipeline tests)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$JOBS"

step "tsan tests"
ctest --preset tsan -j "$JOBS"

if [[ "$FUZZ_SECONDS" -gt 0 ]]; then
  step "fuzz smoke (${FUZZ_SECONDS}s per target)"
  corpus=build/asan/fuzz_corpus
  rm -rf "$corpus"
  mkdir -p "$corpus"/{record_reader,example_parse,image_decode}
  fixtures=../shared/fixtures/tfds
  # Seeds: real files where we have them (a leading byte selects the reader's compression).
  if [[ -d $fixtures ]]; then
    for f in "$fixtures"/dmlab/*; do
      { printf '\0'; head -c 4096 "$f"; } >"$corpus/record_reader/$(basename "$f")"
    done
    cp "$fixtures"/images/* "$corpus/image_decode/"
  fi
  for target in record_reader example_parse image_decode; do
    if [[ -d fuzz/regressions/$target ]]; then cp fuzz/regressions/$target/* "$corpus/$target/"; fi
  done
  for target in record_reader example_parse image_decode; do
    build/asan/fuzz/fuzz_$target -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=65536 -print_final_stats=1 "$corpus/$target" 2>build/asan/fuzz_$target.log ||
      { tail -50 build/asan/fuzz_$target.log >&2; echo "fuzz_$target found a crash" >&2; exit 1; }
    grep -E 'stat::number_of_executed_units' build/asan/fuzz_$target.log | sed "s/^/fuzz_$target: /" >&2
  done
fi

step "all tests passed"
