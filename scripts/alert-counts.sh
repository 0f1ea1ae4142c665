#!/usr/bin/env bash
# Published alerts (medium and above) per rule on a generated corpus, split into those resting on
# planted attack events and those on benign events only, with the benign rate per 100,000.
#
#   scripts/alert-counts.sh [TRAILHOUND_BINARY] CORPUS_DIR
#
# CORPUS_DIR is written by `cargo run --release --example gen_corpus -- CORPUS_DIR ...` (it holds
# AWSLogs/ and ground-truth.json). Run it with two binaries to compare rule changes.
set -euo pipefail
bin=${1:?usage: alert-counts.sh [BINARY] CORPUS_DIR}
if [ $# -ge 2 ]; then corpus=$2; else corpus=$bin; bin=target/release/trailhound; fi
findings=$(mktemp)
trap 'rm -f "$findings"' EXIT
"$bin" scan --format jsonl "$corpus/AWSLogs" >"$findings" 2>"$findings.summary" || true
events=$(sed -n 's/.* \([0-9]*\) events, .*/\1/p' "$findings.summary" | head -1)
rm -f "$findings.summary"
python3 - "$findings" "$corpus/ground-truth.json" "$events" <<'PY'
import collections, json, sys
findings, truth, events = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3] or 0)
attack = {i for ids in truth["attacks"].values() for i in ids}
rank = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
benign, real = collections.Counter(), collections.Counter()
for line in open(findings):
    f = json.loads(line)
    if rank[f["severity"]] < 2:
        continue
    ids = f["evidence"]["event_ids"]
    (real if any(i in attack for i in ids) else benign)[f["rule"]] += 1
for rule in sorted(set(benign) | set(real)):
    print(f"{rule:38} benign {benign[rule]:6}  attack {real[rule]:4}")
benign_events = events - len(attack)
total = sum(benign.values())
print(f"events {events}, benign published alerts {total}, {total * 1e5 / max(benign_events, 1):.2f} per 100,000 benign events")
PY
