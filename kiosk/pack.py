"""Content packs: the questionnaire, its rules and its translations, as data.

A pack is a folder::

    pack.json            id, version, languages, which files hold what
    questionnaire.json   a FHIR R4 Questionnaire (items, answerOption,
                         enableWhen, required) with per-language text in the
                         standard FHIR ``translation`` extension
    rules.json           triage rules and scores (see :mod:`kiosk.rules`)

or a single FHIR R4 Questionnaire JSON file from another tool, used as it is
(no triage rules; its languages are the ones its text is written in).

Loading checks everything and raises :class:`PackError` with one
``path:location: message`` line per problem, so a kiosk never starts with a
half-understood pack; what the kiosk does not understand but can safely
ignore is listed in :attr:`Pack.notices`::

    >>> pack = load_pack()          # the built-in default pack
    >>> pack.item("rf-saddle").type
    'boolean'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PACK = Path(__file__).parent / "packs" / "default"

HL7 = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
TRANSLATION_URL = HL7 + "translation"
MIN_VALUE_URL = HL7 + "minValue"
MAX_VALUE_URL = HL7 + "maxValue"
UNIT_URL = HL7 + "questionnaire-unit"
UNIT_OPTION_URL = HL7 + "questionnaire-unitOption"
HIDDEN_URL = HL7 + "questionnaire-hidden"
ENTRY_FORMAT_URL = HL7 + "entryFormat"
ORDINAL_URL = HL7 + "ordinalValue"
WEIGHT_URL = HL7 + "itemWeight"
VARIABLE_URL = HL7 + "variable"
CALCULATED_URL = SDC + "sdc-questionnaire-calculatedExpression"
ENABLE_EXPR_URL = SDC + "sdc-questionnaire-enableWhenExpression"
KIOSK_EXT = "https://clinic-kiosk.org/fhir/StructureDefinition/"
WIDGET_URL = KIOSK_EXT + "widget"
NOTICE_URL = KIOSK_EXT + "notice"

#: Extensions that only change how a form is laid out in other tools; the
#: kiosk has one layout, so they change nothing about what is asked.
LAYOUT_URLS = {
    HL7 + "questionnaire-itemControl",
    HL7 + "questionnaire-displayCategory",
    HL7 + "questionnaire-choiceOrientation",
    HL7 + "questionnaire-optionPrefix",
    HL7 + "rendering-style",
    HL7 + "rendering-xhtml",
    HL7 + "questionnaire-supportLink",
}
KNOWN_URLS = {
    TRANSLATION_URL, MIN_VALUE_URL, MAX_VALUE_URL, UNIT_URL, UNIT_OPTION_URL, HIDDEN_URL, ENTRY_FORMAT_URL,
    ORDINAL_URL, WEIGHT_URL, VARIABLE_URL, CALCULATED_URL, ENABLE_EXPR_URL, WIDGET_URL, NOTICE_URL,
    HL7 + "maxDecimalPlaces",
} | LAYOUT_URLS

ITEM_TYPES = {"boolean", "choice", "open-choice", "integer", "decimal", "string", "text", "date", "dateTime",
              "time", "quantity", "display", "group"}
#: Types a kiosk patient cannot answer: refused by name.
REFUSED_TYPES = {
    "attachment": "a patient cannot attach a file at the kiosk",
    "reference": "a patient cannot pick a record at the kiosk",
    "url": "a patient cannot type a web address at the kiosk",
}
WIDGETS = {"yesno", "scale", "choice", "multichoice", "openchoice", "bodymap", "date", "datetime", "time",
           "phone", "keyboard", "text", "number", "integer", "decimal", "quantity", "display"}
OPERATORS = {"exists", "=", "!=", ">", "<", ">=", "<="}
#: enableWhen answer[x] -> the item types it can be compared with
ANSWER_KEYS = {
    "answerBoolean": {"boolean"},
    "answerInteger": {"integer", "decimal", "quantity", "choice", "open-choice"},
    "answerDecimal": {"decimal", "integer", "quantity"},
    "answerString": {"string", "text", "choice", "open-choice"},
    "answerDate": {"date", "dateTime", "choice", "open-choice"},
    "answerDateTime": {"dateTime"},
    "answerTime": {"time", "choice", "open-choice"},
    "answerCoding": {"choice", "open-choice"},
    "answerQuantity": {"quantity"},
}
#: Items whose answer is not typed by the patient.
NOT_ASKED_TYPES = {"group", "display"}
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")


class PackError(Exception):
    """A content pack that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str], notices: list[str] | None = None):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.notices = notices or []  # what was not understood but is safe to ignore


