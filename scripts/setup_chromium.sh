#!/usr/bin/env bash
# Installs Debian's chromium (and chromium-driver) when missing: tests/reporting/test_browser.py
# renders report.html in it headless. Needs root or password-less sudo; exits non-zero when it cannot.
set -euo pipefail

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }

have_chromium && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "setup_chromium: no apt-get; install chromium yourself" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "setup_chromium: needs root or password-less sudo" >&2; exit 1; }
    sudo="sudo -n"
fi
echo "==> installing chromium (headless browser for the report.html test)" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
have_chromium
