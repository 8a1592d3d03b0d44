"""What the hub shows of a visit, worded by the kiosk: the payload's
``display`` block.

The kiosk holds the pack; the hub does not (a clinic's own questionnaire, a
pack the hub never saw). So the kiosk writes down, at submit, everything
staff read: the patient's name and age (from the pack's roles, never from
fixed linkIds), the body map figure with the marks, each score with the
pack's labels, and every answer worded as the patient saw it, in the visit's
language and in the clinic's staff language::

    >>> block = display_block(pack, "es", "en", visit_date, values, enabled, result)  # doctest: +SKIP
    >>> block["languages"], block["patient"]["name"]                                 # doctest: +SKIP
    (['es', 'en'], 'Ana López')

Pure: no clock, no storage, no UI.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime

from .questionnaire import Item, Pack
from .rules import Result, age_on

#: How a yes/no answer reads, by language (what the kiosk's buttons say).
YES_NO = {"en": ("Yes", "No"), "es": ("Sí", "No"), "fr": ("Oui", "Non"), "de": ("Ja", "Nein"),
          "pt": ("Sim", "Não"), "it": ("Sì", "No"), "ca": ("Sí", "No")}


def languages_of(pack: Pack, language: str, staff_language: str) -> list[str]:
    """The visit's language, then the staff language when it differs and
    the pack is written in it."""
    out = [language]
    if staff_language != language and staff_language in pack.languages:
        out.append(staff_language)
    return out


def _text(texts: dict, lang: str, default: str = "") -> str:
    return texts.get(lang) or next(iter(texts.values()), default) if texts else default


def _locale(lang: str) -> str:
    try:
        Locale.parse(lang)
    except (UnknownLocaleError, ValueError):
        return "en"
    return lang


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def worded(item: Item, value: Any, lang: str) -> str:
    """An answer as the patient saw it on the kiosk in ``lang`` (an
    option's display, Yes/No, a long date, a number with its unit)."""
    if isinstance(value, list):
        return ", ".join(worded(item, v, lang) for v in value)
    opt = item.option(value) if item.options and not isinstance(value, (dict, bool)) else None
    if opt is not None:
        return _text(opt.display, lang, str(opt.code))
    if isinstance(value, bool):
        yes, no = YES_NO.get(lang, YES_NO["en"])
        return yes if value else no
    if isinstance(value, dict):
        if "code" in value:  # a computed Coding
            return str(value.get("display") or value["code"])
        number, code = value.get("value"), value.get("unit")
        unit = next((u.display for u in item.units if u.code == code), code or "")
        return f"{_number(number)} {unit}".strip()
    if item.type == "quantity" and item.units:
        return f"{_number(value)} {item.units[0].display}".strip()
    if isinstance(value, str) and item.type in ("date", "dateTime"):
        try:
            if item.type == "date" and len(value) == 10:
                return format_date(dt.date.fromisoformat(value), format="long", locale=_locale(lang))
            if "T" in value:
                return format_datetime(dt.datetime.fromisoformat(value), format="medium", locale=_locale(lang))
        except ValueError:
            pass
    return _number(value)


def _items(part_pack: Pack, values: dict, enabled: set[str] | None, langs: list[str], parent: str = "",
           level: int = 0) -> list[dict]:
    """The answered items under ``parent``, in order, with the headings of
    groups that hold some."""
    out = []
    for item in part_pack.children(parent):
        if enabled is not None and item.link_id not in enabled:
            continue
        below = _items(part_pack, values, enabled, langs, item.link_id, level + 1)
        answered = item.type not in ("group", "display") and values.get(item.link_id) not in (None, [])
        if answered or (below and item.text):  # a group without text adds no heading
            node: dict[str, Any] = {"linkId": item.link_id, "level": level,
                                    "text": {lang: _text(item.text, lang, item.link_id) for lang in langs}}
            node["answer"] = ({lang: worded(item, values[item.link_id], lang) for lang in langs}
                              if answered else None)
            out.append(node)
        out.extend(below)
    return out


def _questionnaires(pack: Pack, values: dict, enabled: set[str] | None, langs: list[str]) -> list[dict]:
    out = []
    for part in pack.parts or ():
        items = _items(part.pack, values, enabled, langs)
        if not items and out:
            continue  # a later part the visit never reached
        out.append({"id": part.id, "url": part.pack.canonical,
                    "title": {lang: _text(part.pack.title, lang, part.id) for lang in langs}, "items": items})
    if not out:  # a pack made in code, without parts
        out.append({"id": pack.id, "url": pack.canonical,
                    "title": {lang: _text(pack.title, lang, pack.id) for lang in langs},
                    "items": _items(pack, values, enabled, langs)})
    return out


def _patient(pack: Pack, values: dict, visit_date: dt.date) -> dict:
    names = [values.get(pack.role(r)) for r in ("given_name", "family_name") if pack.role(r)]
    name = " ".join(n.strip() for n in names if isinstance(n, str) and n.strip())
    birth = values.get(pack.role("birth_date")) if pack.role("birth_date") else None
    birth = birth if isinstance(birth, str) else None
    return {"name": name or None, "birth_date": birth, "age": age_on(birth, visit_date) if birth else None}


def _body_map(pack: Pack, values: dict, langs: list[str]) -> dict | None:
    link_id = pack.role("body_map")
    spec = pack.body_map
    if not link_id or not spec:
        return None
    item = pack.item(link_id)
    marked = values.get(link_id)
    marked = [m for m in marked if isinstance(m, str)] if isinstance(marked, list) else []
    regions = []
    for region in spec["regions"]:
        opt = item.option(region["code"])
        label = region.get("label") or {}
        regions.append({"code": region["code"], "box": list(region["box"]),
                        "label": {lang: label.get(lang) or (_text(opt.display, lang) if opt else "")
                                  or region["code"] for lang in langs}})
    return {"view": spec.get("view", "back"), "aspect": spec.get("aspect", 0.55),
            "outline": [{**s, "box": list(s["box"])} for s in spec.get("outline", [])],
            "regions": regions, "marked": marked}


def _scores(pack: Pack, result: Result, langs: list[str]) -> list[dict]:
    out = []
    for score in pack.rules.scores:
        meta = pack.score_labels.get(score.id) or {}
        label = meta.get("label") or {}
        value = result.scores.get(score.id)
        entry: dict[str, Any] = {"id": score.id,
                                 "label": {lang: _text(label, lang, score.id) for lang in langs}}
        fields = []
        if isinstance(value, dict):
            declared = [f for f in meta.get("fields") or [] if isinstance(f, dict) and f.get("id") in value]
            named = {f["id"] for f in declared}
            declared += [{"id": k} for k in value if k != "total" and k not in named]
            for f in declared:
                texts = f.get("label") if isinstance(f.get("label"), dict) else {}
                fields.append({"id": f["id"], "label": {lang: _text(texts, lang, f["id"]) for lang in langs},
                               "value": value.get(f["id"])})
            value = value.get("total")
        entry["value"] = value
        entry["fields"] = fields
        for key in ("mcid", "better"):
            if key in meta:
                entry[key] = meta[key]
        if score.notice:  # the wording is a paraphrase, or licensed: staff see a dagger
            entry["notice"] = score.notice
        out.append(entry)
    return out


def display_block(pack: Pack, language: str, staff_language: str, visit_date: dt.date, values: dict,
                  enabled: set[str] | None, result: Result) -> dict:
    """The ``display`` block of a visit payload (see the module docstring).
    ``values`` holds the answers and computed items by linkId, ``enabled``
    the items the visit's answers enable."""
    langs = languages_of(pack, language, staff_language)
    return {
        "languages": langs,
        "patient": _patient(pack, values, visit_date),
        "body_map": _body_map(pack, values, langs),
        "scores": _scores(pack, result, langs),
        "questionnaires": _questionnaires(pack, values, enabled, langs),
    }
