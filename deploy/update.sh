#!/usr/bin/env bash
# Updates the kiosk (or, with --hub, the clinic hub) to the version in SRC
# (default: the clone this script is in), without ever leaving it broken:
#
#   1. builds the new version beside the running one, with its own venv;
#   2. runs the self-test (`clinic-kiosk replay` of tests/data/selftest.json,
#      off screen; for the hub, its command loads);
#   3. switches `current` to it and restarts the service;
#   4. when the self-test fails, keeps the running version and deletes the
#      new one; when the restarted service does not come up, switches back
#      to the previous version and restarts that.
#
#   sudo deploy/update.sh                 # from a fresh `git pull`
#   sudo deploy/update.sh --rollback      # back to the version before
#   deploy/update.sh --dry-run            # print every step, change nothing
#
# --root DIR works on a fake root (tests, SD card images) and restarts
# nothing. The read-only root overlay must be off while updating.
set -euo pipefail
PROG="update.sh"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$here/lib.sh"

mode=kiosk
rollback=0
restart=1
src="$(cd "$here/.." && pwd)"
while [ $# -gt 0 ]; do
    case "$1" in
        --hub) mode=hub ;;
        --rollback) rollback=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --no-restart) restart=0 ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; set_root "$2"; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) src="$(cd "$1" 2>/dev/null && pwd)" || die "$1: no such folder"; ;;
    esac
    shift
done
[ -n "$ROOT" ] && restart=0

if [ "$mode" = hub ]; then
    app=/opt/clinic-hub unit=clinic-hub.service extra=hub selftest=hub_selftest
else
    app=/opt/clinic-kiosk unit=clinic-kiosk.service extra=kiosk selftest=kiosk_selftest
fi

[ "$DRY_RUN" = 1 ] || [ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0"
if [ -z "$ROOT" ] && grep -qw 'boot=overlay' /proc/cmdline 2>/dev/null; then
    die "the root file system is read-only (overlay on), an update would vanish at reboot; \
turn it off first: sudo deploy/install.sh --writable-root && sudo reboot"
fi
running="$(release_of "$app" current)" || die "$ROOT$app/current: nothing installed yet; run deploy/install.sh first"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

restart_service() {
    [ "$restart" = 1 ] || return 0
    step systemctl restart "$unit"
    [ "$DRY_RUN" = 1 ] || wait_active "$unit"
}

if [ "$rollback" = 1 ]; then
    before="$(release_of "$app" previous)" || die "$ROOT$app/previous: no earlier version to go back to"
    point "$app" current "$before"
    point "$app" previous "$running"
    restart_service || die "$unit did not come up after the rollback either; see journalctl -u $unit"
    say "rolled back to ${before##*/}"
    exit 0
fi

say "building the new version beside ${running##*/}"
if ! new_release "$app" "$src" "$extra"; then
    step rm -rf "$ROOT$RELEASE"
    die "installing the new version failed; still running ${running##*/}"
fi
if ! "$selftest" "$RELEASE"; then
    line="$(grep -v '^\s*$' "$LOG" | tail -n 1 || true)"
    step rm -rf "$ROOT$RELEASE"
    die "self-test of ${RELEASE##*/} failed (${line:-no output}); still running ${running##*/}"
fi
point "$app" previous "$running"
point "$app" current "$RELEASE"
if ! restart_service; then
    point "$app" current "$running"
    restart_service || true
    die "$unit did not come up on ${RELEASE##*/}; switched back to ${running##*/} (journalctl -u $unit says why)"
fi
prune "$app"
say "updated to ${RELEASE##*/} (previous: ${running##*/}; sudo $0 --rollback goes back)"
