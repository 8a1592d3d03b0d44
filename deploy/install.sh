#!/usr/bin/env bash
# Installs the kiosk on a Raspberry Pi 4 or 5 running Raspberry Pi OS Bookworm
# (Lite is enough). Run from a clone of the repository:  sudo deploy/install.sh
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "please run with sudo"; exit 1; }
src="$(cd "$(dirname "$0")/.." && pwd)"
apt-get update -qq
apt-get install -y -qq python3-venv python3-lgpio libgl1 libgl1-mesa-dri libegl1 libmtdev1 fonts-dejavu-core
id kiosk >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/clinic-kiosk --shell /usr/sbin/nologin kiosk
usermod -aG video,render,input,gpio kiosk 2>/dev/null || true
mkdir -p /opt/clinic-kiosk /etc/clinic-kiosk /var/lib/clinic-kiosk
rsync -a --delete --exclude .venv --exclude .git "$src/" /opt/clinic-kiosk/
# --system-site-packages lets gpiozero find Debian's python3-lgpio (Pi 5)
python3 -m venv --system-site-packages /opt/clinic-kiosk/.venv
/opt/clinic-kiosk/.venv/bin/pip install --quiet /opt/clinic-kiosk
[ -f /etc/clinic-kiosk/kiosk.toml ] || cp /opt/clinic-kiosk/deploy/kiosk.toml /etc/clinic-kiosk/kiosk.toml
chown -R kiosk:kiosk /var/lib/clinic-kiosk
chmod 700 /var/lib/clinic-kiosk
/opt/clinic-kiosk/.venv/bin/python -m kiosk.media_gen --out /opt/clinic-kiosk/media/generated || true
/opt/clinic-kiosk/.venv/bin/clinic-kiosk validate --config /etc/clinic-kiosk/kiosk.toml
cp /opt/clinic-kiosk/deploy/clinic-kiosk.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now clinic-kiosk
echo "Installed. Edit /etc/clinic-kiosk/kiosk.toml, then: sudo systemctl restart clinic-kiosk"
