"""deploy/install.sh against a fake root: the files, modes and owners a
kiosk (or a hub) needs; a dry run that prints every step and changes
nothing; safe to run twice; a bad PIN refused in one line."""

from __future__ import annotations

import stat
from pathlib import Path

from kiosk.staff import verify_pin
from tests.deploy.conftest import installed_copy, run_script, snapshot


def passwd(root: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}


def groups_of(root: Path, user: str) -> set[str]:
    out = set()
    for line in (root / "etc/group").read_text().splitlines():
        name, _, _, members = line.split(":")
        if user in members.split(","):
            out.add(name)
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_dry_run_prints_every_step_and_changes_nothing(clone, fake_root, fake_python):
    before = snapshot(fake_root)
    result = run_script(clone / "deploy/install.sh", "--dry-run", "--root", str(fake_root), python=fake_python)
    assert result.returncode == 0, result.stderr
    assert snapshot(fake_root) == before
    out = result.stdout
    for expected in ("useradd --root", "--shell /usr/sbin/nologin kiosk",
                     "usermod --root", "--groups gpio,video,input,render,audio kiosk",
                     "install -d -m 0700 -o kiosk -g kiosk", "/var/lib/clinic-kiosk",
                     "-m venv --system-site-packages", "pip install", "[kiosk]",
                     "ask for the staff PIN", "clinic-kiosk replay",
                     "enable clinic-kiosk.service", "mask getty@tty1.service", "consoleblank=0"):
        assert expected in out, expected


def test_dry_run_on_the_real_system_lists_the_packages_and_installs_nothing(clone, fake_python):
    result = run_script(clone / "deploy/install.sh", "--dry-run", python=fake_python)
    assert result.returncode == 0, result.stderr
    assert "apt-get install" in result.stdout and "libgbm1" in result.stdout and "python3-lgpio" in result.stdout
    assert "espeak-ng" in result.stdout and "alsa-utils" in result.stdout
    assert "systemctl restart clinic-kiosk.service" in result.stdout
    assert not Path("/opt/clinic-kiosk/current").exists() or "already installed" in result.stdout


