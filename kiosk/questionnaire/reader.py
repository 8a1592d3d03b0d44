"""Reading FHIR R4 Questionnaire JSON into the model.

:class:`QuestionnaireReader` turns the JSON into :class:`~.model.Item`
objects, collecting every problem as a ``path:location: message`` line
instead of stopping at the first; what it does not understand but can
safely ignore becomes a notice. :func:`read_questionnaire` reads one whole
Questionnaire, its FHIRPath included.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..compare import COMPARE
from .expressions import check_expressions
from .model import (
    ANSWER_KEYS,
    CALCULATED_URL,
    ENABLE_EXPR_URL,
    ENTRY_FORMAT_URL,
    HIDDEN_URL,
    INITIAL_KEYS,
    ITEM_TYPES,
    KNOWN_URLS,
    MAX_VALUE_URL,
    MIN_VALUE_URL,
    NOTICE_URL,
    ORDINAL_URL,
    REFUSED_TYPES,
    TRANSLATION_URL,
    UNIT_OPTION_URL,
    UNIT_URL,
    VARIABLE_URL,
    WEIGHT_URL,
    WIDGET_URL,
    WIDGETS,
    EnableWhen,
    Item,
    Option,
    PackError,
    Unit,
)


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


#: enableWhen operators: ``exists``, and the comparisons the rules use too.
OPERATORS = {"exists", *COMPARE}


class QuestionnaireReader:
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

    def read(self, nodes: list, where: str, section: str = "", parent: str = "", hidden: bool = False) -> None:
        """Reads ``nodes`` (an ``item`` list); ``hidden`` when a group above
        them is hidden (questionnaire-hidden hides all that a group holds)."""
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
            item = self._item(node, here, t, link_id, section, parent, hidden)
            self.items.append(item)
            children = node.get("item", [])
            if t == "display" and children:
                self.problem(here, "a display item cannot contain items")
            self.read(children, here, link_id if t == "group" else section, link_id, item.hidden)
            if t not in ("group", "display"):
                self.items = [replace(i, is_help=True) if i.parent == link_id and i.type == "display" else i
                              for i in self.items]
                help_text = self._help(children)
                if help_text:
                    index = self.items.index(item)
                    if not item.text:
                        item = replace(item, text=help_text)
                    else:
                        item = replace(item, help=help_text, notice=item.notice or help_text)
                    self.items[index] = item

    def _help(self, children) -> dict[str, str]:
        """Display items directly under a question are shown with it, as
        its help text, rather than on a screen of their own."""
        for child in children if isinstance(children, list) else []:
            if isinstance(child, dict) and child.get("type") == "display" and child.get("text"):
                return _translations(child.get("text"), child.get("_text"), self.base_lang)
        return {}

    def _item(self, node, here, t, link_id, section, parent, hidden_above=False) -> Item:
        text = _translations(node.get("text"), node.get("_text"), self.base_lang)
        if not text and _code_text(node):
            text = {self.base_lang: _code_text(node)}
        prefix = node.get("prefix") or ""
        if prefix and text:
            text = {lang: f"{prefix} {t}" for lang, t in text.items()}
        hidden = hidden_above or bool(_ext_value(node, HIDDEN_URL))
        read_only = bool(node.get("readOnly", False))
        calculated = _expression(node, CALCULATED_URL)
        nothing_to_choose = t in ("choice", "open-choice") and not node.get("answerOption") \
            and not node.get("answerValueSet")
        if nothing_to_choose and node.get("initial") and not text and not (hidden or read_only or calculated):
            # No question and no options: a fixed value another tool fills in
            # for extraction (as a hidden item), never something to ask.
            self.notice(here, f"a {t} item with no text and no answerOption cannot be asked; its initial "
                              "value goes into the response as it is")
            hidden = True
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
        # a hidden, read-only or calculated item has its value already: it
        # needs no options to choose from
        has_value = (hidden or read_only or calculated) and (node.get("initial") or calculated)
        options = tuple(self._options(node, here, t, bool(has_value)))
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
            read_only=read_only,
            hidden=hidden,
            calculated=calculated,
            enable_expression=_expression(node, ENABLE_EXPR_URL),
            variables=tuple(variables),
        )
        initial, fixed = self._initial(node, here, item)
        return replace(item, initial=initial, fixed=fixed)

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
        """The answer shown at first (``initial`` or ``initialSelected``), and
        for an item the patient is not asked, the answers as written (see
        :attr:`Item.fixed`)."""
        values, written = [], []
        for init in node.get("initial", []) or []:
            keys = [k for k in init if k.startswith("value")] if isinstance(init, dict) else []
            if len(keys) != 1:
                self.problem(f"{where}.initial", "needs exactly one value[x]")
                continue
            if not item.asked and not item.options:
                # nothing to choose from: kept as written, checked only for its type
                if keys[0] not in INITIAL_KEYS.get(item.type, set()):
                    self.problem(f"{where}.initial", f"{keys[0]} does not fit a {item.type} item")
                    continue
                written.append({keys[0]: init[keys[0]]})
                continue
            values.append(self._answer_value(item, keys[0], init[keys[0]]))
            written.append({keys[0]: init[keys[0]]})
        for opt, raw in zip(item.options, node.get("answerOption", []) or []):
            if isinstance(raw, dict) and raw.get("initialSelected"):
                values.append(opt.code)
                written.append({k: v for k, v in raw.items() if k.startswith("value")})
        fixed = () if item.asked or item.calculated else tuple(written)
        values = [v for v in values if v is not None]
        if not values:
            return None, fixed
        value = values if item.repeats and item.type in ("choice", "open-choice") else values[0]
        problem = item.check_answer(value)
        if problem:
            self.problem(f"{where}.initial", problem)
            return None, ()
        return value, fixed

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

    def _options(self, node: dict, where: str, t: str, has_value: bool = False):
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
        if t in ("choice", "open-choice") and not raw and not vs_ref and not has_value:
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
            resolved.append(replace(item, enable_when=tuple(conds)) if conds != list(item.enable_when) else item)
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


def read_json(path: Path, problems: list[str]):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}:1: file not found")
    except json.JSONDecodeError as exc:
        problems.append(f"{path}:{exc.lineno}: broken JSON: {exc.msg} (column {exc.colno})")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: cannot read: {exc}")
    return None


def read_questionnaire(q_path: Path, questionnaire, languages: tuple[str, ...], strict: bool):
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise PackError([f"{q_path}:resourceType: must be 'Questionnaire'"])
    base_lang = questionnaire.get("language") or languages[0]
    reader = QuestionnaireReader(str(q_path), base_lang, languages, questionnaire, strict_languages=strict)
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
