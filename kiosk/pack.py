"""Content packs: the questionnaire, its rules and its translations, as data.

A pack is a folder::

    pack.json            id, version, languages, which files hold what
    questionnaire.json   a FHIR R4 Questionnaire (items, answerOption,
                         enableWhen, required) with per-language text in the
                         standard FHIR ``translation`` extension
    rules.json           triage rules and scores (see :mod:`kiosk.rules`)

Loading checks everything and raises :class:`PackError` with one
``path:location: message`` line per problem, so a kiosk never starts with a
half-understood pack::

    >>> pack = load_pack()          # the built-in default pack
    >>> pack.item("rf-saddle").type
    'boolean'
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PACK = Path(__file__).parent / "packs" / "default"

TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
KIOSK_EXT = "https://clinic-kiosk.org/fhir/StructureDefinition/"
WIDGET_URL = KIOSK_EXT + "widget"
NOTICE_URL = KIOSK_EXT + "notice"

ITEM_TYPES = {"boolean", "choice", "integer", "decimal", "string", "date", "display", "group"}
WIDGETS = {"yesno", "scale", "choice", "multichoice", "bodymap", "date", "phone", "keyboard", "number", "display"}
OPERATORS = {"exists", "=", "!=", ">", "<", ">=", "<="}
ANSWER_KEYS = {
    "answerBoolean": "boolean",
    "answerInteger": "integer",
    "answerDecimal": "decimal",
    "answerString": "string",
    "answerDate": "date",
    "answerCoding": "choice",
}


class PackError(Exception):
    """A content pack that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Option:
    code: Any
    display: dict[str, str]


@dataclass(frozen=True)
class EnableWhen:
    question: str
    operator: str
    answer: Any


@dataclass(frozen=True)
class Item:
    """One question (or display text) as the kiosk asks it."""

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

    def label(self, lang: str) -> str:
        return self.text.get(lang) or next(iter(self.text.values()), self.link_id)

    def option(self, code) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    def check_answer(self, value) -> str | None:
        """Why ``value`` is not a valid answer to this item, or None."""
        t = self.type
        if t == "boolean":
            return None if isinstance(value, bool) else "expected true or false"
        if t in ("integer", "decimal"):
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
        if t == "choice":
            values = value if self.repeats else [value]
            if self.repeats and not isinstance(value, list):
                return "expected a list of codes"
            codes = [o.code for o in self.options]
            bad = [v for v in values if v not in codes]
            return f"unknown code {bad[0]!r} (known: {', '.join(map(str, codes))})" if bad else None
        if t == "date":
            try:
                dt.date.fromisoformat(value)
            except (TypeError, ValueError):
                return "expected a date as YYYY-MM-DD"
            return None
        if t == "string":
            return None if isinstance(value, str) else "expected text"
        return "this item takes no answer"


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

    @property
    def content_version(self) -> str:
        return f"{self.id}@{self.version}"

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
        """Items that take an answer, in the order they are asked."""
        return [i for i in self.items if i.type not in ("display", "group")]


# -- reading FHIR JSON ------------------------------------------------------


def _translations(base: str | None, element: dict | None, base_lang: str) -> dict[str, str]:
    out = {}
    if base:
        out[base_lang] = base
    for ext in (element or {}).get("extension", []):
        if ext.get("url") != TRANSLATION_URL:
            continue
        parts = {e.get("url"): e for e in ext.get("extension", [])}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if lang and content:
            out[lang] = content
    return out


def _ext_value(node: dict, url: str, key: str | None = None):
    for ext in node.get("extension", []):
        if ext.get("url") == url:
            if key:
                return ext.get(key)
            for k, v in ext.items():
                if k.startswith("value"):
                    return v
    return None


def _default_widget(item: dict) -> str:
    t = item.get("type")
    if t == "boolean":
        return "yesno"
    if t == "choice":
        return "multichoice" if item.get("repeats") else "choice"
    if t == "integer":
        return "scale"
    if t == "decimal":
        return "number"
    if t == "date":
        return "date"
    if t == "display":
        return "display"
    return "keyboard"


