#!/usr/bin/env bash
# Runs every test of trailhound: unit, detector fixtures, decode bad-input catalogue, CLI golden
# files, the synthetic corpus, and the real-log corpus (../shared/corpus, or $TRAILHOUND_CORPUS;
# skipped with a notice when absent).
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test corpus`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TRAILHOUND_CORPUS:-}" && -d ../shared/corpus ]]; then
  TRAILHOUND_CORPUS="$(cd ../shared/corpus && pwd)"
  export TRAILHOUND_CORPUS
fi
cargo test "$@"
