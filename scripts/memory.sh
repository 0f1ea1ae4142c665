#!/usr/bin/env bash
# Peak memory on hostile and heavy input (TESTING.md §7), measured with /usr/bin/time -v at the
# default thread count: several decompression bombs at once, a 200 MB single-line record, a
# 200 MB file of valid events that each make a finding, and 100,000 tiny files. Prints each
# case's peak RSS against the 200 MB target and exits 1 when a case is over it.
#
#   scripts/memory.sh [WORK_DIR]          (default /tmp/trailhound-memory; inputs are kept there)
#
# TRAILHOUND_BIN=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/trailhound-memory}"
target_mb=200
cargo build --release --quiet --bin trailhound
bin="${TRAILHOUND_BIN:-$PWD/target/release/trailhound}"
mkdir -p "$dir"

# Inputs, made once.
bombs="$dir/bombs"
if [[ ! -f "$bombs/.done" ]]; then
  rm -rf "$bombs"; mkdir -p "$bombs"
  head -c 1G /dev/zero | gzip -1 > "$bombs/zeros.json.gz"
  head -c 1G /dev/zero | tr '\0' ' ' | gzip -1 > "$bombs/spaces.json.gz"
  { printf '{"Records":['; head -c 2G /dev/zero | tr '\0' ' '; } | gzip -1 > "$bombs/records-then-whitespace.json.gz"
  { printf '{"Records":['; head -c 2G /dev/zero | tr '\0' '\n'; } | gzip -1 > "$bombs/records-then-newlines.json.gz"
  touch "$bombs/.done"
fi
record="$dir/record"
if [[ ! -f "$record/.done" ]]; then
  rm -rf "$record"; mkdir -p "$record"
  python3 - "$record" <<'PY'
import gzip, sys
head = b'{"Records":[{"eventVersion":"1.10","eventTime":"2026-11-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"huge","userAgent":"'
body = b'a' * (200 * 1000 * 1000)
tail = b'"}]}'
open(sys.argv[1] + "/single-line-record.json", "wb").write(head + body + tail)
with gzip.open(sys.argv[1] + "/single-line-record.json.gz", "wb", compresslevel=1) as f:
    f.write(head + body + tail)
PY
  touch "$record/.done"
fi
findings="$dir/findings"
if [[ ! -f "$findings/.done" ]]; then
  rm -rf "$findings"; mkdir -p "$findings"
  python3 - "$findings" <<'PY'
import gzip, sys
rec = ('{"eventVersion":"1.10","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ops/s%d",'
       '"accountId":"111122223333","accessKeyId":"ASIAEXAMPLE%09d"},"eventTime":"2026-11-01T%02d:%02d:%02dZ",'
       '"eventSource":"ecs.amazonaws.com","eventName":"ExecuteCommand","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7",'
       '"userAgent":"aws-cli/2.15.30","requestParameters":{"cluster":"prod","container":"web","command":"/bin/sh",'
       '"interactive":true,"task":"arn:aws:ecs:us-east-1:111122223333:task/prod/%016x"},"eventID":"ev-%08d",'
       '"eventType":"AwsApiCall","recipientAccountId":"111122223333"}')
parts, size, i = [], 0, 0
while size < 200 * 1000 * 1000:
    r = rec % (i % 1000, i, 10 + i // 36000 % 10, i // 600 % 60, i // 10 % 60, i, i)
    parts.append(r); size += len(r) + 1; i += 1
text = ('{"Records":[' + ",".join(parts) + ']}').encode()
open(sys.argv[1] + "/findings.json", "wb").write(text)
with gzip.open(sys.argv[1] + "/findings.json.gz", "wb", compresslevel=1) as f:
    f.write(text)
print(i, "events", file=sys.stderr)
PY
  touch "$findings/.done"
fi
tiny="$dir/tiny"
if [[ ! -f "$tiny/.done" ]]; then
  rm -rf "$tiny"; mkdir -p "$tiny"
  python3 - "$tiny" testdata/events/ecs.execute_command/positive/medium_interactive_shell.json <<'PY'
import os, sys
body = open(sys.argv[2], "rb").read()
for d in range(100):
    os.makedirs(f"{sys.argv[1]}/{d:03}")
    for f in range(1000):
        open(f"{sys.argv[1]}/{d:03}/{f:04}.json", "wb").write(body)
PY
  touch "$tiny/.done"
fi

over=0
measure() {
  local label="$1"; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$bin" scan --format jsonl -o /dev/null "$@" 2> "$log" || true
  local kb; kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
  local secs; secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$log")
  local mb=$((kb / 1024))
  local verdict="ok"
  if (( mb > target_mb )); then verdict="OVER"; over=1; fi
  printf '%-44s peak RSS %5d MB  (%s)  %s\n' "$label" "$mb" "$secs" "$verdict"
  rm -f "$log"
}
echo "default threads: $(nproc); target: ≤ $target_mb MB per case"
measure "4 decompression bombs at once" "$bombs"
measure "200 MB single-line record (plain JSON)" "$record/single-line-record.json"
measure "200 MB single-line record (gzip)" "$record/single-line-record.json.gz"
measure "200 MB of events that each make a finding" "$findings/findings.json"
measure "the same, gzip" "$findings/findings.json.gz"
measure "100,000 tiny files" "$tiny"
exit "$over"
