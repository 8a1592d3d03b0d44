"""A clinic's own Questionnaire composed after the built-in intake and
screening (issue 18), end to end: `clinic-kiosk replay` taps through the
real Kivy UI (headless) with the composed pack, `clinic-kiosk sync --once`
sends the visits to a real `clinic-hub serve` over TLS, and the staff page
in Debian's Chromium shows the patient's name, the body map as marked and
the scores under the pack's labels, from what the kiosk sent (the hub never
loads the pack). In Spanish the page also carries the staff language's
wording; an emergency answer still stops the visit before the clinic's part;
the exports follow the pack (a CSV column per score of the clinic's part, a
FHIR QuestionnaireResponse per questionnaire asked).
"""

import csv
import io
import json
import subprocess
import sys
import types

import pytest
from click.testing import CliRunner

from kiosk.config import Config
from kiosk.crypto import read_enrollment
from kiosk.cli import enroll_command

from .browser import PASSWORD, log_in
from .conftest import REPO_ROOT
from .test_export import fhir_answers, validated_bundle

PIN = 'staff_pin_hash = "scrypt$0BLXqBddUQQ44DSywD/Z5g==$Nup21dEKtRhuISsXkv0F8BwoXIVnccXGo8msFiIyOOg="'
DATA = REPO_ROOT / "tests" / "data"
BLUEBOOK = DATA / "questionnaires" / "hl7-questionnaire-example-bluebook.json"
RIVERSIDE = DATA / "packs" / "riverside"


def selftest_answers(**changes) -> dict:
    answers = json.loads((DATA / "selftest.json").read_text())["answers"]
    return {**answers, **changes}


class Kiosk:
    """A kiosk enrolled with the hub and configured with ``pack``, driven
    through its console commands in their own processes."""

    def __init__(self, hub, folder, pack, staff_language="en"):
        self.folder = folder
        self.data = folder / "data"
        cfg = Config().with_data_dir(self.data).replace("hub", url=hub.url)
        r = CliRunner().invoke(enroll_command, [hub.url, hub.enroll_code()], obj=types.SimpleNamespace(config=cfg))
        assert r.exit_code == 0, r.output
        self.kiosk_id = read_enrollment(self.data)["kiosk_id"]
        self.config = folder / "kiosk.toml"
        self.config.write_text(f'[kiosk]\n{PIN}\ncontent_pack = "{pack}"\nstaff_language = "{staff_language}"\n'
                               f'[hub]\nurl = "{hub.url}"\n')

    def run(self, *args):
        return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(self.config), "--data",
                               str(self.data), *map(str, args)], capture_output=True, text=True, timeout=600)

    def replay(self, name: str, language: str, answers: dict) -> tuple[dict, list[str]]:
        """Replays the visit in the real UI; (result JSON, screenshot names)."""
        visit = self.folder / f"{name}.json"
        visit.write_text(json.dumps({"language": language, "visit_date": "2026-11-21", "answers": answers}))
        shots = self.folder / f"{name}-shots"
        r = self.run("replay", visit, "--screenshots", shots)
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
        return out, sorted(p.name for p in shots.glob("*.png"))

    def sync(self) -> None:
        r = self.run("sync", "--once")
        assert r.returncode == 0, r.stderr[-3000:]
        status = json.loads(self.run("status").stdout)
        assert status["queue_depth"] == 0, (status, r.stdout, r.stderr)


@pytest.fixture
def desk(sqlite_hub):
    r = sqlite_hub.cli("user", "add", "maria", "--role", "staff", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    return sqlite_hub


def stored_payload(hub, intake_id: str) -> dict:
    with hub.repo() as repo:
        return next(r.payload for r in repo.intake_records(intake_id) if r.kind == "visit")


def intake_page(chromium, hub, intake_id: str, shot):
    context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log_in(page, hub.url, "maria", PASSWORD)
    page.goto(f"{hub.url}/intakes/{intake_id}")
    assert "Clinician summary" in page.inner_text("main"), page.inner_text("body")[:2000]
    page.screenshot(path=str(shot), full_page=True)
    return context, page


def score_text(page, label: str) -> str:
    return page.locator(f"dl.scores dt:has-text('{label}') + dd").inner_text()


def test_a_clinic_questionnaire_after_the_screening_reaches_the_staff_page(chromium, desk, tmp_path):
    hub = desk
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "pack.json").write_text(json.dumps(
        {"id": "clinic", "version": "1", "languages": ["en"],
         "parts": [{"id": "intake", "builtin": "default"}, {"id": "bluebook", "questionnaire": str(BLUEBOOK)}]}))
    kiosk = Kiosk(hub, tmp_path, tmp_path / "pack")
    bluebook = json.loads((DATA / "questionnaires" / "visits" / BLUEBOOK.name).read_text())["answers"]
    out, shots = kiosk.replay("visit", "en", selftest_answers(**bluebook))
    assert out["tier"] == "urgent" and out["scores"]["peg"] == 5.3
    assert shots[-1].endswith("thanks.png") and any("nameOfChild" in s for s in shots)
    kiosk.sync()

    context, page = intake_page(chromium, hub, out["intake_id"], tmp_path / "staff-intake.png")
    assert page.inner_text("h1") == "Selftest Patient"
    assert "Born 1961-04-02 · 65 years old" in page.inner_text("main")
    marked = page.locator(".region.marked title")
    assert [marked.nth(i).text_content() for i in range(marked.count())] == [
        "Lower back (marked)", "Left leg (marked)"]
    assert page.locator(".bodymap svg ellipse.figure").count() == 1  # the pack's outline: the head
    assert score_text(page, "PEG (0-10)") == "5.3"
    assert score_text(page, "STarT Back total (0-9)") == "4 · psychosocial (0-5) 1 · risk group medium"
    assert score_text(page, "Pain now (0-10)") == "6"
    # Both questionnaires, each under its title, the clinic's after the screening.
    titles = page.locator(".answers h3")
    assert [titles.nth(i).inner_text() for i in range(titles.count())] == [
        "Back pain intake", "NSW Government My Personal Health Record"]
    child = page.locator(".answers tr:has-text('Name of child') td").inner_text()
    assert child == "Lucia"
    context.close()

    # FHIR: one QuestionnaireResponse per questionnaire asked, each naming its own.
    fhir = tmp_path / "visits.json"
    assert hub.cli("export", "--format", "fhir", "--out", str(fhir)).exit_code == 0
    bundle = validated_bundle(fhir.read_bytes())
    responses = [e["resource"] for e in bundle["entry"]]
    assert [r["questionnaire"] for r in responses] == [
        "https://clinic-kiosk.org/fhir/Questionnaire/default|1.0.0", "http://hl7.org/fhir/Questionnaire/bb"]
    assert responses[0]["id"] == out["intake_id"] != responses[1]["id"]
    assert fhir_answers(responses[1])["nameOfChild"] == [{"valueString": "Lucia"}]
    assert "nameOfChild" not in fhir_answers(responses[0]) and "rf-cancer" not in fhir_answers(responses[1])


