"""deploy/update.sh on a fake root: a new version is built beside the
running one and switched to only after its self-test passes; a failing
self-test or a failed install keeps the running version; --rollback goes
back; old releases are pruned."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.deploy.conftest import copy_clone, installed_copy, make_fake_python, run_script


@pytest.fixture(scope="module")
def installed(tmp_path_factory, kiosk_install) -> Path:
    """A fake root with the kiosk installed (a copy of the run's one fresh
    install: an install runs the real self-test, which takes a while),
    shared by the tests here; each test leaves it running the version it
    found."""
    base = tmp_path_factory.mktemp("installed")
    make_fake_python(base / "fake-python")
    return installed_copy(kiosk_install, base / "root")


@pytest.fixture
def fake_python(installed) -> Path:
    return installed.parent / "fake-python"


def current(root: Path) -> str:
    return str((root / "opt/clinic-kiosk/current").readlink())


def releases(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "opt/clinic-kiosk/releases").iterdir())


@pytest.fixture
def new_version(tmp_path, media):
    """``new_version(name, selftest_visit=None)``: see :func:`_new_version`."""
    return functools.partial(_new_version, tmp_path, media)


def _new_version(tmp_path: Path, media: Path, name: str, selftest_visit: dict | None = None) -> Path:
    """A newer checkout (its demo media already rendered, as after `make
    run`); ``selftest_visit`` replaces its self-test visit."""
    src = copy_clone(tmp_path / name, media=media)
    (src / "VERSION-MARK").write_text(name)
    if selftest_visit is not None:
        (src / "tests/data/selftest.json").write_text(json.dumps(selftest_visit))
    return src


def test_update_switches_after_the_self_test_and_rollback_goes_back(installed, tmp_path, fake_python, new_version):
    first = current(installed)
    src = new_version("v2")
    result = run_script(src / "deploy/update.sh", "--root", str(installed), str(src), python=fake_python)
    assert result.returncode == 0, result.stdout + result.stderr
    second = current(installed)
    assert second != first
    assert (installed / "opt/clinic-kiosk/current/VERSION-MARK").read_text() == "v2"
    assert str((installed / "opt/clinic-kiosk/previous").readlink()) == first
    assert "clinic-kiosk replay" in result.stdout and result.stdout.strip().splitlines()[-1].startswith(
        "updated to ")

    back = run_script(src / "deploy/update.sh", "--rollback", "--root", str(installed), python=fake_python)
    assert back.returncode == 0, back.stderr
    assert current(installed) == first
    assert str((installed / "opt/clinic-kiosk/previous").readlink()) == second


def test_a_failing_self_test_keeps_the_running_version(installed, tmp_path, fake_python, new_version):
    first = current(installed)
    before = releases(installed)
    # The new version's self-test visit lacks required answers, so replay fails.
    src = new_version("broken", selftest_visit={"language": "en", "answers": {}})
    result = run_script(src / "deploy/update.sh", "--root", str(installed), str(src), python=fake_python)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("update.sh: self-test of ") and line.endswith(f"still running {first.split('/')[-1]}")
    assert "selftest.json" in line  # the self-test's own one-line reason
    assert current(installed) == first
    assert releases(installed) == before  # the broken build is removed
    assert not (installed / "opt/clinic-kiosk/current/VERSION-MARK").exists()


def test_a_failed_install_keeps_the_running_version(installed, tmp_path, fake_python, new_version):
    first = current(installed)
    before = releases(installed)
    src = new_version("no-wheels")
    (src / "PIP_FAILS").touch()
    result = run_script(src / "deploy/update.sh", "--root", str(installed), str(src), python=fake_python)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"update.sh: installing the new version failed; still running {first.split('/')[-1]}")
    assert current(installed) == first and releases(installed) == before


def test_dry_run_update_changes_nothing_and_nothing_installed_says_so(installed, tmp_path, fake_python, new_version):
    src = new_version("v2")
    before = releases(installed), current(installed)
    result = run_script(src / "deploy/update.sh", "--dry-run", "--root", str(installed), str(src), python=fake_python)
    assert result.returncode == 0, result.stderr
    assert "pip install" in result.stdout and "clinic-kiosk replay" in result.stdout
    assert (releases(installed), current(installed)) == before

    empty = tmp_path / "empty-root"
    empty.mkdir()
    result = run_script(src / "deploy/update.sh", "--root", str(empty), python=fake_python)
    assert result.returncode == 1
    assert result.stderr.strip() == f"update.sh: {empty}/opt/clinic-kiosk/current: nothing installed yet; " \
        "run deploy/install.sh first"


def test_hub_update_whose_code_does_not_load_keeps_the_running_hub(tmp_path, fake_root, fake_python, clone, new_version):
    result = run_script(clone / "deploy/install.sh", "--hub", "--root", str(fake_root), python=fake_python)
    assert result.returncode == 0, result.stdout + result.stderr
    link = fake_root / "opt/clinic-hub/current"
    first = str(link.readlink())
    src = new_version("hub-broken")
    with (src / "kiosk/hub/cli.py").open("a") as fh:
        fh.write("\ndef broken(:\n")
    result = run_script(src / "deploy/update.sh", "--hub", "--root", str(fake_root), str(src), python=fake_python)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("update.sh: self-test of ") and "SyntaxError" in line, line
    assert str(link.readlink()) == first

    good = new_version("hub-v2")
    result = run_script(good / "deploy/update.sh", "--hub", "--root", str(fake_root), str(good), python=fake_python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (link / "VERSION-MARK").read_text() == "hub-v2"
    # The hub's data is untouched by an update.
    assert (fake_root / "var/lib/clinic-hub/clinic.key").exists()
