"""What the kiosk writes into a visit for the hub to show (kiosk/display.py):
everything comes from the pack's roles, figure and score labels, never from
the default pack's linkIds."""

import datetime as dt
import json

from kiosk.questionnaire import load_pack
from kiosk.visit import Visit

from .conftest import REPO

CORPUS = REPO / "tests" / "data" / "questionnaires"
BLUEBOOK = CORPUS / "hl7-questionnaire-example-bluebook.json"
RIVERSIDE = REPO / "tests" / "data" / "packs" / "riverside"


def answered(pack, language: str, answers: dict, **kw) -> dict:
    v = Visit(pack, language, dt.date(2026, 11, 21), **kw)
    for link_id, value in answers.items():
        if pack.has(link_id) and v.is_enabled(pack.item(link_id)):
            v.answer(link_id, value)
    return v.payload("complete")


def selftest() -> dict:
    return json.loads((REPO / "tests" / "data" / "selftest.json").read_text())["answers"]


def test_a_spanish_visit_is_worded_in_spanish_then_in_the_staff_language(pack):
    d = answered(pack, "es", {**selftest(), "given-name": "Ana", "family-name": "López"})["display"]
    assert d["languages"] == ["es", "en"]
    assert d["patient"] == {"name": "Ana López", "birth_date": "1961-04-02", "age": 65}
    marked = d["body_map"]["marked"]
    assert marked == ["lower-back", "left-leg"]
    labels = {r["code"]: r["label"] for r in d["body_map"]["regions"]}
    assert labels["lower-back"] == {"es": "Parte baja de la espalda", "en": "Lower back"}
    items = {i["linkId"]: i for i in d["questionnaires"][0]["items"]}
    assert items["rf-cancer"]["answer"] == {"es": "Sí", "en": "Yes"}
    assert items["dob"]["answer"] == {"es": "2 de abril de 1961", "en": "April 2, 1961"}
    assert items["pain-duration"]["answer"]["en"] == "More than 12 weeks"
    scores = {s["id"]: s for s in d["scores"]}
    assert scores["peg"]["label"] == {"es": "PEG (0-10)", "en": "PEG (0-10)"} and scores["peg"]["value"] == 5.3
    assert scores["startback"]["value"] == 4
    assert [(f["id"], f["label"]["es"], f["value"]) for f in scores["startback"]["fields"]] == [
        ("psychosocial", "psicosocial (0-5)", 1), ("risk", "grupo de riesgo", "medium")]


def test_the_staff_language_is_left_out_when_it_is_the_visits_or_the_pack_lacks_it(pack):
    assert answered(pack, "en", selftest())["display"]["languages"] == ["en"]
    assert answered(pack, "es", selftest(), staff_language="fr")["display"]["languages"] == ["es"]


def test_roles_not_linkids_name_the_patient(tmp_path):
    # A clinic's own questionnaire whose "name" is another linkId entirely.
    (tmp_path / "pack.json").write_text(json.dumps({
        "id": "births", "version": "1", "languages": ["en"], "roles": {"given_name": "nameOfChild"},
        "parts": [{"id": "bb", "questionnaire": str(BLUEBOOK)}]}))
    pack = load_pack(tmp_path)
    visit = json.loads((CORPUS / "visits" / BLUEBOOK.name).read_text())["answers"]
    d = answered(pack, "en", visit)["display"]
    assert d["patient"] == {"name": "Lucia", "birth_date": None, "age": None}
    assert d["body_map"] is None and d["scores"] == []
    # A bare questionnaire has no roles at all: nothing is guessed from linkIds.
    d = answered(load_pack(BLUEBOOK), "en", visit)["display"]
    assert d["patient"]["name"] is None
    items = {i["linkId"]: i for i in d["questionnaires"][0]["items"]}
    assert items["hepBgiven"]["answer"] == {"en": "Yes"} and items["birthWeight"]["answer"] == {"en": "3.2"}
    assert items["vitaminKDose1"]["level"] > items["vitaminKgiven"]["level"]  # nested as asked


def test_a_composed_visit_has_a_response_per_questionnaire_and_the_clinics_scores():
    pack = load_pack(RIVERSIDE)
    payload = answered(pack, "en", {**selftest(), "nk-sleep": "a-lot", "nk-work": "none", "nk-arm-numb": False})
    responses = payload["questionnaire_responses"]
    assert responses[0] == payload["questionnaire_response"] and responses[0]["id"] == payload["intake_id"]
    assert [r["questionnaire"] for r in responses] == [
        "https://clinic-kiosk.org/fhir/Questionnaire/default|1.0.0", "https://riverside.example/fhir/Questionnaire/neck|3"]
    assert {i["linkId"] for i in responses[1]["item"]} == {"neck"}
    d = payload["display"]
    assert [q["title"]["en"] for q in d["questionnaires"]] == ["Back pain intake", "Riverside neck check"]
    neck = next(s for s in d["scores"] if s["id"] == "neck-impact")
    assert (neck["label"]["en"], neck["value"], neck["fields"][0]["value"]) == ("Neck impact (0-4)", 2, "low")
    # A plain pack keeps one response, as before.
    assert "questionnaire_responses" not in answered(load_pack(), "en", selftest())
