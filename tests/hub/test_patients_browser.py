"""A returning patient's trend on the staff page, in a real headless
Chromium against a real `clinic-hub serve`, fed by a real kiosk runtime
whose sync worker sends the visits (issue 19).

One vignette patient comes three times: a first visit, a follow-up matched
on name and birth date, and one matched on the return code staff read off
the intake page. A different patient with the same name and another birth
date stays apart. Staff confirm a match, open the patient's page and see
the PEG trend with the change and the "clinically important improvement"
flag, then the clinic's outcomes. Screenshot: docs/patient-trend.png with
UPDATE_DOCS=1.
"""

import datetime as dt
import os
import re

from .browser import PASSWORD, KioskSide, log_in, wait_until
from .conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs" if os.environ.get("UPDATE_DOCS") else None

#: The vignette: chronic low back pain, improving over six weeks of treatment.
MARTA = {"given-name": "Marta", "family-name": "Quiroga", "dob": "1968-03-22", "pain-areas": ["lower-back"],
         "pain-duration": "over-12-weeks"}
VISITS = [  # (days after the first visit, pain now, PEG items)
    (0, 7, (7, 7, 6)),
    (21, 5, (5, 5, 5)),
    (42, 3, (3, 4, 3)),
]


def send(kiosk: KioskSide, answers: dict, kind: str, at: dt.datetime, code: str | None = None) -> str:
    """Saves a visit as the kiosk app does (the welcome screen's choice,
    the return code typed if any) and wakes the sync worker."""
    if code:
        answers = {**answers, "return-code": code}
    payload = kiosk.visit(answers, visit_kind=kind)
    payload["submitted_at"] = at.isoformat(timespec="milliseconds")
    if "display" not in payload:
        scores = payload["result"]["scores"]
        payload["display"] = {
            "languages": ["en"],
            "patient": {"name": f"{answers['given-name']} {answers['family-name']}", "birth_date": answers["dob"]},
            "scores": [
                {"id": "pain-now", "label": {"en": "Pain now"}, "value": scores["pain-now"], "fields": [],
                 "mcid": {"points": 2, "percent": 30}, "better": "lower"},
                {"id": "peg", "label": {"en": "PEG"}, "value": scores["peg"], "fields": [],
                 "mcid": {"points": 2, "percent": 30}, "better": "lower"},
            ],
        }
    kiosk.runtime.store.add("visit", payload, record_id=payload["intake_id"])
    kiosk.runtime.records_saved()
    return payload["intake_id"]


def arrived(hub, intake_id: str) -> bool:
    with hub.repo() as repo:
        return bool(repo.intake_records(intake_id))


def test_three_visits_of_one_patient_show_as_a_trend_with_the_improvement_flag(chromium, desk, tmp_path):
    hub, kiosk = desk
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=45)

    def visit(n: int, kind: str, code: str | None = None, **change) -> str:
        days, pain, (p1, p2, p3) = VISITS[n]
        answers = {**MARTA, "pain-now": pain, "peg-pain": p1, "peg-enjoyment": p2, "peg-activity": p3, **change}
        intake = send(kiosk, answers, kind, start + dt.timedelta(days=days), code)
        wait_until(lambda: arrived(hub, intake), timeout=30, what="the visit to reach the hub")
        return intake

    first = visit(0, "first")
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    log_in(page, hub.url, "maria", PASSWORD)

    # The first visit's page gives the patient's reference and return code.
    page.goto(f"{hub.url}/intakes/{first}")
    block = page.locator("#patient")
    assert "first visit: a new patient" in block.inner_text()
    ref = block.locator(".patient-ref").inner_text()
    code = block.locator(".return-code").inner_text()
    assert re.fullmatch(r"P-[A-Z2-9]{8}", ref) and re.fullmatch(r"[A-Z2-9]{3}-[A-Z2-9]{3}", code)

    second = visit(1, "returning")
    # The third time she gives the code, typed her way.
    third = visit(2, "returning", code=code.lower().replace("-", " "))
    namesake = send(kiosk, {**MARTA, "dob": "1975-11-02", "pain-now": 4, "peg-pain": 4, "peg-enjoyment": 4,
                            "peg-activity": 4}, "returning", start + dt.timedelta(days=43))
    wait_until(lambda: arrived(hub, namesake), timeout=30, what="the namesake's visit")

    page.goto(f"{hub.url}/intakes/{second}")
    block = page.locator("#patient")
    assert ref in block.inner_text() and "same name and birth date" in block.inner_text()
    page.get_by_role("button", name="Confirm: same patient").click()
    page.wait_for_selector("#patient >> text=confirmed by maria")
    page.locator("#patient").screenshot(path=str(tmp_path / "intake-patient.png"))

    page.goto(f"{hub.url}/intakes/{third}")
    assert "return code and birth date" in page.locator("#patient").inner_text()
    assert ref in page.locator("#patient").inner_text()

    # Same name, another birth date: another patient.
    page.goto(f"{hub.url}/intakes/{namesake}")
    other = page.locator("#patient")
    assert ref not in other.inner_text() and "no earlier visit matched" in other.inner_text()

    # The patient page: one plot per measure, the change, the flag.
    page.goto(f"{hub.url}/intakes/{third}")
    page.click("#patient .patient-ref")
    page.wait_for_selector("svg.trend")
    assert ref in page.inner_text("h1") and "Marta Quiroga" in page.inner_text("h1")
    peg = page.locator("#measure-1-peg")
    text = peg.inner_text()
    assert "First visit 6.7, latest 3.3: change from the first visit −3.4" in text
    assert "Clinically important improvement" in text
    labels = peg.locator("svg text.value").all_text_contents()
    assert labels == ["6.7", "5", "3.3"]
    assert peg.locator("svg .marker").count() == 3
    assert "3 visit(s)" in page.inner_text(".intake-head")
    docs = DOCS or tmp_path
    page.screenshot(path=str(docs / "patient-trend.png"), full_page=True)

    page.goto(f"{hub.url}/outcomes")
    row = page.locator("table.outcomes tbody tr").first
    assert "1" in row.locator("td").first.inner_text()
    assert "1 of 1 (100 %)" in row.inner_text()
    page.screenshot(path=str(docs / "outcomes.png"))
    context.close()

    hub_log = hub.log.read_text(errors="replace")
    for secret in ("Marta", "Quiroga", "1968-03-22"):
        assert secret not in hub_log, secret
