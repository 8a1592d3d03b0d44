"""The QuestionnaireResponse the kiosk seals with every visit: valid FHIR R4,
nested as the Questionnaire, typed values, and a status that says whether
the visit was completed or stopped for an emergency.

Validated with fhir.resources' R4B models: R4B changed nothing in
QuestionnaireResponse from R4 (fhir.resources ships R5, R4B and STU3)."""

import datetime as dt
import json

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from kiosk.questionnaire import questionnaire_response
from kiosk.visit import Visit

from .conftest import REPO

R4_STATUS = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}


def valid(qr: dict) -> dict:
    """Checks ``qr`` against the FHIR R4 model (and the status code list,
    which the model leaves open); returns it for further asserts."""
    QuestionnaireResponse.model_validate(qr)
    assert qr["status"] in R4_STATUS
    json.dumps(qr)
    return qr


def answers(qr, link_id):
    """The answer list of ``link_id`` wherever it nests."""
    def walk(items):
        for node in items:
            if node["linkId"] == link_id:
                return node.get("answer")
            for below in [node.get("item", [])] + [a.get("item", []) for a in node.get("answer", [])]:
                hit = walk(below)
                if hit is not None:
                    return hit
        return None

    return walk(qr.get("item", []))


def selftest_visit(pack, language="en"):
    data = json.loads((REPO / "tests" / "data" / "selftest.json").read_text())
    v = Visit(pack, language, dt.date(2026, 11, 21))
    for link_id, value in data["answers"].items():
        v.answer(link_id, value)
    return v


def test_default_pack_visit_is_a_valid_completed_response(pack):
    p = selftest_visit(pack).payload("complete")
    qr = valid(p["questionnaire_response"])
    assert qr["status"] == "completed"
    assert qr["questionnaire"] == "https://clinic-kiosk.org/fhir/Questionnaire/default|1.0.0"
    assert qr["authored"] == p["submitted_at"] and qr["id"] == p["intake_id"]
    # nested as the questionnaire: groups hold their questions
    assert [i["linkId"] for i in qr["item"]] == ["about-you", "your-pain", "safety", "peg", "startback"]
    assert answers(qr, "given-name") == [{"valueString": "Selftest"}]
    assert answers(qr, "dob") == [{"valueDate": "1961-04-02"}]
    assert answers(qr, "pain-now") == [{"valueInteger": 6}]
    assert answers(qr, "rf-cancer") == [{"valueBoolean": True}]
    areas = answers(qr, "pain-areas")
    assert [a["valueCoding"]["code"] for a in areas] == ["lower-back", "left-leg"]
    assert areas[0]["valueCoding"]["display"] == "Lower back"
    assert answers(qr, "sbst-9")[0]["valueCoding"]["code"] == "moderately"


def test_question_text_is_in_the_questionnaire_language_whatever_the_patient_read(pack):
    qr = valid(selftest_visit(pack, "es").payload("complete")["questionnaire_response"])
    assert qr["language"] == "es"
    assert answers(qr, "pain-areas")[0]["valueCoding"]["display"] == "Lower back"


def test_emergency_visit_is_a_stopped_response_with_what_was_answered(pack):
    v = Visit(pack, "en", dt.date(2026, 11, 21))
    v.answer("given-name", "Olga")
    v.answer("rf-saddle", True)
    assert v.is_emergency()
    qr = valid(v.payload("emergency")["questionnaire_response"])
    assert qr["status"] == "stopped"
    assert answers(qr, "rf-saddle") == [{"valueBoolean": True}]
    assert answers(qr, "rf-bladder") is None  # never asked: not in the response


def test_answers_hidden_by_skip_logic_are_not_in_the_response(pack):
    v = selftest_visit(pack)
    qr = questionnaire_response(pack, {"given-name": "Ana", "no-such-item": 3}, status="complete",
                                authored="2026-11-21T10:00:00+00:00", enabled={"about-you"})
    assert "item" not in valid(qr)  # given-name is not enabled, so nothing to say
    assert answers(valid(v.payload("complete")["questionnaire_response"]), "phone") == [
        {"valueString": "+34 600 123 456"}]
