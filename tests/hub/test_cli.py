"""`clinic-hub` commands and the kiosk's sync worker, as staff and kiosks use them."""

import csv
import io
import stat
import time
import types

from click.testing import CliRunner

from kiosk.cli import sync_command
from kiosk.crypto import read_enrollment, sealer_for
from kiosk.hub import cli as hub_cli
from kiosk.hub.export import CSV_COLUMNS
from kiosk.store import Store
from kiosk.sync import SyncWorker, status_info

from .conftest import PATIENT_NAME, make_visit


def test_init_creates_private_keys_and_prints_a_generated_password_once(tmp_path):
    data = tmp_path / "hub"
    result = CliRunner().invoke(hub_cli.main, ["init", "--data", str(data)], input="")
    assert result.exit_code == 0, result.output
    assert "password (shown once)" in result.output
    for name in ("clinic.key", "tls.key", "hub.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert (data / "clinic.pub").exists() and (data / "tls.crt").exists()

    again = CliRunner().invoke(hub_cli.main, ["init", "--data", str(data)], input="")
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_staff_accounts_take_the_password_from_stdin(tmp_path):
    data = tmp_path / "hub"
    runner = CliRunner()
    assert runner.invoke(hub_cli.main, ["init", "--data", str(data)], input="admin-secret-1\n").exit_code == 0
    ok = runner.invoke(hub_cli.main, ["user", "add", "reception", "--role", "staff", "--data", str(data)],
                       input="front-desk-42\n")
    assert ok.exit_code == 0, ok.output
    assert "front-desk-42" not in ok.output
    twice = runner.invoke(hub_cli.main, ["user", "add", "reception", "--role", "staff", "--data", str(data)],
                          input="front-desk-42\n")
    assert twice.exit_code == 1 and "already exists" in twice.output
    short = runner.invoke(hub_cli.main, ["user", "add", "x", "--role", "admin", "--data", str(data)], input="abc\n")
    assert short.exit_code == 1 and "shorter than 8" in short.output
    bad_role = runner.invoke(hub_cli.main, ["user", "add", "x", "--role", "boss", "--data", str(data)])
    assert bad_role.exit_code == 2 and "--role" in bad_role.output


def test_commands_on_a_missing_hub_say_what_to_run(tmp_path):
    result = CliRunner().invoke(hub_cli.main, ["enroll-code", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "clinic-hub init" in result.output
    bad_db = CliRunner().invoke(hub_cli.main, ["init", "--data", str(tmp_path / "h"), "--db", "mysql://x"])
    assert bad_db.exit_code == 1 and "sqlite:///" in bad_db.output


def test_csv_export_of_synced_visits(hub, kiosk):
    store = Store.open(kiosk.database_path, sealer_for(kiosk))
    for i in range(3):
        store.add("visit", make_visit(i), record_id=make_visit(i)["intake_id"])
    late = make_visit(99)
    late["submitted_at"] = "2026-12-02T08:00:00.000+00:00"
    late["answers"]["free-text"] = "=HYPERLINK(\"x\")"
    store.add("visit", late, record_id=late["intake_id"])
    store.add("alert", {"kind": "emergency", "kiosk_id": "kiosk-1"})
    assert SyncWorker(kiosk).drain().remaining == 0
    store.close()

    result = hub.cli("export", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, body = rows[0], rows[1:]
    assert header[: len(CSV_COLUMNS) + 1] == [*CSV_COLUMNS, "patient_ref"]
    assert header[len(CSV_COLUMNS) + 1:] == sorted(["dob", "free-text", "given-name", "pain-areas",
                                                    "pain-now", "rf-saddle"])
    assert len(body) == 4  # visits only, not the alert
    first = dict(zip(header, body[0]))
    assert first["intake_id"] == make_visit(0)["intake_id"]
    # The kiosk the device token authenticated: the id the hub assigned.
    assert first["kiosk_id"] == read_enrollment(kiosk.data_path)["kiosk_id"]
    assert first["kiosk_id"].startswith("kiosk-1-")
    assert first["codes"] == "b-code;a-code"
    assert first["startback_risk"] == "medium" and first["peg"] == "5.3"
    assert first["given-name"] == PATIENT_NAME
    assert first["pain-areas"] == "lower-back;left-leg" and first["rf-saddle"] == "false"
    last = dict(zip(header, body[-1]))
    assert last["free-text"].startswith("'=")  # never a live formula in a spreadsheet

    since = hub.cli("export", "--since", "2026-12-01")
    assert [r[0] for r in list(csv.reader(io.StringIO(since.stdout)))[1:]] == [late["intake_id"]]
    bad = hub.cli("export", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
    unknown = hub.cli("export", "--format", "xlsx")
    assert unknown.exit_code == 2 and "--format" in unknown.output


def test_background_worker_syncs_and_keeps_acknowledged_copies_for_the_retention_time(hub, kiosk, tmp_path):
    cfg = kiosk.replace("hub", retention_s=1)
    store = Store.open(cfg.database_path, sealer_for(cfg))
    ids = [store.add("visit", make_visit(i), record_id=make_visit(i)["intake_id"]) for i in range(5)]
    worker = SyncWorker(cfg)
    worker.start()
    try:
        for _ in range(100):  # bounded: ~10 s
            if hub.visit_copies() == {i: 1 for i in ids}:
                break
            time.sleep(0.1)
        assert hub.visit_copies() == {i: 1 for i in ids}
        # Acknowledged: no longer waiting, but the local copy stays a while.
        assert status_info(store, cfg)["queue_depth"] == 0
        assert len(list(store.all_records())) == 5
        for _ in range(100):
            if not list(store.all_records()):
                break
            time.sleep(0.1)
        assert list(store.all_records()) == []
    finally:
        worker.stop()
        store.close()
    assert not worker._thread.is_alive()


def test_sync_once_on_an_unenrolled_kiosk_says_how_to_enroll(tmp_path):
    from .conftest import kiosk_config

    cfg = kiosk_config(tmp_path / "kiosk")
    Store.open(cfg.database_path).close()
    result = CliRunner().invoke(sync_command, ["--once"], obj=types.SimpleNamespace(config=cfg))
    assert result.exit_code == 1
    assert "clinic-kiosk enroll URL CODE" in result.output


def test_a_record_the_hub_refuses_is_set_aside_and_the_rest_still_syncs(hub, kiosk, tmp_path, caplog):
    import logging

    from .conftest import enroll_kiosk

    # Another kiosk already sent visit 0 under this id, with other answers.
    other = enroll_kiosk(hub, tmp_path / "other", kiosk_id="kiosk-2")
    first = Store.open(other.database_path, sealer_for(other))
    first.add("visit", make_visit(0, kiosk_id="kiosk-2"), record_id=make_visit(0)["intake_id"])
    assert SyncWorker(other).drain().remaining == 0
    first.close()

    store = Store.open(kiosk.database_path, sealer_for(kiosk))
    ids = [store.add("visit", make_visit(i), record_id=make_visit(i)["intake_id"]) for i in range(5)]
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(sync_command, ["--once"], obj=types.SimpleNamespace(config=kiosk))
    assert result.exit_code == 0, result.output
    assert "refused" in caplog.text
    assert PATIENT_NAME not in caplog.text and PATIENT_NAME not in result.output
    assert set(hub.visit_copies()) == set(ids)
    status = status_info(store, kiosk)
    assert status["set_aside"] == 1 and status["queue_depth"] == 1
    assert [r["id"] for r in store.all_records()] == [ids[0]]  # kept for export
    store.close()
    assert PATIENT_NAME not in hub.log.read_text()


def test_staff_passwords_are_stored_hashed(tmp_path):
    from kiosk.hub.auth import verify_password
    from kiosk.hub.db import open_database

    data = tmp_path / "hub"
    runner = CliRunner()
    assert runner.invoke(hub_cli.main, ["init", "--data", str(data)], input="admin-secret-1\n").exit_code == 0
    with open_database(f"sqlite:///{data / 'hub.db'}", migrate=False) as db:
        role, stored = db.accounts.user("admin")
    assert role == "admin"
    assert "admin-secret-1" not in stored
    assert verify_password("admin-secret-1", stored)
    assert not verify_password("admin-secret-2", stored)
