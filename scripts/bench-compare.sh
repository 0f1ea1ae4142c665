#!/usr/bin/env bash
# Before/after throughput of two builds in one run, alternating the binaries run by run (these
# machines are shared and noisy): `gzip -dc` over the corpus, then `scan` pinned to one core and
# on two threads, median and best of RUNS runs (default 7).
#
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY CORPUS_DIR
# e.g. git worktree add /tmp/before <commit>; (cd /tmp/before && cargo build --release);
#      scripts/bench-compare.sh /tmp/before/target/release/trailhound target/release/trailhound /tmp/trailhound-corpus
set -euo pipefail
old=$1; new=$2; dir=$3; runs=${RUNS:-7}
json_bytes=$(find "$dir/AWSLogs" -name '*.json.gz' -print0 | xargs -0 cat | gzip -dc | wc -c)
start=$(date +%s.%N); find "$dir/AWSLogs" -name '*.json.gz' -print0 | xargs -0 cat | gzip -dc > /dev/null; end=$(date +%s.%N)
awk -v b="$json_bytes" -v s="$start" -v e="$end" 'BEGIN { printf "gzip -dc: %.0f MB/s\n", b / (e - s) / 1e6 }'
for threads in 1 2; do
  declare -A rates=()
  for _ in $(seq "$runs"); do
    for name in old new; do
      bin=${!name}
      pin=""; [[ $threads == 1 ]] && pin="taskset -c 1"
      summary=$($pin "$bin" scan --threads "$threads" --format jsonl "$dir/AWSLogs" 2>&1 >/dev/null | head -n 1)
      rates[$name]+="$(grep -o '[0-9]* MB/s' <<<"$summary" | grep -o '[0-9]*') "
    done
  done
  for name in old new; do
    sorted=$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | sort -n)
    echo "$name --threads $threads: median $(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted") MB/s, best $(tail -n1 <<<"$sorted") MB/s ($(tr '\n' ' ' <<<"$sorted"))"
  done
  unset rates
done
