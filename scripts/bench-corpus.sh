#!/usr/bin/env bash
# End-to-end throughput on a generated ~1 GB corpus (TESTING.md §5), measured side by side in one
# run: `gzip -dc` over the same files, then `trailhound scan` on 1 thread (both pinned to one
# core) and on every core. Prints uncompressed MB/s (best and median), the ratios to gzip -dc and
# to one thread, events/s and peak RSS.
#
#   scripts/bench-corpus.sh [CORPUS_DIR] [SIZE_MB] [SEED] [S3_DATA_PERCENT]
#                                           (default /tmp/trailhound-corpus 1100 7 40)
#
# S3_DATA_PERCENT is the share of S3 data events (40: data events on for busy buckets; 0: a
# management-only trail); measure both, they differ in speed.
#
# TRAILHOUND_BIN=path measures another build (an earlier commit's, to compare) on the same corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/trailhound-corpus}"; size="${2:-1100}"; seed="${3:-7}"; s3_data="${4:-40}"
cargo build --release --quiet --bin trailhound --example gen_corpus
bin="${TRAILHOUND_BIN:-./target/release/trailhound}"
if [[ ! -d "$dir/AWSLogs" ]]; then
  ./target/release/examples/gen_corpus "$dir" "$size" "$seed" 2000 3 "$s3_data"
fi
files=$(find "$dir/AWSLogs" -name '*.json.gz' | wc -l)
json_bytes=$(find "$dir/AWSLogs" -name '*.json.gz' -print0 | xargs -0 cat | gzip -dc | wc -c)
echo "corpus: $files objects, $((json_bytes / 1000000)) MB of JSON, in $dir"

# Machines here are shared and noisy: each configuration runs RUNS times (default 5) and the
# best and median are printed; the single-core lines (gzip -dc and trailhound --threads 1) are
# pinned to one core with taskset, so their ratio is measured in the same conditions.
runs="${RUNS:-5}"
pin=(taskset -c 0)
stats() { # best and median of the numbers on stdin
  sort -n | awk '{ v[NR] = $1 } END { printf "%d %d\n", v[NR], v[int((NR + 1) / 2)] }'
}
gzip_rates=()
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  "${pin[@]}" sh -c "find '$dir/AWSLogs' -name '*.json.gz' -print0 | xargs -0 cat | gzip -dc > /dev/null"
  end=$(date +%s.%N)
  gzip_rates+=("$(awk -v b="$json_bytes" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }')")
done
read -r gzip_best gzip_median < <(printf '%s\n' "${gzip_rates[@]}" | stats)
echo "gzip -dc (pinned to one core): best $gzip_best MB/s, median $gzip_median MB/s over $runs runs"
declare -A best median
for threads in 1 "$(nproc)"; do
  run=("$bin" scan --threads "$threads" --format jsonl "$dir/AWSLogs")
  if [[ "$threads" == 1 ]]; then run=("${pin[@]}" "${run[@]}"); fi
  rates=()
  for _ in $(seq "$runs"); do
    summary=$("${run[@]}" 2>&1 >/dev/null | head -n 1)
    rates+=("$(grep -o '[0-9]* MB/s' <<<"$summary" | grep -o '[0-9]*')")
  done
  read -r best[$threads] median[$threads] < <(printf '%s\n' "${rates[@]}" | stats)
  rss=$(/usr/bin/time -f '%M' "${run[@]}" 2>&1 >/dev/null | tail -n 1)
  pinned=""; if [[ "$threads" == 1 ]]; then pinned=" (pinned)"; fi
  echo "trailhound --threads $threads$pinned: best ${best[$threads]} MB/s, median ${median[$threads]} MB/s over $runs runs; peak RSS $((rss / 1024)) MB"
  echo "  last run: ${summary#scanned }"
done
awk -v tb="${best[1]}" -v tm="${median[1]}" -v gb="$gzip_best" -v gm="$gzip_median" \
  'BEGIN { printf "single core: %.2fx gzip -dc (best against best), %.2fx (median against median)\n", tb / gb, tm / gm }'
n="$(nproc)"
awk -v b="${best[$n]}" -v m="${median[$n]}" -v b1="${best[1]}" -v m1="${median[1]}" -v n="$n" \
  'BEGIN { printf "%d threads: %.2fx one thread (best), %.2fx (median)\n", n, b / b1, m / m1 }'
# With a persistent state file (fresh each run): throughput with every write, and the file's size.
state_dir=$(mktemp -d)
rates=()
for _ in $(seq "$runs"); do
  rm -f "$state_dir"/state.db*
  summary=$("$bin" scan --state "$state_dir/state.db" --format jsonl "$dir/AWSLogs" 2>&1 >/dev/null | head -n 1)
  rates+=("$(grep -o '[0-9]* MB/s' <<<"$summary" | grep -o '[0-9]*')")
done
sorted=$(printf '%s\n' "${rates[@]}" | sort -n)
echo "trailhound --state (every core): best $(tail -n 1 <<<"$sorted") MB/s, median $(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted") MB/s"
"$bin" state --state "$state_dir/state.db" | sed 's/^/  /'
rm -rf "$state_dir"
