"""Content packs: the questionnaire, its rules and its translations, as data.

A pack is a folder::

    pack.json            id, version, languages, which files hold what
    questionnaire.json   a FHIR R4 Questionnaire (items, answerOption,
                         enableWhen, required) with per-language text in the
                         standard FHIR ``translation`` extension
    rules.json           triage rules and scores (see :mod:`kiosk.rules`)

or a single FHIR R4 Questionnaire JSON file from another tool, used as it is
(no triage rules; its languages are the ones its text is written in).

Loading checks everything and raises :class:`~.model.PackError` with one
``path:location: message`` line per problem, so a kiosk never starts with a
half-understood pack; what the kiosk does not understand but can safely
ignore is listed in :attr:`~.model.Pack.notices`::

    >>> pack = load_pack()          # the built-in default pack
    >>> pack.item("rf-saddle").type
    'boolean'
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from .. import rules as rules_mod
from . import compose
from .model import Pack, PackError, Part
from .reader import covered_languages, read_json, read_questionnaire

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "packs" / "default"


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
    problems: list[str] = []
    questionnaire = read_json(q_path, problems)
    if problems:
        raise PackError(problems)
    base = questionnaire.get("language", "en") if isinstance(questionnaire, dict) else "en"
    reader, title, base_lang, variables = read_questionnaire(q_path, questionnaire, (base,), strict=False)
    if reader.problems:
        raise PackError(reader.problems, reader.notices)
    digest = hashlib.sha256(q_path.read_bytes()).hexdigest()[:12]
    pack = Pack(
        id=str(questionnaire.get("id") or q_path.stem),
        version=str(questionnaire.get("version") or digest),
        languages=covered_languages(base_lang, reader.texts),
        title=title or {base_lang: str(questionnaire.get("name") or q_path.stem)},
        items=tuple(reader.items),
        rules=rules_mod.RuleSet((), ()),
        path=q_path,
        questionnaire=questionnaire,
        notices=tuple(reader.notices),
        variables=variables,
    )
    object.__setattr__(pack, "parts", (Part(pack.id, pack),))
    return pack


def _load_folder(root: Path) -> Pack:
    problems: list[str] = []
    manifest_path = root / "pack.json"
    manifest = read_json(manifest_path, problems)
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
    if "parts" in manifest:
        return _load_parts(root, manifest_path, manifest, tuple(languages), problems)
    return _load_single(root, manifest, tuple(languages), problems, manifest.get("questionnaire"),
                        manifest.get("rules"), str(manifest.get("id", root.name)))


def _load_single(root: Path, manifest: dict, languages: tuple[str, ...], problems: list[str],
                 questionnaire_name: str | None, rules_name: str | None, part_id: str) -> Pack:
    """A pack of one questionnaire and its rules (the pack.json of old, or
    one part of a composed pack)."""
    manifest_path = root / "pack.json"
    q_path = root / (questionnaire_name or "questionnaire.json")
    questionnaire = read_json(q_path, problems)
    r_path = root / (rules_name or "rules.json")
    rules_data = read_json(r_path, problems)
    if questionnaire is None or rules_data is None or problems:
        raise PackError(problems)
    reader, title, _base, variables = read_questionnaire(q_path, questionnaire, tuple(languages), strict=True)
    problems.extend(reader.problems)
    items = tuple(reader.items)
    index = {i.link_id: i for i in items}
    ruleset, rule_problems = rules_mod.parse_rules(rules_data, index, str(r_path))
    problems.extend(rule_problems)
    roles, body_map, role_problems = compose.read_roles(manifest_path, manifest, index)
    problems.extend(role_problems)
    problems.extend(compose.unskippable_screening_problems(q_path, items, ruleset, roles))
    if problems:
        raise PackError(problems, reader.notices)
    if "birth_date" in roles or "roles" in manifest:
        ruleset = replace(ruleset, birth_date=roles.get("birth_date"))
    pack = Pack(
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
        roles=roles,
        body_map=body_map,
        score_labels=compose.score_labels(rules_data),
    )
    object.__setattr__(pack, "parts", (Part(part_id, pack),))
    return pack


def _load_parts(root: Path, manifest_path: Path, manifest: dict, languages: tuple[str, ...],
                problems: list[str]) -> Pack:
    """A composed pack: each part loaded on its own, then merged."""
    specs, spec_problems = compose.part_specs(manifest_path, manifest["parts"])
    problems.extend(spec_problems)
    loaded = []
    notices: list[str] = []
    for n, spec in enumerate(specs):
        if spec is None:
            continue
        try:
            if spec.builtin:
                sub = load_pack(DEFAULT_PACK)
            elif spec.pack:
                sub = _load_folder(root / spec.pack)
            elif spec.rules:
                sub = _load_single(root, {"id": spec.id or Path(spec.questionnaire).stem,
                                          "version": manifest.get("version", "")}, languages, [],
                                   spec.questionnaire, spec.rules, spec.id or Path(spec.questionnaire).stem)
            else:
                sub = _load_questionnaire_file(root / spec.questionnaire)
        except PackError as exc:
            problems.extend(exc.problems)
            notices.extend(exc.notices)
            continue
        loaded.append((n, spec, sub))
    pack = compose.merge(manifest_path, manifest, languages, loaded, problems) if not problems else None
    if pack is None:
        raise PackError(problems, notices)
    return pack
