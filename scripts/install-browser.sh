#!/usr/bin/env bash
# Installs the headless browser the console's browser test drives (tests/e2e/test_console*.py):
# Debian's `chromium` and `chromium-driver` packages, with apt-get, only if they are missing.
# Never downloads a browser any other way. Needs root (or sudo) and Debian's package archive.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "chromium and chromedriver already installed" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-browser: need root or sudo for apt-get" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
/usr/bin/chromium --version >&2
