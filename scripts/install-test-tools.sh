#!/usr/bin/env bash
# Installs the OS packages the test suite drives Portico with, when missing:
# - awscli (Debian's AWS CLI v2: `aws logs tail` exists only in v2; the pinned v1 lives in the venv)
# Needs root (or sudo) and Debian's apt. Prints nothing when everything is there.
set -euo pipefail
need=()
[ -x /usr/bin/aws ] || need+=(awscli)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "installing ${need[*]} from the OS packages" >&2
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
