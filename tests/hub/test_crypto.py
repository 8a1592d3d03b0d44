"""What rests on the kiosk is sealed to the clinic and unreadable on the device."""

import json
import stat
import types

import pytest
from click.testing import CliRunner
from nacl.exceptions import CryptoError

from kiosk.cli import export_command
from kiosk.crypto import (
    NotEnrolled,
    SealedBoxSealer,
    generate_keypair,
    open_sealed,
    read_key_file,
    sealer_for,
    write_key_file,
)
from kiosk.store import Store
from kiosk.sync import SyncWorker

from .conftest import PATIENT_NAME, enroll_kiosk, kiosk_config, make_visit


def test_sealed_body_opens_only_with_the_clinic_private_key():
    private, public = generate_keypair()
    other_private, _ = generate_keypair()
    sealed = SealedBoxSealer(public).seal(b'{"given-name": "Ana"}')
    assert b"Ana" not in sealed
    assert open_sealed(private, sealed) == b'{"given-name": "Ana"}'
    with pytest.raises(CryptoError):
        open_sealed(other_private, sealed)


def test_key_files_are_private_to_the_owner(tmp_path):
    private, _ = generate_keypair()
    path = write_key_file(tmp_path / "keys" / "clinic.key", private)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == private


def test_unenrolled_kiosk_is_told_what_to_run(tmp_path):
    with pytest.raises(NotEnrolled) as err:
        sealer_for(kiosk_config(tmp_path / "kiosk"))
    assert "clinic-kiosk enroll URL CODE" in str(err.value)
    assert "clinic-hub enroll-code" in str(err.value)


def test_patient_name_is_nowhere_in_the_raw_kiosk_files(sqlite_hub, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk", retention_s=3600)
    store = Store.open(cfg.database_path, sealer_for(cfg))
    for i in range(30):
        store.add("visit", make_visit(i), record_id=make_visit(i)["intake_id"])
    # Half of them synced (acked, kept for the retention time), half waiting.
    SyncWorker(cfg).drain(max_batches=1)
    assert 0 < store.depth() < 30
    needles = [PATIENT_NAME.encode(), PATIENT_NAME.encode("utf-16-le"), b"1961-04-02"]
    files = [p for p in cfg.data_path.iterdir() if p.is_file()]
    assert any(p.name.startswith("kiosk.db") for p in files)
    for path in files:
        raw = path.read_bytes()
        for needle in needles:
            assert needle not in raw, f"{needle!r} found in {path.name}"
    assert stat.S_IMODE(cfg.data_path.stat().st_mode) == 0o700
    for name in ("kiosk.db", "enrollment.json", "hub-cert.pem"):
        assert stat.S_IMODE((cfg.data_path / name).stat().st_mode) == 0o600, name
    store.close()


def test_staff_recover_everything_still_on_the_device_with_the_private_key(sqlite_hub, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    store = Store.open(cfg.database_path, sealer_for(cfg))
    ids = [store.add("visit", make_visit(i)) for i in range(3)]
    store.add("alert", {"kind": "emergency", "kiosk_id": "kiosk-1"})
    out = tmp_path / "recovered.jsonl"
    obj = types.SimpleNamespace(config=cfg)

    result = CliRunner().invoke(
        export_command, ["--key", str(sqlite_hub.data / "clinic.key"), "--out", str(out)], obj=obj
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["id"] for line in lines} >= set(ids)
    assert sum(line["kind"] == "alert" for line in lines) == 1
    visits = [line for line in lines if line["kind"] == "visit"]
    assert all(v["payload"]["answers"]["given-name"] == PATIENT_NAME for v in visits)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    wrong, _ = generate_keypair()
    write_key_file(tmp_path / "wrong.key", wrong)
    result = CliRunner().invoke(export_command, ["--key", str(tmp_path / "wrong.key")], obj=obj)
    assert result.exit_code == 1
    assert "does not open with this key" in result.output
    assert PATIENT_NAME not in result.output
    store.close()
