"""Durability of the kiosk database: a visit whose commit returned survives
SIGKILL, and no half-written record is ever left behind."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from kiosk.store import Store

WRITER = r"""
import sys, uuid
from kiosk.store import Store
store = Store.open(sys.argv[1])
n = 0
while True:
    rid = str(uuid.uuid4())
    store.add("visit", {"intake_id": rid, "answers": {"given-name": "K" * 2000, "n": n}}, record_id=rid)
    print(rid, flush=True)   # only after the commit returned
    n += 1
"""


def test_sigkill_while_submitting_loses_nothing_committed(tmp_path):
    db = tmp_path / "kiosk.db"
    committed = []
    rng = random.Random(7)
    for _round in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        target = rng.randint(3, 40)
        got = 0
        while got < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
            got += 1
        os.kill(proc.pid, signal.SIGKILL)  # mid-write, most likely
        proc.wait(timeout=10)
        proc.stdout.close()
    assert len(committed) > 8
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    rows = dict(con.execute("select id, body from outbox").fetchall())
    con.close()
    missing = [rid for rid in committed if rid not in rows]
    assert missing == []
    for rid, body in rows.items():
        assert json.loads(body)["intake_id"] == rid  # whole, never half-written


def test_durable_settings(tmp_path):
    store = Store.open(tmp_path / "kiosk.db")
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("pragma synchronous").fetchone()[0] == 2  # FULL
    assert oct((tmp_path / "kiosk.db").stat().st_mode & 0o777) == "0o600"
    store.close()


def test_alerts_jump_the_queue(tmp_path):
    store = Store.open(tmp_path / "kiosk.db")
    store.add("visit", {"n": 1})
    store.add("visit", {"n": 2})
    store.add("alert", {"kind": "emergency"})
    assert [r["kind"] for r in store.sync_pending()] == ["alert", "visit", "visit"]
    store.close()


def test_raised_alerts_stay_open_until_acknowledged_and_outlive_their_outbox_row(tmp_path):
    store = Store.open(tmp_path / "kiosk.db")
    emergency = store.add("alert", {"kind": "emergency"})
    call = store.add("staff-call", {"kind": "staff-call"})
    store.add("alert", {"kind": "acknowledged"})  # a local hold-to-acknowledge raises nothing
    store.add("visit", {"n": 1})
    assert store.open_alert_ids() == [emergency, call]
    store.mark_acked([emergency, call])  # the hub has them; staff have not seen them yet
    assert store.open_alert_ids() == [emergency, call]
    assert store.close_alerts([call, "not-an-alert"]) == [call]
    assert store.close_alerts([call]) == []
    assert store.open_alert_ids() == [emergency]
    store.close()


def test_a_record_is_set_aside_after_the_allowed_failures(tmp_path):
    store = Store.open(tmp_path / "kiosk.db")
    rid = store.add("visit", {"n": 1})
    other = store.add("visit", {"n": 2})
    assert store.bump_attempts([rid], set_aside_after=2) == []
    assert store.bump_attempts([rid], set_aside_after=2) == [rid]
    assert [r["id"] for r in store.sync_pending()] == [other]
    assert store.rejected_count() == 1
    store.close()


def test_threads_opening_a_new_database_at_once_all_succeed(tmp_path):
    # After the first frame the writer thread and the sync worker open the
    # database at about the same moment; on a first start both would create
    # the tables. Several rounds, because the clash depends on timing.
    import threading

    for n in range(10):
        path = tmp_path / f"kiosk-{n}.db"
        errors = []

        def open_and_write():
            try:
                store = Store.open(path)
                store.add("visit", {"n": 1})
                store.close()
            except Exception as exc:  # noqa: BLE001  (any failure fails the test below)
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_and_write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        store = Store.open(path)
        assert store.depth() == 4
        store.close()
