#!/usr/bin/env bash
# Runs every test of trailhound: unit, detector fixtures, decode bad-input catalogue, CLI golden
# files, state, the synthetic corpus, the real-log corpus (../shared/corpus, or
# $TRAILHOUND_CORPUS; skipped with a notice when absent), and the worker against a moto server
# that this script installs (once, into a venv outside the work tree) and starts on 127.0.0.1,
# the Lambda function through cargo-lambda's Runtime API, and the deployment templates (cfn-lint,
# checkov, python-hcl2, a CloudFormation stack in moto), with the tools scripts/tools.sh pins.
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test worker`). Every test binary
# runs even after one fails (--no-fail-fast), so one run reports every failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TRAILHOUND_CORPUS:-}" && -d ../shared/corpus ]]; then
  TRAILHOUND_CORPUS="$(cd ../shared/corpus && pwd)"
  export TRAILHOUND_CORPUS
fi
eval "$(scripts/tools.sh)"
eval "$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop' EXIT
export TRAILHOUND_REQUIRE_MOTO=1 AWS_EC2_METADATA_DISABLED=true
cargo test --no-fail-fast "$@"
