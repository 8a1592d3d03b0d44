"""Composition and roles: the parts a pack asks, and which item is what.

A pack folder's ``pack.json`` may list the questionnaires it asks, in
order, instead of naming one questionnaire::

    {"id": "riverside", "version": "2.0.0", "languages": ["en", "es"],
     "parts": [{"id": "intake", "builtin": "default"},
               {"id": "clinic-form", "questionnaire": "forms/clinic.json",
                "enableWhen": [{"question": "pain-duration", "operator": "=",
                                "answerCoding": {"code": "over-12-weeks"}}]},
               {"id": "odi", "pack": "odi", "ask": "first"}]}

Each part is loaded on its own (the loader does that) and :func:`merge`
puts them together into one :class:`~.model.Pack`: the items in order (a
part with a condition sits in a group carrying it, so the usual enableWhen
machinery hides the whole part; ``"ask": "first"`` or ``"returning"`` is
such a condition on the visit kind the welcome screen records, and the
red-flag screening may never depend on it), the rules of every part
(highest tier wins, codes are unioned, so a later part can add a flag but
never take one away), and one linkId, rule id or score id never used by two
parts.

``roles`` say which item is the patient's name, date of birth, body map,
pain scales, visit kind (first visit or returning) and return code, and
``body_map`` holds the figure both the kiosk and the hub draw; a part
brought in with ``builtin`` or ``pack`` keeps its own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import rules as rules_mod
from ..problems import problems as pydantic_problems
from .model import ANSWER_KEYS, EnableWhen, Item, Pack, Part

#: The screening of shared/clinical/screening.md: a pack "has the red-flag
#: screening" when it asks every one of these and has emergency rules.
SCREENING_IDS = (
    "rf-saddle", "rf-bladder", "rf-bowel", "rf-sexual", "rf-weakness", "rf-both-legs", "rf-fever",
    "rf-infection-risk", "rf-cancer", "rf-weight-loss", "rf-major-trauma", "rf-bone-risk", "rf-night-pain",
    "rf-first-episode", "ci-clot", "ci-blood-thinner", "ci-pregnant", "ci-skin", "ci-surgery", "ci-fracture",
    "ci-cancer-treatment", "ci-contagious", "ci-implant",
)
CONDITION_OPERATORS = {"exists", "=", "!=", ">", "<", ">=", "<="}
#: The codes of the ``visit_kind`` item: the welcome screen's two buttons.
VISIT_KINDS = ("first", "returning")
Box = tuple[float, float, float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shape(_Strict):
    shape: Literal["ellipse", "rect", "line"]
    box: Box
    radius: float = 0


class Region(_Strict):
    code: str
    box: Box
    label: dict[str, str] = {}  # lang -> text; the option's display when missing


class BodyMapSpec(_Strict):
    """The figure in a box 100 units wide and 100 high, y downwards, drawn
    ``aspect`` (width / height) as wide as it is high."""

    view: Literal["back", "front"] = "back"
    aspect: float = Field(default=0.55, gt=0.1, le=2)
    outline: list[Shape] = []
    regions: list[Region] = Field(min_length=1)


class Roles(_Strict):
    given_name: Optional[str] = None
    family_name: Optional[str] = None
    birth_date: Optional[str] = None
    body_map: Optional[str] = None
    pain_scale: list[str] = []
    visit_kind: Optional[str] = None
    return_code: Optional[str] = None


class PartSpec(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: Optional[str] = None
    builtin: Optional[Literal["default"]] = None
    questionnaire: Optional[str] = None
    rules: Optional[str] = None
    pack: Optional[str] = None
    enable_when: list[dict] = Field(default=[], alias="enableWhen")
    enable_behavior: Literal["all", "any"] = Field(default="all", alias="enableBehavior")
    #: on which visits the part is asked: a first visit (also when the visit
    #: kind is not known), a returning patient's, or always
    ask: Literal["first", "returning", "always"] = "always"

    def source(self) -> str:
        """What the part is, for messages."""
        return self.builtin and f"builtin {self.builtin}" or self.pack or self.questionnaire or "?"


def part_specs(path: Path, raw) -> tuple[list[PartSpec | None], list[str]]:
    """The checked ``parts`` of a pack.json (None for a broken one)."""
    if not isinstance(raw, list) or not raw:
        return [], [f"{path}:parts: must be a non-empty list of parts"]
    specs, problems = [], []
    for n, entry in enumerate(raw):
        try:
            spec = PartSpec.model_validate(entry)
        except ValidationError as exc:
            problems.extend(pydantic_problems(str(path), exc, ("parts", n), model=PartSpec))
            specs.append(None)
            continue
        kinds = [k for k in ("builtin", "questionnaire", "pack") if getattr(spec, k)]
        if len(kinds) != 1:
            problems.append(f"{path}:parts[{n}]: needs exactly one of builtin, questionnaire or pack")
            specs.append(None)
            continue
        if spec.rules and not spec.questionnaire:
            problems.append(f"{path}:parts[{n}].rules: only a questionnaire part takes rules of its own")
        if spec.ask != "always" and spec.enable_behavior == "any":
            problems.append(f"{path}:parts[{n}].ask: cannot be combined with enableBehavior 'any' (the part "
                            "would be asked on any visit where its other condition holds)")
        specs.append(spec)
    return specs, problems


def score_labels(rules_data) -> dict:
    """Score id -> its ``label`` and ``fields`` from rules.json (the staff
    page's column names, in each language)."""
    out = {}
    for raw in (rules_data or {}).get("scores", []) if isinstance(rules_data, dict) else []:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            out[raw["id"]] = {"label": raw.get("label") or {}, "fields": raw.get("fields") or [],
                              **{k: raw[k] for k in ("mcid", "better") if k in raw}}
    return out


def read_roles(path: Path, manifest: dict, items: dict[str, Item], base_roles: dict | None = None,
               base_body_map: dict | None = None) -> tuple[dict, dict | None, list[str]]:
    """The roles and body map of a pack.json, checked against the items
    (a composed pack keeps those of its parts unless it names its own)."""
    problems: list[str] = []
    roles = dict(base_roles or {})
    body_map = base_body_map
    if "roles" in manifest:
        try:
            spec = Roles.model_validate(manifest["roles"])
        except ValidationError as exc:
            problems.extend(pydantic_problems(str(path), exc, ("roles",), model=Roles))
        else:
            roles.update({k: v for k, v in spec.model_dump().items() if v})
    for name, value in roles.items():
        for link_id in value if isinstance(value, list) else [value]:
            if link_id not in items:
                problems.append(f"{path}:roles.{name}: {link_id!r} is not an item of the pack")
    for link_id in roles.get("pain_scale", []):
        if link_id in items and items[link_id].widget != "scale":
            problems.append(f"{path}:roles.pain_scale: {link_id!r} is not a 0-10 scale")
    kind = items.get(roles.get("visit_kind") or "")
    if kind is not None and (kind.type != "choice" or not kind.hidden or kind.repeats
                             or not set(VISIT_KINDS) <= {o.code for o in kind.options}):
        problems.append(f"{path}:roles.visit_kind: {kind.link_id!r} must be a hidden (questionnaire-hidden) "
                        "single choice with the codes 'first' and 'returning': the welcome screen answers it")
    code = items.get(roles.get("return_code") or "")
    if code is not None and (code.type != "string" or not code.asked or code.required):
        problems.append(f"{path}:roles.return_code: {code.link_id!r} must be an optional string item the patient "
                        "types")
    if "body_map" in manifest:
        try:
            body_map = BodyMapSpec.model_validate(manifest["body_map"]).model_dump()
        except ValidationError as exc:
            problems.extend(pydantic_problems(str(path), exc, ("body_map",), model=BodyMapSpec))
            body_map = None
    target = items.get(roles.get("body_map") or "")
    if body_map is not None and target is not None:
        codes = {o.code for o in target.options}
        for n, region in enumerate(body_map["regions"]):
            if region["code"] not in codes:
                problems.append(f"{path}:body_map.regions[{n}]: {region['code']!r} is not an answer option of "
                                f"{target.link_id!r}")
    elif body_map is not None and "body_map" in manifest:
        problems.append(f"{path}:body_map: needs roles.body_map, the item whose options the regions are")
    return roles, body_map, problems


def _condition(path: str, spec: PartSpec, where: str, asked: dict[str, Item], problems: list[str]):
    """The part's enableWhen, resolved against the items of earlier parts."""
    conds = []
    for n, cond in enumerate(spec.enable_when):
        here = f"{path}:{where}.enableWhen[{n}]"
        question, op = cond.get("question"), cond.get("operator")
        keys = [k for k in cond if k.startswith("answer")]
        target = asked.get(question) if isinstance(question, str) else None
        if target is None:
            problems.append(f"{here}: question {question!r} is not asked by an earlier part")
            continue
        if op not in CONDITION_OPERATORS:
            problems.append(f"{here}: operator {op!r} is not one of {', '.join(sorted(CONDITION_OPERATORS))}")
            continue
        if len(keys) != 1:
            problems.append(f"{here}: needs exactly one answer[x]")
            continue
        key, value = keys[0], cond[keys[0]]
        if op != "exists" and target.type not in ANSWER_KEYS.get(key, set()):
            problems.append(f"{here}: {key} does not fit {question!r}, a {target.type} item")
            continue
        if key == "answerCoding":
            code = value.get("code") if isinstance(value, dict) else None
            opt = next((o for o in target.options if o.fhir_code == code), None)
            if opt is None:
                problems.append(f"{here}: {code!r} is not an answerOption of {question!r}")
                continue
            value = opt.code
        elif key == "answerQuantity":
            value = value.get("value") if isinstance(value, dict) else None
        conds.append(EnableWhen(question, op, (key, value)))
    return tuple(conds)


def _ask_condition(path: str, spec: PartSpec, where: str, asked: dict[str, Item], roles: dict,
                   problems: list[str]) -> tuple[EnableWhen, ...]:
    """``ask`` as a condition on the visit kind of an earlier part
    (unanswered counts as a first visit, as FHIR's ``!=`` does)."""
    if spec.ask == "always":
        return ()
    kind = roles.get("visit_kind")
    if kind not in asked:
        problems.append(f"{path}:{where}.ask: needs an earlier part with the visit-kind item (roles.visit_kind; "
                        "the built-in intake has it)")
        return ()
    op = "=" if spec.ask == "returning" else "!="
    return (EnableWhen(kind, op, ("answerCoding", "returning")),)


def unskippable_screening_problems(path: Path, items: tuple[Item, ...] | list[Item], rules, roles: dict,
                       where: dict[str, str] | None = None) -> list[str]:
    """The red-flag screening is asked on every visit: no screening item
    (those of shared/clinical/screening.md, and every item an emergency or
    urgent rule flags) may depend on the visit kind, itself or through the
    groups and part it sits in. ``where`` names the place of an item in
    messages (a part's group: ``parts[2]``); else ``item LINKID``."""
    kind = roles.get("visit_kind")
    if not kind:
        return []
    index = {i.link_id: i for i in items}
    flagged = set(SCREENING_IDS) | {c for r in rules.rules if r.tier in ("emergency", "urgent") for c in r.codes}
    problems = []
    for link_id in [i.link_id for i in items if i.link_id in flagged]:
        node = index[link_id]
        while node is not None:
            if any(c.question == kind for c in node.enable_when) or kind in (node.enable_expression or ""):
                place = (where or {}).get(node.link_id, f"item {node.link_id}")
                problems.append(f"{path}:{place}: the red-flag screening ({link_id!r}) is asked on every visit; "
                                f"it cannot depend on {kind!r} (ask, enableWhen)")
                return problems
            node = index.get(node.parent)
    return problems


def merge(path: Path, manifest: dict, languages: tuple[str, ...], loaded: list[tuple[int, PartSpec, Pack]],
          problems: list[str]) -> Pack | None:
    """One pack from its loaded parts, in order; problems are appended
    (None when there are any)."""
    where_of = {}
    items: list[Item] = []
    asked: dict[str, Item] = {}
    owner: dict[str, str] = {}
    rule_owner: dict[str, str] = {}
    score_owner: dict[str, str] = {}
    parts: list[Part] = []
    rules, scores, variables, notices = [], [], [], []
    roles: dict = {}
    body_map = None
    labels: dict = {}
    for n, spec, sub in loaded:
        where = f"parts[{n}]"
        for inner in sub.parts or (Part(sub.id, sub),):
            part_id = spec.id if spec.id and len(sub.parts) <= 1 else inner.id
            if part_id in {p.id for p in parts}:
                problems.append(f"{path}:{where}: part id {part_id!r} is used twice; give each part its own id")
            where_of[part_id] = where
            group = ""
            if spec.enable_when or spec.ask != "always":
                conds = _condition(str(path), spec, where, asked, problems)
                conds += _ask_condition(str(path), spec, where, asked, roles, problems)
                group = f"part:{part_id}"
                items.append(Item(link_id=group, type="group", text={}, enable_when=conds,
                                  enable_behavior=spec.enable_behavior))
            for item in inner.pack.items:
                if item.link_id in owner:
                    problems.append(f"{path}:{where}: linkId {item.link_id!r} is already asked by part "
                                    f"{owner[item.link_id]!r}")
                    continue
                owner[item.link_id] = part_id
                if group and not item.parent:
                    item = _with_parent(item, group)
                items.append(item)
                asked[item.link_id] = item
            for rule in inner.pack.rules.rules:
                if rule.id in rule_owner:
                    problems.append(f"{path}:{where}: rule id {rule.id!r} is already used by part "
                                    f"{rule_owner[rule.id]!r}; a part cannot replace another's rules")
                    continue
                rule_owner[rule.id] = part_id
                rules.append(rule)
            for score in inner.pack.rules.scores:
                if score.id in score_owner:
                    problems.append(f"{path}:{where}: score id {score.id!r} is already computed by part "
                                    f"{score_owner[score.id]!r}")
                    continue
                score_owner[score.id] = part_id
                scores.append(score)
            parts.append(Part(part_id, inner.pack, group))
            variables.extend(inner.pack.variables)
            notices.extend(inner.pack.notices)
            labels.update(inner.pack.score_labels)
            for name, value in inner.pack.roles.items():
                roles.setdefault(name, value)
            body_map = body_map or inner.pack.body_map
    index = {i.link_id: i for i in items}
    roles, body_map, role_problems = read_roles(path, manifest, index, roles, body_map)
    problems.extend(role_problems)
    groups = {f"part:{part_id}": where for part_id, where in where_of.items()}
    problems.extend(unskippable_screening_problems(path, items, rules_mod.RuleSet(tuple(rules), ()), roles, groups))
    covered = tuple(lang for lang in languages if all(lang in p.pack.languages for p in parts))
    if parts and not covered:
        problems.append(f"{path}:languages: no language of {', '.join(languages)} is covered by every part")
    if problems:
        return None
    dropped = [lang for lang in languages if lang not in covered]
    if dropped:
        notices.append(f"{path}:languages: {', '.join(dropped)} dropped: not every part is written in it")
    first = parts[0].pack
    return Pack(
        id=str(manifest["id"]),
        version=str(manifest["version"]),
        languages=covered,
        title=_title(manifest, first),
        items=tuple(items),
        rules=rules_mod.RuleSet(tuple(rules), tuple(scores),
                                birth_date=roles.get("birth_date", first.rules.birth_date)),
        path=path.parent,
        questionnaire=first.questionnaire,
        notices=tuple(notices),
        variables=tuple(variables),
        parts=tuple(parts),
        roles=roles,
        body_map=body_map,
        score_labels=labels,
    )


def _title(manifest: dict, first: Pack) -> dict:
    title = manifest.get("title")
    if isinstance(title, dict):
        return title
    return {lang: title for lang in first.languages} if isinstance(title, str) else first.title


def _with_parent(item: Item, parent: str) -> Item:
    return replace(item, parent=parent)


def has_screening(pack: Pack) -> bool:
    """Whether the pack asks the whole red-flag screening and can stop a
    visit for an emergency."""
    return all(pack.has(i) and pack.item(i).asked for i in SCREENING_IDS) and any(
        r.tier == "emergency" for r in pack.rules.rules)


def screening_problems(pack: Pack, setting: str, source: str) -> tuple[list[str], list[str]]:
    """(problems, notices) of using ``pack`` as a kiosk's content with
    ``[kiosk] screening = setting`` in the configuration ``source``.

    A pack without the red-flag screening (a questionnaire from another
    tool, a composed pack without the built-in part) would let a patient
    with an emergency finish the intake and leave, with no alert to staff:
    it is refused unless the configuration turns screening off in words,
    and then every check says so again. The problem line reads
    ``kiosk.toml:kiosk.content_pack: PACK has no red-flag screening ...``.
    """
    if has_screening(pack):
        if setting == "off":
            return [], [f'{source}:kiosk.screening: "off" has no effect: the content pack {pack.path} asks the '
                        "red-flag screening, so it is still asked"]
        return [], []
    if setting == "off":
        return [], [f'{source}:kiosk.screening: "off": the content pack {pack.path} has no red-flag screening, '
                    "so no patient is stopped for an emergency and staff get no emergency alert"]
    return [f"{source}:kiosk.content_pack: {pack.path} has no red-flag screening (no patient would be stopped "
            "for an emergency, no alert would reach staff); ask it after the built-in intake and screening "
            '(a pack folder whose pack.json "parts" list {"builtin": "default"} first, then this '
            'questionnaire), or, to run without screening, set screening = "off" under [kiosk]'], []
