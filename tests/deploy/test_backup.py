"""`clinic-hub backup` and `restore`: the whole hub moves to a new machine in
one encrypted file; a wrong passphrase or an existing hub changes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from kiosk.hub import cli as hub_cli
from kiosk.hub.db import IncomingRecord, open_database
from kiosk.hub.export.table import CELLS
from tests.hub.conftest import PATIENT_NAME, Hub, make_visit

PASSPHRASE = "correct horse battery staple"


def hub_cli_run(*args: str, input: str | None = None):
    return CliRunner().invoke(hub_cli.main, list(args), input=input)


def add_visits(db: str, n: int) -> None:
    with open_database(db, cells=CELLS, migrate=False) as database:
        records = []
        for i in range(n):
            payload = json.dumps(make_visit(i))
            records.append(IncomingRecord(
                id=f"rec-{i}", kind="visit", digest=hashlib.sha256(payload.encode()).hexdigest(),
                payload_json=payload, intake_id=make_visit(i)["intake_id"],
                submitted_at=make_visit(i)["submitted_at"]))
        database.records.store_batch("kiosk-1", records)


def new_machine_db(old_db: str, tmp_path: Path, request) -> str:
    """An empty database of the same kind, as on a replacement machine."""
    if old_db.startswith("sqlite:///"):
        return f"sqlite:///{tmp_path / 'new-hub' / 'hub.db'}"
    return request.getfixturevalue("pg_cluster").new_database()


def test_backup_restores_keys_accounts_and_visits_on_a_new_machine(tmp_path, db_url, request):
    old = Hub(tmp_path / "hub-data", db_url)
    assert old.cli("user", "add", "reception", "--role", "staff", input="front-desk-pw\n").exit_code == 0
    add_visits(db_url, 25)
    backup = tmp_path / "usb" / "hub.backup"

    made = old.cli("backup", "--out", str(backup), input=PASSPHRASE + "\n")
    assert made.exit_code == 0, made.output
    assert backup.stat().st_mode & 0o777 == 0o600
    raw = backup.read_bytes()
    # Neither the clinic key nor a patient's name is readable in the file.
    assert (old.data / "clinic.key").read_bytes().strip() not in raw
    assert PATIENT_NAME.encode() not in raw

    new_data = tmp_path / "new-hub"
    new_db = new_machine_db(db_url, tmp_path, request)
    restored = hub_cli_run("restore", str(backup), "--data", str(new_data), "--db", new_db,
                           input=PASSPHRASE + "\n")
    assert restored.exit_code == 0, restored.output
    for name in ("clinic.key", "clinic.pub", "tls.key", "tls.crt"):
        assert (new_data / name).read_bytes() == (old.data / name).read_bytes(), name
        assert (new_data / name).stat().st_mode & 0o077 == 0 or name.endswith((".pub", ".crt"))
    # The restored hub works: it opens the visits and knows the staff account.
    out = tmp_path / "visits.csv"
    exported = hub_cli_run("export", "--out", str(out), "--data", str(new_data), "--db", new_db)
    assert exported.exit_code == 0, exported.output
    assert out.read_text().count(PATIENT_NAME) == 25
    with open_database(new_db, migrate=False) as db:
        assert db.accounts.user("reception") is not None


def test_wrong_passphrase_is_one_line_and_changes_nothing(tmp_path, sqlite_url):
    old = Hub(tmp_path / "hub-data", sqlite_url)
    backup = tmp_path / "hub.backup"
    assert old.cli("backup", "--out", str(backup), input=PASSPHRASE + "\n").exit_code == 0
    target = tmp_path / "new-hub"
    target.mkdir()
    (target / "notes.txt").write_text("kept")

    result = hub_cli_run("restore", str(backup), "--data", str(target), input="not the passphrase\n")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {backup}: wrong passphrase, or the file is damaged; nothing was changed"]
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_a_damaged_backup_is_refused_without_a_traceback(tmp_path, sqlite_url):
    old = Hub(tmp_path / "hub-data", sqlite_url)
    backup = tmp_path / "hub.backup"
    assert old.cli("backup", "--out", str(backup), input=PASSPHRASE + "\n").exit_code == 0
    blob = bytearray(backup.read_bytes())
    blob[-10] ^= 0xFF
    backup.write_bytes(bytes(blob))
    result = hub_cli_run("restore", str(backup), "--data", str(tmp_path / "new"), input=PASSPHRASE + "\n")
    assert result.exit_code == 1 and "damaged" in result.output
    not_a_backup = tmp_path / "visits.csv"
    not_a_backup.write_text("intake_id,submitted_at\n")
    result = hub_cli_run("restore", str(not_a_backup), "--data", str(tmp_path / "new"), input=PASSPHRASE + "\n")
    assert result.output.strip() == f"Error: {not_a_backup}: not a clinic-hub backup file"
    assert not (tmp_path / "new").exists()


def test_restore_refuses_to_replace_a_hub_unless_forced_and_keeps_what_it_replaced(tmp_path, sqlite_url):
    old = Hub(tmp_path / "hub-data", sqlite_url)
    add_visits(sqlite_url, 3)
    backup = tmp_path / "hub.backup"
    assert old.cli("backup", "--out", str(backup), input=PASSPHRASE + "\n").exit_code == 0
    other_db = f"sqlite:///{tmp_path / 'other' / 'hub.db'}"
    other = Hub(tmp_path / "other", other_db)
    other_key = (other.data / "clinic.key").read_bytes()

    refused = hub_cli_run("restore", str(backup), "--data", str(other.data), "--db", other_db,
                          input=PASSPHRASE + "\n")
    assert refused.exit_code == 1
    assert "a clinic hub is already here" in refused.output and "--force" in refused.output
    assert (other.data / "clinic.key").read_bytes() == other_key

    forced = hub_cli_run("restore", str(backup), "--force", "--data", str(other.data), "--db", other_db,
                         input=PASSPHRASE + "\n")
    assert forced.exit_code == 0, forced.output
    assert (other.data / "clinic.key").read_bytes() == (old.data / "clinic.key").read_bytes()
    [aside] = other.data.glob("before-restore-*")
    assert (aside / "clinic.key").read_bytes() == other_key
    assert (aside / "hub.db").exists()
    with open_database(other_db, migrate=False) as db:
        assert db.records.count_records("visit") == 3


def test_backup_of_a_missing_hub_and_a_short_passphrase_say_what_is_wrong(tmp_path, sqlite_url):
    result = hub_cli_run("backup", "--out", str(tmp_path / "b"), "--data", str(tmp_path / "none"),
                         input=PASSPHRASE + "\n")
    assert result.exit_code == 1 and "no clinic hub here" in result.output
    Hub(tmp_path / "hub-data", sqlite_url)
    result = hub_cli_run("backup", "--out", str(tmp_path / "b"), "--data", str(tmp_path / "hub-data"),
                         input="short\n")
    assert result.exit_code == 1 and "shorter than 10 characters" in result.output
    assert not (tmp_path / "b").exists()


def test_backup_of_a_serving_hub_is_consistent(tmp_path, sqlite_url):
    """The hub keeps serving (and holds the database open in WAL mode) while
    the nightly backup runs; the copy still has every committed visit."""
    live = Hub(tmp_path / "hub-data", sqlite_url)
    live.start()
    try:
        add_visits(sqlite_url, 40)
        backup = tmp_path / "nightly.backup"
        made = live.cli("backup", "--out", str(backup), input=PASSPHRASE + "\n")
        assert made.exit_code == 0, made.output
    finally:
        live.stop()
    new_db = f"sqlite:///{tmp_path / 'new-hub' / 'hub.db'}"
    restored = hub_cli_run("restore", str(backup), "--data", str(tmp_path / "new-hub"), "--db", new_db,
                           input=PASSPHRASE + "\n")
    assert restored.exit_code == 0, restored.output
    with open_database(new_db, migrate=False) as db:
        assert db.records.count_records("visit") == 40
