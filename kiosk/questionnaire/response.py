"""FHIR R4 QuestionnaireResponse from a visit's answers.

The kiosk holds the questionnaire, so it builds the response at submit and
seals it with the visit; the hub only bundles what it receives. Items nest as
in the Questionnaire (answers to items under a question go in
``answer.item``), each answer has the value type of its item, and computed
items carry their computed answer::

    >>> qr = questionnaire_response(pack, answers, status="completed",
    ...                              authored="2026-11-21T10:00:00+00:00")   # doctest: +SKIP
    >>> qr["item"][0]["item"][0]["answer"]                                   # doctest: +SKIP
    [{'valueString': 'Ana'}]
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from .model import Item, Option, Pack

#: Visit payload status -> QuestionnaireResponse.status (FHIR R4 codes).
STATUS = {"complete": "completed", "emergency": "stopped", "in-progress": "in-progress"}


def _coding(item: Item, opt: Option, lang: str) -> dict:
    coding: dict[str, Any] = {}
    if opt.system:
        coding["system"] = opt.system
    coding["code"] = opt.fhir_code if opt.fhir_code is not None else str(opt.code)
    display = opt.display.get(lang) or next(iter(opt.display.values()), None)
    coding["display"] = display or coding["code"]
    return coding


def _datetime(value: str) -> str:
    """A FHIR dateTime: with a time it needs seconds and a time zone (the
    kiosk's own zone when the answer has none)."""
    if "T" not in value:
        return value
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.isoformat(timespec="seconds")


def _time(value: str) -> str:
    return value if value.count(":") == 2 else value + ":00"


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def answer_values(item: Item, value, lang: str) -> list[dict]:
    """The ``answer`` entries (value[x] only) for one item's stored answer."""
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if v is None:
            continue
        opt = item.option(v) if item.options and not isinstance(v, (dict, bool)) else None
        if opt is not None:
            if opt.kind == "valueCoding":
                out.append({"valueCoding": _coding(item, opt, lang)})
            else:
                out.append({opt.kind: opt.code})
            continue
        t = item.type
        if t == "boolean":
            out.append({"valueBoolean": bool(v)})
        elif t == "integer":
            out.append({"valueInteger": int(v)})
        elif t == "decimal":
            out.append({"valueDecimal": _number(v)})
        elif t == "date":
            out.append({"valueDate": str(v)[:10]})
        elif t == "dateTime":
            out.append({"valueDateTime": _datetime(str(v))})
        elif t == "time":
            out.append({"valueTime": _time(str(v))})
        elif t == "quantity":
            out.append({"valueQuantity": quantity(item, v)})
        elif isinstance(v, dict) and "code" in v:  # a computed Coding
            out.append({"valueCoding": {k: v[k] for k in ("system", "code", "display") if k in v}})
        else:  # string, text, open-choice free text
            out.append({"valueString": str(v)})
    return out


def quantity(item: Item, value) -> dict:
    """A Quantity: the number and the unit chosen (or the item's only unit),
    coded with the unit's system when the questionnaire gives one."""
    if isinstance(value, dict):
        number, code = value.get("value"), value.get("unit")
    else:
        number, code = value, (item.units[0].code if item.units else None)
    out: dict[str, Any] = {"value": _number(number)}
    unit = next((u for u in item.units if u.code == code), None)
    if unit is not None:
        out["unit"] = unit.display
        if unit.system:
            out["system"] = unit.system
            out["code"] = unit.code
    elif code:
        out["unit"] = code
    return out


def response_items(pack: Pack, values: dict, enabled: set[str] | None = None, lang: str | None = None,
                   parent: str = "") -> list[dict]:
    """QuestionnaireResponse items under ``parent`` (the top level when
    empty): enabled items that have an answer, or that hold one below."""
    lang = lang or pack.languages[0]
    out = []
    for item in pack.children(parent):
        if enabled is not None and item.link_id not in enabled:
            continue
        node: dict[str, Any] = {"linkId": item.link_id}
        text = item.text.get(lang) or next(iter(item.text.values()), None)
        if text:
            node["text"] = text
        if item.type == "display":
            continue
        below = response_items(pack, values, enabled, lang, item.link_id)
        if item.type == "group":
            if below:
                node["item"] = below
                out.append(node)
            continue
        if item.link_id in values:
            answers = answer_values(item, values.get(item.link_id), lang)
        else:  # a hidden or read-only item's own value, as the questionnaire wrote it
            answers = copy.deepcopy(list(item.fixed))
        if not answers:
            continue  # an item under an unanswered question has nowhere to go
        if below:
            answers[0]["item"] = below
        node["answer"] = answers
        out.append(node)
    return out


def questionnaire_response(pack: Pack, values: dict, *, status: str, authored: str,
                           enabled: set[str] | None = None, language: str | None = None,
                           response_id: str | None = None) -> dict:
    """A FHIR R4 QuestionnaireResponse (as JSON) for ``values``: the answers
    and the computed items, keyed by linkId. ``status`` is a payload status
    (complete, emergency) or a FHIR one."""
    qr: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
    if response_id:
        qr["id"] = response_id
    if language:
        qr["language"] = language
    qr["questionnaire"] = pack.canonical
    qr["status"] = STATUS.get(status, status)
    qr["authored"] = authored
    items = response_items(pack, values, enabled, pack.languages[0])
    if items:
        qr["item"] = items
    return qr
