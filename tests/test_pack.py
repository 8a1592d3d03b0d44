"""A malformed content pack is refused with path:location: message lines;
questionnaires from other tools are read with everything FHIR lets them say."""

import json

from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.questionnaire import PackError, load_pack

from .conftest import edit_json


def validate(*paths):
    return CliRunner().invoke(cli, ["validate", *map(str, paths)])


def test_default_pack_is_valid(pack_copy):
    result = validate(pack_copy)
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_engine_reads_fhir_items(pack):
    saddle = pack.item("rf-saddle")
    assert saddle.type == "boolean" and saddle.section == "safety"
    assert "numbness" in saddle.text["en"] and "entumecimiento" in saddle.text["es"]
    areas = pack.item("pain-areas")
    assert areas.repeats and areas.widget == "bodymap"
    assert [o.code for o in areas.options] == ["neck", "upper-back", "lower-back", "buttocks", "left-leg", "right-leg"]
    assert pack.item("pain-now").max_value == 10


def _items(q):
    for group in q["item"]:
        yield group
        yield from group.get("item", [])


def test_duplicate_linkid(pack_copy):
    q = pack_copy / "questionnaire.json"
    edit_json(q, lambda d: d["item"][0]["item"].append(
        dict(next(i for i in d["item"][0]["item"] if i["linkId"] == "given-name"))))
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert f"{q}:item given-name: duplicate linkId" in result.output
    assert "Traceback" not in result.output


