#!/usr/bin/env bash
# Instructions per uncompressed byte of a single-threaded scan, counted by valgrind's callgrind
# on a fixed generated subset (TESTING.md §5): unlike MB/s, the count does not depend on how
# busy the machine is, so runs of two builds compare exactly. Prints the total, the count per
# byte of JSON, and the split by part of the work (inflate, CRC, the header walker, the
# envelope scanner, UTF-8 checks, full parses, rules, copies, the rest).
#
#   scripts/callgrind.sh [CORPUS_DIR]     (default /tmp/trailhound-callgrind; made once, seed 7)
#
# TRAILHOUND_BIN=path counts another build (an earlier commit's) on the same subset.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/trailhound-callgrind}"
command -v valgrind > /dev/null || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --quiet --bin trailhound --example gen_corpus
bin="${TRAILHOUND_BIN:-$PWD/target/release/trailhound}"
if [[ ! -d "$dir/AWSLogs" ]]; then
  # 40 MB of JSON in 20 objects, 40 % of the background S3 data events, an attack every 3.
  ./target/release/examples/gen_corpus "$dir" 40 7 2000 3 40
fi
out="$dir/run"   # the raw counts stay here, for callgrind_annotate
mkdir -p "$out"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$bin" scan --threads 1 --format jsonl "$dir/AWSLogs" > /dev/null 2> "$out/stderr"
summary=$(grep -m1 '^scanned' "$out/stderr")
json_mb=$(grep -o '[0-9.]* MB JSON' <<<"$summary" | grep -o '^[0-9.]*')
callgrind_annotate --auto=no --threshold=100 "$out/callgrind.out" > "$out/annotated" 2> /dev/null
python3 - "$out/annotated" "$json_mb" "$summary" <<'PY'
import re, sys
annotated, json_mb, summary = sys.argv[1], float(sys.argv[2]), sys.argv[3]
total, functions = 0, []
for line in open(annotated, errors="replace"):
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    count = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in m.group(2):
        total = count
    else:
        functions.append((count, m.group(2)))
parts = [
    ("inflate", r"zlib_rs::inflate|inflate_fast|inflate_table|adler|deflate_decompress|libdeflate"),
    ("CRC", r"crc32|crc::"),
    ("header walker", r"decode::walk|Event::slot|Event::set_text|Identity::set_text|Event::wants|Event::wanted|Event::set\b|Field::named|parse_rfc3339"),
    ("envelope scanner", r"decode::split|decode::window|Skipper"),
    ("UTF-8 checks", r"from_utf8|simdutf8|run_utf8_validation"),
    ("full parses", r"simd_json"),
    ("rules and passes", r"trailhound::detect|trailhound::analyze|trailhound::pipeline|trailhound::event::shape"),
    ("copies (memmove)", r"memmove|memcpy"),
    ("byte searches (memchr)", r"memchr"),
]
split = {name: 0 for name, _ in parts}
split["the rest"] = 0
for count, name in functions:
    for part, pattern in parts:
        if re.search(pattern, name):
            split[part] += count
            break
    else:
        split["the rest"] += count
# The annotated list stops at the threshold; what it leaves out is "the rest" too.
split["the rest"] += total - sum(count for count, _ in functions)
json_bytes = json_mb * 1e6
print(summary)
print(f"instructions: {total:,} for {json_mb:.1f} MB of JSON = {total / json_bytes:.2f} per byte")
for name, count in sorted(split.items(), key=lambda item: -item[1]):
    print(f"  {name:<24} {count / json_bytes:6.2f} per byte  {100 * count / total:5.1f} %")
PY
