"""Fixtures for the deployment checks: the tools they need, found or a
clear failure under CI, and the hub fixtures shared with tests/hub."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub.conftest import db_url, pg_cluster, sqlite_url  # noqa: F401  (fixtures)
from tests.tools import require_tool  # noqa: F401  (used by the deploy tests)


REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Stands in for `python3 -m venv DIR`: lays out DIR/bin with a pip that
# "installs" by recording what it was given (or fails when the source tree
# holds PIP_FAILS), and python, clinic-kiosk and clinic-hub that run the
# release's own code (PYTHONPATH) with the test environment's libraries. Building real venvs would mean
# downloading Kivy on every test run.
FAKE_PYTHON = """#!/bin/sh
set -e
[ "$1 $2" = "-m venv" ] || { echo "fake python: only -m venv" >&2; exit 2; }
for last in "$@"; do :; done
mkdir -p "$last/bin"
cat > "$last/bin/pip" <<PIP
#!/bin/sh
for spec in "\\$@"; do :; done
src="\\${spec%%\\\\[*}"
[ ! -e "\\$src/PIP_FAILS" ] || { echo "ERROR: No matching distribution found for kivy" >&2; exit 1; }
echo "\\$spec" > "$last/installed"
PIP
for tool in clinic-kiosk clinic-hub python; do
    printf '#!/bin/sh\\nPYTHONPATH=%s exec %s "$@"\\n' "$(dirname "$last")" "{bin}/$tool" > "$last/bin/$tool"
done
chmod +x "$last/bin/"*
"""


def make_fake_python(path: Path) -> Path:
    path.write_text(FAKE_PYTHON.replace("{bin}", str(VENV_BIN)))
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_python(tmp_path) -> Path:
    return make_fake_python(tmp_path / "fake-python")


_IGNORED = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".pytest_cache")


def _ignore(folder: str, names: list[str]) -> set[str]:
    # media/generated too: whether the clone has run `make run` must not
    # decide what a test exercises (see ``media``).
    ignored = _IGNORED(folder, names)
    if Path(folder) == REPO / "media":
        ignored.add("generated")
    return ignored


def copy_clone(dest: Path, media: Path | None = None) -> Path:
    """A copy of the repository, as an installer runs from a clone: a fresh
    one (the installer renders the demo media), or with ``media`` (a
    media/generated folder) one where that was done before, as after `make
    run`, so the installer's media step finds everything up to date."""
    shutil.copytree(REPO, dest, ignore=_ignore)
    if media is not None:
        shutil.copytree(media, dest / "media/generated")
    return dest


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name``, made by ``build(folder)`` once per test run: the
    first test (on any xdist worker) that asks builds it, the others wait
    for it and reuse it. Users must not change it (copy it first)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all the workers of this run
    folder = base / f"shared-{name}"
    with _locked(base / f"shared-{name}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    """The demo media rendered once for the run (`python -m kiosk.media_gen`,
    as the installer runs it), for clones that already have it."""
    def build(folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "kiosk.media_gen", "--out", str(folder / "generated")],
                       check=True, capture_output=True, cwd=REPO, timeout=300)

    return built_once(tmp_path_factory, "media", build) / "generated"


@pytest.fixture
def clone(tmp_path, media) -> Path:
    """A clone whose demo media is already rendered (the installer's media
    step on a fresh clone is checked by ``kiosk_install``)."""
    return copy_clone(tmp_path / "clone", media=media)


def make_fake_root(root: Path) -> Path:
    """A Raspberry Pi OS root in miniature: the account files with the Pi's
    device groups, the kernel command line and fstab."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/group").write_text(
        "root:x:0:\nvideo:x:44:\ninput:x:105:\nrender:x:106:\ngpio:x:993:\naudio:x:29:\nsystemd-journal:x:101:\n")
    (root / "etc/gshadow").write_text("")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).chmod(0o640)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/nologin").write_text("#!/bin/sh\nexit 1\n")
    (root / "usr/sbin/nologin").chmod(0o755)
    (root / "etc/fstab").write_text("proc /proc proc defaults 0 0\n")
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n")
    return root


@pytest.fixture
def fake_root(tmp_path) -> Path:
    return make_fake_root(tmp_path / "root")


def run_script(script: Path, *args: str, python: Path | None = None, input: str = "",
               timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": os.environ.get("CI", "")}
    if python:
        env["PYTHON"] = str(python)
    return subprocess.run(["bash", str(script), *args], input=input, capture_output=True, text=True,
                          env=env, timeout=timeout)


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under ``root`` with its mode, owner, group and, for a
    symlink, its target."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid,
                                            os.readlink(path) if path.is_symlink() else "")
    return out


@pytest.fixture(scope="session")
def kiosk_install(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh clone's `install.sh --root` of the kiosk (staff PIN 1357),
    done once for the run: the first install renders the media and runs the
    real `validate` and replay self-test, which is what takes the time.
    Returns the fake root (read it, never change it: ``installed_copy``
    gives a root to change) and the install's returncode, stdout, stderr."""
    def build(folder: Path) -> None:
        root = make_fake_root(folder / "root")
        python = make_fake_python(folder / "fake-python")
        clone = copy_clone(folder / "clone")
        result = run_script(clone / "deploy/install.sh", "--root", str(root), python=python, input="1357\n")
        (folder / "result.json").write_text(json.dumps(
            {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}))

    folder = built_once(tmp_path_factory, "kiosk-install", build)
    return folder / "root", json.loads((folder / "result.json").read_text())


def installed_copy(kiosk_install: tuple[Path, dict], dest: Path) -> Path:
    """A fake root of its own with the kiosk installed: a copy of the shared
    install with every mode and owner (``cp -a``), whose stand-in venvs
    point at the copy's own releases."""
    root, result = kiosk_install
    assert result["returncode"] == 0, result["stdout"] + result["stderr"]
    subprocess.run(["cp", "-a", str(root), str(dest)], check=True)
    for venv in dest.glob("opt/*/releases/*/venv"):
        for path in [*venv.glob("bin/*"), venv / "installed"]:
            if path.is_file() and not path.is_symlink():
                path.write_text(path.read_text().replace(str(root), str(dest)))
    return dest