def test_enable_when_pointing_at_missing_item(pack_copy):
    q = pack_copy / "questionnaire.json"

    def change(d):
        phone = next(i for i in d["item"][0]["item"] if i["linkId"] == "phone")
        phone["enableWhen"] = [{"question": "no-such-item", "operator": "exists", "answerBoolean": True}]

    edit_json(q, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert "item phone.enableWhen: question 'no-such-item' is not an item" in result.output


def test_answer_option_of_wrong_type(pack_copy):
    q = pack_copy / "questionnaire.json"

    def change(d):
        item = next(i for i in _items(d) if i["linkId"] == "pain-duration")
        item["answerOption"][0] = {"valueBoolean": True}

    edit_json(q, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert "item pain-duration.answerOption[0]: answerOption has valueBoolean; a choice item needs valueCoding or valueDate or valueInteger" in result.output


def test_broken_json_names_the_line(pack_copy):
    q = pack_copy / "questionnaire.json"
    q.write_text('{"resourceType": "Questionnaire",\n "item": [\n')
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert f"{q}:3: broken JSON" in result.output


def test_missing_translation(pack_copy):
    q = pack_copy / "questionnaire.json"

    def change(d):
        item = next(i for i in _items(d) if i["linkId"] == "rf-bowel")
        del item["_text"]

    edit_json(q, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert "item rf-bowel: text has no es translation" in result.output


def test_rule_with_unknown_linkid_wrong_threshold_and_bad_tier(pack_copy):
    r = pack_copy / "rules.json"

    def change(d):
        d["rules"][0]["when"] = {"yes": "rf-sadle"}
        d["rules"][1]["tier"] = "severe"
        d["rules"].append({"id": "x", "tier": "urgent", "codes": ["pain-now"], "reason": "r",
                           "when": {"answer": "pain-now", "op": ">=", "value": "eight"}})

    edit_json(r, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    out = result.output
    assert "rules[0] (ces-saddle).when: unknown linkId 'rf-sadle'" in out
    assert "rules[1] (ces-bladder): tier 'severe' is not one of emergency, urgent, caution, none" in out
    assert "threshold 'eight' does not fit 'pain-now', a integer item" in out


def test_kiosk_refuses_to_start_with_a_broken_pack(pack_copy, tmp_path):
    # `run` then shows the out-of-order screen (tests/test_notify.py) and
    # never opens the store.
    from kiosk import config
    from kiosk.runtime import startup_problems

    (pack_copy / "rules.json").write_text("{")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\ncontent_pack = "{pack_copy}"\ndata_dir = "{tmp_path}"\n')
    pack, _, problems = startup_problems(config.load(cfg))
    assert pack is None
    assert any("rules.json:1: broken JSON" in line for line in problems)
    assert not (tmp_path / "kiosk.db").exists()


def test_clinic_can_add_a_question_and_a_rule_without_python(pack_copy):
    def add_item(d):
        d["item"][2]["item"].append({
            "linkId": "ci-varicose", "type": "boolean", "text": "Do you have varicose veins?",
            "_text": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/translation",
                      "extension": [{"url": "lang", "valueCode": "es"}, {"url": "content", "valueString": "¿Tiene varices?"}]}]}})

    edit_json(pack_copy / "questionnaire.json", add_item)
    edit_json(pack_copy / "rules.json", lambda d: d["rules"].append(
        {"id": "varicose", "tier": "caution", "codes": ["ci-varicose"], "when": {"yes": "ci-varicose"}, "reason": "varicose veins: avoid deep pressure on them"}))
    pack = load_pack(pack_copy)
    from kiosk.rules import evaluate
    import datetime as dt

    assert evaluate(pack.rules, {"ci-varicose": True}, dt.date(2026, 1, 1)).tier == "caution"


def test_pack_error_lists_every_problem(pack_copy):
    r = pack_copy / "rules.json"
    edit_json(r, lambda d: [rule.__setitem__("tier", "bad") for rule in d["rules"][:3]])
    try:
        load_pack(pack_copy)
    except PackError as exc:
        assert len(exc.problems) == 3
    else:
        raise AssertionError("a broken pack loaded")


# -- questionnaires from other tools -------------------------------------------

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def es(text):
    return {"extension": [{"url": TRANSLATION, "extension": [
        {"url": "lang", "valueCode": "es"}, {"url": "content", "valueString": text}]}]}


def structure_questionnaire():
    """Every structural feature a published questionnaire may use."""
    return {
        "resourceType": "Questionnaire", "language": "en", "url": "http://example.org/q/s",
        "item": [
            {"linkId": "coded", "type": "boolean", "code": [{"system": "http://loinc.org", "code": "1-1",
                                                           "display": "Do you smoke?"}]},
            {"linkId": "times", "type": "integer", "text": "How many times?", "_text": es("¿Cuántas veces?"),
             "prefix": "2.", "answerOption": [{"valueInteger": 1}, {"valueInteger": 2, "initialSelected": True}]},
            {"linkId": "when", "type": "date", "text": "Which date?", "_text": es("¿Qué fecha?"),
             "answerOption": [{"valueDate": "2022"}, {"valueDate": "2022-09-20"}]},
            {"linkId": "note", "type": "text", "text": "Notes", "_text": es("Notas"), "maxLength": 5,
             "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/entryFormat", "valueString": "short"}]},
            {"linkId": "shown-any", "type": "string", "text": "Shown", "_text": es("Visible"),
             "enableBehavior": "any", "enableWhen": [
                 {"question": "times", "operator": ">=", "answerInteger": 2},
                 {"question": "coded", "operator": "exists", "answerBoolean": True}]},
            {"linkId": "shown-all", "type": "string", "text": "All", "_text": es("Todo"),
             "enableBehavior": "all", "enableWhen": [
                 {"question": "times", "operator": "<", "answerInteger": 2},
                 {"question": "when", "operator": "!=", "answerDate": "2022"}]},
            {"linkId": "ro", "type": "string", "text": "Read only", "readOnly": True},
            {"linkId": "hid", "type": "string", "text": "Hidden", "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden", "valueBoolean": True}]},
        ],
    }


