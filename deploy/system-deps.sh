#!/usr/bin/env bash
# Installs the system libraries the kiosk needs (OpenGL/EGL through Mesa for
# Kivy's SDL2 window, fonts), only when something is missing. Runs as part of
# `make run` and `make test`; needs root (or sudo) only the first time.
set -euo pipefail
missing=()
ldconfig -p | grep -q 'libGL.so.1 ' || missing+=(libgl1 libgl1-mesa-dri)
ldconfig -p | grep -q 'libEGL.so.1 ' || missing+=(libegl1)
ldconfig -p | grep -q 'libmtdev.so.1 ' || missing+=(libmtdev1)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
# Read-aloud: espeak-ng speaks, alsa-utils' aplay plays it.
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v aplay >/dev/null 2>&1 || missing+=(alsa-utils)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
