#!/usr/bin/env bash
# Builds the Lambda zip (target/lambda/trailhound/bootstrap.zip) for the provided.al2023 runtime:
# `cargo lambda build` links with zig against a glibc old enough for Amazon Linux 2023, and the
# binary is named `bootstrap`, which trailhound runs as `trailhound lambda`.
#
#   scripts/lambda-zip.sh            x86_64 (the machine's own target)
#   scripts/lambda-zip.sh --arm64    arm64 (needs `rustup target add aarch64-unknown-linux-gnu`)
#
# cargo-lambda comes from scripts/tools.sh (pinned, with zig).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/tools.sh)"
arch="${1:---x86-64}"
# zig comes as the ziglang wheel, found through the venv's python. Stripped, without debug
# info: 21 MB instead of 102 MB unpacked, less for Lambda to load at a cold start.
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
PATH="$(dirname "$TRAILHOUND_CARGO_LAMBDA"):$PATH" "$TRAILHOUND_CARGO_LAMBDA" lambda build --release "$arch" --output-format zip --bin trailhound
ls -l target/lambda/trailhound/bootstrap.zip
