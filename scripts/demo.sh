#!/usr/bin/env bash
# Installs, builds and runs what sluice can do today, end to end, on real-format data.
#   DEMO_OUT=DIR  where the demo writes (default: ./out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-out/demo}
JOBS=$(nproc)

step() { printf '\n==> %s\n' "$*" >&2; }

step "dependencies and release build"
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS" --target sluice
SLUICE=build/release/cli/sluice
rm -rf "$OUT"
mkdir -p "$OUT"

fixtures=../shared/fixtures/tfds/dmlab
if [[ -d $fixtures ]]; then
  step "TensorFlow-written TFRecords (TFDS dmlab test data): verify --decode, inspect, index"
  cp "$fixtures"/* "$OUT/"
  $SLUICE verify --decode "$OUT"/dmlab-*
  $SLUICE inspect --limit 1 "$OUT"/dmlab-train.tfrecord-00000-of-00001
  $SLUICE index "$OUT"/dmlab-*
  step "a corrupted copy is caught, with the offset"
  cp "$OUT/dmlab-train.tfrecord-00000-of-00001" "$OUT/corrupt.tfrecord"
  printf '\x00' | dd of="$OUT/corrupt.tfrecord" bs=1 seek=30000 conv=notrunc status=none
  if $SLUICE verify "$OUT/corrupt.tfrecord"; then echo "expected a failure" >&2; exit 1; fi
  rm "$OUT/corrupt.tfrecord"
fi

step "not yet built (open issues): sample-data + ingest, pipeline bench, train, lottery"
echo "demo: done; outputs in $OUT" >&2
