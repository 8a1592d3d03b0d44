"""A malformed content pack is refused with path:location: message lines."""


from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.pack import PackError, load_pack

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
    edit_json(q, lambda d: d["item"][0]["item"].append(dict(d["item"][0]["item"][0])))
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert f"{q}:item given-name: duplicate linkId" in result.output
    assert "Traceback" not in result.output


def test_enable_when_pointing_at_missing_item(pack_copy):
    q = pack_copy / "questionnaire.json"

    def change(d):
        d["item"][0]["item"][3]["enableWhen"] = [{"question": "no-such-item", "operator": "exists", "answerBoolean": True}]

    edit_json(q, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert "item phone.enableWhen: question 'no-such-item' is not an item" in result.output


def test_answer_option_of_wrong_type(pack_copy):
    q = pack_copy / "questionnaire.json"

    def change(d):
        item = next(i for i in _items(d) if i["linkId"] == "pain-duration")
        item["answerOption"][0] = {"valueInteger": 3}

    edit_json(q, change)
    result = validate(pack_copy)
    assert result.exit_code == 1
    assert "item pain-duration.answerOption[0]: answerOption has valueInteger; a choice item needs valueCoding" in result.output


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
    pack, problems = startup_problems(config.load(cfg))
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
