#!/usr/bin/env bash
# The deployment and Lambda tools the tests use, pinned, installed once into a venv outside the
# work tree (reused while the pins match): cargo-lambda (the Lambda Runtime API emulator and
# invoker, a wheel carrying the binary), cfn-lint and checkov (template and module checks) and
# python-hcl2 (the Terraform parser; no terraform binary can be installed here).
#
#   eval "$(scripts/tools.sh)"   installs if needed and prints the exports the tests read:
#                                TRAILHOUND_CARGO_LAMBDA, TRAILHOUND_TOOLS_PYTHON, TRAILHOUND_CFN_LINT,
#                                TRAILHOUND_CHECKOV, TRAILHOUND_HCL2_PYTHON
set -euo pipefail

PINS="cargo-lambda==1.9.2 cfn-lint==1.58.0 checkov==3.3.30"
# python-hcl2 gets a venv of its own: checkov's fork (bc-python-hcl2) installs the same `hcl2`
# package and would overwrite it.
HCL_PIN="python-hcl2==8.1.4"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/trailhound"
venv="${TRAILHOUND_TOOLS_VENV:-$cache/tools-$(echo "$PINS $HCL_PIN" | sha256sum | cut -c1-12)}"

if [[ ! -x "$venv/bin/cargo-lambda" || ! -x "$venv/bin/checkov" || ! -f "$venv/.complete" ]]; then
  echo "installing $PINS into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
  python3 -m venv "$venv/hcl2"
  "$venv/hcl2/bin/pip" install --quiet --disable-pip-version-check "$HCL_PIN" >&2
  touch "$venv/.complete"
fi
echo "export TRAILHOUND_CARGO_LAMBDA=$venv/bin/cargo-lambda"
echo "export TRAILHOUND_TOOLS_PYTHON=$venv/bin/python"
echo "export TRAILHOUND_CFN_LINT=$venv/bin/cfn-lint"
echo "export TRAILHOUND_CHECKOV=$venv/bin/checkov"
echo "export TRAILHOUND_HCL2_PYTHON=$venv/hcl2/bin/python"
