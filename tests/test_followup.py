"""Returning patients (issue 19), without a window: the follow-up path of
the default pack, the visit kind in visit files and payloads, ``ask`` on
pack parts, and the checks that keep the red-flag screening on every visit.
The welcome screen's two buttons and a real hub are in tests/test_ui.py."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.questionnaire import PackError, load_pack
from kiosk.questionnaire.compose import SCREENING_IDS
from kiosk.visit import Visit, read_visit_file

from .conftest import edit_json, negative_visit

#: What a returning patient of the default pack is asked, in order.
FOLLOW_UP = ["given-name", "family-name", "dob", "return-code", "pain-now", "pain-duration", *SCREENING_IDS,
             "peg-pain", "peg-enjoyment", "peg-activity", "groc"]
#: What a first visit asks that a follow-up does not.
FIRST_ONLY = {"phone", "pain-areas", *(f"sbst-{n}" for n in range(1, 10))}


def ids(visit):
    return [q.link_id for q in visit.questions()]


def validate(*paths):
    return CliRunner().invoke(cli, ["validate", *map(str, paths)])


def test_a_returning_patient_gets_the_short_path_with_the_whole_screening(pack):
    first = Visit(pack, "en", dt.date(2026, 11, 21))
    returning = Visit(pack, "en", dt.date(2026, 11, 21), visit_kind="returning")
    assert ids(returning) == FOLLOW_UP
    assert set(ids(first)) - set(ids(returning)) == FIRST_ONLY
    assert {"return-code", "groc"}.isdisjoint(ids(first))
    assert len(ids(first)) - len(ids(returning)) == len(FIRST_ONLY) - 2
    # The duration stays on a follow-up: bone risk with pain under six
    # weeks is urgent (shared/clinical/screening.md), on every visit.
    returning.answer("pain-duration", "under-6-weeks")
    returning.answer("rf-bone-risk", True)
    assert returning.result().tier == "urgent"
    # An answer a first visit gave that a follow-up hides never reaches the rules.
    returning.answers["sbst-1"] = "agree"
    assert "sbst-1" not in returning.effective_answers()


def test_a_returning_patients_emergency_answer_is_still_an_emergency(pack):
    v = Visit(pack, "es", dt.date(2026, 11, 21), visit_kind="returning")
    v.answer("given-name", "Ana")
    v.answer("rf-saddle", True)
    assert v.is_emergency()
    assert v.payload("emergency")["visit_kind"] == "returning"


def test_payload_carries_the_visit_kind_and_return_code_and_the_response_the_choice(pack):
    v = Visit(pack, "en", dt.date(2026, 11, 21), visit_kind="returning")
    v.answer("given-name", "Ana")
    v.answer("return-code", "K7QF")
    v.answer("groc", "better")
    p = v.payload("complete")
    assert p["visit_kind"] == "returning" and p["return_code"] == "K7QF"
    assert p["answers"]["visit-kind"] == "returning" and p["answers"]["groc"] == "better"
    about = next(i for i in p["questionnaire_response"]["item"] if i["linkId"] == "about-you")
    kind = next(i for i in about["item"] if i["linkId"] == "visit-kind")
    assert kind["answer"] == [{"valueCoding": {"code": "returning", "display": "I have been here before"}}]
    first = Visit(pack, "en").payload("complete")
    assert first["visit_kind"] == "first" and first["return_code"] is None
    skipped = Visit(pack, "en", visit_kind="returning")
    skipped.answer("return-code", "K7QF")
    skipped.skip("return-code")
    assert skipped.payload("complete")["return_code"] is None
    with pytest.raises(ValueError):
        Visit(pack, "en", visit_kind="again")


def test_visit_files_without_a_visit_kind_are_first_visits_and_may_name_one(tmp_path, pack):
    path = tmp_path / "visit.json"
    path.write_text(json.dumps(negative_visit(**{"phone": "600123456"})))
    vf = read_visit_file(path, pack)
    assert vf.warnings == [] and "visit-kind" not in vf.answers and vf.answers["phone"] == "600123456"
    visit = negative_visit(**{"visit-kind": "returning", "phone": "600123456", "groc": "same",
                              "sbst-1": "agree"})
    path.write_text(json.dumps(visit))
    vf = read_visit_file(path, pack)
    assert list(vf.answers)[0] == "visit-kind" and vf.answers["groc"] == "same"
    assert "phone" not in vf.answers and "sbst-1" not in vf.answers and "pain-duration" in vf.answers
    assert f"{path}:phone: hidden by skip logic for this visit; ignored" in vf.warnings
    path.write_text(json.dumps(negative_visit(**{"visit-kind": "later"})))
    result = CliRunner().invoke(cli, ["score", str(path)])
    assert result.exit_code == 2 and f"{path}:visit-kind: unknown code 'later'" in result.output


def _part(tmp_path, name, items, rules=None):
    """A small questionnaire part (en + es), with rules when given."""
    def text(en):
        return {"text": en, "_text": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/translation",
            "extension": [{"url": "lang", "valueCode": "es"}, {"url": "content", "valueString": "ES " + en}]}]}}

    q = {"resourceType": "Questionnaire", "id": name, "status": "active", "language": "en",
         "item": [{"linkId": i, "type": "boolean", **text(f"Question {i}?")} for i in items]}
    (tmp_path / f"{name}.json").write_text(json.dumps(q))
    spec = {"id": name, "questionnaire": f"{name}.json"}
    if rules is not None:
        (tmp_path / f"{name}-rules.json").write_text(json.dumps({"rules": rules, "scores": []}))
        spec["rules"] = f"{name}-rules.json"
    return spec


def composed(tmp_path, *parts):
    (tmp_path / "pack.json").write_text(json.dumps(
        {"id": "clinic", "version": "1", "languages": ["en", "es"], "parts": list(parts)}))
    return load_pack(tmp_path)


def test_ask_first_returning_and_always_choose_the_parts_of_a_visit(tmp_path):
    pack = composed(tmp_path, {"id": "intake", "builtin": "default"},
                    {**_part(tmp_path, "intake-extra", ["odi-like"]), "ask": "first"},
                    {**_part(tmp_path, "review", ["goals-met"]), "ask": "returning"},
                    {**_part(tmp_path, "every", ["any-news"]), "ask": "always"})
    first, returning = Visit(pack, "en"), Visit(pack, "en", visit_kind="returning")
    assert {"odi-like", "any-news"} <= set(ids(first)) and "goals-met" not in ids(first)
    assert {"goals-met", "any-news"} <= set(ids(returning)) and "odi-like" not in ids(returning)
    unknown = Visit(pack, "en")
    del unknown.answers["visit-kind"]  # as a visit file that does not say: a first visit
    assert ids(unknown) == ids(first)


def test_the_red_flag_screening_cannot_depend_on_the_visit_kind(tmp_path, pack_copy):
    def hide_safety(d):
        safety = next(i for i in d["item"] if i["linkId"] == "safety")
        safety["enableWhen"] = [{"question": "visit-kind", "operator": "!=",
                                 "answerCoding": {"code": "returning"}}]

    edit_json(pack_copy / "questionnaire.json", hide_safety)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert (f"{pack_copy / 'questionnaire.json'}:item safety: the red-flag screening ('rf-saddle') is asked on "
            "every visit; it cannot depend on 'visit-kind' (ask, enableWhen)") in result.output.splitlines()

    # A clinic's own emergency question is screening too: its part is always asked.
    flag = [{"id": "own", "tier": "emergency", "codes": ["own-flag"], "when": {"yes": "own-flag"},
             "reason": "the clinic's own red flag"}]
    with pytest.raises(PackError) as exc:
        composed(tmp_path, {"id": "intake", "builtin": "default"},
                 {**_part(tmp_path, "own", ["own-flag"], flag), "ask": "first"})
    assert exc.value.problems == [
        f"{tmp_path / 'pack.json'}:parts[1]: the red-flag screening ('own-flag') is asked on every visit; "
        "it cannot depend on 'visit-kind' (ask, enableWhen)"]
    assert composed(tmp_path, {"id": "intake", "builtin": "default"}, _part(tmp_path, "own", ["own-flag"], flag))


def test_ask_needs_the_visit_kind_of_an_earlier_part_and_all_of_its_conditions(tmp_path):
    with pytest.raises(PackError) as exc:
        composed(tmp_path, {**_part(tmp_path, "alone", ["q1"]), "ask": "returning"})
    assert exc.value.problems == [
        f"{tmp_path / 'pack.json'}:parts[0].ask: needs an earlier part with the visit-kind item "
        "(roles.visit_kind; the built-in intake has it)"]
    with pytest.raises(PackError) as exc:
        composed(tmp_path, {"id": "intake", "builtin": "default"},
                 {**_part(tmp_path, "x", ["q1"]), "ask": "first", "enableBehavior": "any",
                  "enableWhen": [{"question": "pain-now", "operator": ">", "answerInteger": 5}]})
    assert any(p.startswith(f"{tmp_path / 'pack.json'}:parts[1].ask: cannot be combined with enableBehavior 'any'")
               for p in exc.value.problems)
    with pytest.raises(PackError) as exc:
        composed(tmp_path, {"id": "intake", "builtin": "default"},
                 {**_part(tmp_path, "x", ["q1"]), "ask": "later"})
    assert any("parts[1].ask" in p for p in exc.value.problems)


def test_the_visit_kind_and_return_code_roles_are_checked(pack_copy):
    def shown(d):
        kind = next(i for i in d["item"][0]["item"] if i["linkId"] == "visit-kind")
        del kind["extension"]  # no longer hidden: it would be asked as a question too

    edit_json(pack_copy / "questionnaire.json", shown)
    edit_json(pack_copy / "pack.json", lambda d: d["roles"].update(return_code="pain-now"))
    out = validate(pack_copy).output.splitlines()
    assert (f"{pack_copy / 'pack.json'}:roles.visit_kind: 'visit-kind' must be a hidden (questionnaire-hidden) "
            "single choice with the codes 'first' and 'returning': the welcome screen answers it") in out
    assert (f"{pack_copy / 'pack.json'}:roles.return_code: 'pain-now' must be an optional string item the "
            "patient types") in out


def test_outcome_scores_declare_their_mcid_and_direction(pack, pack_copy):
    raw = {s["id"]: s for s in json.loads((pack.path / "rules.json").read_text())["scores"]}
    assert raw["peg"]["mcid"] == raw["pain-now"]["mcid"] == {"points": 2, "percent": 30}
    assert raw["peg"]["better"] == raw["pain-now"]["better"] == raw["startback"]["better"] == "lower"

    def break_them(d):
        scores = {s["id"]: s for s in d["scores"]}
        scores["peg"]["mcid"] = {"points": 0, "percent": "30"}
        scores["pain-now"]["better"] = "down"
        scores["startback"]["mcid"] = {"points": 1}
        del scores["startback"]["better"]

    edit_json(pack_copy / "rules.json", break_them)
    result = validate(pack_copy)
    rules = pack_copy / "rules.json"
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{rules}:scores[0] (pain-now).better: 'down' is not 'lower' or 'higher'",
        f'{rules}:scores[1] (peg).mcid: must be {{"points": N}} and/or {{"percent": N}}, each a number above 0',
        f"{rules}:scores[2] (startback).mcid: needs better ('lower' or 'higher'): which way is an improvement",
    ]
