"""The rule engine: triage tiers, scores and skip logic, as pure functions.

Rules and scores are data in the content pack's ``rules.json``::

    {"rules": [
       {"id": "ces-saddle", "tier": "emergency", "codes": ["rf-saddle"],
        "when": {"yes": "rf-saddle"},
        "reason": "possible cauda equina syndrome: saddle sensory change"},
       {"id": "first-episode-age", "tier": "urgent", "codes": ["rf-first-episode"],
        "when": {"all": [{"yes": "rf-first-episode"},
                         {"any": [{"computed": "age", "op": ">=", "value": 55},
                                  {"computed": "age", "op": "<", "value": 20}]}]},
        "reason": "first episode outside 20-55 years"}],
     "scores": [{"id": "peg", "method": "mean", "items": ["peg-pain", ...], "decimals": 1}]}

A condition is ``{"yes": linkId}``, ``{"answer": linkId, "op": OP, "value": V}``
(OP one of ``= != > >= < <= in includes answered``), ``{"computed": "age", ...}``,
or ``all`` / ``any`` / ``not`` of conditions. A missing answer never fires a
rule. Every finished intake gets the highest tier any rule reaches and the
sorted list of codes of every rule that fired.

>>> evaluate(pack.rules, {"rf-saddle": True}, dt.date(2026, 11, 21)).tier   # doctest: +SKIP
'emergency'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .compare import COMPARE, compare

TIERS = ("emergency", "urgent", "caution", "none")
TIER_RANK = {t: len(TIERS) - 1 - i for i, t in enumerate(TIERS)}  # none=0 … emergency=3
RULE_OPS = {*COMPARE, "in", "includes", "answered"}
COMPUTED = {"age"}
SCORE_METHODS = {"value", "mean", "sum", "percent"}
#: The tests a score band may use (``!=`` makes no band).
BAND_OPS = {">=", ">", "<", "<=", "="}


@dataclass(frozen=True)
class Rule:
    id: str
    tier: str
    codes: tuple[str, ...]
    when: Any
    reason: str


@dataclass(frozen=True)
class Score:
    id: str
    method: str
    items: tuple[str, ...]
    min_answered: int
    decimals: int | None = None
    points: dict = field(default_factory=dict)
    subscales: dict = field(default_factory=dict)
    bands: tuple = ()
    max_per_item: float | None = None
    notice: str = ""


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    scores: tuple[Score, ...]
    birth_date: str | None = "dob"  # the item ``computed: age`` counts from (the pack's birth_date role)


@dataclass(frozen=True)
class Finding:
    code: str
    tier: str
    reason: str
    rule: str


@dataclass(frozen=True)
class Result:
    tier: str
    codes: list[str]
    scores: dict
    summary: list[Finding]

    def as_json(self) -> dict:
        """The result JSON of the public contract."""
        return {"tier": self.tier, "codes": self.codes, "scores": self.scores}

    def summary_json(self) -> list[dict]:
        return [{"code": f.code, "tier": f.tier, "reason": f.reason, "rule": f.rule} for f in self.summary]


# -- age ---------------------------------------------------------------------


def age_on(dob: str | None, day: dt.date) -> int | None:
    """Whole years from ``dob`` (ISO date) to ``day``; None if unknown.

    >>> age_on("1961-04-02", dt.date(2026, 4, 1))
    64
    >>> age_on("1961-04-02", dt.date(2026, 4, 2))
    65
    """
    if not dob:
        return None
    try:
        born = dt.date.fromisoformat(dob)
    except (TypeError, ValueError):
        return None
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return years if years >= 0 else None


# -- conditions --------------------------------------------------------------


def _compare(op: str, actual, expected) -> bool:
    if op == "answered":
        return (actual is not None) == bool(expected)
    if actual is None:
        return False
    if op == "in":
        try:
            return actual in expected
        except TypeError:
            return False
    if op == "includes":
        return isinstance(actual, list) and expected in actual
    return compare(op, actual, expected)


def holds(cond: dict, answers: dict, computed: dict) -> bool:
    """Whether a rule condition holds for these answers (pure)."""
    if "all" in cond:
        return all(holds(c, answers, computed) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, answers, computed) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], answers, computed)
    if "yes" in cond:
        return answers.get(cond["yes"]) is True
    if "computed" in cond:
        return _compare(cond["op"], computed.get(cond["computed"]), cond.get("value"))
    return _compare(cond["op"], answers.get(cond["answer"]), cond.get("value"))


# -- scoring -----------------------------------------------------------------


def _round(x: float, decimals: int | None):
    if decimals is None:
        return x
    q = Decimal(1).scaleb(-decimals)
    value = float(Decimal(str(x)).quantize(q, rounding=ROUND_HALF_UP))
    return int(value) if decimals == 0 else value


def _points(score: Score, link_id: str, value) -> float:
    table = score.points.get(link_id, score.points.get("*"))
    if table is None:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        return float(value)
    key = str(value).lower() if isinstance(value, bool) else str(value)
    return float(table.get(key, 0))


def compute_score(score: Score, answers: dict):
    """One score from the answers; None when too few items are answered."""
    answered = [i for i in score.items if answers.get(i) is not None]
    if len(answered) < score.min_answered:
        return None
    if score.method == "value":
        return answers[score.items[0]]
    pts = {i: _points(score, i, answers[i]) for i in answered}
    total = sum(pts.values())
    if score.method == "mean":
        return _round(total / len(answered), score.decimals)
    if score.method == "percent":
        return _round(total / (score.max_per_item * len(answered)) * 100, score.decimals)
    # sum, possibly with subscales and bands
    total = _round(total, score.decimals if score.decimals is not None else 0)
    if not score.subscales and not score.bands:
        return total
    out = {"total": total}
    for name, items in score.subscales.items():
        out[name] = _round(sum(pts.get(i, 0) for i in items), 0)
    for band in score.bands:
        out[band["name"]] = next(
            (b["then"] for b in band["cases"] if all(
                compare(op, out[var], v) for var, test in b.get("if", {}).items() for op, v in test.items()
            )),
            None,
        )
    return out


# -- evaluation --------------------------------------------------------------


def evaluate(ruleset: RuleSet, answers: dict, visit_date: dt.date) -> Result:
    """Tier, codes, scores and clinician summary for a set of answers (pure)."""
    computed = {"age": age_on(answers.get(ruleset.birth_date) if ruleset.birth_date else None, visit_date)}
    fired = [r for r in ruleset.rules if holds(r.when, answers, computed)]
    tier = max((r.tier for r in fired), key=TIER_RANK.__getitem__, default="none")
    codes = sorted({c for r in fired for c in r.codes})
    order = sorted(fired, key=lambda r: -TIER_RANK[r.tier])  # stable: pack order within a tier
    summary = [Finding(", ".join(r.codes), r.tier, r.reason, r.id) for r in order]
    scores = {s.id: compute_score(s, answers) for s in ruleset.scores}
    return Result(tier, codes, scores, summary)


# -- parsing and validation --------------------------------------------------


class _Checker:
    def __init__(self, items: dict, path: str):
        self.items = items
        self.path = path
        self.problems: list[str] = []

    def problem(self, where: str, msg: str) -> None:
        self.problems.append(f"{self.path}:{where}: {msg}")

    def item(self, where: str, link_id) -> Any:
        item = self.items.get(link_id) if isinstance(link_id, str) else None
        if item is None:
            self.problem(where, f"unknown linkId {link_id!r}")
        return item

    def value_fits(self, where: str, item, op: str, value) -> None:
        if op == "answered":
            if not isinstance(value, bool):
                self.problem(where, "'answered' needs true or false")
            return
        values = value if op == "in" else [value]
        if op == "in" and not isinstance(value, list):
            self.problem(where, "'in' needs a list")
            return
        if op == "includes" and not item.repeats:
            self.problem(where, f"'includes' needs a multi-choice item; {item.link_id!r} is not")
            return
        for v in values:
            if item.type == "choice":
                bad = item.option(v) is None
            elif item.type == "boolean":
                bad = not isinstance(v, bool)
            elif item.type in ("integer", "decimal"):
                bad = isinstance(v, bool) or not isinstance(v, (int, float))
            else:
                bad = not isinstance(v, str)
            if bad:
                self.problem(where, f"threshold {v!r} does not fit {item.link_id!r}, a {item.type} item")

    def condition(self, where: str, cond) -> None:
        if not isinstance(cond, dict) or len(cond) == 0:
            self.problem(where, "a condition must be an object")
            return
        if "all" in cond or "any" in cond:
            key = "all" if "all" in cond else "any"
            if not isinstance(cond[key], list) or not cond[key]:
                self.problem(where, f"'{key}' needs a non-empty list")
                return
            for n, c in enumerate(cond[key]):
                self.condition(f"{where}.{key}[{n}]", c)
        elif "not" in cond:
            self.condition(f"{where}.not", cond["not"])
        elif "yes" in cond:
            item = self.item(where, cond["yes"])
            if item is not None and item.type != "boolean":
                self.problem(where, f"'yes' needs a yes/no item; {item.link_id!r} is {item.type}")
        elif "answer" in cond or "computed" in cond:
            op = cond.get("op")
            if op not in RULE_OPS:
                self.problem(where, f"op {op!r} is not one of {', '.join(sorted(RULE_OPS))}")
                return
            if "computed" in cond:
                if cond["computed"] not in COMPUTED:
                    self.problem(where, f"unknown computed value {cond['computed']!r} (known: age)")
                elif op != "answered" and (isinstance(cond.get("value"), bool) or not isinstance(cond.get("value"), (int, float))):
                    self.problem(where, f"threshold {cond.get('value')!r} for age must be a number")
                return
            item = self.item(where, cond["answer"])
            if item is not None:
                self.value_fits(where, item, op, cond.get("value"))
        else:
            self.problem(where, f"unknown condition {sorted(cond)} (use yes, answer, computed, all, any, not)")


def _weights(items: dict, score_items: list, points: dict) -> dict:
    """Points tables from the questionnaire's own ordinalValue / itemWeight,
    for the score's items that rules.json gives no table for."""
    out = {}
    for link_id in score_items:
        item = items.get(link_id) if isinstance(link_id, str) else None
        if item is None or link_id in points or "*" in points:
            continue
        table = {str(o.code): o.weight for o in item.options if o.weight is not None}
        if table:
            out[link_id] = table
    return out


