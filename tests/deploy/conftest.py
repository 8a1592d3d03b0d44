"""Fixtures for the deployment checks: the tools they need, found or a
clear failure under CI, and the hub fixtures shared with tests/hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub.conftest import db_url, pg_cluster, sqlite_url  # noqa: F401  (fixtures)


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; under CI a missing tool fails the test (a check
    that silently does not run is worse than none), elsewhere it skips."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install it with `apt-get install {package}` (tests/system-deps.sh does)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


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


def copy_clone(dest: Path) -> Path:
    """A copy of the repository, as an installer runs from a clone."""
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    return dest


@pytest.fixture
def clone(tmp_path) -> Path:
    return copy_clone(tmp_path / "clone")


def make_fake_root(root: Path) -> Path:
    """A Raspberry Pi OS root in miniature: the account files with the Pi's
    device groups, the kernel command line and fstab."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/group").write_text(
        "root:x:0:\nvideo:x:44:\ninput:x:105:\nrender:x:106:\ngpio:x:993:\nsystemd-journal:x:101:\n")
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
