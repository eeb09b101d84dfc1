#!/usr/bin/env bash
# Debian's Chromium for the console's browser tests (Playwright drives it; it never downloads a browser of its own).
set -euo pipefail
chromium="${GLEANER_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo -n)
else
    echo "Chromium is missing at $chromium and this user cannot install it: apt-get install chromium as root" >&2
    exit 1
fi
echo "installing Debian's chromium for the browser tests" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
test -x "$chromium"