@dataclass(frozen=True)
class Option:
    """One answer option. ``code`` is what a visit file and the rules use:
    the Coding's code (``system|code`` when two systems share a code), or
    the string, integer or date itself."""

    code: Any
    display: dict[str, str]
    kind: str = "valueCoding"  # which answerOption value[x] it came from
    system: str | None = None
    fhir_code: str | None = None
    weight: float | None = None  # ordinalValue / itemWeight


@dataclass(frozen=True)
class Unit:
    code: str
    display: str
    system: str | None = None


@dataclass(frozen=True)
class EnableWhen:
    question: str
    operator: str
    answer: Any


@dataclass(frozen=True)
class Item:
    """One question (or display text, or group) as the kiosk asks it."""

    link_id: str
    type: str
    text: dict[str, str]
    required: bool = False
    repeats: bool = False
    options: tuple[Option, ...] = ()
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: str = "all"
    min_value: float | None = None
    max_value: float | None = None
    widget: str = "keyboard"
    section: str = ""
    notice: dict[str, str] = field(default_factory=dict)
    parent: str = ""  # the item this one is nested under ("" at the top)
    prefix: str = ""
    max_length: int | None = None
    entry_format: str = ""
    units: tuple[Unit, ...] = ()
    initial: Any = None
    read_only: bool = False
    hidden: bool = False
    calculated: str | None = None  # FHIRPath of calculatedExpression
    enable_expression: str | None = None  # FHIRPath of enableWhenExpression
    variables: tuple[tuple[str, str], ...] = ()  # (name, FHIRPath), in order
    help: dict[str, str] = field(default_factory=dict)  # nested display text
    is_help: bool = False  # display text nested under a question: shown with it

    def label(self, lang: str) -> str:
        return self.text.get(lang) or next(iter(self.text.values()), self.link_id)

    @property
    def asked(self) -> bool:
        """Whether the patient answers this item: never groups, display
        text, computed, read-only or hidden items."""
        return not (self.type in NOT_ASKED_TYPES or self.read_only or self.hidden or self.calculated)

    @property
    def is_step(self) -> bool:
        """Whether the item gets a screen of its own (a question, or display
        text that is not just help for a question)."""
        if self.type == "display":
            return not (self.hidden or self.is_help) and bool(self.text)
        return self.asked

    def option(self, code) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    def check_answer(self, value) -> str | None:
        """Why ``value`` is not a valid answer to this item, or None."""
        if self.repeats and self.type in ("choice", "open-choice"):
            if not isinstance(value, list):
                return "expected a list of answers"
            for v in value:
                problem = self._check_one(v)
                if problem:
                    return problem
            return None
        return self._check_one(value)

    def _check_one(self, value) -> str | None:
        t = self.type
        if t == "boolean":
            return None if isinstance(value, bool) else "expected true or false"
        if t == "quantity":
            if isinstance(value, dict):
                unit = value.get("unit")
                if self.units and unit not in [u.code for u in self.units]:
                    return f"unit {unit!r} is not one of {', '.join(u.code for u in self.units)}"
                value = value.get("value")
            return self._check_number(value, "decimal")
        if t in ("integer", "decimal"):
            if self.options:
                return self._check_option(value)
            return self._check_number(value, t)
        if t in ("choice", "open-choice"):
            if t == "open-choice" and isinstance(value, str) and self.option(value) is None:
                return None if value.strip() else "expected a code or some text"
            return self._check_option(value)
        if self.options:
            return self._check_option(value)
        if t == "date":
            return None if _is_date(value) else "expected a date as YYYY-MM-DD"
        if t == "dateTime":
            return None if _is_datetime(value) else "expected a date and time as YYYY-MM-DDTHH:MM"
        if t == "time":
            return None if isinstance(value, str) and TIME_RE.match(value) else "expected a time as HH:MM"
        if t in ("string", "text"):
            if not isinstance(value, str):
                return "expected text"
            if self.max_length is not None and len(value) > self.max_length:
                return f"at most {self.max_length} characters"
            return None
        return "this item takes no answer"

    def _check_option(self, value) -> str | None:
        if self.option(value) is not None:
            return None
        codes = ", ".join(map(str, (o.code for o in self.options)))
        return f"unknown code {value!r} (known: {codes})"

    def _check_number(self, value, t: str) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if t == "decimal":
            ok = ok or isinstance(value, float)
        if not ok:
            return "expected a whole number" if t == "integer" else "expected a number"
        if self.min_value is not None and value < self.min_value:
            return f"must be at least {self.min_value:g}"
        if self.max_value is not None and value > self.max_value:
            return f"must be at most {self.max_value:g}"
        return None