def _check_outcome(ck: _Checker, where: str, raw: dict) -> None:
    """A score's outcome metadata, for the hub's change over visits:
    ``better`` ("lower" or "higher") and ``mcid``, the smallest change that
    matters clinically, in points and/or percent of the first value::

        {"id": "peg", ..., "mcid": {"points": 2, "percent": 30}, "better": "lower"}
    """
    if "better" in raw and raw["better"] not in ("lower", "higher"):
        ck.problem(f"{where}.better", f"{raw['better']!r} is not 'lower' or 'higher'")
    if "mcid" not in raw:
        return
    mcid = raw["mcid"]
    if not (isinstance(mcid, dict) and mcid and set(mcid) <= {"points", "percent"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in mcid.values())):
        ck.problem(f"{where}.mcid", 'must be {"points": N} and/or {"percent": N}, each a number above 0')
    elif "better" not in raw:
        ck.problem(f"{where}.mcid", "needs better ('lower' or 'higher'): which way is an improvement")


def parse_rules(data, items: dict, path: str) -> tuple[RuleSet, list[str]]:
    """Reads and checks rules.json against the questionnaire's items."""
    ck = _Checker(items, path)
    if not isinstance(data, dict):
        ck.problem("1", "must be a JSON object with 'rules' and 'scores'")
        return RuleSet((), ()), ck.problems
    rules = []
    seen = set()
    for n, raw in enumerate(data.get("rules", [])):
        where = f"rules[{n}]"
        if not isinstance(raw, dict):
            ck.problem(where, "must be an object")
            continue
        rid = raw.get("id", where)
        where = f"rules[{n}] ({rid})"
        if rid in seen:
            ck.problem(where, "duplicate rule id")
        seen.add(rid)
        tier = raw.get("tier")
        if tier not in TIERS:
            ck.problem(where, f"tier {tier!r} is not one of {', '.join(TIERS)}")
        codes = raw.get("codes")
        if not isinstance(codes, list) or not codes:
            ck.problem(where, "codes must be a non-empty list of linkIds")
            codes = []
        for code in codes:
            ck.item(f"{where}.codes", code)
        if not isinstance(raw.get("reason"), str) or not raw.get("reason"):
            ck.problem(where, "reason (the clinician's summary line) is missing")
        if "when" not in raw:
            ck.problem(where, "when is missing")
        else:
            ck.condition(f"{where}.when", raw["when"])
        rules.append(Rule(str(rid), str(tier), tuple(codes), raw.get("when", {}), str(raw.get("reason", ""))))
    scores = []
    for n, raw in enumerate(data.get("scores", [])):
        where = f"scores[{n}] ({raw.get('id', '?') if isinstance(raw, dict) else '?'})"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            ck.problem(where, "a score needs an id")
            continue
        method = raw.get("method")
        if method not in SCORE_METHODS:
            ck.problem(where, f"method {method!r} is not one of {', '.join(sorted(SCORE_METHODS))}")
            continue
        score_items = raw.get("items", [])
        if not isinstance(score_items, list) or not score_items:
            ck.problem(where, "items must be a non-empty list of linkIds")
            continue
        for i in score_items:
            ck.item(f"{where}.items", i)
        for name, sub in raw.get("subscales", {}).items():
            for i in sub:
                if i not in score_items:
                    ck.problem(f"{where}.subscales.{name}", f"{i!r} is not one of the score's items")
        min_answered = raw.get("min_answered", len(score_items))
        if not isinstance(min_answered, int) or not 1 <= min_answered <= len(score_items):
            ck.problem(where, f"min_answered must be a whole number from 1 to {len(score_items)}")
            min_answered = len(score_items)
        if method == "percent" and not isinstance(raw.get("max_per_item"), (int, float)):
            ck.problem(where, "method 'percent' needs max_per_item")
        for key, table in raw.get("points", {}).items():
            if key != "*" and key not in score_items:
                ck.problem(f"{where}.points", f"{key!r} is not one of the score's items")
            if not isinstance(table, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in table.values()
            ):
                ck.problem(f"{where}.points.{key}", "must map answers to numbers")
        _check_outcome(ck, where, raw)
        variables = {"total", *raw.get("subscales", {})}
        for b, band in enumerate(raw.get("bands", [])):
            for c, case in enumerate(band.get("cases", [])):
                for var, test in case.get("if", {}).items():
                    if var not in variables:
                        ck.problem(f"{where}.bands[{b}].cases[{c}]", f"unknown variable {var!r}")
                    for op, v in test.items():
                        if op not in BAND_OPS or isinstance(v, bool) or not isinstance(v, (int, float)):
                            ck.problem(f"{where}.bands[{b}].cases[{c}]", f"bad test {op!r}: {v!r}")
        scores.append(
            Score(
                id=raw["id"],
                method=method,
                items=tuple(score_items),
                min_answered=min_answered,
                decimals=raw.get("decimals"),
                points={**_weights(items, score_items, raw.get("points", {})), **raw.get("points", {})},
                subscales=raw.get("subscales", {}),
                bands=tuple(raw.get("bands", [])),
                max_per_item=raw.get("max_per_item"),
                notice=raw.get("notice", ""),
            )
        )
    return RuleSet(tuple(rules), tuple(scores)), ck.problems
