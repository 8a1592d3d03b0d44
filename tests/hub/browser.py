"""Pieces the browser tests and the alert-latency bench share: Debian's
Chromium driven by Playwright (never a downloaded browser), and a kiosk
that raises an emergency the way the Kivy app does, with the sync worker
running in the background as `clinic-kiosk run` runs it. The browser tests'
``chromium`` and ``desk`` fixtures are in tests/hub/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


from kiosk.alerts import Alert
from kiosk.crypto import read_enrollment
from kiosk.questionnaire import load_pack
from kiosk.runtime import Runtime
from kiosk.sync import SyncWorker
from kiosk.visit import Visit

#: The password of the staff accounts the ``desk`` fixture adds.
PASSWORD = "front desk 2468"

CHROMIUM = os.environ.get("CLINIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    # The front-desk browser has had a click on the page; a fresh headless
    # one has not, and would otherwise refuse to play the alert sound.
    "--autoplay-policy=no-user-gesture-required",
]


class NoChromium(RuntimeError):
    pass


def chromium_path() -> str:
    """Debian's Chromium, or :class:`NoChromium` saying how to get it."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        raise NoChromium(f"{CHROMIUM}: Chromium not found: run `sudo bash tests/system-deps.sh` "
                         "(installs Debian's chromium package) or set CLINIC_CHROMIUM")
    return found


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def log_in(page, base_url: str, user: str, password: str) -> None:
    page.goto(base_url + "/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live")


class KioskSide:
    """An enrolled kiosk's runtime (store, alert bus) with its sync worker
    started, saving visits as ``screens/app.py`` does and waking the worker
    as :meth:`Runtime.records_saved` does."""

    def __init__(self, config):
        self.pack = load_pack(None)
        store_runtime = Runtime.create(config, pack=self.pack)
        self.runtime = store_runtime
        #: Alert ids staff acknowledged, as the kiosk learned them from the hub.
        self.acknowledged: list[str] = []
        self.runtime.sync = SyncWorker(config, on_acknowledged=self.acknowledged.extend,
                                       content_version=self.pack.content_version)
        self.runtime.sync.start()
        #: The id the hub gave this kiosk at enrollment.
        self.kiosk_id = read_enrollment(config.data_path)["kiosk_id"]

    def visit(self, answers: dict, status: str = "complete", visit_kind: str = "first") -> dict:
        v = Visit(self.pack, "en", kiosk_id=self.kiosk_id, visit_kind=visit_kind)
        for link_id, value in answers.items():
            v.answer(link_id, value)
        return v.payload(status)

    def submit(self, answers: dict) -> str:
        payload = self.visit(answers)
        self.runtime.store.add("visit", payload, record_id=payload["intake_id"])
        self.runtime.records_saved()
        return payload["intake_id"]

    def emergency(self, answers: dict) -> tuple[str, str]:
        """Saves the visit and the emergency alert, then wakes the worker:
        returns (intake id, alert id)."""
        payload = self.visit({**answers, "rf-saddle": True}, "emergency")
        alert = Alert(kind="emergency", kiosk_id=self.kiosk_id, intake_id=payload["intake_id"])
        self.runtime.store.add("visit", payload, record_id=payload["intake_id"])
        self.runtime.alerts.send(alert)
        self.runtime.records_saved()
        return payload["intake_id"], alert.id

    def staff_call(self) -> str:
        alert = Alert(kind="staff-call", kiosk_id=self.kiosk_id)
        self.runtime.alerts.send(alert)
        self.runtime.records_saved()
        return alert.id

    def close(self) -> None:
        self.runtime.close()


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    """Polls ``predicate`` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
