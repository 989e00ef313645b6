#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (make test calls this once).
# Playwright drives this system browser; nothing is downloaded from a browser CDN.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "warning: cannot install chromium (not root, no sudo); the browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q chromium >/dev/null
}
chromium --version 2>/dev/null || true