def test_in_spanish_the_staff_page_has_both_wordings_and_an_emergency_still_stops(chromium, desk, tmp_path):
    hub = desk
    kiosk = Kiosk(hub, tmp_path, RIVERSIDE, staff_language="en")
    neck = {"nk-sleep": "a-lot", "nk-work": "a-little", "nk-arm-numb": True}
    out, shots = kiosk.replay("visit", "es", selftest_answers(**{"given-name": "Ana", "family-name": "López",
                                                                 **neck}))
    # A later part can add a flag, never take the screening's away.
    assert out["codes"] == ["ci-blood-thinner", "nk-arm-numb", "rf-cancer"]
    assert out["scores"]["neck-impact"] == {"total": 3, "band": "high"}
    emergency, emergency_shots = kiosk.replay("emergency", "es", selftest_answers(
        **{"given-name": "Tomás", "rf-bladder": True, **neck}))
    assert emergency["tier"] == "emergency" and emergency_shots[-1].endswith("emergency.png")
    assert not any("nk-" in s for s in emergency_shots)  # the clinic's part is never reached
    kiosk.sync()

    context, page = intake_page(chromium, hub, out["intake_id"], tmp_path / "staff-intake-es.png")
    assert page.inner_text("h1") == "Ana López"
    # Scores and body map in the staff language, under the pack's labels.
    assert score_text(page, "Neck impact (0-4)") == "3 · impact high"
    assert score_text(page, "PEG (0-10)") == "5.3"
    assert page.locator(".region.marked").count() == 2
    assert "Marked: Lower back, Left leg" in page.inner_text(".bodymap")
    # Each answer as the patient read it, with the staff language's wording.
    row = page.locator(".answers tr:has-text('sueño')")
    assert "¿Cuánto le altera el sueño el dolor de cuello?" in row.inner_text()
    assert "How much does neck pain disturb your sleep?" in row.inner_text()
    assert row.locator("td").inner_text() == "Mucho\nA lot"
    assert "Revisión cervical de Riverside" in page.inner_text(".answers")
    assert "arm numbness or weakness" in page.inner_text(".summary")
    context.close()

    stopped = stored_payload(hub, emergency["intake_id"])
    assert stopped["status"] == "emergency" and "questionnaire_responses" not in stopped
    assert stopped["questionnaire_response"]["status"] == "stopped"
    assert stored_payload(hub, out["intake_id"])["display"]["languages"] == ["es", "en"]

    # CSV: the contract's columns filled as before, then the linkIds, then
    # the clinic's score (its band too); the stopped visit has none.
    table = tmp_path / "visits.csv"
    assert hub.cli("export", "--format", "csv", "--out", str(table)).exit_code == 0
    rows = list(csv.reader(io.StringIO(table.read_text())))
    header = rows[0]
    assert header[-2:] == ["score:neck-impact", "score:neck-impact:band"]
    assert "nk-sleep" in header and header.index("nk-sleep") < header.index("score:neck-impact")
    by_id = {r[0]: dict(zip(header, r)) for r in rows[1:]}
    done = by_id[out["intake_id"]]
    assert (done["peg"], done["startback_risk"], done["score:neck-impact"], done["score:neck-impact:band"]) == (
        "5.3", "medium", "3", "high")
    assert by_id[emergency["intake_id"]]["score:neck-impact"] == ""
    assert by_id[emergency["intake_id"]]["tier"] == "emergency"
