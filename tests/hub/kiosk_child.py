"""A kiosk process for the SIGKILL test: submits visits and syncs them in the
background until all ``TOTAL`` are submitted and the outbox is empty.

    python -m tests.hub.kiosk_child DATA_DIR TOTAL PAUSE_S

It resumes where a killed run stopped: the index of the next visit is kept in
the same transaction as the visit, so a kill never submits one twice.
"""

import sys
import time
from pathlib import Path

from kiosk.crypto import sealer_for
from kiosk.store import Store
from kiosk.sync import SyncWorker

from .conftest import kiosk_config, make_visit


def main(data: str, total: int, pause_s: float) -> int:
    cfg = kiosk_config(Path(data), batch_size=10)
    store = Store.open(cfg.database_path, sealer_for(cfg))
    worker = SyncWorker(cfg)
    worker.start()
    i = int(store.get_state("test.next") or 0)
    while i < total:
        visit = make_visit(i)
        with store.write_transaction():
            store.add("visit", visit, record_id=visit["intake_id"])
            store.set_state("test.next", str(i + 1))
        worker.wake()
        i += 1
        time.sleep(pause_s)
    for _ in range(600):  # bounded: at most ~60 s
        if store.depth() == 0:
            worker.stop()
            return 0
        time.sleep(0.1)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
