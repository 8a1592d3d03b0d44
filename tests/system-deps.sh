#!/usr/bin/env bash
# Installs what the test suite needs beyond deploy/system-deps.sh, only when
# it is missing and only as root: Debian's Chromium (the staff page's browser
# tests drive it through Playwright; no browser is ever downloaded), its
# fonts, the PostgreSQL server (the hub's tests start a throwaway cluster),
# poppler's pdftotext/pdftoppm (the PDF export is read back), shellcheck
# and systemd's systemd-analyze (tests/deploy checks the deploy scripts and
# units with them), and espeak-ng, alsa-utils and sox (read-aloud). Not root and something missing: says so, and those tests
# skip (or fail under CI=true, saying what is missing).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Read-aloud's tests speak with espeak-ng into files and measure them with sox.
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v aplay >/dev/null 2>&1 || missing+=(alsa-utils)
command -v sox >/dev/null 2>&1 || missing+=(sox)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "note: not root, so not installing ${missing[*]}; the tests that need them will say so" >&2
    exit 0
fi
echo "Installing test packages: ${missing[*]}"
apt-get update -qq || echo "warning: apt-get update failed" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}; the tests that need them will say so" >&2
