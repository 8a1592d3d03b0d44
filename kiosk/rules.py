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
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from .compare import COMPARE, compare
from .problems import invalid
from .problems import problems as pydantic_problems

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
#
# rules.json is described by pydantic models (its entries may carry notes for
# people, so unknown keys are left alone); what depends on the questionnaire
# (linkIds, item types, answer codes) is checked against the items given as
# validation context. Every problem goes through kiosk.problems, named by the
# entry's id: ``rules[3] (ces-saddle).when: unknown linkId 'rf-sadle'``.


class _Spec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _items_of(info: ValidationInfo) -> dict:
    return (info.context or {}).get("items", {})


def _item_problem(loc: tuple, items: dict, link_id) -> list:
    if isinstance(link_id, str) and link_id in items:
        return []
    return [(loc, f"unknown linkId {link_id!r}", link_id)]


def _value_problems(loc: tuple, item, op: str, value) -> list:
    if op == "answered":
        return [] if isinstance(value, bool) else [(loc, "'answered' needs true or false", value)]
    if op == "in" and not isinstance(value, list):
        return [(loc, "'in' needs a list", value)]
    if op == "includes" and not item.repeats:
        return [(loc, f"'includes' needs a multi-choice item; {item.link_id!r} is not", value)]
    found = []
    for v in value if op == "in" else [value]:
        if item.type == "choice":
            bad = item.option(v) is None
        elif item.type == "boolean":
            bad = not isinstance(v, bool)
        elif item.type in ("integer", "decimal"):
            bad = isinstance(v, bool) or not isinstance(v, (int, float))
        else:
            bad = not isinstance(v, str)
        if bad:
            found.append((loc, f"threshold {v!r} does not fit {item.link_id!r}, a {item.type} item", v))
    return found


def condition_problems(loc: tuple, cond, items: dict) -> list[tuple[tuple, str, Any]]:
    """Every problem of one rule condition, as ``(location, message, value)``."""
    if not isinstance(cond, dict) or len(cond) == 0:
        return [(loc, "a condition must be an object", cond)]
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        if not isinstance(cond[key], list) or not cond[key]:
            return [(loc, f"'{key}' needs a non-empty list", cond[key])]
        return [p for n, c in enumerate(cond[key]) for p in condition_problems((*loc, key, n), c, items)]
    if "not" in cond:
        return condition_problems((*loc, "not"), cond["not"], items)
    if "yes" in cond:
        found = _item_problem(loc, items, cond["yes"])
        item = items.get(cond["yes"]) if not found else None
        if item is not None and item.type != "boolean":
            found.append((loc, f"'yes' needs a yes/no item; {item.link_id!r} is {item.type}", cond["yes"]))
        return found
    if "answer" in cond or "computed" in cond:
        op = cond.get("op")
        if op not in RULE_OPS:
            return [(loc, f"op {op!r} is not one of {', '.join(sorted(RULE_OPS))}", op)]
        if "computed" in cond:
            value = cond.get("value")
            if cond["computed"] not in COMPUTED:
                return [(loc, f"unknown computed value {cond['computed']!r} (known: age)", cond["computed"])]
            if op != "answered" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                return [(loc, f"threshold {value!r} for age must be a number", value)]
            return []
        found = _item_problem(loc, items, cond["answer"])
        if found:
            return found
        return _value_problems(loc, items[cond["answer"]], op, cond.get("value"))
    return [(loc, f"unknown condition {sorted(cond)} (use yes, answer, computed, all, any, not)", cond)]


class RuleSpec(_Spec):
    """One entry of ``rules``: when ``when`` holds, the visit gets at least
    ``tier`` and the ``codes`` (linkIds of the questions that explain it)."""

    id: Optional[str] = None
    tier: Any = None
    codes: Any = None
    when: Any = None
    reason: Any = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo):
        items = _items_of(info)
        found: list = []
        if self.tier not in TIERS:
            found.append(((), f"tier {self.tier!r} is not one of {', '.join(TIERS)}", self.tier))
        if not isinstance(self.codes, list) or not self.codes:
            found.append(((), "codes must be a non-empty list of linkIds", self.codes))
        else:
            for code in self.codes:
                found += _item_problem(("codes",), items, code)
        if not isinstance(self.reason, str) or not self.reason:
            found.append(((), "reason (the clinician's summary line) is missing", self.reason))
        if "when" not in self.model_fields_set:
            found.append(((), "when is missing", None))
        else:
            found += condition_problems(("when",), self.when, items)
        if found:
            raise invalid("rule", found)
        return self


class BandCase(_Spec):
    tests: dict[str, dict[str, Any]] = Field(default={}, alias="if")
    then: Any = None


class Band(_Spec):
    name: str
    cases: list[BandCase] = []