def _is_date(value) -> bool:
    if not isinstance(value, str) or not DATE_RE.match(value):
        return False
    try:
        dt.date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return False
    return True


def _is_datetime(value) -> bool:
    if not isinstance(value, str):
        return False
    if "T" not in value:
        return _is_date(value)
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Pack:
    """A loaded, validated content pack."""

    id: str
    version: str
    languages: tuple[str, ...]
    title: dict[str, str]
    items: tuple[Item, ...]
    rules: Any  # kiosk.rules.RuleSet
    path: Path
    questionnaire: dict
    notices: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # questionnaire-level FHIRPath variables

    @property
    def content_version(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def canonical(self) -> str:
        """The Questionnaire's canonical (``url|version``) for responses; a
        questionnaire without a url gets a stable URN from the pack."""
        q = self.questionnaire
        url = q.get("url") or f"urn:clinic-kiosk:questionnaire:{self.id}"
        version = q.get("version") or (None if q.get("url") else self.version)
        return f"{url}|{version}" if version else url

    def item(self, link_id: str) -> Item:
        return self._index[link_id]

    def has(self, link_id: str) -> bool:
        return link_id in self._index

    @property
    def _index(self) -> dict[str, Item]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {i.link_id: i for i in self.items}
            object.__setattr__(self, "_idx", idx)
        return idx

    @property
    def questions(self) -> list[Item]:
        """Items that get a screen, in the order they are asked."""
        qs = self.__dict__.get("_questions")
        if qs is None:
            qs = [i for i in self.items if i.is_step]
            object.__setattr__(self, "_questions", qs)
        return qs

    @property
    def has_expressions(self) -> bool:
        return bool(self.variables) or any(
            i.calculated or i.enable_expression or i.variables for i in self.items)

    def children(self, link_id: str) -> list[Item]:
        """The items directly under ``link_id`` ("" for the top level)."""
        kids = self.__dict__.get("_kids")
        if kids is None:
            kids = {}
            for i in self.items:
                kids.setdefault(i.parent, []).append(i)
            object.__setattr__(self, "_kids", kids)
        return kids.get(link_id, [])


# -- reading FHIR JSON ------------------------------------------------------


def _translations(base: str | None, element: dict | None, base_lang: str) -> dict[str, str]:
    out = {}
    if base:
        out[base_lang] = base
    for ext in (element or {}).get("extension", []):
        if not isinstance(ext, dict) or ext.get("url") != TRANSLATION_URL:
            continue
        parts = {e.get("url"): e for e in ext.get("extension", []) if isinstance(e, dict)}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if lang and content:
            out[lang] = content
    return out


def _extensions(node: dict, url: str) -> list[dict]:
    return [e for e in node.get("extension", []) if isinstance(e, dict) and e.get("url") == url]


def _ext_value(node: dict, url: str, key: str | None = None):
    for ext in _extensions(node, url):
        if key:
            return ext.get(key)
        for k, v in ext.items():
            if k.startswith("value"):
                return v
    return None


def _expression(node: dict, url: str) -> str | None:
    value = _ext_value(node, url, "valueExpression")
    return value.get("expression") if isinstance(value, dict) else None


def _default_widget(item: dict, min_value, max_value) -> str:
    t = item.get("type")
    if item.get("answerOption") or item.get("answerValueSet"):
        if t == "open-choice":
            return "openchoice"
        return "multichoice" if item.get("repeats") else "choice"
    if t == "integer" and max_value is not None and 0 <= max_value - (min_value or 0) <= 10:
        return "scale"
    return {"boolean": "yesno", "integer": "integer", "decimal": "decimal", "date": "date",
            "dateTime": "datetime", "time": "time", "text": "text", "quantity": "quantity",
            "display": "display", "open-choice": "openchoice"}.get(t, "keyboard")


def _code_text(node: dict) -> str | None:
    """The question text of an item that has only a ``code``."""
    for coding in node.get("code", []) or []:
        if isinstance(coding, dict) and coding.get("display"):
            return coding["display"]
    return None


class _Reader:
    """Turns questionnaire JSON into :class:`Item` objects, collecting
    problems instead of stopping at the first."""

    def __init__(self, path: str, base_lang: str, languages: tuple[str, ...], questionnaire: dict,
                 strict_languages: bool = True):
        self.path = path
        self.base_lang = base_lang
        self.languages = languages
        self.strict_languages = strict_languages
        self.problems: list[str] = []
        self.notices: list[str] = []
        self.items: list[Item] = []
        self.texts: list[dict[str, str]] = []  # every patient-facing text, for language coverage
        self.value_sets = self._value_sets(questionnaire)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}:{where}: {message}")

    def notice(self, where: str, message: str) -> None:
        self.notices.append(f"{self.path}:{where}: {message}")

    def require_languages(self, where: str, texts: dict[str, str], what: str) -> None:
        self.texts.append(texts)
        if not self.strict_languages:
            return
        missing = [lang for lang in self.languages if lang not in texts]
        if missing:
            self.problem(where, f"{what} has no {', '.join(missing)} translation")

    def check_extensions(self, node: dict, where: str) -> None:
        for ext in node.get("extension", []):
            url = ext.get("url") if isinstance(ext, dict) else None
            if url not in KNOWN_URLS:
                self.notice(where, f"extension {url} is not understood by the kiosk; ignored "
                                   "(it does not change what is asked)")
        for ext in node.get("modifierExtension", []):
            url = ext.get("url") if isinstance(ext, dict) else None
            self.problem(where, f"modifierExtension {url} changes what the item means and the kiosk "
                                "does not understand it")

    def _value_sets(self, questionnaire: dict) -> dict[str, dict]:
        out = {}
        for res in questionnaire.get("contained", []) or []:
            if isinstance(res, dict) and res.get("resourceType") == "ValueSet":
                if res.get("id"):
                    out["#" + res["id"]] = res
                if res.get("url"):
                    out[res["url"]] = res
        return out

    def read(self, nodes: list, where: str, section: str = "", parent: str = "") -> None:
        if not isinstance(nodes, list):
            self.problem(where, "item must be a list")
            return
        for n, node in enumerate(nodes):
            here = f"{where}[{n}]"
            if not isinstance(node, dict):
                self.problem(here, "each item must be an object")
                continue
            link_id = node.get("linkId")
            if not isinstance(link_id, str) or not link_id:
                self.problem(here, "item has no linkId")
                continue
            here = f"item {link_id}"
            t = node.get("type")
            if t in REFUSED_TYPES:
                self.problem(here, f"type {t!r} is not supported: {REFUSED_TYPES[t]}")
                continue
            if t not in ITEM_TYPES:
                self.problem(here, f"type {t!r} is not one of {', '.join(sorted(ITEM_TYPES))}")
                continue
            self.check_extensions(node, here)
            item = self._item(node, here, t, link_id, section, parent)
            self.items.append(item)
            children = node.get("item", [])
            if t == "display" and children:
                self.problem(here, "a display item cannot contain items")
            self.read(children, here, link_id if t == "group" else section, link_id)
            if t not in ("group", "display"):
                self.items = [_replace(i, is_help=True) if i.parent == link_id and i.type == "display" else i
                              for i in self.items]
                help_text = self._help(children)
                if help_text:
                    index = self.items.index(item)
                    if not item.text:
                        item = _replace(item, text=help_text)
                    else:
                        item = _replace(item, help=help_text, notice=item.notice or help_text)
                    self.items[index] = item

    def _help(self, children) -> dict[str, str]:
        """Display items directly under a question are shown with it, as
        its help text, rather than on a screen of their own."""
        for child in children if isinstance(children, list) else []:
            if isinstance(child, dict) and child.get("type") == "display" and child.get("text"):
                return _translations(child.get("text"), child.get("_text"), self.base_lang)
        return {}

    def _item(self, node, here, t, link_id, section, parent) -> Item:
        text = _translations(node.get("text"), node.get("_text"), self.base_lang)
        if not text and _code_text(node):
            text = {self.base_lang: _code_text(node)}
        prefix = node.get("prefix") or ""
        if prefix and text:
            text = {lang: f"{prefix} {t}" for lang, t in text.items()}
        hidden = bool(_ext_value(node, HIDDEN_URL))
        if t != "group" and text and not hidden:
            self.require_languages(here, text, "text")
        behavior = node.get("enableBehavior", "all")
        if behavior not in ("all", "any"):
            self.problem(here, f"enableBehavior {behavior!r} must be 'all' or 'any'")
        if len(node.get("enableWhen", [])) > 1 and "enableBehavior" not in node:
            self.problem(here, "enableBehavior is required when there is more than one enableWhen")
        min_value = _ext_value(node, MIN_VALUE_URL)
        max_value = _ext_value(node, MAX_VALUE_URL)
        widget = _ext_value(node, WIDGET_URL) or _default_widget(node, min_value, max_value)
        if widget not in WIDGETS:
            self.problem(here, f"widget {widget!r} is not one of {', '.join(sorted(WIDGETS))}")
        notice_node = next(iter(_extensions(node, NOTICE_URL)), None)
        notice = (
            _translations(notice_node.get("valueString"), notice_node.get("_valueString"), self.base_lang)
            if notice_node
            else {}
        )
        max_length = node.get("maxLength")
        if max_length is not None and not (isinstance(max_length, int) and max_length > 0):
            self.problem(here, "maxLength must be a positive whole number")
            max_length = None
        options = tuple(self._options(node, here, t))
        units = tuple(self._units(node, here, t))
        variables = []
        for ext in _extensions(node, VARIABLE_URL):
            expr = ext.get("valueExpression") or {}
            if not expr.get("name") or not expr.get("expression"):
                self.problem(here, "variable needs a name and an expression")
                continue
            variables.append((expr["name"], expr["expression"]))
        item = Item(
            link_id=link_id,
            type=t,
            text=text,
            required=bool(node.get("required", False)),
            repeats=bool(node.get("repeats", False)),
            options=options,
            enable_when=tuple(self._enable_when(node, here)),
            enable_behavior=behavior,
            min_value=min_value if isinstance(min_value, (int, float)) else None,
            max_value=max_value if isinstance(max_value, (int, float)) else None,
            widget=widget,
            section=section,
            notice=notice,
            parent=parent,
            prefix=prefix,
            max_length=max_length,
            entry_format=_ext_value(node, ENTRY_FORMAT_URL) or "",
            units=units,
            read_only=bool(node.get("readOnly", False)),
            hidden=hidden,
            calculated=_expression(node, CALCULATED_URL),
            enable_expression=_expression(node, ENABLE_EXPR_URL),
            variables=tuple(variables),
        )
        return _replace(item, initial=self._initial(node, here, item))

    def _units(self, node: dict, where: str, t: str):
        seen = set()
        for url in (UNIT_URL, UNIT_OPTION_URL):
            for ext in _extensions(node, url):
                coding = ext.get("valueCoding") or {}
                code = coding.get("code") or coding.get("display")
                if not code:
                    self.problem(where, f"{url.rsplit('/', 1)[-1]} has no code")
                    continue
                if code not in seen:
                    seen.add(code)
                    yield Unit(code, coding.get("display") or code, coding.get("system"))
        if t == "quantity" and not seen:
            self.notice(where, "a quantity item without questionnaire-unit or questionnaire-unitOption: "
                               "the number is asked without a unit")

    def _initial(self, node: dict, where: str, item: Item):
        """The answer shown at first: ``initial`` or ``initialSelected``."""
        values = []
        for init in node.get("initial", []) or []:
            keys = [k for k in init if k.startswith("value")] if isinstance(init, dict) else []
            if len(keys) != 1:
                self.problem(f"{where}.initial", "needs exactly one value[x]")
                continue
            values.append(self._answer_value(item, keys[0], init[keys[0]]))
        for opt, raw in zip(item.options, node.get("answerOption", []) or []):
            if isinstance(raw, dict) and raw.get("initialSelected"):
                values.append(opt.code)
        values = [v for v in values if v is not None]
        if not values:
            return None
        value = values if item.repeats and item.type in ("choice", "open-choice") else values[0]
        problem = item.check_answer(value)
        if problem:
            self.problem(f"{where}.initial", problem)
            return None
        return value

    def _answer_value(self, item: Item, key: str, value):
        """A FHIR value[x] as the kiosk stores an answer."""
        if key == "valueCoding":
            opt = next((o for o in item.options if o.fhir_code == value.get("code")
                        and (not value.get("system") or o.system in (None, value.get("system")))), None)
            return opt.code if opt else value.get("code")
        if key == "valueQuantity":
            unit = value.get("code") or value.get("unit")
            return {"value": value.get("value"), "unit": unit} if unit else value.get("value")
        return value

    def _options(self, node: dict, where: str, t: str):
        raw = node.get("answerOption", []) or []
        vs_ref = node.get("answerValueSet")
        if vs_ref:
            if raw:
                self.problem(where, "has both answerOption and answerValueSet")
            vs = self.value_sets.get(vs_ref)
            if vs is None:
                self.problem(where, f"answerValueSet {vs_ref!r} is not contained in the questionnaire "
                                    "(the kiosk has no terminology server: add the ValueSet to 'contained')")
                return
            raw = list(self._value_set_options(vs, where))
        if t in ("choice", "open-choice") and not raw and not vs_ref:
            self.problem(where, f"a {t} item needs answerOption or answerValueSet")
        if raw and t in ("boolean", "group", "display", "quantity", "text"):
            self.problem(where, f"a {t} item cannot have answerOption")
            return
        allowed = {
            "choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
            "open-choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
            "integer": {"valueInteger"},
            "decimal": {"valueInteger"},
            "string": {"valueString"},
            "date": {"valueDate"},
            "dateTime": {"valueDate"},
            "time": {"valueTime"},
        }.get(t, set())
        codings = [o.get("valueCoding", {}) for o in raw if isinstance(o, dict) and "valueCoding" in o]
        codes = [c.get("code") for c in codings]
        for n, opt in enumerate(raw):
            here = f"{where}.answerOption[{n}]"
            if not isinstance(opt, dict):
                self.problem(here, "must be an object")
                continue
            kinds = [k for k in opt if k.startswith("value")]
            if len(kinds) != 1 or kinds[0] not in allowed:
                found = ", ".join(kinds) or "nothing"
                self.problem(here, f"answerOption has {found}; a {t} item needs {' or '.join(sorted(allowed))}")
                continue
            kind = kinds[0]
            weight = _ext_value(opt, ORDINAL_URL) if _extensions(opt, ORDINAL_URL) else _ext_value(opt, WEIGHT_URL)
            if kind == "valueCoding":
                coding = opt["valueCoding"]
                code = coding.get("code")
                if not isinstance(code, str):
                    self.problem(here, "valueCoding has no code")
                    continue
                weight = weight if weight is not None else (
                    _ext_value(coding, ORDINAL_URL) if _extensions(coding, ORDINAL_URL) else _ext_value(coding, WEIGHT_URL))
                display = _translations(coding.get("display"), coding.get("_display"), self.base_lang)
                if display:
                    self.require_languages(here, display, f"option {code!r}")
                else:  # a bare code is shown (and read back) as it is
                    display = {self.base_lang: code}
                key = code if codes.count(code) == 1 else f"{coding.get('system', '')}|{code}"
                yield Option(key, display, kind, coding.get("system"), code, weight)
            else:
                value = opt[kind]
                yield Option(value, {}, kind, None, None, weight)

    def _value_set_options(self, vs: dict, where: str):
        """answerOption entries from a contained ValueSet (its expansion,
        else the concepts its compose lists)."""
        contains = (vs.get("expansion") or {}).get("contains")
        if contains:
            for c in contains:
                yield {"valueCoding": {k: v for k, v in c.items() if k in ("system", "code", "display", "extension")}}
            return
        for include in (vs.get("compose") or {}).get("include", []):
            if not include.get("concept"):
                self.problem(where, f"contained ValueSet {vs.get('id')!r} includes a whole code system; "
                                    "list its concepts so the kiosk can show them")
                continue
            for concept in include["concept"]:
                coding = {"system": include.get("system"), **{k: v for k, v in concept.items()
                                                              if k in ("code", "display", "extension")}}
                yield {"valueCoding": coding}

    def _enable_when(self, node: dict, where: str):
        for n, cond in enumerate(node.get("enableWhen", [])):
            here = f"{where}.enableWhen[{n}]"
            op = cond.get("operator")
            if op not in OPERATORS:
                self.problem(here, f"operator {op!r} is not one of {', '.join(sorted(OPERATORS))}")
                continue
            keys = [k for k in cond if k.startswith("answer")]
            if len(keys) != 1:
                self.problem(here, "needs exactly one answer[x]")
                continue
            value = cond[keys[0]]
            if keys[0] == "answerCoding":
                value = (value.get("system"), value.get("code")) if isinstance(value, dict) else (None, None)
            elif keys[0] == "answerQuantity":
                value = value.get("value") if isinstance(value, dict) else None
            yield EnableWhen(cond.get("question", ""), op, (keys[0], value))

    def check_references(self) -> None:
        index: dict[str, Item] = {}
        for item in self.items:
            if item.link_id in index:
                self.problem(f"item {item.link_id}", "duplicate linkId")
            index[item.link_id] = item
        resolved = []
        for item in self.items:
            conds = []
            for cond in item.enable_when:
                target = index.get(cond.question)
                here = f"item {item.link_id}.enableWhen"
                if target is None:
                    self.problem(here, f"question {cond.question!r} is not an item of this questionnaire")
                    continue
                key, value = cond.answer
                if cond.operator == "exists":
                    if not isinstance(value, bool):
                        self.problem(here, "operator 'exists' needs answerBoolean")
                    conds.append(cond)
                    continue
                if target.type not in ANSWER_KEYS.get(key, set()):
                    self.problem(here, f"{key} does not fit {cond.question!r}, a {target.type} item")
                    continue
                if key == "answerCoding":
                    system, code = value
                    opt = next((o for o in target.options if o.fhir_code == code
                                and (system is None or o.system in (None, system))), None)
                    if opt is None:
                        self.problem(here, f"{code!r} is not an answerOption of {cond.question!r}")
                        continue
                    cond = EnableWhen(cond.question, cond.operator, (key, opt.code))
                conds.append(cond)
            resolved.append(_replace(item, enable_when=tuple(conds)) if conds != list(item.enable_when) else item)
        self.items = resolved
        self._check_cycles(index)

    def _check_cycles(self, index: dict[str, Item]) -> None:
        """An item that depends (through enableWhen and its parents) on
        itself can never be decided."""
        deps = {i.link_id: {c.question for c in i.enable_when} | ({i.parent} if i.parent else set())
                for i in self.items}
        reported: set[frozenset] = set()
        for start in deps:
            stack = [(start, [start])]
            seen = set()
            while stack:
                node, trail = stack.pop()
                for nxt in deps.get(node, ()):
                    if nxt == start:
                        loop = frozenset(trail)
                        if loop not in reported and any(index[x].enable_when for x in trail):
                            reported.add(loop)
                            self.problem(f"item {start}.enableWhen",
                                         "enableWhen cycle: " + " -> ".join([*trail, start]))
                    elif nxt not in seen and nxt in deps:
                        seen.add(nxt)
                        stack.append((nxt, [*trail, nxt]))


