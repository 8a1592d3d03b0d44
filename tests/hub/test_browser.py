"""The staff page in a real headless Chromium (Debian's package, driven by
Playwright), against a real `clinic-hub serve` over TLS on 127.0.0.1, fed
by a real kiosk runtime whose sync worker runs in the background.

The path a front-desk person takes: log in, see and hear the emergency the
kiosk just raised, acknowledge it, open the intake, mark it reviewed,
export CSV; the page keeps updating across a hub restart; and the
refusals a browser can meet (wrong password, staff on an admin page, a
second tab after logout). Screenshots go to docs/ (docs/staff-list.png is
in the README).
"""

import csv
import io
import json
import os

from .browser import PASSWORD, log_in, wait_until
from .conftest import REPO_ROOT

#: Where the screenshots go: the README's pictures with UPDATE_DOCS=1, else
#: a folder of the test run's own (a test run never rewrites tracked files).
DOCS = REPO_ROOT / "docs" if os.environ.get("UPDATE_DOCS") else None


ROUTINE = {"given-name": "Rosa", "family-name": "Delgado", "dob": "1980-03-14", "pain-now": 4,
           "pain-areas": ["lower-back"], "pain-duration": "over-12-weeks"}
EMERGENCY = {"given-name": "Tomás", "family-name": "Ferreira", "dob": "1958-07-30", "pain-now": 8,
             "pain-areas": ["lower-back", "left-leg", "right-leg"], "rf-bladder": True}


def test_front_desk_sees_hears_and_acknowledges_an_emergency(chromium, desk, tmp_path):
    hub, kiosk = desk
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 760},
                                   accept_downloads=True)
    page = context.new_page()
    page.goto(hub.url + "/")
    assert page.url.startswith(hub.url + "/login")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", "not her password")
    page.click("button[type=submit]")
    assert "Wrong user name or password." in page.inner_text("#login-message")

    log_in(page, hub.url, "maria", PASSWORD)
    assert "No intakes yet today" in page.inner_text("#live")

    # A routine visit, then an emergency: both arrive without a reload.
    kiosk.submit(ROUTINE)
    page.wait_for_selector("text=Rosa Delgado", timeout=15_000)
    intake, alert = kiosk.emergency(EMERGENCY)
    banner = page.wait_for_selector(f'[role=alert][data-alert="{alert}"]', timeout=15_000)
    assert "EMERGENCY" in banner.inner_text() and "front-desk" in banner.inner_text()
    assert banner.query_selector("button:has-text('Acknowledge')") is not None
    # ... and it is heard: the chime played for the new alert.
    page.wait_for_function("document.body.dataset.sound === 'played'", timeout=5_000)
    rows = page.locator("table.intakes tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().startswith("⚠ EMERGENCY") and "Tomás Ferreira" in rows.nth(0).inner_text()
    assert rows.nth(1).inner_text().startswith("Routine")
    docs = DOCS or tmp_path
    page.screenshot(path=str(docs / "staff-list.png"))

    # The hub restarts (killed, as a power cut would): the page reconnects
    # by itself and keeps showing what arrives.
    hub.kill()
    page.wait_for_selector(".connection.down", timeout=15_000)
    hub.start()
    call = kiosk.staff_call()
    page.wait_for_selector(f'[role=alert][data-alert="{call}"]', timeout=30_000)
    assert page.locator(".connection.ok").count() == 1

    # Acknowledge the emergency: the banner goes, the hub records who.
    banner = page.locator(f'[role=alert][data-alert="{alert}"]')
    banner.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(f'[role=alert][data-alert="{alert}"]', state="detached", timeout=10_000)
    with hub.repo() as repo:
        assert repo.acknowledged_among(kiosk.kiosk_id, [alert, call]) == [alert]
        assert repo.acknowledgements()[alert][1] == "maria"
    # ... and the kiosk learns it on its next contact (its call light goes
    # off on this hook); the staff call stays open there.
    kiosk.runtime.sync.wake()
    wait_until(lambda: alert in kiosk.acknowledged, timeout=30, what="the kiosk to learn the acknowledgement")
    assert kiosk.acknowledged == [alert]
    assert kiosk.runtime.store.open_alert_ids() == [call]

    # The intake page: summary first, body map, answers; mark reviewed.
    page.click(f'a[href="/intakes/{intake}"]')
    page.wait_for_selector("h2:has-text('Clinician summary')")
    assert intake in page.url
    text = page.inner_text("main")
    assert "EMERGENCY" in text and "rf-bladder" in text and "acknowledged by maria" in text
    assert page.locator(".region.marked").count() == 3
    page.screenshot(path=str(docs / "staff-intake.png"), full_page=True)
    page.get_by_role("button", name="Mark reviewed").click()
    page.wait_for_selector("text=Reviewed by maria")

    # Export CSV from the page.
    page.goto(hub.url + "/exports")
    with page.expect_download() as download_info:
        page.click("#download")
    path = tmp_path / "export.csv"
    download_info.value.save_as(path)
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert {row["intake_id"] for row in table} >= {intake}
    assert next(r for r in table if r["intake_id"] == intake)["tier"] == "emergency"

    # Staff cannot open admin pages; a second tab is logged out with the first.
    page.goto(hub.url + "/admin/users")
    assert "This page is for admin accounts." in page.inner_text("main")
    second = context.new_page()
    second.goto(hub.url + "/")
    second.wait_for_selector("#live")
    page.goto(hub.url + "/")
    page.get_by_role("button", name="Log out").click()
    # The logout's redirect, or the live stream ending first: both land on the login form.
    page.wait_for_url("**/login**")
    second.wait_for_url("**/login**", timeout=15_000)  # the live stream ends and sends it to the login
    second.goto(hub.url + f"/intakes/{intake}")
    assert "/login" in second.url and "Tomás" not in second.content()
    context.close()

    hub_log = hub.log.read_text(errors="replace")
    for secret in ("Tomás", "Ferreira", "Rosa", "Delgado", "1958-07-30", PASSWORD):
        assert secret not in hub_log, secret

    audit = [json.loads(line) for line in hub.cli("audit").output.splitlines()]
    steps = [(e["user"], e["action"]) for e in audit]
    for step in [("maria", "login.failed"), ("maria", "login"), ("maria", "alert.ack"), ("maria", "intake.view"),
                 ("maria", "intake.review"), ("maria", "export"), ("maria", "logout")]:
        assert step in steps, step


def test_admin_sees_kiosks_and_issues_a_code_with_a_qr_code(chromium, desk, tmp_path):
    hub, kiosk = desk
    kiosk.submit(ROUTINE)
    with hub.repo() as repo:
        wait_until(lambda: repo.count_records("visit") == 1, what="the visit to reach the hub")
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 760})
    page = context.new_page()
    log_in(page, hub.url, "boss", PASSWORD)
    page.goto(hub.url + "/admin/kiosks")
    assert "front-desk" in page.inner_text("table")
    page.get_by_role("button", name="New enrollment code").click()
    code = page.inner_text("#enroll-code")
    assert len(code) == 14 and page.locator(".qr svg").count() == 1
    page.screenshot(path=str((DOCS or tmp_path) / "staff-kiosks.png"))
    page.goto(hub.url + "/admin/audit")
    assert "kiosk.enroll-code" in page.inner_text("table")
    context.close()
