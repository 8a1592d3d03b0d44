"""The deployment files pass the tools that check them: shellcheck on every
script, `systemd-analyze verify` on every unit, and the units' exposure as
`systemd-analyze security --offline` rates it (printed; the hub's kept "OK")."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
UNITS = sorted(DEPLOY.glob("*.service"))
# systemd's bands, best first; "OK" and better is what the hub must reach.
BANDS = ["SAFE", "OK", "MEDIUM", "EXPOSED", "UNSAFE"]


def test_every_deploy_script_passes_shellcheck():
    shellcheck = require_tool("shellcheck", "shellcheck")
    assert len(SCRIPTS) >= 4, SCRIPTS
    result = subprocess.run([shellcheck, "--external-sources", "--severity=style", *map(str, SCRIPTS)],
                            cwd=DEPLOY.parent, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def verify(unit: Path, root: Path) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` on ``unit`` inside ``root``: a root holding
    the programs the unit starts, so that verify checks them for real
    instead of complaining that this machine lacks /opt/clinic-*."""
    analyze = require_tool("systemd-analyze", "systemd")
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            program = root / line.split("=", 1)[1].split()[0].lstrip("/")
            program.parent.mkdir(parents=True, exist_ok=True)
            program.write_text("#!/bin/sh\n")
            program.chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    shutil.copy(unit, units / unit.name)
    return subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", "--recursive-errors=no", f"--root={root}",
         str(units / unit.name)],
        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit, tmp_path):
    result = verify(unit, tmp_path / "root")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt option and an unknown system
    call group are reported."""
    broken = tmp_path / "clinic-broken.service"
    text = (DEPLOY / "clinic-hub.service").read_text()
    broken.write_text(text.replace("Restart=always", "Restrt=always")
                      .replace("SystemCallFilter=@system-service", "SystemCallFilter=@sytem-service"))
    result = verify(broken, tmp_path / "root")
    assert "Restrt" in result.stderr
    assert result.returncode != 0


def exposure(unit: Path) -> tuple[float, str]:
    analyze = require_tool("systemd-analyze", "systemd")
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    return float(match.group(1)), match.group(2)


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_exposure(unit, capsys):
    level, band = exposure(unit)
    with capsys.disabled():
        print(f"\n{unit.name}: systemd-analyze security exposure {level} {band}")
    assert band in BANDS
    if unit.name == "clinic-hub.service":
        assert BANDS.index(band) <= BANDS.index("OK"), (level, band)


def test_kiosk_unit_is_watched_and_reaches_only_its_devices():
    """What the kiosk's unit must say for the watchdog and the hardware: a
    hardened unit that hid the display or the GPIO would be 'secure' and useless."""
    text = (DEPLOY / "clinic-kiosk.service").read_text()
    settings = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    values: dict[str, list[str]] = {}
    for key, value in settings:
        values.setdefault(key, []).append(value)
    assert values["Type"] == ["notify"]
    assert int(values["WatchdogSec"][0]) > 0
    assert values["Restart"] == ["always"] and "StartLimitBurst" in values
    assert values["DevicePolicy"] == ["closed"]
    allowed = " ".join(values["DeviceAllow"])
    for device in ("char-drm", "char-input", "char-gpiochip", "/dev/gpiomem", "char-alsa"):
        assert device in allowed
    assert set(values["SupplementaryGroups"][0].split()) == {"video", "render", "input", "gpio", "audio"}
    assert values["ReadWritePaths"] == ["/var/lib/clinic-kiosk"]


def test_a_missing_tool_fails_under_ci_and_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CLINIC_KIOSK_REQUIRE_TOOLS", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"shellcheck not found: install it with `apt-get install shellcheck`"):
        require_tool("shellcheck", "shellcheck")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        require_tool("shellcheck", "shellcheck")
