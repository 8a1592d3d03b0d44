"""Real faults, on loopback and bounded: after each, every submitted visit is on
the hub exactly once and the kiosk's outbox is empty. Run on SQLite and on
PostgreSQL (the ``hub`` fixture is parametrised)."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import types

from click.testing import CliRunner

from kiosk.cli import sync_command
from kiosk.crypto import sealer_for
from kiosk.store import Store
from kiosk.sync import HttpsTransport, SyncWorker, read_outcome, status_info

from .conftest import REPO_ROOT, enroll_kiosk, make_visit
from .proxy import FaultyProxy


def submit(cfg, indexes) -> list[str]:
    store = Store.open(cfg.database_path, sealer_for(cfg))
    ids = []
    for i in indexes:
        visit = make_visit(i)
        ids.append(store.add("visit", visit, record_id=visit["intake_id"]))
    store.close()
    return ids


def outbox_depth(cfg) -> int:
    store = Store.open(cfg.database_path)
    try:
        return store.depth()
    finally:
        store.close()


def assert_exactly_once(hub, cfg, ids):
    assert hub.visit_copies() == {i: 1 for i in ids}
    assert outbox_depth(cfg) == 0


def sync_once(cfg):
    return CliRunner().invoke(sync_command, ["--once"], obj=types.SimpleNamespace(config=cfg))


def test_hub_down_for_the_whole_visit_then_back(hub, kiosk):
    hub.kill()
    ids = submit(kiosk, range(30))
    store = Store.open(kiosk.database_path, sealer_for(kiosk))
    alert_id = store.add("alert", {"kind": "emergency", "kiosk_id": "kiosk-1", "intake_id": ids[-1]})

    down = sync_once(kiosk)
    assert down.exit_code == 1
    assert "could not be reached" in down.output
    status = status_info(store, kiosk)
    assert status["queue_depth"] == 31
    assert status["hub_reachable"] is False

    hub.start()
    # The alert, stored last, goes first.
    SyncWorker(kiosk).drain(max_batches=1)
    with hub.repo() as repo:
        assert repo.record_ids("alert") == [alert_id]
    assert sync_once(kiosk).exit_code == 0
    assert_exactly_once(hub, kiosk, ids)
    status = status_info(store, kiosk)
    assert status["hub_reachable"] is True and status["last_sync"]
    store.close()


def test_cut_connections_and_lost_acknowledgements(hub, tmp_path):
    proxy = FaultyProxy(hub.port, ["cut", "drop_ack", "pass", "drop_ack"])
    try:
        cfg = enroll_kiosk(hub, tmp_path / "kiosk", url=proxy.url, batch_size=5)
        proxy.faults.clear()
        ids = submit(cfg, range(40))
        for _ in range(100):  # bounded; each round is a fresh connection
            worker = SyncWorker(cfg)
            try:
                worker.drain(max_batches=1)
            finally:
                worker.close()
            if outbox_depth(cfg) == 0:
                break
        assert proxy.faults["cut"] >= 2 and proxy.faults["drop_ack"] >= 2, proxy.faults
    finally:
        proxy.close()
    assert_exactly_once(hub, cfg, ids)


def submitted_so_far(cfg) -> int:
    """How many visits the child kiosk has committed (its own progress mark)."""
    if not cfg.database_path.exists():
        return 0
    con = sqlite3.connect(f"file:{cfg.database_path}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("select value from kiosk_state where key = 'test.next'").fetchone()
    except sqlite3.OperationalError:  # not created yet
        row = None
    finally:
        con.close()
    return int(row[0]) if row else 0


def test_kiosk_killed_again_and_again_while_submitting_and_syncing(hub, kiosk):
    total = 200
    rng = random.Random(42)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "tests.hub.kiosk_child", str(kiosk.data_path), str(total), "0.03"]
    kills = 0
    # Each run is killed once it has committed a few more visits (its sync
    # worker running meanwhile), so the kills land mid-work however slow the
    # machine is; bounded in runs and in time per run.
    for _ in range(30):
        if kills >= 6:
            break
        target = min(total, submitted_so_far(kiosk) + rng.randint(5, 25))
        child = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while child.poll() is None and submitted_so_far(kiosk) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))  # sometimes mid-commit, sometimes mid-sync
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(10)
    assert kills >= 6
    assert submitted_so_far(kiosk) < total  # the kills interrupted real work
    # A last, undisturbed run submits the rest and drains.
    final = subprocess.run(cmd[:-1] + ["0"], cwd=REPO_ROOT, env=env, timeout=120)
    assert final.returncode == 0
    ids = [make_visit(i)["intake_id"] for i in range(total)]
    assert_exactly_once(hub, kiosk, ids)


def test_hub_restarted_mid_batch(hub, tmp_path):
    cfg = enroll_kiosk(hub, tmp_path / "kiosk", batch_size=10)
    ids = submit(cfg, range(400))
    worker = SyncWorker(cfg)
    worker.start()
    try:
        restarts = 0
        for _ in range(200):  # bounded: at most ~20 s of polling
            if restarts == 3 or outbox_depth(cfg) == 0:
                break
            if hub.count() > 40 * (restarts + 1):
                hub.kill()
                restarts += 1
                time.sleep(0.3)
                hub.start()
            time.sleep(0.1)
        for _ in range(300):  # bounded: at most ~30 s to drain the rest
            if outbox_depth(cfg) == 0:
                break
            time.sleep(0.1)
    finally:
        worker.stop()
    assert restarts >= 2
    assert_exactly_once(hub, cfg, ids)


class PoisonTransport(HttpsTransport):
    """The real transport to the real hub, except that the hub is made to
    fail (a 500, read as the kiosk reads any 500) on every request that
    carries the ``poison`` record: the stand-in for a record that trips a
    bug on the hub. Records the kinds of every request it sends."""

    def __init__(self, cfg, poison: str | None = None):
        real = HttpsTransport.from_enrollment(cfg)
        self.__dict__.update(real.__dict__)
        self.poison = poison
        self.requests: list[list[str]] = []

    def submit(self, rows):
        self.requests.append([r["kind"] for r in rows])
        if any(r["id"] == self.poison for r in rows):
            return read_outcome(500, {"detail": "Internal Server Error"}, [r["id"] for r in rows])
        return super().submit(rows)


def test_a_record_the_hub_fails_on_is_set_aside_and_never_blocks_the_rest(sqlite_hub, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk", batch_size=8, max_attempts=3)
    ids = submit(cfg, range(12))
    poison = ids[5]
    transport = PoisonTransport(cfg, poison)
    worker = SyncWorker(cfg, transport=transport)
    first = worker.drain()
    assert first.reachable and first.sent == 11 and first.remaining == 1
    assert set(sqlite_hub.visit_copies()) == set(ids) - {poison}
    second = worker.drain()
    assert second.set_aside == 0 and second.remaining == 1
    third = worker.drain()
    assert third.set_aside == 1 and third.remaining == 0
    store = Store.open(cfg.database_path)
    try:
        assert status_info(store, cfg)["set_aside"] == 1
    finally:
        store.close()
    worker.close()


def test_alerts_go_first_each_in_a_request_of_its_own(sqlite_hub, tmp_path):
    from kiosk.alerts import Alert, StoreChannel

    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk", batch_size=50)
    submit(cfg, range(10))
    store = Store.open(cfg.database_path, sealer_for(cfg))
    channel = StoreChannel(store)
    alerts = [Alert(kind="emergency", kiosk_id="kiosk-1"), Alert(kind="staff-call", kiosk_id="kiosk-1")]
    for alert in alerts:
        channel.send(alert)
    transport = PoisonTransport(cfg)
    assert SyncWorker(cfg, transport=transport, store=store).drain().remaining == 0
    assert transport.requests == [["alert"], ["staff-call"], ["visit"] * 10]
    store.close()


def test_staff_acknowledgement_reaches_the_kiosk_through_the_heartbeat(hub, kiosk):
    from kiosk.alerts import Alert, StoreChannel

    store = Store.open(kiosk.database_path, sealer_for(kiosk))
    alert = Alert(kind="emergency", kiosk_id="kiosk-1")
    StoreChannel(store).send(alert)
    submit(kiosk, range(2))
    learnt: list[list[str]] = []
    worker = SyncWorker(kiosk, store=store, on_acknowledged=learnt.append, content_version="pack-7")
    assert worker.drain().remaining == 0
    assert status_info(store, kiosk)["open_alerts"] == [alert.id]
    assert learnt == []
    with hub.repo() as repo:
        assert repo.acknowledge_alert(alert.id, "reception")
    result = worker.drain()
    assert result.acknowledged == [alert.id]
    assert learnt == [[alert.id]]
    assert status_info(store, kiosk)["open_alerts"] == []
    worker.drain()
    assert learnt == [[alert.id]]  # told once
    with hub.repo() as repo, repo.backend.transaction() as tx:
        report = tx.execute("select report, last_contact from kiosks").fetchone()
    facts = json.loads(report[0])
    assert facts["queue_depth"] == 0 and facts["content_version"] == "pack-7" and report[1]
    store.close()


def test_a_hub_that_is_down_is_reported_so_even_with_an_empty_queue(sqlite_hub, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    assert sync_once(cfg).exit_code == 0
    sqlite_hub.kill()
    down = sync_once(cfg)
    assert down.exit_code == 1 and "could not be reached" in down.output
    store = Store.open(cfg.database_path)
    try:
        status = status_info(store, cfg)
    finally:
        store.close()
    assert status["queue_depth"] == 0 and status["hub_reachable"] is False
