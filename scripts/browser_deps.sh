#!/usr/bin/env bash
# Install headless Chromium from Debian's packages, for the dashboard's browser tests.
#
#   scripts/browser_deps.sh          # idempotent: does nothing when chromium is already there
#
# Exit 0 when `chromium` is on PATH afterwards. Exit 3 with a one-line reason when it
# cannot be installed here (no apt-get, not root and no sudo, or the install failed), so
# callers can report a clear SKIP instead of silently passing.
set -uo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "browser-deps: $(chromium --version 2>/dev/null | head -1) already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser-deps: SKIP: apt-get is not available on this system; install Chromium yourself (any package that provides a 'chromium' command)" >&2
    exit 3
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "browser-deps: SKIP: installing Chromium needs root; run: sudo apt-get update && sudo apt-get install -y chromium" >&2
        exit 3
    fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "browser-deps: apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core"
if ! $SUDO apt-get update -qq; then
    echo "browser-deps: SKIP: apt-get update failed (no network to the Debian mirrors?)" >&2
    exit 3
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    echo "browser-deps: SKIP: apt-get install chromium failed; see the apt output above" >&2
    exit 3
fi
command -v chromium >/dev/null 2>&1 || { echo "browser-deps: SKIP: chromium installed but not on PATH" >&2; exit 3; }
echo "browser-deps: installed $(chromium --version 2>/dev/null | head -1)"
