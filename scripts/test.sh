#!/usr/bin/env bash
# Runs every test Portico has, on a fresh machine: format and lint gates, Rust unit and
# property tests, the release build, then the end-to-end suite (pytest driving the real binary
# with pinned AWS CLI and boto3 from a venv this script creates). Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "cargo build --release"
cargo build --release -p portico

step "e2e venv (pinned clients)"
VENV=target/e2e-venv
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/e2e/requirements.txt "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt "$VENV/requirements.txt"
fi

step "e2e (pytest)"
export PORTICO_BIN="$PWD/target/release/portico"
export PORTICO_AWS_CLI="$PWD/$VENV/bin/aws"
"$VENV/bin/pytest" tests/e2e -q -p no:cacheprovider "$@"
