#!/usr/bin/env bash
# Creates (or reuses) target/e2e-venv with the pinned clients of tests/e2e/requirements.txt and
# prints its path. Shared by scripts/test.sh and bench/run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/e2e-venv
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/e2e/requirements.txt "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt >&2
  cp tests/e2e/requirements.txt "$VENV/requirements.txt"
fi
echo "$PWD/$VENV"