def _replace(item: Item, **changes) -> Item:
    from dataclasses import replace

    return replace(item, **changes)


def _read_json(path: Path, problems: list[str]):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}:1: file not found")
    except json.JSONDecodeError as exc:
        problems.append(f"{path}:{exc.lineno}: broken JSON: {exc.msg} (column {exc.colno})")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: cannot read: {exc}")
    return None


def _read_questionnaire(q_path: Path, questionnaire, languages: tuple[str, ...], strict: bool):
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise PackError([f"{q_path}:resourceType: must be 'Questionnaire'"])
    base_lang = questionnaire.get("language") or languages[0]
    reader = _Reader(str(q_path), base_lang, languages, questionnaire, strict_languages=strict)
    reader.check_extensions(questionnaire, "Questionnaire")
    for ext in _extensions(questionnaire, VARIABLE_URL):
        expr = ext.get("valueExpression") or {}
        if not expr.get("name") or not expr.get("expression"):
            reader.problem("Questionnaire.extension", "variable needs a name and an expression")
    title = _translations(questionnaire.get("title"), questionnaire.get("_title"), base_lang)
    reader.read(questionnaire.get("item", []), "item")
    reader.check_references()
    if not any(i.is_step for i in reader.items) and not reader.problems:
        reader.problem("item", "the questionnaire asks nothing a patient can answer")
    from .expressions import check_expressions

    variables = tuple((e["valueExpression"]["name"], e["valueExpression"]["expression"])
                      for e in _extensions(questionnaire, VARIABLE_URL)
                      if (e.get("valueExpression") or {}).get("name") and e["valueExpression"].get("expression"))
    reader.problems.extend(check_expressions(str(q_path), reader.items, variables))
    return reader, title, base_lang, variables


