"""Instrument scoring: PEG, STarT Back, and the scoring behind the
clinic-supplied ODI and RMDQ packs."""

import datetime as dt

import pytest

from kiosk.questionnaire import load_pack
from kiosk.rules import evaluate

DAY = dt.date(2026, 11, 21)


def sbst(agree: set, item9: str) -> dict:
    a = {f"sbst-{i}": ("agree" if i in agree else "disagree") for i in range(1, 9)}
    a["sbst-9"] = item9
    return a


def test_startback_published_examples(pack):
    assert evaluate(pack.rules, sbst(set(), "not-at-all"), DAY).scores["startback"] == {"total": 0, "psychosocial": 0, "risk": "low"}
    assert evaluate(pack.rules, sbst(set(range(1, 9)), "extremely"), DAY).scores["startback"] == {"total": 9, "psychosocial": 5, "risk": "high"}


@pytest.mark.parametrize("agree,item9,expected", [
    ({1, 2, 3}, "very-much", {"total": 4, "psychosocial": 1, "risk": "medium"}),
    ({1, 2, 3}, "moderately", {"total": 3, "psychosocial": 0, "risk": "low"}),
    ({5, 6, 7}, "extremely", {"total": 4, "psychosocial": 4, "risk": "high"}),
    ({5, 6, 7}, "slightly", {"total": 3, "psychosocial": 3, "risk": "low"}),
])
def test_startback_bands(pack, agree, item9, expected):
    assert evaluate(pack.rules, sbst(agree, item9), DAY).scores["startback"] == expected


def test_startback_needs_all_nine(pack):
    a = sbst({1}, "slightly")
    del a["sbst-4"]
    assert evaluate(pack.rules, a, DAY).scores["startback"] is None


def test_peg_mean_one_decimal_and_needs_all_three(pack):
    s = evaluate(pack.rules, {"peg-pain": 6, "peg-enjoyment": 5, "peg-activity": 5}, DAY).scores
    assert s["peg"] == 5.3
    assert evaluate(pack.rules, {"peg-pain": 7, "peg-enjoyment": 8, "peg-activity": 8}, DAY).scores["peg"] == 7.7
    assert evaluate(pack.rules, {"peg-pain": 6, "peg-enjoyment": 5}, DAY).scores["peg"] is None


def test_pain_now_is_the_number(pack):
    assert evaluate(pack.rules, {"pain-now": 0}, DAY).scores["pain-now"] == 0


def test_odi_pack_scoring_published_example():
    pack = load_pack(load_pack().path.parent / "odi-rmdq")
    answers = dict(zip([f"odi-{i}" for i in range(1, 11)], [2, 1, 2, 1, 2, 2, 1, 2, 3, 2]))
    assert evaluate(pack.rules, answers, DAY).scores["odi"] == 36
    del answers["odi-10"]  # 9 answered: 16 / 45
    assert evaluate(pack.rules, answers, DAY).scores["odi"] == pytest.approx(35.6)
    del answers["odi-9"]  # 8 answered: no score
    assert evaluate(pack.rules, answers, DAY).scores["odi"] is None


def test_rmdq_counts_ticked_statements():
    pack = load_pack(load_pack().path.parent / "odi-rmdq")
    answers = {f"rmdq-{i}": i <= 7 for i in range(1, 25)}
    assert evaluate(pack.rules, answers, DAY).scores["rmdq"] == 7


def test_licensed_wording_is_not_shipped():
    pack = load_pack(load_pack().path.parent / "odi-rmdq")
    for item in pack.questions:
        assert "wording not included" in item.text["en"]


def test_a_score_uses_the_questionnaires_own_item_weights(pack_copy):
    """A clinic adding a questionnaire whose options carry itemWeight (or
    ordinalValue) need not copy the points into rules.json."""
    import datetime as dt

    from kiosk.questionnaire import load_pack
    from kiosk.rules import evaluate

    from .conftest import edit_json

    weight = "http://hl7.org/fhir/StructureDefinition/itemWeight"

    def add_weights(d):
        for group in d["item"]:
            for item in group.get("item", []):
                if item["linkId"] == "sbst-9":
                    for n, opt in enumerate(item["answerOption"]):
                        opt["extension"] = [{"url": weight, "valueDecimal": n * 10}]

    edit_json(pack_copy / "questionnaire.json", add_weights)
    edit_json(pack_copy / "rules.json", lambda d: d["scores"].append(
        {"id": "bother", "method": "sum", "items": ["sbst-9"]}))
    pack = load_pack(pack_copy)
    codes = [o.code for o in pack.item("sbst-9").options]
    result = evaluate(pack.rules, {"sbst-9": codes[2]}, dt.date(2026, 11, 21))
    assert result.scores["bother"] == 20
