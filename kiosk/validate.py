"""``clinic-kiosk validate``: checks config files, content packs and media.

Each problem is one ``path:location: message`` line; nothing here raises a
traceback at the user.
"""

from __future__ import annotations

from pathlib import Path

from . import config as config_mod
from .questionnaire import PackError, load_pack
from .content import config_problems
from .questionnaire.compose import has_screening
from .runtime import media_manifest_path


def _validate_config(path: Path | None, problems: list[str]) -> config_mod.Config | None:
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        problems.extend(exc.problems)
        return None
    problems.extend(config_mod.staff_pin_problems(cfg))
    return cfg


def _validate_pack(path: Path | None, problems: list[str], warnings: list[str],
                   languages: list[str] | None = None, cfg: config_mod.Config | None = None) -> None:
    """Problems and notices of a pack folder or questionnaire file, and the
    clinic languages it does not cover (the kiosk offers only those it does).
    With the configuration ``cfg`` that names it, a pack without the
    red-flag screening is refused unless ``[kiosk] screening = "off"``, and
    so is a ``[kiosk] staff_language`` the pack does not offer."""
    try:
        pack = load_pack(path)
    except PackError as exc:
        problems.extend(exc.problems)
        warnings.extend(exc.notices)
        return
    warnings.extend(pack.notices)
    if cfg is not None:
        refused, notices = config_problems(cfg, pack)
        problems.extend(refused)
        warnings.extend(notices)
    elif not has_screening(pack):
        warnings.append(f"{pack.path}: has no red-flag screening; as [kiosk] content_pack it is refused "
                        'unless [kiosk] screening = "off" (or ask it after the built-in screening: '
                        'pack.json "parts")')
    missing = [lang for lang in languages or () if lang not in pack.languages]
    if missing:
        warnings.append(f"{pack.path}:language: does not cover {', '.join(missing)} of [clinic] languages "
                        f"(no FHIR translation); the kiosk offers only {', '.join(pack.languages)}")


def _is_questionnaire(path: Path) -> bool:
    """Whether a .json file is a FHIR Questionnaire (rather than a media manifest)."""
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8")).get("resourceType") == "Questionnaire"
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def _validate_media(path: Path, problems: list[str], warnings: list[str]) -> None:
    from . import media

    found, warned = media.validate_all(path)
    problems.extend(found)
    warnings.extend(warned)


def validate_paths(paths: list[str], config_path: str | None) -> tuple[list[str], list[str]]:
    """(problems, warnings) for the given paths, or for the configured
    config, content pack and media when no path is given."""
    problems: list[str] = []
    warnings: list[str] = []
    if not paths:
        cfg = _validate_config(Path(config_path) if config_path else None, problems)
        _validate_pack(Path(cfg.kiosk.content_pack) if cfg and cfg.kiosk.content_pack else None, problems,
                       warnings, list(cfg.clinic.languages) if cfg else None, cfg)
        _validate_media(media_manifest_path(cfg), problems, warnings)
        return problems, warnings
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(f"{path}:1: no such file or folder")
        elif path.is_dir() and (path / "pack.json").exists():
            _validate_pack(path, problems, warnings)
        elif path.is_dir() and (path / "manifest.json").exists():
            _validate_media(path / "manifest.json", problems, warnings)
        elif path.name == "pack.json":
            _validate_pack(path.parent, problems, warnings)
        elif path.suffix == ".json" and _is_questionnaire(path):
            _validate_pack(path, problems, warnings)
        elif path.suffix == ".toml":
            cfg = _validate_config(path, problems)
            if cfg is not None and cfg.kiosk.content_pack:  # the pack it names, as `run` would use it
                _validate_pack(Path(cfg.kiosk.content_pack), problems, warnings, list(cfg.clinic.languages), cfg)
        elif path.suffix == ".json":
            _validate_media(path, problems, warnings)
        else:
            problems.append(f"{path}:1: not a config file (.toml), content pack folder or media manifest")
    return problems, warnings
