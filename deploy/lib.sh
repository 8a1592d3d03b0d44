# shellcheck shell=bash
# Shared by install.sh and update.sh (sourced, not run): printed steps for
# --dry-run, the fake root of --root, and side-by-side releases.
#
# An app lives in APP (/opt/clinic-kiosk or /opt/clinic-hub) as
#   APP/releases/ID/        a copy of the source tree
#   APP/releases/ID/venv/   its own virtual environment
#   APP/current -> releases/ID     what the systemd unit runs
#   APP/previous -> releases/ID    what update.sh --rollback goes back to
# so an update is built and tested beside the running version, and switching
# (or switching back) is one atomic rename of a symlink.

DRY_RUN=0
ROOT=""
ROOT_OPT=()
# The Python that builds the virtual environments; the tests point it at a
# stand-in that lays out a fake venv.
PYTHON="${PYTHON:-python3}"

say() { printf '%s\n' "$*"; }

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

# step CMD ARGS...: prints the command, then runs it unless --dry-run.
step() {
    local arg
    printf '+'
    for arg in "$@"; do
        # Plain words as they are, anything else quoted so it can be pasted.
        if [[ "$arg" =~ ^[][A-Za-z0-9_@%+=:,./-]+$ ]]; then
            printf ' %s' "$arg"
        else
            printf ' %q' "$arg"
        fi
    done
    printf '\n'
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    fi
}

# set_root DIR: every path below lives under DIR (a fake root for tests or
# an SD card image); tools that touch the running system are left out.
set_root() {
    ROOT="$(cd "$1" 2>/dev/null && pwd)" || die "$1: --root folder does not exist"
    ROOT_OPT=(--root "$ROOT")
}

user_exists() { grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null; }
group_exists() { grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; }

# ids USER: "uid:gid" of USER in the (fake) root, for chown by number.
ids() {
    awk -F: -v u="$1" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd"
}

# add_system_user NAME HOME: an unprivileged user with no shell and no
# password, and a group of the same name.
add_system_user() {
    if user_exists "$1" || { [ "$DRY_RUN" = 0 ] && id "$1" >/dev/null 2>&1 && [ -z "$ROOT" ]; }; then
        say "user $1 exists"
        return
    fi
    step useradd "${ROOT_OPT[@]}" --system --user-group --no-create-home --home-dir "$2" \
        --shell /usr/sbin/nologin "$1"
}

# make_dir PATH MODE OWNER: a folder with exactly this mode and owner (by
# number from the (fake) root's passwd, so --root works for users the host
# does not have).
make_dir() {
    say "+ install -d -m $2 -o $3 -g $3 $ROOT$1"
    if [ "$DRY_RUN" = 0 ]; then
        install -d -m "$2" "$ROOT$1"
        chown "$(ids "$3")" "$ROOT$1"
    fi
}

# copy_source SRC DEST: the source tree without version control, virtual
# environments or local state.
copy_source() {
    step mkdir -p "$2" || return 1
    say "+ tar -C $1 -c . | tar -C $2 -x   (without .git, .venv, venv, var, build)"
    if [ "$DRY_RUN" = 0 ]; then
        tar -C "$1" --exclude=./.git --exclude=./.venv --exclude=./venv --exclude=./var \
            --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$2" -xf -
    fi
}

