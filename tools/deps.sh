#!/bin/sh
# Make sure the Debian packages galnn builds against are installed.
# As root: apt-get update + install what is missing. Otherwise: print the
# exact command and fail. Usage: tools/deps.sh [optional-package ...]
# (optional packages are installed when possible, never required).
set -u
required="libopenblas-dev libopenblas-openmp-dev libstb-dev zlib1g-dev libcmocka-dev libcfitsio-dev libcairo2-dev"
optional="$*"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=""
for p in $required; do installed "$p" || missing="$missing $p"; done
opt_missing=""
for p in $optional; do installed "$p" || opt_missing="$opt_missing $p"; done

[ -z "$missing$opt_missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "galnn: installing Debian packages:$missing$opt_missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || { echo "galnn: apt-get update failed" >&2; [ -z "$missing" ] && exit 0; exit 1; }
    if [ -n "$missing" ]; then
        apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
            echo "galnn: error: could not install:$missing" >&2; exit 1; }
    fi
    if [ -n "$opt_missing" ]; then
        apt-get install -y -qq --no-install-recommends $opt_missing >/dev/null ||
            echo "galnn: note: optional packages not installed:$opt_missing (their tests are skipped)"
    fi
    exit 0
fi

if [ -n "$missing" ]; then
    echo "galnn: error: missing Debian packages:$missing" >&2
    echo "install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "galnn: note: optional packages missing:$opt_missing (their tests are skipped)"
exit 0