def covered_languages(base_lang: str, texts: list[dict[str, str]]) -> tuple[str, ...]:
    """Languages every patient-facing text of the questionnaire is written
    in: the base language and each language of a complete translation."""
    langs = {base_lang}
    for t in texts:
        langs.update(t)
    return tuple(sorted((lang for lang in langs if all(lang in t for t in texts)),
                        key=lambda lang: (lang != base_lang, lang)))


def load_pack(path: str | Path | None = None) -> Pack:
    """Loads and validates a content pack folder, or a single FHIR R4
    Questionnaire JSON file (default: the built-in pack).

    Raises :class:`PackError` listing every problem found.
    """
    root = Path(path) if path else DEFAULT_PACK
    if root.is_file() or root.suffix == ".json":
        return _load_questionnaire_file(root)
    return _load_folder(root)


def _load_questionnaire_file(q_path: Path) -> Pack:
    from .rules import RuleSet

    problems: list[str] = []
    questionnaire = _read_json(q_path, problems)
    if problems:
        raise PackError(problems)
    base = questionnaire.get("language", "en") if isinstance(questionnaire, dict) else "en"
    reader, title, base_lang, variables = _read_questionnaire(q_path, questionnaire, (base,), strict=False)
    if reader.problems:
        raise PackError(reader.problems, reader.notices)
    digest = hashlib.sha256(q_path.read_bytes()).hexdigest()[:12]
    return Pack(
        id=str(questionnaire.get("id") or q_path.stem),
        version=str(questionnaire.get("version") or digest),
        languages=covered_languages(base_lang, reader.texts),
        title=title or {base_lang: str(questionnaire.get("name") or q_path.stem)},
        items=tuple(reader.items),
        rules=RuleSet((), ()),
        path=q_path,
        questionnaire=questionnaire,
        notices=tuple(reader.notices),
        variables=variables,
    )


