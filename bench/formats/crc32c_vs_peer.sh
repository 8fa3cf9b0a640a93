#!/usr/bin/env bash
# CRC32C side by side in one run: sluice's Extend (3 chains + table combine) vs the peers' ceiling
# (../shared/peers/crc32c_bench.c: one crc32 chain, and three chains without the combine step).
# Usage: bench/formats/crc32c_vs_peer.sh [build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
PEER=../shared/peers/crc32c_bench.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -msse4.2 -o "$tmp/peer" "$PEER"
ours=$("$BUILD/bench/crc32c_bench" --benchmark_filter='BM_Crc32c_Hardware/1048576$' \
  --benchmark_format=json --benchmark_repetitions=5 --benchmark_report_aggregates_only=true |
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print([b for b in d["benchmarks"] if b["aggregate_name"]=="median"][0]["bytes_per_second"]/1e9)')
peer=$("$tmp/peer" 1048576 7)
single=$(sed -n 's/.*crc32c_single.*median=\([0-9.]*\).*/\1/p' <<<"$peer")
threeway=$(sed -n 's/.*crc32c_3way.*median=\([0-9.]*\).*/\1/p' <<<"$peer")
printf 'CRC32C 1 MiB, 1 core: sluice %.2f GB/s | peer single chain %s GB/s | peer 3-way ceiling %s GB/s\n' \
  "$ours" "$single" "$threeway"
/usr/bin/python3 -c "print(f'ratio sluice/single = {$ours/$single:.2f}, sluice/ceiling = {$ours/$threeway:.2f}')"
