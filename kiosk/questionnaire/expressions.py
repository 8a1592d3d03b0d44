"""Skip logic and computed items: FHIR ``enableWhen``, and the SDC FHIRPath
extensions ``enableWhenExpression``, ``calculatedExpression`` and
``variable``, evaluated with fhirpathpy (the FHIRPath engine, with the R4
model so that ``answer.value`` finds every value[x]).

:func:`resolve` is pure: given the pack and the answers so far it returns
which items are enabled and what each computed item holds. Expressions see
``%resource`` (the QuestionnaireResponse so far), ``%questionnaire``,
``%context`` (the item's response item) and the variables in scope::

    >>> state = resolve(pack, {"ITEM-VISIBLE": 2.5})        # doctest: +SKIP
    >>> state.computed["CE-VISIBLE"]                          # doctest: +SKIP
    2.5
"""

from __future__ import annotations

import decimal
import logging
import re
from dataclasses import dataclass, field

from ..compare import compare
from .model import Item, Pack
from .response import questionnaire_response

log = logging.getLogger(__name__)
#: Variables every expression may use without defining them.
BUILT_IN_VARS = {"resource", "context", "questionnaire", "rootResource", "ucum", "sct", "loinc", "qitem",
                 "factory", "terminologies", "server", "this", "index", "total"}
LINK_ID_RE = re.compile(r"linkId\s*=\s*'((?:[^'\\]|\\.)*)'")
VAR_RE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")


def check_expressions(path: str, items: list[Item], root_vars: tuple) -> list[str]:
    """Problems with the FHIRPath of a questionnaire: expressions that do not
    parse, name an item that does not exist, or use an undefined variable."""
    problems = []
    link_ids = {i.link_id for i in items}
    defined = BUILT_IN_VARS | {name for name, _ in root_vars} | {n for i in items for n, _ in i.variables}
    sources = [("Questionnaire.variable", name, expr) for name, expr in root_vars]
    for i in items:
        sources += [(f"item {i.link_id}.variable", name, expr) for name, expr in i.variables]
        if i.calculated:
            sources.append((f"item {i.link_id}.calculatedExpression", None, i.calculated))
        if i.enable_expression:
            sources.append((f"item {i.link_id}.enableWhenExpression", None, i.enable_expression))
    for where, _name, expr in sources:
        error = syntax_error(expr)
        if error:
            problems.append(f"{path}:{where}: FHIRPath does not parse: {error}")
            continue
        for ref in LINK_ID_RE.findall(expr):
            if ref not in link_ids:
                problems.append(f"{path}:{where}: names item {ref!r}, which is not in the questionnaire")
        for var in VAR_RE.findall(re.sub(r"'(?:[^'\\]|\\.)*'", "''", expr)):
            if var not in defined:
                problems.append(f"{path}:{where}: uses %{var}, which no variable defines")
    return problems


def syntax_error(expr: str) -> str | None:
    """The first syntax error of a FHIRPath expression, or None.

    fhirpathpy's own parser recovers from errors silently, so this runs its
    generated ANTLR lexer and parser (the FHIRPath grammar's
    ``entireExpression`` rule) with a listener that keeps the errors."""
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.error.ErrorListener import ErrorListener
    from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
    from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

    class Keep(ErrorListener):
        def __init__(self):
            self.errors: list[str] = []

        def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802 (ANTLR API)
            self.errors.append(f"column {column + 1}: {msg.split(' expecting ')[0]}")

    keep = Keep()
    lexer = FHIRPathLexer(InputStream(expr))
    lexer.removeErrorListeners()
    lexer.addErrorListener(keep)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(keep)
    try:
        parser.entireExpression()
    except Exception as exc:  # the lexer can still raise on a character it cannot read
        keep.errors.append(str(exc) or type(exc).__name__)
    return keep.errors[0] if keep.errors else None


@dataclass
class State:
    """Which items are enabled, and the computed items' answers."""

    enabled: set[str]
    computed: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "linkId: why", never answers


def _scalar(value):
    """A stored answer as enableWhen compares it (a quantity by its number)."""
    return value.get("value") if isinstance(value, dict) else value


def enable_when_holds(item: Item, values: dict) -> bool:
    """FHIR enableWhen for ``item`` against the answers in ``values``."""
    if not item.enable_when:
        return True
    results = []
    for cond in item.enable_when:
        _key, expected = cond.answer
        actual = values.get(cond.question)
        if cond.operator == "exists":
            results.append((actual not in (None, [])) == expected)
            continue
        answers = [_scalar(v) for v in (actual if isinstance(actual, list) else [actual]) if v is not None]
        if cond.operator == "!=":  # FHIR: true if no answer equals it (so also when unanswered)
            results.append(not any(compare("=", v, expected) for v in answers))
            continue
        results.append(any(compare(cond.operator, v, expected) for v in answers))
    return all(results) if item.enable_behavior == "all" else any(results)


