#!/usr/bin/env bash
# Installs the kiosk on a Raspberry Pi 4 or 5 running Raspberry Pi OS Bookworm
# Lite (64-bit), or with --hub the clinic hub (on the clinic's server, or on
# the same Pi for a one-kiosk clinic). Run from a clone of the repository:
#
#   sudo deploy/install.sh                 # the kiosk; asks for the staff PIN
#   sudo deploy/install.sh --hub           # the clinic hub
#   deploy/install.sh --dry-run            # print every step, change nothing
#   sudo deploy/install.sh --readonly-root /srv/clinic-data
#                                          # power-cut safe: read-only root,
#                                          # data on that writable partition
#   sudo deploy/install.sh --writable-root # overlay off again (for updates)
#
# Safe to run again: what is already in place is kept (the app, the config,
# the PIN); use deploy/update.sh for a new version. The staff PIN is read from
# standard input when that is not a terminal (one line of 4 to 12 digits).
# --root DIR installs into a fake root (tests, SD card images): no apt-get,
# no running services touched.
set -euo pipefail
PROG="install.sh"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$here/lib.sh"
src="$(cd "$here/.." && pwd)"

mode=kiosk
overlay=""
data_mount=""
while [ $# -gt 0 ]; do
    case "$1" in
        --hub) mode=hub ;;
        --dry-run) DRY_RUN=1 ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; set_root "$2"; shift ;;
        --readonly-root) [ $# -ge 2 ] || die "--readonly-root needs the writable data partition's mount point"
            overlay=on data_mount="$2"; shift ;;
        --writable-root) overlay=off ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[ "$DRY_RUN" = 1 ] || [ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

# Kivy's SDL2 window on KMS/DRM (no desktop): Mesa's GL/EGL/GBM, touch
# through mtdev and udev; lgpio drives the GPIO on a Pi 5. Read-aloud speaks
# with espeak-ng (its English and Spanish voices come with it) through
# alsa-utils' aplay.
KIOSK_PACKAGES=(python3-venv python3-lgpio libgl1 libgl1-mesa-dri libegl1 libgles2 libgbm1 libdrm2
    libmtdev1 libudev1 fonts-dejavu-core espeak-ng alsa-utils)
HUB_PACKAGES=(python3-venv)

packages() {
    if [ -n "$ROOT" ]; then
        say "packages: left out under --root (${*})"
        return
    fi
    step apt-get update -qq
    step env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@"
}

systemd_enable() {
    if [ -z "$ROOT" ]; then
        step systemctl daemon-reload
    fi
    step systemctl "${ROOT_OPT[@]}" enable "$1"
}

install_unit() {
    step install -D -m 0644 -o root -g root "$src/deploy/$1" "$ROOT/etc/systemd/system/$1"
    systemd_enable "$1"
}

# install_app APP EXTRA SELFTEST: the first release, unless one is there.
install_app() {
    local running
    FRESH=0
    if running="$(release_of "$1" current)"; then
        say "$1: ${running##*/} already installed (deploy/update.sh installs a newer one)"
        return
    fi
    make_dir "$1" 0755 root
    make_dir "$1/releases" 0755 root
    if ! new_release "$1" "$src" "$2"; then
        step rm -rf "$ROOT$RELEASE"
        die "installing into $ROOT$RELEASE failed (see the output above); nothing was switched on"
    fi
    point "$1" current "$RELEASE"
    FRESH=1
}

# on_path TOOL...: /usr/local/bin/TOOL runs the current release's TOOL.
on_path() {
    local tool
    step mkdir -p "$ROOT/usr/local/bin"
    for tool in "$@"; do
        step ln -sfn "$app/current/venv/bin/$tool" "$ROOT/usr/local/bin/$tool"
    done
}

# cmdline_option OPTION: adds OPTION to the kernel command line once.
cmdline_option() {
    local f
    for f in "$ROOT/boot/firmware/cmdline.txt" "$ROOT/boot/cmdline.txt"; do
        [ -f "$f" ] || continue
        if grep -qw -- "$1" "$f"; then
            say "$f: $1 already set"
        else
            step sed -i "1s/\$/ $1/" "$f"
        fi
        return
    done
    say "no /boot/firmware/cmdline.txt (not a Raspberry Pi): $1 left out"
}

raspi_config() {
    if [ -n "$ROOT" ]; then
        say "raspi-config nonint $*: left out under --root"
    elif command -v raspi-config >/dev/null; then
        step raspi-config nonint "$@"
    else
        die "raspi-config not found: the read-only root overlay needs Raspberry Pi OS"
    fi
}

# fstab_bind FROM TO: a bind mount at boot, added once.
fstab_bind() {
    local line="$1 $2 none bind,nofail 0 0"
    if grep -qF -- "$line" "$ROOT/etc/fstab" 2>/dev/null; then
        say "/etc/fstab: $2 already bound"
    else
        say "+ echo '$line' >> $ROOT/etc/fstab"
        [ "$DRY_RUN" = 1 ] || printf '%s\n' "$line" >>"$ROOT/etc/fstab"
    fi
}

# move_data SUB DIR OWNER: DIR's contents onto the data partition (once),
# bound back over DIR at every boot.
move_data() {
    make_dir "$data_mount/$1" 0700 "$3"
    if [ -z "$(ls -A "$ROOT$2" 2>/dev/null)" ] || [ -n "$(ls -A "$ROOT$data_mount/$1" 2>/dev/null)" ]; then
        say "nothing in $2 to move to $data_mount/$1"
    else
        step cp -a "$ROOT$2/." "$ROOT$data_mount/$1/"
    fi
    fstab_bind "$data_mount/$1" "$2"
}

# The read-only root: everything written to / vanishes at reboot, so the
# kiosk's and the hub's data (database, keys) and the journal go to a
# partition of their own, bound over their usual places.
readonly_root() {
    if [ "$overlay" = off ]; then
        raspi_config do_overlayfs 1
        say "read-only root switched off at the next reboot: sudo reboot"
        return
    fi
    if [ -z "$ROOT" ] && ! mountpoint -q "$data_mount"; then
        die "$data_mount is not a mounted partition; the read-only root needs the data on one (deploy/README.md)"
    fi
    [ -d "$ROOT$data_mount" ] || die "$ROOT$data_mount: no such folder"
    if user_exists kiosk || [ "$mode" = kiosk ]; then
        move_data kiosk /var/lib/clinic-kiosk kiosk
    fi
    if user_exists clinic-hub || [ "$mode" = hub ]; then
        move_data hub /var/lib/clinic-hub clinic-hub
    fi
    step install -d -m 2755 "$ROOT$data_mount/journal"
    fstab_bind "$data_mount/journal" /var/log/journal
    raspi_config do_overlayfs 0
    say "read-only root switched on at the next reboot: sudo reboot"
}

# kiosk_config: /etc/clinic-kiosk/kiosk.toml from the template, with the
# staff PIN's hash; an existing file is kept as it is.
kiosk_config() {
    local conf="$ROOT/etc/clinic-kiosk/kiosk.toml" pin again line template
    if [ -f "$conf" ]; then
        say "$conf: kept"
        return
    fi
    if [ "$DRY_RUN" = 1 ]; then
        say "+ ask for the staff PIN; clinic-kiosk set-pin; write $conf from deploy/kiosk.template.toml (0640 root:kiosk)"
        return
    fi
    if [ -t 0 ]; then
        read -r -s -p "Staff PIN for the kiosk (4 to 12 digits): " pin
        echo
        read -r -s -p "The same PIN again: " again
        echo
        [ "$pin" = "$again" ] || die "the two PINs differ; nothing written"
    else
        read -r pin || die "no staff PIN on standard input"
    fi
    line="$(printf '%s\n' "$pin" | "$ROOT$app/current/venv/bin/clinic-kiosk" set-pin 2>"$LOG")" \
        || die "staff PIN refused: $(tail -n 1 "$LOG" | sed 's/^<stdin>:1: //')"
    template="$(<"$src/deploy/kiosk.template.toml")"
    say "+ write $conf (0640 root:kiosk, with the PIN's hash)"
    install -m 0640 -o 0 -g "$(ids kiosk | cut -d: -f2)" /dev/null "$conf"
    printf '%s\n' "${template/@STAFF_PIN_LINE@/"$line"}" >"$conf"
}

install_kiosk() {
    app=/opt/clinic-kiosk
    packages "${KIOSK_PACKAGES[@]}"
    add_system_user kiosk /var/lib/clinic-kiosk
    local g groups=()
    for g in gpio video input render audio; do
        if group_exists "$g" || { [ "$DRY_RUN" = 1 ] && [ -z "$ROOT" ]; }; then
            groups+=("$g")
        else
            say "group $g does not exist here (not a Raspberry Pi?): left out"
        fi
    done
    if [ ${#groups[@]} -gt 0 ]; then
        step usermod "${ROOT_OPT[@]}" --append --groups "$(IFS=,; echo "${groups[*]}")" kiosk
    fi
    make_dir /etc/clinic-kiosk 0755 root
    make_dir /var/lib/clinic-kiosk 0700 kiosk
    install_app "$app" kiosk
    on_path clinic-kiosk
    kiosk_config
    say "+ clinic-kiosk validate --config $ROOT/etc/clinic-kiosk/kiosk.toml"
    if [ "$DRY_RUN" = 0 ]; then
        "$ROOT$app/current/venv/bin/clinic-kiosk" validate --config "$ROOT/etc/clinic-kiosk/kiosk.toml" \
            || die "$ROOT/etc/clinic-kiosk/kiosk.toml has the problems above; fix them and run install.sh again"
    fi
    # A first install, or one that stopped before enabling the service.
    if [ "$FRESH" = 1 ] || [ ! -f "$ROOT/etc/systemd/system/clinic-kiosk.service" ]; then
        kiosk_selftest "$app/current" || die "self-test failed: $(tail -n 1 "$LOG")"
    fi
    install_unit clinic-kiosk.service
    # The kiosk owns the display: no login prompt on it, no blanking.
    step systemctl "${ROOT_OPT[@]}" mask getty@tty1.service
    cmdline_option consoleblank=0
    if [ -z "$ROOT" ]; then
        step systemctl restart clinic-kiosk.service
    fi
    say "kiosk installed. Next: pair it with the hub (deploy/README.md, \"Pairing with the hub\")."
}

install_hub() {
    app=/opt/clinic-hub
    packages "${HUB_PACKAGES[@]}"
    add_system_user clinic-hub /var/lib/clinic-hub
    make_dir /var/lib/clinic-hub 0700 clinic-hub
    install_app "$app" hub
    on_path clinic-hub
    if [ -f "$ROOT/var/lib/clinic-hub/clinic.key" ]; then
        say "$ROOT/var/lib/clinic-hub: hub already initialised, kept"
    else
        # Prints the first admin's password once: note it down.
        step "$ROOT$app/current/venv/bin/clinic-hub" init --data "$ROOT/var/lib/clinic-hub" </dev/null
        if [ "$DRY_RUN" = 0 ]; then
            chown -R "$(ids clinic-hub)" "$ROOT/var/lib/clinic-hub"
        fi
    fi
    # A first install, or one that stopped before enabling the service.
    if [ "$FRESH" = 1 ] || [ ! -f "$ROOT/etc/systemd/system/clinic-hub.service" ]; then
        hub_selftest "$app/current" || die "self-test failed: $(tail -n 1 "$LOG")"
    fi
    install_unit clinic-hub.service
    if [ -z "$ROOT" ]; then
        step systemctl restart clinic-hub.service
    fi
    say "hub installed on port 8443. Next: back it up (deploy/README.md, \"Hub backups\")."
}

if [ "$DRY_RUN" = 1 ]; then
    trap 'rm -f "$LOG"; say "(dry run: nothing was changed)"' EXIT
fi
if [ "$overlay" = off ]; then
    readonly_root
    exit 0
fi
if [ "$mode" = hub ]; then
    install_hub
else
    install_kiosk
fi
if [ "$overlay" = on ]; then
    readonly_root
fi
