#!/usr/bin/env bash
# Backfill throughput against the moto server on loopback, beside the local-file equivalent
# (TESTING.md §5): a generated corpus is uploaded to a bucket, then timed
#   1. `trailhound scan --state` over the local copy (what the same work costs without S3),
#   2. `trailhound backfill s3://…` (list, download, decode, detect, warm the state),
#   3. `trailhound backfill --enqueue` (list and send the keys to a queue only).
# Prints MB/s of JSON, events/s and objects/s for each, best of RUNS (default 3) runs.
#
#   scripts/bench-backfill.sh [SIZE_MB] [EVENTS_PER_FILE]     (default 300 500)
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-300}"; per_file="${2:-500}"; runs="${RUNS:-3}"
export TRAILHOUND_MOTO_RUN="${TRAILHOUND_MOTO_RUN:-/tmp/trailhound-bench-moto}"
eval "$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
venv="${TRAILHOUND_MOTO_VENV:-$HOME/.cache/trailhound/moto-5.2.5}"
cargo build --release --quiet --bin trailhound --example gen_corpus
work=$(mktemp -d)
./target/release/examples/gen_corpus "$work/corpus" "$size" 11 "$per_file" >/dev/null
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
bucket="bench-$$"
queue=$("$venv/bin/python" - "$TRAILHOUND_MOTO_ENDPOINT" "$bucket" "$work/corpus" <<'EOF'
import os, sys, boto3
endpoint, bucket, root = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)
for folder, _, files in os.walk(os.path.join(root, "AWSLogs")):
    for name in files:
        path = os.path.join(folder, name)
        s3.upload_file(path, bucket, os.path.relpath(path, root))
print(boto3.client("sqs", endpoint_url=endpoint).create_queue(QueueName=bucket)["QueueUrl"])
EOF
)
objects=$(find "$work/corpus/AWSLogs" -name '*.json.gz' | wc -l)
echo "corpus: $objects objects, $(du -sh "$work/corpus/AWSLogs" | cut -f1) stored, uploaded to s3://$bucket on $TRAILHOUND_MOTO_ENDPOINT"
window=(--since 2026-11-01T00:00:00Z --until 2026-11-02T00:00:00Z)
s3=(--endpoint-url "$TRAILHOUND_MOTO_ENDPOINT" --path-style --progress off --format jsonl)

best() { # label, command...: best wall time of $runs runs, then the rates of that run
  local label=$1; shift
  local best_s="" best_out=""
  for _ in $(seq "$runs"); do
    rm -f "$work/state.db"*
    local start end out
    start=$(date +%s.%N); out=$("$@" 2>&1 >/dev/null || true); end=$(date +%s.%N)
    local s; s=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
    if [[ -z "$best_s" ]] || awk -v s="$s" -v b="$best_s" 'BEGIN { exit !(s < b) }'; then best_s=$s; best_out=$out; fi
  done
  local json events
  json=$(grep -o '[0-9.]* MB JSON' <<<"$best_out" | head -n 1 | grep -o '^[0-9.]*' || echo 0)
  events=$(grep -o '[0-9]* events,' <<<"$best_out" | head -n 1 | grep -o '^[0-9]*' || echo 0)
  awk -v l="$label" -v s="$best_s" -v j="$json" -v e="$events" -v o="$objects" \
    'BEGIN { printf "%-34s %6.2f s  %6.0f MB/s  %8.0f events/s  %6.0f objects/s\n", l, s, j / s, e / s, o / s }'
  grep -E 'ListObjectsV2|enqueued' <<<"$best_out" | sed 's/^/    /' || true
}

best "scan --state (local files)" ./target/release/trailhound scan --state "$work/state.db" --format jsonl "${window[@]}" "$work/corpus/AWSLogs"
best "backfill s3:// (moto)" ./target/release/trailhound backfill "s3://$bucket" "${window[@]}" "${s3[@]}" --state "$work/state.db"
best "backfill s3:// --concurrency 32" ./target/release/trailhound backfill "s3://$bucket" "${window[@]}" "${s3[@]}" --state "$work/state.db" --concurrency 32
best "backfill --enqueue (moto)" ./target/release/trailhound backfill "s3://$bucket" "${window[@]}" "${s3[@]}" --state "$work/state.db" --enqueue "$queue"
# Who is busy during a backfill: the CPU seconds of trailhound and of the moto process, and
# trailhound's peak memory.
moto_pid=$(cat "$TRAILHOUND_MOTO_RUN/moto.pid")
cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
rm -f "$work/state.db"*
before=$(cpu "$moto_pid")
own=$(/usr/bin/time -f '%U %S %M' ./target/release/trailhound backfill "s3://$bucket" "${window[@]}" "${s3[@]}" --state "$work/state.db" 2>&1 >/dev/null | tail -n 1)
after=$(cpu "$moto_pid")
awk -v o="$own" -v b="$before" -v a="$after" 'BEGIN { split(o, t, " "); printf "CPU during one backfill: trailhound %.2f s (peak RSS %d MB), moto %.2f s\n", t[1] + t[2], t[3] / 1024, a - b }'
rm -rf "$work"