class Evaluator:
    """The pack's FHIRPath, compiled once."""

    def __init__(self, pack: Pack):
        self.pack = pack
        self.weights = {}
        for item in pack.items:
            for opt in item.options:
                if opt.weight is not None:
                    self.weights[(opt.system, opt.fhir_code if opt.fhir_code is not None else opt.code)] = opt.weight
                    self.weights.setdefault((None, opt.fhir_code if opt.fhir_code is not None else opt.code), opt.weight)
        # SDC's weight()/ordinal(): the itemWeight (ordinalValue) of a coded answer
        table = {"weight": {"fn": self._weight, "arity": {0: []}},
                 "ordinal": {"fn": self._weight, "arity": {0: []}}}
        self.options = {"userInvocationTable": table}
        self._compiled: dict[str, object] = {}

    def _weight(self, inputs):
        out = []
        for x in inputs:
            if not isinstance(x, dict):
                continue
            coding = x.get("valueCoding", x)
            if isinstance(coding, dict) and "code" in coding:
                key = (coding.get("system"), coding["code"])
            else:
                raw = next((v for k, v in x.items() if k.startswith("value")), None)
                key = (None, raw)
            w = self.weights.get(key, self.weights.get((None, key[1])))
            if w is not None:
                out.append(w)
        return out

    def run(self, expr: str, resource: dict, variables: dict) -> list:
        fn = self._compiled.get(expr)
        if fn is None:
            # Imported here: fhirpathpy and its ANTLR runtime take a good part
            # of the kiosk's start-up, and no expression runs before a visit.
            from fhirpathpy import compile as fp_compile
            from fhirpathpy.models import models

            fn = self._compiled[expr] = fp_compile(expr, models["r4"], self.options)
        return fn(resource, variables)


def _evaluator(pack: Pack) -> Evaluator:
    ev = pack.__dict__.get("_evaluator")
    if ev is None:
        ev = Evaluator(pack)
        object.__setattr__(pack, "_evaluator", ev)
    return ev


def _plain(x):
    if isinstance(x, decimal.Decimal):
        return int(x) if x == x.to_integral_value() else float(x)
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def to_answer(item: Item, result: list):
    """A FHIRPath result as the stored answer of ``item`` (None if empty or
    not of the item's type)."""
    if not result:
        return None
    x = result[0]
    if hasattr(x, "value") and hasattr(x, "unit") and not isinstance(x, dict):  # a FHIRPath Quantity
        value = _plain(x.value)
        unit = str(x.unit).strip("'")
        x = {"value": value, "unit": unit} if item.type == "quantity" else value
    elif isinstance(x, dict) and "valueCoding" in x:
        x = x["valueCoding"]
    elif isinstance(x, dict) and any(k.startswith("value") for k in x):
        x = next(v for k, v in x.items() if k.startswith("value"))
    elif not isinstance(x, (bool, int, float, str, dict, decimal.Decimal)):
        x = str(x).lstrip("@")  # FHIRPath date, dateTime or time
    x = _plain(x)
    if isinstance(x, dict) and "code" in x and item.options:
        opt = next((o for o in item.options if o.fhir_code == x["code"]), None)
        return opt.code if opt else None
    if item.type == "decimal" and isinstance(x, bool):
        return None
    if item.type == "integer" and isinstance(x, float):
        return None
    return x


def resolve(pack: Pack, answers: dict) -> State:
    """What is enabled and computed for these answers (pure).

    Nested items are enabled only when their parent is, and items under a
    question only once it is answered (they are asked after it). Computed
    items and expression-based skip logic may depend on each other, so with
    expressions the pass repeats until nothing changes.
    """
    computed: dict = {}
    failures: list[str] = []
    enabled: set[str] = set()
    expressions = pack.has_expressions
    evaluator = _evaluator(pack) if expressions else None
    for rnd in range(5 if expressions else 1):
        values = {**answers, **computed}
        resource = _resource(pack, values, enabled if rnd else None) if expressions else None
        enabled, disabled = set(), set()
        failures = []
        for item in pack.items:
            ok = not item.parent or item.parent in enabled
            if ok and item.parent and not item.is_help:
                parent = pack.item(item.parent)
                ok = parent.type == "group" or parent.link_id in values
            if ok:
                live = {k: v for k, v in values.items() if k not in disabled}
                ok = enable_when_holds(item, live)
            if ok and item.enable_expression:
                result = _run(evaluator, pack, item, item.enable_expression, resource, values, failures)
                ok = bool(result) and result[0] is True
            (enabled if ok else disabled).add(item.link_id)
        if not expressions:
            break
        resource = _resource(pack, {**answers, **computed}, enabled)
        new = {}
        for item in pack.items:
            if item.calculated and item.link_id in enabled:
                value = to_answer(item, _run(evaluator, pack, item, item.calculated, resource, values, failures))
                if value is not None:
                    new[item.link_id] = value
        if new == computed:
            break
        computed = new
    return State(enabled, computed, failures)


def _resource(pack: Pack, values: dict, enabled: set[str] | None) -> dict:
    return questionnaire_response(pack, values, status="in-progress", authored="", enabled=enabled)


def _find(items: list, link_id: str):
    for node in items:
        if node.get("linkId") == link_id:
            return node
        for below in [node.get("item", [])] + [a.get("item", []) for a in node.get("answer", [])]:
            hit = _find(below, link_id)
            if hit is not None:
                return hit
    return None


def _run(evaluator: Evaluator, pack: Pack, item: Item, expr: str, resource: dict, values: dict,
         failures: list[str]) -> list:
    context = _find(resource.get("item", []), item.link_id) or {"linkId": item.link_id}
    env = {"resource": resource, "rootResource": resource, "questionnaire": pack.questionnaire,
           "context": context}
    try:
        chain, link = [], item
        while link is not None:
            chain.append(link)
            link = pack.item(link.parent) if link.parent else None
        scopes = [pack.variables] + [i.variables for i in reversed(chain)]
        for scope in scopes:
            for name, var_expr in scope:
                env[name] = evaluator.run(var_expr, resource, env)
        return evaluator.run(expr, resource, env)
    except Exception as exc:  # a published expression fhirpathpy cannot evaluate
        failures.append(f"{item.link_id}: {type(exc).__name__}")
        return []
