#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser test (tests/test_site.py).
#
# `make test`, `make pytest` and `.ci/run` call this first. If the browser is missing it is
# installed with apt-get, non-interactively: directly as root, through `sudo -n` otherwise.
# Where that cannot be done (no apt-get, not root and no password-less sudo, or the install
# fails), it stops with exit status 1 and one line saying what to run, before any test runs.
#
# BNBACKPROP_CHROMIUM names the browser (default /usr/bin/chromium), as in tests/test_site.py.
set -euo pipefail

chromium="${BNBACKPROP_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0

fail() {
    echo "$chromium not found and not installed ($1); the browser test needs Debian's chromium:" \
        "run 'sudo apt-get update && sudo apt-get install -y chromium' (as root, without sudo), then retry." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "no apt-get here; elsewhere install chromium and set BNBACKPROP_CHROMIUM to it"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    fail "not root, and sudo is missing or needs a password"
fi

echo "Installing Debian's chromium for the browser test (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get update -q >&2 || ! "${as_root[@]}" apt-get install -y -q chromium >&2; then
    fail "apt-get failed"
fi
[ -x "$chromium" ] || fail "apt-get installed chromium, but not at $chromium"
