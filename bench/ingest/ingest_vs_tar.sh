#!/usr/bin/env bash
# End-to-end ingest benchmark, side by side on the same archives and disk, in one run:
#   (a) sluice ingest imagenet from the archives (1 and 2 threads)
#   (b) tar -xf of the same archives: the outer train tar, every per-synset tar in it, and the val tar
#       (only the first step of the reference workflow, which then runs build_imagenet_data.py)
#   (c) cat of the archives to /dev/null: the read ceiling
#   (d) cp of the archives to the same disk: read + write of the same bytes, the floor for any converter
#       that writes its output next to its input
# Every timed command is followed by `sync`, so writers pay for getting their output to disk (sluice
# fsyncs each shard itself; tar leaves dirty pages). Before each timed command the page cache is
# dropped (when this user may write /proc/sys/vm/drop_caches), so all three read the archives from
# disk, as they must for a real 147 GB ImageNet tar; otherwise all three read from a warm cache, whose
# `cat` "ceiling" is memory bandwidth, and the script says so. Medians of RUNS runs.
# Usage: bench/ingest/ingest_vs_tar.sh [IMAGES=20000] [DIR=/tmp/sluice_bench_ingest] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGES=${1:-20000}
DIR=${2:-/tmp/sluice_bench_ingest}
RUNS=${3:-3}
SLUICE=${SLUICE:-build/release/cli/sluice}
[[ -x $SLUICE ]] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }

mkdir -p "$DIR"
data=$DIR/data/imagenet
if [[ ! -f $data/ILSVRC2012_img_train.tar || $(cat "$DIR/images" 2>/dev/null) != "$IMAGES" ]]; then
  rm -rf "$DIR/data"
  $SLUICE sample-data "$DIR/data" --images "$IMAGES" --classes 20
  echo "$IMAGES" >"$DIR/images"
fi
train=$data/ILSVRC2012_img_train.tar
val=$data/ILSVRC2012_img_val.tar
labels=$data/imagenet_2012_validation_synset_labels.txt
bytes=$(( $(stat -c %s "$train") + $(stat -c %s "$val") ))
images=$(( $(tar -tf "$train" | wc -l) ))  # per-synset tars; real image count from sluice below
if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
  CACHE=cold
else
  CACHE=warm
  cat "$train" "$val" >/dev/null
fi

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_it() {  # time_it CMD...: seconds including sync
  local t0 t1
  if [[ $CACHE == cold ]]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
  t0=$(now)
  "$@" >/dev/null 2>&1
  sync
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

extract_all() {
  local x=$DIR/extract
  rm -rf "$x" && mkdir -p "$x/train" "$x/val"
  tar -xf "$train" -C "$x/train"
  for t in "$x"/train/*.tar; do
    mkdir -p "${t%.tar}" && tar -xf "$t" -C "${t%.tar}" && rm "$t"
  done
  tar -xf "$val" -C "$x/val"
}
extract_outer() {
  rm -rf "$DIR/extract" && mkdir -p "$DIR/extract"
  tar -xf "$train" -C "$DIR/extract" && tar -xf "$val" -C "$DIR/extract"
}
copy() {
  rm -rf "$DIR/copy" && mkdir -p "$DIR/copy" && cp "$train" "$val" "$DIR/copy/"
}
ingest() {  # ingest THREADS
  rm -rf "$DIR/out"
  $SLUICE ingest imagenet --train-archive "$train" --val-archive "$val" --val-labels "$labels" \
    --train-shards 64 --val-shards 16 --threads "$1" --out "$DIR/out"
}

declare -A results
NAMES="cat copy extract_outer extract_all ingest1 ingest2 ingest4"
for name in $NAMES; do
  for ((r = 0; r < RUNS; r++)); do
    case $name in
      cat) results[$name]+="$(time_it cat "$train" "$val") " ;;
      copy) results[$name]+="$(time_it copy) " ;;
      ingest4) results[$name]+="$(time_it ingest 4) " ;;
      extract_outer) results[$name]+="$(time_it extract_outer) " ;;
      extract_all) results[$name]+="$(time_it extract_all) " ;;
      ingest1) results[$name]+="$(time_it ingest 1) " ;;
      ingest2) results[$name]+="$(time_it ingest 2) " ;;
    esac
  done
done
rm -rf "$DIR/extract" "$DIR/copy"
records=$(/usr/bin/python3 -c "import json;print(json.load(open('$DIR/out/manifest.json'))['totals']['records'])")

printf '\nImageNet-style archives: %d images, %.1f MB (train tar of %d per-synset tars + val tar); median of %d runs; %s page cache\n' \
  "$records" "$(echo "$bytes/1000000" | bc -l)" "$images" "$RUNS" "$CACHE"
printf '%-44s %9s %9s %9s\n' "command" "seconds" "MB/s" "images/s"
declare -A med
for name in $NAMES; do
  med[$name]=$(tr ' ' '\n' <<<"${results[$name]}" | grep . | median)
  case $name in
    cat) label="(c) cat archives > /dev/null" ;;
    copy) label="(d) cp archives (same disk)" ;;
    ingest4) label="(a) sluice ingest imagenet --threads 4" ;;
    extract_outer) label="(b) tar -xf outer tars only" ;;
    extract_all) label="(b) tar -xf outer + per-synset tars" ;;
    ingest1) label="(a) sluice ingest imagenet --threads 1" ;;
    ingest2) label="(a) sluice ingest imagenet --threads 2" ;;
  esac
  printf '%-44s %9.2f %9.0f %9.0f\n' "$label" "${med[$name]}" \
    "$(echo "$bytes/1000000/${med[$name]}" | bc -l)" "$(echo "$records/${med[$name]}" | bc -l)"
done
printf '\nratio ingest(2 threads) / tar -xf (outer + inner) time: %.2f   (target <= 1.0)\n' \
  "$(echo "${med[ingest2]}/${med[extract_all]}" | bc -l)"
printf 'ratio ingest(2 threads) / tar -xf (outer only) time:    %.2f\n' \
  "$(echo "${med[ingest2]}/${med[extract_outer]}" | bc -l)"
printf 'ingest MB/s as a fraction of the cat ceiling:           %.2f   (target >= 0.70)\n' \
  "$(echo "${med[cat]}/${med[ingest2]}" | bc -l)"
printf 'ingest(best of 2, 4 threads) time / cp time:            %.2f   (1.0 = at the copy floor)\n' \
  "$(echo "if (${med[ingest2]} < ${med[ingest4]}) ${med[ingest2]}/${med[copy]} else ${med[ingest4]}/${med[copy]}" | bc -l)"
printf 'scaling 1 -> 2 threads:                                 %.2fx\n' \
  "$(echo "${med[ingest1]}/${med[ingest2]}" | bc -l)"