def test_structure_of_published_questionnaires(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps(structure_questionnaire()))
    pack = load_pack(path)
    assert pack.item("coded").label("en") == "Do you smoke?"  # only a code: its display asks
    times = pack.item("times")
    assert times.label("es") == "2. ¿Cuántas veces?" and times.initial == 2 and times.widget == "choice"
    assert [o.code for o in pack.item("when").options] == ["2022", "2022-09-20"]
    assert pack.item("when").check_answer("2021") is not None
    note = pack.item("note")
    assert note.max_length == 5 and note.entry_format == "short" and note.widget == "text"
    assert note.check_answer("too long") == "at most 5 characters"
    asked = [i.link_id for i in pack.questions]
    assert "ro" not in asked and "hid" not in asked
    # the Spanish is incomplete (coded, ro and hid), so only English is offered
    assert pack.languages == ("en",)


def test_enable_when_operators_and_behaviour(tmp_path):
    from kiosk.visit import Visit

    path = tmp_path / "q.json"
    path.write_text(json.dumps(structure_questionnaire()))
    v = Visit(load_pack(path), "en")
    ids = lambda: [i.link_id for i in v.questions()]  # noqa: E731
    assert "shown-any" in ids()  # times starts at 2 (initialSelected): >= 2
    v.answer("times", 1)
    assert "shown-any" not in ids() and "shown-all" in ids()  # < 2, and when != 2022 while unanswered
    v.answer("coded", False)
    assert "shown-any" in ids()  # any: coded exists
    v.answer("when", "2022")
    assert "shown-all" not in ids()


def test_a_translated_bare_questionnaire_offers_both_languages(tmp_path):
    q = {"resourceType": "Questionnaire", "item": [
        {"linkId": "x", "type": "boolean", "text": "Pain?", "_text": es("¿Dolor?")}]}
    path = tmp_path / "q.json"
    path.write_text(json.dumps(q))
    assert load_pack(path).languages == ("en", "es")


def test_rules_and_enable_when_read_a_comparison_alike():
    # One answer against one threshold: a rule condition and an enableWhen
    # with the same operator decide the same, also for a value of the wrong type.
    from kiosk.questionnaire import EnableWhen, Item, enable_when_holds
    from kiosk.rules import holds

    for op in ("=", "!=", ">", ">=", "<", "<="):
        for answer, threshold in ((3, 5), (5, 5), (7, 5), (2.5, 2), ("x", 5)):
            item = Item("shown", "display", {"en": "x"}, enable_when=(EnableWhen("pain", op, ("answerInteger", threshold)),))
            rule = holds({"answer": "pain", "op": op, "value": threshold}, {"pain": answer}, {})
            assert enable_when_holds(item, {"pain": answer}) == rule, (op, answer, threshold)


def test_every_malformed_score_and_rule_is_one_line_never_a_traceback(pack_copy):
    r = pack_copy / "rules.json"

    def change(d):
        peg = next(s for s in d["scores"] if s["id"] == "peg")
        peg["decimals"] = "two"
        sbst = next(s for s in d["scores"] if s["id"] == "startback")
        sbst["subscales"] = ["sbst-1"]
        sbst["bands"] = [{"cases": [{"if": {"total": {">=": 4}}, "then": "high"}]}]
        d["rules"][0]["reason"] = ""
        d["rules"][0]["codes"] = []

    edit_json(r, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    for line in (
        f"{r}:scores[1] (peg).decimals: expected a whole number, got 'two'",
        f"{r}:scores[2] (startback).subscales: expected a table/object, got ['sbst-1']",
        f"{r}:scores[2] (startback).bands[0].name: required, but missing",
        f"{r}:rules[0] (ces-saddle): codes must be a non-empty list of linkIds",
        f"{r}:rules[0] (ces-saddle): reason (the clinician's summary line) is missing",
    ):
        assert line in out, (line, out)


def test_rules_that_are_not_a_list_say_so(pack_copy):
    r = pack_copy / "rules.json"
    edit_json(r, lambda d: d.update(rules={"ces-saddle": {}}))
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert f"{r}:rules: expected a list, got {{'ces-saddle': {{}}}}" in result.output
