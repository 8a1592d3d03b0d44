"""Questionnaires from other FHIR tools, as a clinic would bring them: a
corpus of published R4 Questionnaires (tests/data/questionnaires/SOURCES.md)
through `validate`, the visit engine, `replay` in the real UI, and the
QuestionnaireResponse sealed with the visit; and broken questionnaires that
`validate` explains line by line."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.config import Config
from kiosk.crypto import open_sealed
from kiosk.questionnaire import load_pack
from kiosk.visit import Visit, read_visit_file

from .conftest import REPO, enroll_offline
from .test_fhir import answers, valid

CORPUS = REPO / "tests" / "data" / "questionnaires"
FILES = sorted(p.name for p in CORPUS.glob("*.json"))
EXE = [sys.executable, "-m", "kiosk.cli"]
PIN = 'staff_pin_hash = "scrypt$0BLXqBddUQQ44DSywD/Z5g==$Nup21dEKtRhuISsXkv0F8BwoXIVnccXGo8msFiIyOOg="'
HL7 = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"


def visit_of(name: str) -> Path:
    return CORPUS / "visits" / name


def answered(name: str):
    """The corpus questionnaire ``name`` answered from its visit file, as the
    kiosk would submit it."""
    pack = load_pack(CORPUS / name)
    vf = read_visit_file(visit_of(name), pack)
    v = Visit(pack, vf.language, vf.visit_date)
    for link_id, value in vf.answers.items():
        v.answer(link_id, value)
    return pack, v


def test_the_corpus_has_ten_published_questionnaires_each_with_a_visit():
    assert len(FILES) >= 10
    sources = (CORPUS / "SOURCES.md").read_text()
    for name in FILES:
        assert f"| {name} |" in sources
        assert visit_of(name).exists()


@pytest.mark.parametrize("name", FILES)
def test_validate_accepts_each_published_questionnaire(name):
    result = CliRunner().invoke(cli, ["validate", str(CORPUS / name)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", FILES)
def test_each_visit_becomes_a_valid_questionnaire_response(name):
    pack, v = answered(name)
    p = v.payload("complete")
    qr = valid(p["questionnaire_response"])
    assert qr["status"] == "completed"
    for link_id in v.effective_answers():
        assert answers(qr, link_id), f"{link_id} answered but not in the response"


def test_calculated_items_carry_their_computed_answers():
    # Apgar: the five itemWeights summed through FHIRPath variables
    _pack, v = answered("lhc-forms-apgar-with-itemWeight-variable.json")
    qr = valid(v.payload("complete")["questionnaire_response"])
    assert answers(qr, "9272-6") == [{"valueDecimal": 8}]
    assert "9272-6" not in [i.link_id for i in v.questions()]  # readOnly: never asked
    # weight() over answers from a contained ValueSet with ordinalValue
    _pack, v = answered("lhc-forms-q-with-contained-valueset.json")
    qr = valid(v.payload("complete")["questionnaire_response"])
    assert answers(qr, "link-2") == [{"valueDecimal": 12}]
    assert answers(qr, "link-1.1.1") == [{"valueCoding": {
        "system": "some-system-1", "code": "some-code-2", "display": "some-display-2-1"}}]
    # hidden and visible computed copies of a typed number, at any depth
    _pack, v = answered("lhc-forms-hidden-item-questionnaire.R4.json")
    qr = valid(v.payload("complete")["questionnaire_response"])
    for link_id in ("CE-HIDDEN", "CE-VISIBLE", "GROUP-VISIBLE/CE-VISIBLE", "GROUP-HIDDEN/CE-HIDDEN"):
        assert answers(qr, link_id) == [{"valueDecimal": 2.5}], link_id
    assert [i.link_id for i in v.questions()] == ["ITEM-VISIBLE"]


SCREENER = "android-fhir-screener-questionnaire.json"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def test_hidden_items_with_only_an_initial_value_pass_through_to_the_response():
    # The Android FHIR SDK's screener: hidden choice items with no answerOption,
    # only the Observation code that definition-based extraction needs
    pack, v = answered(SCREENER)
    qr = valid(v.payload("complete")["questionnaire_response"])
    assert answers(qr, "5.4.0") == [{"valueCoding": {"code": "8310-5", "display": "Temperature", "system": LOINC}}]
    assert answers(qr, "6.3.0") == [{"valueCoding": {"code": "59408-5", "display": "Oxygen Saturation",
                                                     "system": LOINC}}]
    assert answers(qr, "7.3.0") == [{"valueCoding": {"code": "8867-4", "display": "Heart rate", "system": LOINC}}]
    assert answers(qr, "6.2.2") == [{"valueString": "%"}]
    # under a hidden group that the patient's answer enables: there only when enabled
    assert answers(qr, "1.2.1") == [{"valueCoding": {"code": "386661006", "display": "Fever", "system": SNOMED}}]
    assert answers(qr, "1.4.1") == [{"valueCoding": {"code": "49727002", "display": "Cough", "system": SNOMED}}]
    assert answers(qr, "3.6.1")[0]["valueCoding"]["code"] == "161501007"
    assert answers(qr, "1.3.1") is None and answers(qr, "3.2.1") is None
    asked = [i.link_id for i in v.questions()]
    assert not {"1.2.1", "1.4.1", "5.4.0", "6.3.0", "7.3.0", "6.2.2"} & set(asked)
    # a choice item with no text and nothing to choose is never a screen either
    v = Visit(pack, "en")
    v.answer("1.1.0", ["44169009"])
    assert "1.5.1" not in [i.link_id for i in v.questions()]
    qr = valid(v.payload("complete")["questionnaire_response"])
    assert answers(qr, "1.5.1") == [{"valueCoding": {"code": "44169009", "display": "Loss of smell",
                                                     "system": SNOMED}}]


def test_a_visible_choice_item_with_nothing_to_choose_is_still_refused(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"resourceType": "Questionnaire", "item": [
        {"linkId": "c", "type": "choice", "text": "Pick one",
         "initial": [{"valueCoding": {"system": LOINC, "code": "8310-5"}}]},
        {"linkId": "h", "type": "choice", "text": "Hidden, no value",
         "extension": [{"url": HL7 + "questionnaire-hidden", "valueBoolean": True}]}]}))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:item c: a choice item needs answerOption or answerValueSet" in result.output
    assert f"{path}:item h: a choice item needs answerOption or answerValueSet" in result.output


def test_items_under_a_question_nest_in_its_answer():
    _pack, v = answered("hl7-questionnaire-example-bluebook.json")
    qr = valid(v.payload("complete")["questionnaire_response"])
    vitamin_k = answers(qr, "vitaminKgiven")
    assert vitamin_k[0]["valueCoding"] == {"code": "ORAL", "display": "ORAL"}
    doses = vitamin_k[0]["item"][0]
    assert doses["linkId"] == "vitaminKgivenDoses"
    assert doses["item"][0]["answer"][0]["valueDateTime"].startswith("2026-11-02T09:15:00")
    assert answers(qr, "hepBgiven")[0]["item"] == [
        {"linkId": "hepBgivenDate", "text": "Date given", "answer": [{"valueDate": "2026-11-02"}]}]
    assert answers(qr, "birthWeight") == [{"valueDecimal": 3.2}]


def test_nested_question_is_asked_only_after_its_parent_is_answered():
    pack = load_pack(CORPUS / "hl7-questionnaire-example-bluebook.json")
    v = Visit(pack, "en")
    asked = [i.link_id for i in v.questions()]
    assert "vitaminKDose1" not in asked and "hepBgivenDate" not in asked
    v.answer("hepBgiven", False)
    asked = [i.link_id for i in v.questions()]
    assert asked.index("hepBgivenDate") == asked.index("hepBgiven") + 1
    assert "vitaminKDose1" not in asked  # its group's enableWhen: vitamin K given exists


def test_typed_values_quantity_time_datetime_and_open_choice():
    qr = valid(answered("android-fhir-component_quantity.json")[1].payload("complete")["questionnaire_response"])
    assert answers(qr, "1") == [{"valueQuantity": {
        "value": 172.5, "unit": "centimeter", "system": "http://unitsofmeasure.org", "code": "cm"}}]
    qr = valid(answered("android-fhir-component_time_picker.json")[1].payload("complete")["questionnaire_response"])
    assert answers(qr, "1") == [{"valueTime": "07:45:00"}]
    qr = valid(answered("android-fhir-component_date_time_picker.json")[1].payload("complete")["questionnaire_response"])
    moment = dt.datetime.fromisoformat(answers(qr, "1")[0]["valueDateTime"])
    assert moment.tzinfo is not None and (moment.hour, moment.minute) == (14, 30)
    qr = valid(answered("android-fhir-component_open_choice.json")[1].payload("complete")["questionnaire_response"])
    assert [a["valueCoding"]["code"] for a in answers(qr, "1")] == ["ht", "copd"]


def test_enable_when_expression_decides_what_follows(tmp_path):
    pack = load_pack(CORPUS / "android-fhir-behavior_enable_when_expression.json")
    for code, shown in (("Y", "yes"), ("N", "no"), ("unknown", "unknown")):
        v = Visit(pack, "en")
        v.answer("1", code)
        assert [i.link_id for i in v.questions()] == ["1", shown]


def test_initial_answers_are_offered_and_items_with_only_help_text_read_it():
    pack = load_pack(CORPUS / "android-fhir-behavior_calculated_expression.json")
    assert Visit(pack, "en").answers == {"a-age-years": {"value": 0, "unit": "years"}}
    pack = load_pack(CORPUS / "android-fhir-component_text_fields.json")
    assert pack.item("4").label("en") == "Enter an integer (with unit)"
    assert pack.item("4").units[0].display == "kilogram"


def test_a_bare_questionnaire_offers_only_the_languages_it_is_written_in(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[clinic]\nlanguages = ["en", "es"]\n[kiosk]\n{PIN}\nscreening = "off"\n'
                   f'content_pack = "{CORPUS / "hl7-questionnaire-example-bluebook.json"}"\n')
    result = CliRunner().invoke(cli, ["validate", "--config", str(cfg)])
    assert "hl7-questionnaire-example-bluebook.json:language: does not cover es of [clinic] languages" \
        in result.output
    assert load_pack(CORPUS / "hl7-questionnaire-example-bluebook.json").languages == ("en",)


# -- a clinic's own questionnaire and the red-flag screening ------------------

BLUEBOOK = CORPUS / "hl7-questionnaire-example-bluebook.json"


def kiosk_toml(tmp_path, content_pack, extra: str = "") -> Path:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\n{PIN}\ndata_dir = "{tmp_path / "data"}"\ncontent_pack = "{content_pack}"\n{extra}')
    return cfg


def test_a_questionnaire_without_the_screening_is_refused_as_the_content_pack(tmp_path):
    cfg = kiosk_toml(tmp_path, BLUEBOOK)
    for args in (["validate", "--config", str(cfg)], ["validate", str(cfg)], ["--config", str(cfg), "validate"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        line = next(x for x in result.output.splitlines() if x.startswith(f"{cfg}:kiosk.content_pack: "))
        assert f"{BLUEBOOK} has no red-flag screening" in line
        assert '"parts"' in line and '{"builtin": "default"}' in line and 'screening = "off"' in line
    # `run` stops at the same line: the out-of-order screen, never a patient
    from kiosk import config
    from kiosk.runtime import startup_problems

    pack, _, problems = startup_problems(config.load(cfg))
    assert pack is None
    assert any(p.startswith(f"{cfg}:kiosk.content_pack: {BLUEBOOK} has no red-flag screening") for p in problems)
    # `replay` and `score` use the same pack: refused the same way
    r = run("--config", cfg, "--data", tmp_path / "data", "score", visit_of(BLUEBOOK.name))
    assert r.returncode == 1 and "has no red-flag screening" in r.stderr + r.stdout


def test_a_composed_pack_without_the_builtin_screening_is_refused_too(tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "bluebook.json").write_bytes(BLUEBOOK.read_bytes())
    (folder / "pack.json").write_text(json.dumps({"id": "clinic", "version": "1", "languages": ["en"],
                                                  "parts": [{"questionnaire": "bluebook.json"}]}))
    cfg = kiosk_toml(tmp_path, folder)
    result = CliRunner().invoke(cli, ["validate", "--config", str(cfg)])
    assert result.exit_code == 1
    assert f"{cfg}:kiosk.content_pack: {folder} has no red-flag screening" in result.output
    # asked after the built-in intake and screening, it is welcome
    (folder / "pack.json").write_text(json.dumps({"id": "clinic", "version": "1", "languages": ["en"], "parts": [
        {"id": "intake", "builtin": "default"}, {"id": "baby", "questionnaire": "bluebook.json"}]}))
    result = CliRunner().invoke(cli, ["validate", str(cfg)])  # the config and its pack (not the media)
    assert result.exit_code == 0, result.output
    assert "screening" not in result.output


def test_screening_off_in_words_runs_the_questionnaire_and_validate_says_so_each_time(tmp_path):
    cfg = kiosk_toml(tmp_path, BLUEBOOK, 'screening = "off"\n')
    for args in (["validate", str(cfg)], ["validate", str(cfg)], ["validate", "--config", str(cfg)]):
        result = CliRunner().invoke(cli, args)
        assert "kiosk.content_pack" not in result.output
        if args[1] != "--config":  # (the whole check also looks at the media, not rendered here)
            assert result.exit_code == 0, result.output
        assert (f'warning: {cfg}:kiosk.screening: "off": the content pack {BLUEBOOK} has no red-flag screening'
                in result.output)
    from kiosk import config
    from kiosk.runtime import startup_problems

    pack, _, problems = startup_problems(config.load(cfg))
    assert problems == [] and pack.path == BLUEBOOK


def test_screening_takes_only_on_or_off(tmp_path):
    cfg = kiosk_toml(tmp_path, BLUEBOOK, 'screening = "no"\n')
    result = CliRunner().invoke(cli, ["validate", "--config", str(cfg)])
    assert result.exit_code == 1
    assert f"{cfg}:kiosk.screening: 'no' must be \"on\" or \"off\"" in result.output


def test_validating_a_questionnaire_file_alone_says_what_it_needs_as_the_content_pack():
    result = CliRunner().invoke(cli, ["validate", str(BLUEBOOK)])
    assert result.exit_code == 0
    assert f"warning: {BLUEBOOK}: has no red-flag screening" in result.output


# -- bad input --------------------------------------------------------------


def broken_questionnaire() -> dict:
    return {
        "resourceType": "Questionnaire",
        "url": "http://example.org/Questionnaire/broken",
        "item": [
            {"linkId": "a", "type": "boolean", "text": "A?",
             "enableWhen": [{"question": "b", "operator": "=", "answerBoolean": True}]},
            {"linkId": "b", "type": "boolean", "text": "B?",
             "enableWhen": [{"question": "a", "operator": "=", "answerBoolean": True}]},
            {"linkId": "g", "type": "group", "text": "G", "item": [
                {"linkId": "dup", "type": "string", "text": "Duplicate"},
                {"linkId": "dup", "type": "string", "text": "Duplicate at another depth"},
                {"linkId": "total", "type": "decimal", "text": "Total", "extension": [
                    {"url": SDC + "sdc-questionnaire-calculatedExpression",
                     "valueExpression": {"language": "text/fhirpath", "expression": "%resource.item.where("}}]},
                {"linkId": "score", "type": "decimal", "text": "Score", "extension": [
                    {"url": SDC + "sdc-questionnaire-calculatedExpression",
                     "valueExpression": {"language": "text/fhirpath",
                                         "expression": "%resource.item.where(linkId='nope').answer.value"}}]},
            ]},
            {"linkId": "vs", "type": "choice", "text": "C?", "answerValueSet": "http://loinc.org/vs/LL1-1"},
            {"linkId": "photo", "type": "attachment", "text": "A photo"},
            {"linkId": "who", "type": "reference", "text": "Your doctor"},
            {"linkId": "odd", "type": "string", "text": "Odd",
             "extension": [{"url": "http://example.org/fancy-widget", "valueString": "x"}]},
        ],
    }


def test_validate_lists_every_problem_of_a_questionnaire_at_once(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken_questionnaire()))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    expected = [
        f"{path}:item dup: duplicate linkId",
        f"{path}:item a.enableWhen: enableWhen cycle: a -> b -> a",
        f"{path}:item total.calculatedExpression: FHIRPath does not parse",
        f"{path}:item score.calculatedExpression: names item 'nope', which is not in the questionnaire",
        f"{path}:item vs: answerValueSet 'http://loinc.org/vs/LL1-1' is not contained in the questionnaire",
        f"{path}:item photo: type 'attachment' is not supported",
        f"{path}:item who: type 'reference' is not supported",
    ]
    for line in expected:
        assert line in out, line
    # an unknown extension is a notice, never silently acted on
    assert "item odd: extension http://example.org/fancy-widget is not understood by the kiosk" in out


def test_unknown_extension_alone_is_a_notice_and_validate_passes(tmp_path):
    path = tmp_path / "q.json"
    q = {"resourceType": "Questionnaire", "item": [{"linkId": "x", "type": "string", "text": "X?",
         "extension": [{"url": "http://example.org/fancy-widget", "valueString": "x"}]}]}
    path.write_text(json.dumps(q))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0
    assert f"warning: {path}:item x: extension http://example.org/fancy-widget is not understood" in result.output


def run(*args):
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_replay_refuses_an_answer_of_the_wrong_type_naming_the_linkid(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\n{PIN}\nscreening = "off"\n'
                   f'content_pack = "{CORPUS / "hl7-questionnaire-example-bluebook.json"}"\n')
    visit = tmp_path / "visit.json"
    visit.write_text(json.dumps({"language": "en", "answers": {"birthWeight": "heavy"}}))
    r = run("--config", cfg, "--data", tmp_path / "data", "replay", visit)
    assert r.returncode == 2
    assert f"{visit}:birthWeight: expected a number" in r.stderr
    assert "Traceback" not in r.stderr


# -- the real UI ------------------------------------------------------------

REPLAYED = [
    "hl7-questionnaire-example-bluebook.json",      # decimal, dateTime, date, string, bare codes, nesting
    "android-fhir-component_quantity.json",         # number + unit choice
    "android-fhir-component_text_fields.json",      # integer and decimal pads, questionnaire-unit
    "android-fhir-component_time_picker.json",      # time pad
    "lhc-forms-apgar-with-itemWeight-variable.json",  # computed total after choices in the UI
    SCREENER,                                       # hidden items that carry only an initial Coding
]


def replay_in_kiosk(tmp_path, questionnaire: Path, visit: Path):
    """``clinic-kiosk replay`` of ``visit`` on a kiosk configured with
    ``questionnaire``; returns (result JSON, screenshot names, the sealed
    visit payload opened with the clinic's key)."""
    data = tmp_path / "data"
    key = enroll_offline(Config().with_data_dir(data))
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\n{PIN}\nscreening = "off"\ncontent_pack = "{questionnaire}"\n')
    shots = tmp_path / "shots"
    r = run("--config", cfg, "--data", data, "replay", visit, "--screenshots", shots)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    import sqlite3

    con = sqlite3.connect(data / "kiosk.db")
    try:
        rows = con.execute("select kind, body from outbox").fetchall()
    finally:
        con.close()
    payloads = [json.loads(open_sealed(key, body)) for kind, body in rows if kind == "visit"]
    assert len(payloads) == 1
    return out, sorted(p.name for p in shots.glob("*.png")), payloads[0]


@pytest.mark.parametrize("name", REPLAYED)
def test_a_published_questionnaire_is_answered_to_the_end_in_the_kiosk(tmp_path, name):
    out, shots, payload = replay_in_kiosk(tmp_path, CORPUS / name, visit_of(name))
    assert out["screens"] == len(shots) and shots[-1].endswith("thanks.png")
    qr = valid(payload["questionnaire_response"])
    expected = read_visit_file(visit_of(name), load_pack(CORPUS / name)).answers
    assert set(payload["answers"]) == set(expected)
    for link_id in expected:
        assert answers(qr, link_id), link_id
    if name.startswith("lhc-forms-apgar"):
        assert answers(qr, "9272-6") == [{"valueDecimal": 8}]
    if name == SCREENER:
        assert answers(qr, "7.3.0") == [{"valueCoding": {"code": "8867-4", "display": "Heart rate",
                                                         "system": LOINC}}]


def test_any_characters_in_a_linkid_and_every_widget_survive_replay(tmp_path):
    odd = "Q/1 a:b?*<é>"
    unit = {"url": HL7 + "questionnaire-unit",
            "valueCoding": {"system": "http://unitsofmeasure.org", "code": "kg", "display": "kg"}}
    q = {"resourceType": "Questionnaire", "url": "http://example.org/q/odd", "version": "2",
         "item": [
             {"linkId": "intro", "type": "display", "text": "A few questions about your visit."},
             {"linkId": odd, "type": "text", "text": "Anything else?", "maxLength": 40},
             {"linkId": "other", "type": "open-choice", "text": "Who sent you?",
              "answerOption": [{"valueString": "My doctor"}, {"valueString": "A friend"}]},
             {"linkId": "same", "type": "open-choice", "text": "Who else?",
              "answerOption": [{"valueString": "My doctor"}, {"valueString": "A friend"}]},
             {"linkId": "weight", "type": "quantity", "text": "Your weight?", "extension": [unit]},
             {"linkId": "temp", "type": "decimal", "text": "Temperature?", "extension": [
                 {"url": HL7 + "minValue", "valueDecimal": 34}, {"url": HL7 + "maxValue", "valueDecimal": 43}]},
             {"linkId": "../etc", "type": "boolean", "text": "Is that all?"}]}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(q))
    visit = tmp_path / "visit.json"
    visit.write_text(json.dumps({"language": "en", "answers": {
        odd: "Sore neck, 2 days.", "other": "Gym coach", "same": "A friend", "weight": 71.5, "temp": 37.2,
        "../etc": True}}))
    out, shots, payload = replay_in_kiosk(tmp_path, path, visit)
    assert len(shots) == out["screens"] == 11
    assert all("/" not in s for s in shots)
    assert not (tmp_path / "etc.png").exists()
    qr = valid(payload["questionnaire_response"])
    assert qr["questionnaire"] == "http://example.org/q/odd|2"
    assert answers(qr, odd) == [{"valueString": "Sore neck, 2 days."}]
    assert answers(qr, "other") == [{"valueString": "Gym coach"}]
    assert answers(qr, "same") == [{"valueString": "A friend"}]
    assert answers(qr, "weight") == [{"valueQuantity": {
        "value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}]
    assert answers(qr, "temp") == [{"valueDecimal": 37.2}]
    assert answers(qr, "../etc") == [{"valueBoolean": True}]
