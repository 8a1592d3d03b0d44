"""Real faults, on loopback and bounded: after each, every submitted visit is on
the hub exactly once and the kiosk's outbox is empty. Run on SQLite and on
PostgreSQL (the ``hub`` fixture is parametrised)."""

import os
import random
import signal
import subprocess
import sys
import time
import types

from click.testing import CliRunner

from kiosk.crypto import sealer_for
from kiosk.store import Store
from kiosk.sync import SyncWorker, status_info, sync_command

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


def test_kiosk_killed_again_and_again_while_submitting_and_syncing(hub, kiosk):
    total = 200
    rng = random.Random(42)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "tests.hub.kiosk_child", str(kiosk.data_path), str(total), "0.03"]
    kills = 0
    for _ in range(8):
        child = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.7, 1.6))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(10)
    assert kills >= 6
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