class _Reader:
    """Turns questionnaire JSON into :class:`Item` objects, collecting
    problems instead of stopping at the first."""

    def __init__(self, path: str, base_lang: str, languages: tuple[str, ...]):
        self.path = path
        self.base_lang = base_lang
        self.languages = languages
        self.problems: list[str] = []
        self.items: list[Item] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}:{where}: {message}")

    def require_languages(self, where: str, texts: dict[str, str], what: str) -> None:
        missing = [lang for lang in self.languages if lang not in texts]
        if missing:
            self.problem(where, f"{what} has no {', '.join(missing)} translation")

    def read(self, nodes: list, where: str, section: str = "", inherited: tuple = (), behavior="all"):
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
            if t not in ITEM_TYPES:
                self.problem(here, f"type {t!r} is not one of {', '.join(sorted(ITEM_TYPES))}")
                continue
            text = _translations(node.get("text"), node.get("_text"), self.base_lang)
            if t != "group" or node.get("text"):
                self.require_languages(here, text, "text")
            enable = inherited + tuple(self._enable_when(node, here))
            behavior_here = node.get("enableBehavior", behavior if inherited else "all")
            if behavior_here not in ("all", "any"):
                self.problem(here, f"enableBehavior {behavior_here!r} must be 'all' or 'any'")
            if len(node.get("enableWhen", [])) > 1 and "enableBehavior" not in node:
                self.problem(here, "enableBehavior is required when there is more than one enableWhen")
            widget = _ext_value(node, WIDGET_URL) or _default_widget(node)
            if widget not in WIDGETS:
                self.problem(here, f"widget {widget!r} is not one of {', '.join(sorted(WIDGETS))}")
            notice_node = next((e for e in node.get("extension", []) if e.get("url") == NOTICE_URL), None)
            notice = (
                _translations(notice_node.get("valueString"), notice_node.get("_valueString"), self.base_lang)
                if notice_node
                else {}
            )
            item = Item(
                link_id=link_id,
                type=t,
                text=text,
                required=bool(node.get("required", False)),
                repeats=bool(node.get("repeats", False)),
                options=tuple(self._options(node, here, t)),
                enable_when=enable,
                enable_behavior=behavior_here,
                min_value=_ext_value(node, MIN_VALUE_URL),
                max_value=_ext_value(node, MAX_VALUE_URL),
                widget=widget,
                section=section,
                notice=notice,
            )
            self.items.append(item)
            if t == "group":
                self.read(node.get("item", []), here, link_id, enable, behavior_here)
            elif "item" in node:
                self.problem(here, "only group items may contain items")

    def _options(self, node: dict, where: str, t: str):
        options = node.get("answerOption", [])
        if t == "choice" and not options:
            self.problem(where, "a choice item needs answerOption")
        for n, opt in enumerate(options):
            here = f"{where}.answerOption[{n}]"
            if t == "choice" and "valueCoding" in opt:
                coding = opt["valueCoding"]
                code = coding.get("code")
                if not isinstance(code, str):
                    self.problem(here, "valueCoding has no code")
                    continue
                display = _translations(coding.get("display"), coding.get("_display"), self.base_lang)
                self.require_languages(here, display, f"option {code!r}")
                yield Option(code, display)
            elif t == "integer" and "valueInteger" in opt:
                yield Option(opt["valueInteger"], {})
            else:
                kinds = ", ".join(k for k in opt if k.startswith("value")) or "nothing"
                expected = {"choice": "valueCoding", "integer": "valueInteger"}.get(t)
                if expected:
                    self.problem(here, f"answerOption has {kinds}; a {t} item needs {expected}")
                else:
                    self.problem(here, f"a {t} item cannot have answerOption")

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
                value = value.get("code") if isinstance(value, dict) else None
            yield EnableWhen(cond.get("question", ""), op, (keys[0], value))

    def check_references(self) -> None:
        index = {}
        for item in self.items:
            if item.link_id in index:
                self.problem(f"item {item.link_id}", "duplicate linkId")
            index[item.link_id] = item
        for item in self.items:
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
                    continue
                if ANSWER_KEYS.get(key) != target.type and not (
                    key == "answerInteger" and target.type == "decimal"
                ):
                    self.problem(here, f"{key} does not fit {cond.question!r}, a {target.type} item")
                elif key == "answerCoding" and target.option(value) is None:
                    self.problem(here, f"{value!r} is not an answerOption of {cond.question!r}")


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


def load_pack(path: str | Path | None = None) -> Pack:
    """Loads and validates a content pack folder (default: the built-in pack).

    Raises :class:`PackError` listing every problem found.
    """
    from . import rules as rules_mod

    root = Path(path) if path else DEFAULT_PACK
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
    if questionnaire.get("resourceType") != "Questionnaire":
        raise PackError([f"{q_path}:resourceType: must be 'Questionnaire'"])
    base_lang = questionnaire.get("language", languages[0])
    reader = _Reader(str(q_path), base_lang, tuple(languages))
    title = _translations(questionnaire.get("title"), questionnaire.get("_title"), base_lang)
    reader.read(questionnaire.get("item", []), "item")
    reader.check_references()
    problems.extend(reader.problems)
    items = tuple(reader.items)
    index = {i.link_id: i for i in items}
    ruleset, rule_problems = rules_mod.parse_rules(rules_data, index, str(r_path))
    problems.extend(rule_problems)
    if problems:
        raise PackError(problems)
    return Pack(
        id=str(manifest["id"]),
        version=str(manifest["version"]),
        languages=tuple(languages),
        title=title,
        items=items,
        rules=ruleset,
        path=root,
        questionnaire=questionnaire,
    )
