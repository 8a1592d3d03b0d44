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


def test_run_refuses_to_start_unenrolled_and_says_what_to_do(tmp_path):
    r = run("--data", tmp_path / "data", "run", "--windowed")
    assert r.returncode == 1
    assert "clinic-kiosk enroll URL CODE" in r.stderr
    assert "Traceback" not in r.stderr


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
