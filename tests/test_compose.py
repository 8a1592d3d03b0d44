"""Composition: a clinic's own Questionnaire asked after the built-in intake
and screening, in one pack.json (issue 18)."""

import datetime as dt
import json

import pytest

from kiosk.questionnaire import PackError, load_pack
from kiosk.questionnaire.compose import has_screening
from kiosk.visit import Visit

from .conftest import REPO

BLUEBOOK = REPO / "tests" / "data" / "questionnaires" / "hl7-questionnaire-example-bluebook.json"


def composed(tmp_path, *parts, languages=("en", "es")):
    (tmp_path / "pack.json").write_text(json.dumps(
        {"id": "clinic", "version": "1", "languages": list(languages), "parts": list(parts)}))
    return load_pack(tmp_path)


def test_a_clinic_questionnaire_after_the_builtin_keeps_the_screening(tmp_path):
    pack = composed(tmp_path, {"id": "intake", "builtin": "default"}, {"id": "bb", "questionnaire": str(BLUEBOOK)})
    assert [p.id for p in pack.parts] == ["intake", "bb"]
    assert has_screening(pack)
    assert not has_screening(load_pack(BLUEBOOK))
    v = Visit(pack, "en", dt.date(2026, 11, 21))
    v.answer("rf-bladder", True)
    assert v.is_emergency()
    v = Visit(pack, "en", dt.date(2026, 11, 21))  # age still from the birth_date role
    v.answer("dob", "1950-01-01")
    v.answer("rf-first-episode", True)
    assert v.result().codes == ["rf-first-episode"]


def test_a_linkid_asked_by_two_parts_is_refused_by_name(tmp_path):
    with pytest.raises(PackError) as exc:
        composed(tmp_path, {"id": "intake", "builtin": "default"}, {"id": "again", "builtin": "default"})
    assert f"{tmp_path / 'pack.json'}:parts[1]: linkId 'rf-saddle' is already asked by part 'intake'" in exc.value.problems


def test_a_part_condition_hides_the_whole_part_until_it_holds(tmp_path):
    cond = [{"question": "pain-duration", "operator": "=", "answerCoding": {"code": "over-12-weeks"}}]
    pack = composed(tmp_path, {"id": "intake", "builtin": "default"},
                    {"id": "bb", "questionnaire": str(BLUEBOOK), "enableWhen": cond})
    v = Visit(pack, "en")
    bb = {i.link_id for i in pack.parts[1].pack.questions}
    assert not bb & {i.link_id for i in v.questions()}
    v.answer("pain-duration", "over-12-weeks")
    assert bb & {i.link_id for i in v.questions()}