def test_install_into_a_fake_root_then_again_changes_nothing(kiosk_install, clone, tmp_path, fake_python):
    # The fresh install (shared by the tests that need a kiosk installed).
    fake_root, result = kiosk_install
    assert result["returncode"] == 0, result["stdout"] + result["stderr"]

    kiosk = passwd(fake_root)["kiosk"]
    uid, gid = int(kiosk[2]), int(kiosk[3])
    assert uid != 0 and kiosk[5] == "/var/lib/clinic-kiosk" and kiosk[6] == "/usr/sbin/nologin"
    assert groups_of(fake_root, "kiosk") == {"gpio", "video", "input", "render", "audio"}

    data = fake_root / "var/lib/clinic-kiosk"
    assert (mode(data), data.stat().st_uid, data.stat().st_gid) == (0o700, uid, gid)

    conf = fake_root / "etc/clinic-kiosk/kiosk.toml"
    assert (mode(conf), conf.stat().st_uid, conf.stat().st_gid) == (0o640, 0, gid)
    text = conf.read_text()
    assert "1357" not in text
    [line] = [ln for ln in text.splitlines() if ln.startswith("staff_pin_hash")]
    assert verify_pin("1357", line.split('"')[1]) and not verify_pin("2468", line.split('"')[1])
    assert "[display]" in text  # the commented template, with its hints

    app = fake_root / "opt/clinic-kiosk"
    current = app / "current"
    assert current.is_symlink() and str(current.readlink()).startswith("releases/")
    assert (current / "venv/installed").read_text().strip().endswith("[kiosk]") and (current / "media/generated/swedish.mp4").exists()
    assert (current / "tests/data/selftest.json").exists() and not (current / ".git").exists()
    for path in (app, current.resolve(), current.resolve() / "kiosk"):
        assert path.stat().st_uid == 0 and not mode(path) & 0o022, path  # the kiosk cannot change its code

    assert str((fake_root / "usr/local/bin/clinic-kiosk").readlink()) == \
        "/opt/clinic-kiosk/current/venv/bin/clinic-kiosk"

    units = fake_root / "etc/systemd/system"
    assert (units / "clinic-kiosk.service").read_text() == (clone / "deploy/clinic-kiosk.service").read_text()
    assert mode(units / "clinic-kiosk.service") == 0o644
    assert (units / "multi-user.target.wants/clinic-kiosk.service").is_symlink()
    assert str((units / "getty@tty1.service").readlink()) == "/dev/null"
    cmdline = (fake_root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("consoleblank=0") == 1 and cmdline.count("\n") == 1

    # Again, on a copy of that root (the shared one stays as the install left it).
    fake_root = installed_copy(kiosk_install, tmp_path / "root")
    before = snapshot(fake_root)
    again = run_script(clone / "deploy/install.sh", "--root", str(fake_root), python=fake_python)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already installed" in again.stdout and "kiosk.toml: kept" in again.stdout
    assert snapshot(fake_root) == before


def test_a_bad_pin_is_refused_in_one_line_and_nothing_is_enabled(clone, fake_root, fake_python):
    result = run_script(clone / "deploy/install.sh", "--root", str(fake_root), python=fake_python, input="12ab\n")
    assert result.returncode == 1
    assert result.stderr.strip() == "install.sh: staff PIN refused: the PIN must be 4 to 12 digits"
    assert not (fake_root / "etc/clinic-kiosk/kiosk.toml").exists()
    assert not (fake_root / "etc/systemd/system/clinic-kiosk.service").exists()


def test_a_failed_package_install_keeps_nothing_half_done(clone, fake_root, fake_python):
    (clone / "PIP_FAILS").touch()
    result = run_script(clone / "deploy/install.sh", "--root", str(fake_root), python=fake_python, input="1357\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("install.sh: installing into ")
    assert not (fake_root / "opt/clinic-kiosk/current").exists()


def test_hub_install_into_a_fake_root(clone, fake_root, fake_python):
    result = run_script(clone / "deploy/install.sh", "--hub", "--root", str(fake_root), python=fake_python)
    assert result.returncode == 0, result.stdout + result.stderr
    hub = passwd(fake_root)["clinic-hub"]
    uid, gid = int(hub[2]), int(hub[3])
    assert uid != 0 and hub[6] == "/usr/sbin/nologin" and groups_of(fake_root, "clinic-hub") == set()
    data = fake_root / "var/lib/clinic-hub"
    assert (mode(data), data.stat().st_uid) == (0o700, uid)
    for name in ("clinic.key", "tls.key", "hub.db"):
        path = data / name
        assert (mode(path), path.stat().st_uid, path.stat().st_gid) == (0o600, uid, gid), name
    assert "password (shown once)" in result.stdout
    assert (fake_root / "opt/clinic-hub/current/venv/installed").read_text().strip().endswith("[hub]")
    assert (fake_root / "etc/systemd/system/multi-user.target.wants/clinic-hub.service").is_symlink()

    key = (data / "clinic.key").read_bytes()
    again = run_script(clone / "deploy/install.sh", "--hub", "--root", str(fake_root), python=fake_python)
    assert again.returncode == 0 and "already initialised, kept" in again.stdout
    assert (data / "clinic.key").read_bytes() == key


def test_read_only_root_puts_kiosk_and_hub_data_and_the_journal_on_the_data_partition(
        kiosk_install, clone, tmp_path, fake_python):
    fake_root = installed_copy(kiosk_install, tmp_path / "root")  # the kiosk installed
    (fake_root / "srv/clinic-data").mkdir(parents=True)
    assert run_script(clone / "deploy/install.sh", "--hub", "--root", str(fake_root),
                      python=fake_python).returncode == 0  # a one-kiosk clinic: the hub on the same Pi
    (fake_root / "var/lib/clinic-kiosk/kiosk.db").write_text("queued visits")
    for _ in range(2):
        result = run_script(clone / "deploy/install.sh", "--readonly-root", "/srv/clinic-data",
                            "--root", str(fake_root), python=fake_python)
        assert result.returncode == 0, result.stdout + result.stderr
    fstab = (fake_root / "etc/fstab").read_text().splitlines()
    assert fstab.count("/srv/clinic-data/kiosk /var/lib/clinic-kiosk none bind,nofail 0 0") == 1
    assert fstab.count("/srv/clinic-data/journal /var/log/journal none bind,nofail 0 0") == 1
    assert fstab.count("/srv/clinic-data/hub /var/lib/clinic-hub none bind,nofail 0 0") == 1
    assert (fake_root / "srv/clinic-data/hub/clinic.key").read_bytes() == \
        (fake_root / "var/lib/clinic-hub/clinic.key").read_bytes()
    moved = fake_root / "srv/clinic-data/kiosk"
    assert (moved / "kiosk.db").read_text() == "queued visits" and mode(moved) == 0o700
    assert "raspi-config nonint do_overlayfs 0" in result.stdout

    missing = run_script(clone / "deploy/install.sh", "--readonly-root", "/srv/nowhere",
                         "--root", str(fake_root), python=fake_python)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("/srv/nowhere: no such folder")