# new_release APP SRC EXTRA: builds APP/releases/ID from SRC with a venv
# holding SRC[EXTRA]; sets RELEASE to its path.
new_release() {
    local app="$1" src="$2" extra="$3" id
    id="$(date -u +%Y%m%d-%H%M%S)"
    if git -C "$src" rev-parse --short HEAD >/dev/null 2>&1; then
        id="$id-$(git -C "$src" rev-parse --short HEAD)"
    fi
    while [ -e "$ROOT$app/releases/$id" ]; do id="$id+"; done
    RELEASE="$app/releases/$id"
    copy_source "$src" "$ROOT$RELEASE" || return 1
    # --system-site-packages lets gpiozero find Debian's python3-lgpio (Pi 5).
    step "$PYTHON" -m venv --system-site-packages "$ROOT$RELEASE/venv" || return 1
    # Editable: the code stays in the release folder next to the media and
    # content it finds relative to itself; the folder never changes later.
    step "$ROOT$RELEASE/venv/bin/pip" install --quiet --disable-pip-version-check \
        --editable "$ROOT${RELEASE}[$extra]" || return 1
    # The services cannot write next to the code (it belongs to root, and
    # the root may be read-only): compile it now, or every start compiles
    # the project again before the first frame. A file that does not compile
    # is left to the self-test, which refuses the release and names it.
    step "$ROOT$RELEASE/venv/bin/python" -m compileall -q "$ROOT$RELEASE/kiosk" "$ROOT$RELEASE/screens" || true
    if [ "$extra" = kiosk ]; then
        step "$ROOT$RELEASE/venv/bin/python" -m kiosk.media_gen --out "$ROOT$RELEASE/media/generated" || return 1
    fi
}

release_of() {
    local link="$ROOT$1/$2"
    [ -L "$link" ] && printf '%s/%s\n' "$1" "$(readlink "$link")"
}

# point APP NAME RELEASE: makes APP/NAME a symlink to RELEASE, atomically.
point() {
    local rel="${3#"$1"/}"
    step ln -sfn "$rel" "$ROOT$1/$2.new"
    step mv -T "$ROOT$1/$2.new" "$ROOT$1/$2"
}

# prune APP: removes releases that are neither current nor previous.
prune() {
    local keep_current keep_previous dir
    keep_current="$(release_of "$1" current || true)"
    keep_previous="$(release_of "$1" previous || true)"
    for dir in "$ROOT$1"/releases/*; do
        [ -d "$dir" ] || continue
        case "${dir#"$ROOT"}" in
            "$keep_current" | "$keep_previous") ;;
            *) step rm -rf "$dir" ;;
        esac
    done
}

# kiosk_selftest RELEASE: the replay self-test of a release, off screen, in a
# throwaway data folder, as the kiosk user; its output goes to LOG.
kiosk_selftest() {
    local release="$ROOT$1" scratch as=()
    if [ "$DRY_RUN" = 1 ]; then
        say "+ $release/venv/bin/clinic-kiosk replay $release/tests/data/selftest.json (off screen, throwaway data)"
        return 0
    fi
    scratch="$(mktemp -d)"
    if [ -z "$ROOT" ] && [ "$(id -u)" = 0 ]; then
        chown kiosk:kiosk "$scratch"
        as=(runuser -u kiosk --)
    fi
    say "+ $release/venv/bin/clinic-kiosk replay tests/data/selftest.json (off screen, throwaway data)"
    if (cd "$scratch" && "${as[@]}" env SDL_VIDEODRIVER=offscreen KIVY_HOME="$scratch/kivy" \
        KIVY_NO_ARGS=1 GPIOZERO_PIN_FACTORY=mock \
        "$release/venv/bin/clinic-kiosk" replay "$release/tests/data/selftest.json" \
        --config "$ROOT/etc/clinic-kiosk/kiosk.toml" --data "$scratch/data") >"$LOG" 2>&1; then
        rm -rf "$scratch"
        return 0
    fi
    rm -rf "$scratch"
    return 1
}

# hub_selftest RELEASE: the hub's code loads and its command runs.
hub_selftest() {
    local release="$ROOT$1"
    say "+ $release/venv/bin/clinic-hub --help"
    [ "$DRY_RUN" = 1 ] || "$release/venv/bin/clinic-hub" --help >"$LOG" 2>&1
}

# wait_active UNIT: true once UNIT is active (a Type=notify kiosk is active
# only after it has drawn its first screen), false after two minutes.
wait_active() {
    local i
    for i in $(seq 1 120); do
        if systemctl is-active --quiet "$1"; then
            return 0
        fi
        if systemctl is-failed --quiet "$1" && [ "$i" -gt 5 ]; then
            return 1
        fi
        sleep 1
    done
    return 1
}
