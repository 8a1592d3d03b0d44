"""Alert latency for `make bench`.

* ``alert_latency_ms_p95``: from the kiosk saving an emergency visit and its
  alert (``store.add`` of both, then waking the sync worker as
  ``Runtime.records_saved`` does, the worker running in the background as
  ``clinic-kiosk run`` runs it) to the alert banner being in the page of a
  logged-in staff member, in Debian's headless Chromium over loopback TLS
  to a real ``clinic-hub serve``. Target: under 1,000 ms.

Everything runs on 127.0.0.1 in a temp dir and stops by itself.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.hub.browser import KioskSide, launch, log_in
from tests.hub.conftest import Hub, enroll_kiosk

SAMPLES = 20
PASSWORD = "bench password 1"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def run() -> list[tuple[str, float, str]]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-alert-") as tmp:
        root = Path(tmp)
        hub = Hub(root / "hub-data", f"sqlite:///{root / 'hub-data' / 'hub.db'}")
        hub.start()
        kiosk = None
        try:
            assert hub.cli("user", "add", "desk", "--role", "staff", input=PASSWORD + "\n").exit_code == 0
            # The worker's own timer is long: only the wake-up can make it fast.
            cfg = enroll_kiosk(hub, root / "kiosk", kiosk_id="bench-kiosk", sync_interval_s=30.0)
            kiosk = KioskSide(cfg)
            latencies = []
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_context(ignore_https_errors=True).new_page()
                log_in(page, hub.url, "desk", PASSWORD)
                page.wait_for_selector(".connection.ok")
                for i in range(SAMPLES):
                    start = time.perf_counter()
                    _, alert = kiosk.emergency({"given-name": f"Bench {i}", "pain-now": 5})
                    page.wait_for_selector(f'[role=alert][data-alert="{alert}"]', timeout=15_000)
                    latencies.append((time.perf_counter() - start) * 1000)
                browser.close()
        finally:
            if kiosk is not None:
                kiosk.close()
            hub.kill()
    return [("alert_latency_ms_p95", p95(latencies), "ms")]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:.1f} {unit}")