def _load_folder(root: Path) -> Pack:
    from . import rules as rules_mod

    problems: list[str] = []
    manifest_path = root / "pack.json"
    manifest = _read_json(manifest_path, problems)
    if manifest is None:
        raise PackError(problems)
    if not isinstance(manifest, dict):
        raise PackError([f"{manifest_path}:1: must be a JSON object"])
    for key in ("id", "version", "languages"):
        if key not in manifest:
            problems.append(f"{manifest_path}:{key}: missing")
    languages = manifest.get("languages", [])
    if not (isinstance(languages, list) and languages and all(isinstance(x, str) for x in languages)):
        problems.append(f"{manifest_path}:languages: must be a non-empty list of language codes")
        languages = ["en"]
    q_path = root / manifest.get("questionnaire", "questionnaire.json")
    questionnaire = _read_json(q_path, problems)
    r_path = root / manifest.get("rules", "rules.json")
    rules_data = _read_json(r_path, problems)
    if questionnaire is None or rules_data is None or problems:
        raise PackError(problems)
    reader, title, _base, variables = _read_questionnaire(q_path, questionnaire, tuple(languages), strict=True)
    problems.extend(reader.problems)
    items = tuple(reader.items)
    index = {i.link_id: i for i in items}
    ruleset, rule_problems = rules_mod.parse_rules(rules_data, index, str(r_path))
    problems.extend(rule_problems)
    if problems:
        raise PackError(problems, reader.notices)
    return Pack(
        id=str(manifest["id"]),
        version=str(manifest["version"]),
        languages=tuple(languages),
        title=title,
        items=items,
        rules=ruleset,
        path=root,
        questionnaire=questionnaire,
        notices=tuple(reader.notices),
        variables=variables,
    )
