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

step "e2e venv (pinned clients) and OS test tools"
VENV=$(scripts/venv.sh)
scripts/install-test-tools.sh

step "benchmark harness smoke (each case ~1 s, so the harness cannot rot)"
bench/run --smoke --skip-build

step "e2e (pytest)"
export PORTICO_BIN="$PWD/target/release/portico"
export PORTICO_AWS_CLI="$VENV/bin/aws"
export PORTICO_AWS_CLI2=/usr/bin/aws
"$VENV/bin/pytest" tests/e2e -q -p no:cacheprovider "$@"
