"""The questionnaire model: what the kiosk understood of a FHIR R4
Questionnaire (items, options, skip logic, units) and of a content pack, and
whether an answer fits an item.

This module imports nothing of the project, so every other part of the
engine (the reader, the expressions, the response) can build on it without
an import circle::

    >>> item = Item("pain-now", "integer", {"en": "Pain now?"}, min_value=0, max_value=10)
    >>> item.check_answer(11)
    'must be at most 10'
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
#: Extensions that tell another system how to turn the response into
#: resources (SDC extraction); the kiosk passes the response on as it is, so
#: they change nothing about what is asked or answered.
EXTRACTION_URLS = {
    SDC + "sdc-questionnaire-itemExtractionContext",
    SDC + "sdc-questionnaire-definitionExtract",
    SDC + "sdc-questionnaire-definitionExtractValue",
    SDC + "sdc-questionnaire-observationExtract",
    SDC + "sdc-questionnaire-observationLinkPeriod",
}
KNOWN_URLS = {
    TRANSLATION_URL, MIN_VALUE_URL, MAX_VALUE_URL, UNIT_URL, UNIT_OPTION_URL, HIDDEN_URL, ENTRY_FORMAT_URL,
    ORDINAL_URL, WEIGHT_URL, VARIABLE_URL, CALCULATED_URL, ENABLE_EXPR_URL, WIDGET_URL, NOTICE_URL,
    HL7 + "maxDecimalPlaces",
} | LAYOUT_URLS | EXTRACTION_URLS

ITEM_TYPES = {"boolean", "choice", "open-choice", "integer", "decimal", "string", "text", "date", "dateTime",
              "time", "quantity", "display", "group"}
#: Types a kiosk patient cannot answer: refused by name.
REFUSED_TYPES = {
    "attachment": "a patient cannot attach a file at the kiosk",
    "reference": "a patient cannot pick a record at the kiosk",
    "url": "a patient cannot type a web address at the kiosk",
}
WIDGETS = {"yesno", "scale", "choice", "multichoice", "openchoice", "bodymap", "date", "datetime", "time",
           "phone", "keyboard", "text", "code", "number", "integer", "decimal", "quantity", "display"}
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
#: item type -> the initial value[x] it may carry (FHIR R4 Questionnaire.item.initial)
INITIAL_KEYS = {
    "boolean": {"valueBoolean"},
    "decimal": {"valueDecimal", "valueInteger"},
    "integer": {"valueInteger"},
    "date": {"valueDate"},
    "dateTime": {"valueDateTime", "valueDate"},
    "time": {"valueTime"},
    "string": {"valueString"},
    "text": {"valueString"},
    "choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
    "open-choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
    "quantity": {"valueQuantity"},
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
    #: the answers (value[x] objects) of an item the patient is not asked
    #: (hidden or read-only) that the questionnaire fills in with ``initial``:
    #: they go into the QuestionnaireResponse exactly as written
    fixed: tuple[dict, ...] = ()
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
class Part:
    """One questionnaire of a composed pack: its own pack (items, rules and
    Questionnaire, for its QuestionnaireResponse) and the item that carries
    its condition (``""`` when it is always asked)."""

    id: str
    pack: "Pack"
    condition: str = ""


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
    #: the questionnaires asked, in order (:class:`Part`); one for a plain pack
    parts: tuple = ()
    #: role -> linkId (``given_name``, ``family_name``, ``birth_date``,
    #: ``body_map``, ``visit_kind``, ``return_code``) or list of linkIds
    #: (``pain_scale``)
    roles: dict = field(default_factory=dict)
    #: the figure of the body map: ``view``, ``outline`` and ``regions``
    body_map: dict | None = None
    #: score id -> {"label": {lang: text}, "fields": [{"id", "label"}]}
    score_labels: dict = field(default_factory=dict)

    def role(self, name: str) -> str | None:
        """The linkId that plays ``name`` (None when the pack has none)."""
        value = self.roles.get(name)
        return value if isinstance(value, str) and self.has(value) else None

    @property
    def preset(self) -> tuple[str, ...]:
        """Hidden items the kiosk answers itself instead of asking them on a
        screen of their own: the ``visit_kind`` the welcome screen's "First
        visit" / "I have been here before" records. A visit file may answer
        them like a question."""
        link_id = self.role("visit_kind")
        return (link_id,) if link_id else ()

    def answerable(self, link_id: str) -> bool:
        """Whether a visit may hold an answer to ``link_id``: an asked item
        or a preset one."""
        return self.has(link_id) and (self.item(link_id).asked or link_id in self.preset)

    def plays(self, link_id: str, name: str) -> bool:
        """Whether item ``link_id`` plays role ``name`` (roles may list several)."""
        value = self.roles.get(name)
        return link_id == value or (isinstance(value, (list, tuple)) and link_id in value)

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