class ScoreSpec(_Spec):
    """One entry of ``scores``: how a score is computed from its items."""

    id: Any = None
    method: Any = None
    items: Any = None
    min_answered: Any = None
    decimals: Optional[int] = None
    points: dict[str, Any] = {}
    subscales: dict[str, list[str]] = {}
    bands: list[Band] = []
    max_per_item: Any = None
    notice: str = ""
    #: outcome metadata for the hub's change over visits: which way is an
    #: improvement, and the smallest change that matters clinically, in
    #: points and/or percent of the first value:
    #: ``{"mcid": {"points": 2, "percent": 30}, "better": "lower"}``
    better: Any = None
    mcid: Any = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo):
        items = _items_of(info)
        if not isinstance(self.id, str):
            raise invalid("score", [((), "a score needs an id", self.id)])
        if self.method not in SCORE_METHODS:
            raise invalid("score", [((), f"method {self.method!r} is not one of {', '.join(sorted(SCORE_METHODS))}",
                                     self.method)])
        if not isinstance(self.items, list) or not self.items:
            raise invalid("score", [((), "items must be a non-empty list of linkIds", self.items)])
        found: list = []
        for i in self.items:
            found += _item_problem(("items",), items, i)
        for name, sub in self.subscales.items():
            found += [(("subscales", name), f"{i!r} is not one of the score's items", i)
                      for i in sub if i not in self.items]
        n = len(self.items)
        if self.min_answered is not None and not (
                isinstance(self.min_answered, int) and not isinstance(self.min_answered, bool)
                and 1 <= self.min_answered <= n):
            found.append(((), f"min_answered must be a whole number from 1 to {n}", self.min_answered))
        if self.method == "percent" and (isinstance(self.max_per_item, bool)
                                         or not isinstance(self.max_per_item, (int, float))):
            found.append(((), "method 'percent' needs max_per_item", self.max_per_item))
        for key, table in self.points.items():
            if key != "*" and key not in self.items:
                found.append((("points",), f"{key!r} is not one of the score's items", key))
            if not isinstance(table, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in table.values()):
                found.append((("points", key), "must map answers to numbers", table))
        found += self._outcome_problems()
        variables = {"total", *self.subscales}
        for b, band in enumerate(self.bands):
            for c, case in enumerate(band.cases):
                here = ("bands", b, "cases", c)
                for var, test in case.tests.items():
                    if var not in variables:
                        found.append((here, f"unknown variable {var!r}", var))
                    for op, v in test.items():
                        if op not in BAND_OPS or isinstance(v, bool) or not isinstance(v, (int, float)):
                            found.append((here, f"bad test {op!r}: {v!r}", v))
        if found:
            raise invalid("score", found)
        return self

    def _outcome_problems(self) -> list:
        found: list = []
        if self.better is not None and self.better not in ("lower", "higher"):
            found.append((("better",), f"{self.better!r} is not 'lower' or 'higher'", self.better))
        if self.mcid is None:
            return found
        mcid = self.mcid
        if not (isinstance(mcid, dict) and mcid and set(mcid) <= {"points", "percent"} and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in mcid.values())):
            found.append((("mcid",), 'must be {"points": N} and/or {"percent": N}, each a number above 0', mcid))
        elif self.better is None:
            found.append((("mcid",), "needs better ('lower' or 'higher'): which way is an improvement", mcid))
        return found


class RulesFile(_Spec):
    """rules.json: the triage rules and the scores, each checked on its own
    (so that every broken entry is reported, named by its id)."""

    rules: list[Any] = []
    scores: list[Any] = []


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


def _label(kind: str, n: int, raw) -> str:
    """How an entry is named in messages: ``rules[3] (ces-saddle)``."""
    if kind == "scores":
        return f"scores[{n}] ({raw.get('id', '?') if isinstance(raw, dict) else '?'})"
    return f"rules[{n}] ({raw['id']})" if isinstance(raw, dict) and "id" in raw else f"rules[{n}]"


def parse_rules(data, items: dict, path: str) -> tuple[RuleSet, list[str]]:
    """Reads and checks rules.json against the questionnaire's items."""
    if not isinstance(data, dict):
        return RuleSet((), ()), [f"{path}:1: must be a JSON object with 'rules' and 'scores'"]
    try:
        top = RulesFile.model_validate(data)
    except ValidationError as exc:
        return RuleSet((), ()), pydantic_problems(path, exc, model=RulesFile)
    problems: list[str] = []
    context = {"items": items}
    rules = []
    seen = set()
    for n, raw in enumerate(top.rules):
        label = _label("rules", n, raw)
        if isinstance(raw, dict) and "id" in raw:
            if raw["id"] in seen:
                problems.append(f"{path}:{label}: duplicate rule id")
            seen.add(raw["id"])
        try:
            spec = RuleSpec.model_validate(raw, context=context)
        except ValidationError as exc:
            problems.extend(pydantic_problems(path, exc, relabel=lambda loc, label=label: (label, *loc)))
            continue
        rules.append(Rule(spec.id or f"rules[{n}]", spec.tier, tuple(spec.codes), spec.when, spec.reason))
    scores = []
    for n, raw in enumerate(top.scores):
        label = _label("scores", n, raw)
        try:
            spec = ScoreSpec.model_validate(raw, context=context)
        except ValidationError as exc:
            problems.extend(pydantic_problems(path, exc, relabel=lambda loc, label=label: (label, *loc)))
            continue
        scores.append(
            Score(
                id=spec.id,
                method=spec.method,
                items=tuple(spec.items),
                min_answered=spec.min_answered if spec.min_answered is not None else len(spec.items),
                decimals=spec.decimals,
                points={**_weights(items, spec.items, spec.points), **spec.points},
                subscales=spec.subscales,
                bands=tuple(b.model_dump(by_alias=True) for b in spec.bands),
                max_per_item=spec.max_per_item,
                notice=spec.notice,
            )
        )
    return RuleSet(tuple(rules), tuple(scores)), problems
