"""The visit state: skip logic follows enableWhen live, back goes where the
patient came from, and hidden answers drop out."""

import datetime as dt
import json

import pytest

from kiosk.questionnaire import load_pack
from kiosk.rules import age_on
from kiosk.visit import Visit

from .conftest import edit_json


@pytest.fixture
def pack_with_skip_logic(pack_copy):
    def change(d):
        phone = next(i for i in d["item"][0]["item"] if i["linkId"] == "phone")
        phone["enableWhen"] = [{"question": "given-name", "operator": "exists", "answerBoolean": True}]
        pregnant = next(i for i in d["item"][2]["item"] if i["linkId"] == "ci-pregnant")
        pregnant["enableWhen"] = [{"question": "pain-duration", "operator": "!=", "answerCoding": {"code": "over-12-weeks"}}]

    edit_json(pack_copy / "questionnaire.json", change)
    return load_pack(pack_copy)


def test_enable_when_shows_and_hides_live(pack_with_skip_logic):
    v = Visit(pack_with_skip_logic, "en", dt.date(2026, 11, 21))
    ids = lambda: [i.link_id for i in v.questions()]
    assert "phone" not in ids()
    v.answer("given-name", "Ana")
    assert "phone" in ids()
    assert "ci-pregnant" in ids()
    v.answer("pain-duration", "over-12-weeks")
    assert "ci-pregnant" not in ids()
    v.answers["ci-pregnant"] = True  # answered earlier, now hidden
    assert "ci-pregnant" not in v.effective_answers()
    assert v.result().tier == "none"


def test_advance_skips_hidden_and_back_returns(pack_with_skip_logic):
    v = Visit(pack_with_skip_logic, "en")
    assert v.start().link_id == "given-name"
    assert v.advance().link_id == "family-name"  # no name yet: phone hidden
    v.back()
    assert v.current().link_id == "given-name"
    v.answer("given-name", "Ana")
    v.advance()
    v.advance()  # dob
    assert v.advance().link_id == "phone"


def test_review_edit_returns_to_review(pack):
    v = Visit(pack, "en")
    v.start()
    v.go_to("pain-now", reviewing=True)
    v.answer("pain-now", 3)
    assert v.advance() is None


def test_wrong_answer_type_is_refused(pack):
    v = Visit(pack, "en")
    with pytest.raises(ValueError, match="pain-now: must be at most 10"):
        v.answer("pain-now", 11)
    with pytest.raises(ValueError, match="unknown code"):
        v.answer("pain-areas", ["tail"])


def test_age_in_whole_years():
    assert age_on("2000-02-29", dt.date(2026, 2, 28)) == 25
    assert age_on("2000-02-29", dt.date(2026, 3, 1)) == 26
    assert age_on(None, dt.date(2026, 1, 1)) is None


def test_payload_has_no_score_for_the_patient_but_a_summary_for_staff(pack):
    v = Visit(pack, "es", dt.date(2026, 11, 21))
    v.answer("given-name", "Ana")
    v.answer("rf-night-pain", True)
    p = v.payload("complete")
    assert p["result"]["tier"] == "urgent"
    assert p["summary"][0]["reason"].startswith("night pain")
    assert "rf-saddle" in p["not_answered"]
    assert json.loads(json.dumps(p)) == p


def test_visit_file_answers_under_an_unanswered_question_are_ignored_with_a_warning(tmp_path):
    from kiosk.visit import read_visit_file

    from .conftest import REPO

    pack = load_pack(REPO / "tests" / "data" / "questionnaires" / "hl7-questionnaire-example-bluebook.json")
    path = tmp_path / "visit.json"
    path.write_text(json.dumps({"language": "en", "answers": {"hepBgivenDate": "2026-11-02", "sex": "F"}}))
    vf = read_visit_file(path, pack)
    assert vf.answers == {"sex": "F"}
    assert f"{path}:hepBgivenDate: hidden by skip logic for this visit; ignored" in vf.warnings
    path.write_text(json.dumps({"answers": {"hepBgiven": True, "hepBgivenDate": "2026-11-02"}}))
    assert read_visit_file(path, pack).answers == {"hepBgiven": True, "hepBgivenDate": "2026-11-02"}


def test_initial_answers_are_filled_in_and_can_be_changed(pack_copy):
    def change(d):
        d["item"][1]["item"][1]["initial"] = [{"valueInteger": 5}]

    edit_json(pack_copy / "questionnaire.json", change)
    v = Visit(load_pack(pack_copy), "en")
    assert v.answers["pain-now"] == 5
    v.answer("pain-now", 2)
    assert v.effective_answers()["pain-now"] == 2
