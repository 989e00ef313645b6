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
if ! $SUDO apt-get install -y -q chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null 2>&1 || true
    if ! $SUDO apt-get install -y -q chromium >/dev/null 2>&1; then
        echo "warning: apt-get could not install chromium; the browser tests will skip" >&2
        exit 0
    fi
fi
chromium --version 2>/dev/null || true
