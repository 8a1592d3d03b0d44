"""The device's console commands as a clinic runs them, in their own processes."""

import json
import subprocess
import sys

from .conftest import negative_visit

EXE = [sys.executable, "-m", "kiosk.cli"]


def run(*args, **kw):
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def test_replay_of_an_emergency_visit_before_enrollment(tmp_path):
    visit = negative_visit(**{"given-name": "Olga", "rf-saddle": True})
    path = tmp_path / "visit.json"
    path.write_text(json.dumps(visit))
    shots = tmp_path / "shots"
    r = run("--data", tmp_path / "data", "replay", path, "--screenshots", shots)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not enrolled" in r.stderr and "throwaway key" in r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["tier"] == "emergency" and out["codes"] == ["rf-saddle"]
    pngs = sorted(p.name for p in shots.glob("*.png"))
    assert out["screens"] == len(pngs)
    assert pngs[-1].endswith("emergency.png")
    assert b"Olga" not in (tmp_path / "data" / "kiosk.db").read_bytes()
    assert "Olga" not in r.stderr  # no patient data in the log


def test_replay_missing_required_answer_exits_2_before_any_window(tmp_path):
    path = tmp_path / "visit.json"
    path.write_text(json.dumps({"language": "es", "answers": {"dob": "1950-01-01"}}))
    r = run("--data", tmp_path / "data", "replay", path)
    assert r.returncode == 2
    assert "given-name: required answer is missing" in r.stderr
    assert not (tmp_path / "data" / "kiosk.db").exists()


def test_status_reports_the_contract_keys(tmp_path):
    r = run("--data", tmp_path / "data", "status")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    for key in ("queue_depth", "oldest_unsynced_s", "last_sync", "hub_reachable", "gpio", "content_version"):
        assert key in status
    assert status["content_version"] == "default@1.0.0"


def test_validate_bad_config_lines(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[kiosk]\nidle_timeout_s = \"soon\"\n")
    r = run("validate", cfg)
    assert r.returncode == 1
    assert r.stdout.strip() == f"{cfg}:kiosk.idle_timeout_s: expected a whole number, got 'soon'"


def test_every_command_takes_config_and_data_after_its_name(tmp_path):
    from click import Context

    from kiosk.cli import cli

    names = cli.list_commands(Context(cli))
    assert {"run", "replay", "enroll", "sync", "export", "gpio-test", "status", "validate", "set-pin"} <= set(names)
    for name in names:
        r = run(name, "--help")
        assert r.returncode == 0, (name, r.stderr)
        assert "--config FILE" in r.stdout and "--data DIRECTORY" in r.stdout, name


def test_data_after_the_command_name_is_where_the_command_looks(tmp_path):
    data = tmp_path / "kiosk-data"
    # export reads the database of --data: there is none there yet
    from kiosk.crypto import encode_key, generate_keypair

    key = tmp_path / "clinic.key"
    key.write_text(encode_key(generate_keypair()[0]))
    r = run("export", "--key", key, "--data", data)
    assert r.returncode == 1 and f"{data / 'kiosk.db'}: no kiosk database here" in r.stderr
    assert "Traceback" not in r.stderr
    # sync --once before enrollment names what to run, for this data folder
    r = run("sync", "--once", "--data", data)
    assert r.returncode == 1 and "clinic-kiosk enroll" in r.stderr and "Traceback" not in r.stderr
    # after the name wins over before it
    r = run("--data", tmp_path / "elsewhere", "status", "--data", data)
    assert r.returncode == 0 and (data / "kiosk.db").exists() and not (tmp_path / "elsewhere").exists()


def test_config_after_the_command_name_is_read(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[gpio]\ncall_button_pin = 99\n")
    for args in (("gpio-test", "--timeout", "0"), ("enroll", "https://127.0.0.1:9", "CODE")):
        r = run(*args, "--config", cfg)
        assert r.returncode == 1, args
        assert r.stderr.strip() == f"{cfg}:gpio.call_button_pin: 99 is not a BCM GPIO number (0 to 27)"


def test_help_imports_no_command_module():
    code = ("import sys\nfrom kiosk.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('httpx', 'gpiozero', 'kivy', 'pydantic', 'cryptography', 'kiosk.sync', "
            "'kiosk.hardware', 'kiosk.questionnaire') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert "gpio-test" in r.stdout and "Checks the wiring" in r.stdout
