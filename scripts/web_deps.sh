#!/usr/bin/env bash
# Fetch the browser runtime for `trainer export --format web`: onnxruntime-web, pinned in
# web/package.json and web/package-lock.json, from the npm registry into web/node_modules.
#
#   scripts/web_deps.sh          # idempotent: does nothing when the pinned version is there
#
# Installs Debian's npm first when npm is missing (root or sudo). Exit 0 when the runtime
# files are in place afterwards; exit 3 with a one-line reason when they cannot be fetched
# here (no npm and no way to install it, or no route to the registry), so callers can
# report a clear SKIP.
set -uo pipefail
cd "$(dirname "$0")/../web"

DIST=node_modules/onnxruntime-web/dist
WANT=$(sed -n 's/.*"onnxruntime-web": *"\([^"]*\)".*/\1/p' package.json | head -1)
HAVE=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' node_modules/onnxruntime-web/package.json 2>/dev/null | head -1)
if [ -n "$WANT" ] && [ "$WANT" = "$HAVE" ] && [ -f "$DIST/ort.wasm.bundle.min.mjs" ] && [ -f "$DIST/ort-wasm-simd-threaded.wasm" ]; then
    echo "web-deps: onnxruntime-web $HAVE already in web/node_modules"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
            echo "web-deps: SKIP: npm is missing and installing it needs root; run: sudo apt-get install -y npm" >&2
            exit 3
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "web-deps: SKIP: npm is missing and apt-get is not available; install Node.js with npm yourself" >&2
        exit 3
    fi
    echo "web-deps: apt-get install -y --no-install-recommends npm"
    export DEBIAN_FRONTEND=noninteractive
    if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }; then
        echo "web-deps: SKIP: apt-get install npm failed (no network to the Debian mirrors?)" >&2
        exit 3
    fi
fi
# --ignore-scripts: nothing from the registry runs here; --omit=dev: only what the page needs.
echo "web-deps: npm ci (onnxruntime-web $WANT from the npm registry, about 35 MB download)"
if ! npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error; then
    echo "web-deps: SKIP: npm ci failed (no route to the npm registry?); the web export needs web/node_modules" >&2
    exit 3
fi
[ -f "$DIST/ort-wasm-simd-threaded.wasm" ] || { echo "web-deps: SKIP: npm ci finished but $DIST is incomplete" >&2; exit 3; }
echo "web-deps: onnxruntime-web $WANT installed in web/node_modules"
