"""The media catalogue: technique explainer videos, their captions and texts.

The catalogue is data, described by ``media/manifest.json``::

    {"version": 1,
     "languages": ["en", "es"],
     "techniques": [
       {"id": "swedish",
        "title":        {"en": "Swedish massage", "es": "Masaje sueco"},
        "summary":      {"en": "...", "es": "..."},
        "expect":       {"en": "...", "es": "..."},
        "not_suitable": {"en": "...", "es": "..."},
        "video":  "generated/swedish.mp4",
        "poster": "generated/swedish.png",
        "captions": {"en": "captions/swedish.en.vtt",
                     "es": "captions/swedish.es.vtt"},
        "scene": "swedish"}]}

File paths are relative to the manifest's folder (absolute paths work too).
``scene`` is optional: it names the drawing :mod:`kiosk.media_gen` renders
for the demo; a clinic's own video simply leaves it out.

Two levels of checking, because a kiosk must start even when one file is bad:

* :func:`load_catalogue` refuses a manifest whose *structure* is wrong
  (raises :class:`MediaError` listing every problem). Captions are parsed at
  load so the UI never reads files; a missing or broken caption file only
  leaves that technique without captions (noted in ``Catalogue.problems``).
* :func:`validate` (what ``clinic-kiosk validate`` runs) also checks that
  every file exists, captions parse as WebVTT, posters are images and videos
  decode, and warns when a video will not play smoothly on the target board.

Every problem is one ``path:location: message`` line::

    >>> validate("media/manifest.json")  # doctest: +SKIP
    ['media/manifest.json:techniques[1].captions.es: file not found: captions/deep.es.vtt']

This module never imports Kivy.
"""

from __future__ import annotations

import bisect
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .problems import invalid
from .problems import problems as pydantic_problems

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "media" / "manifest.json"

TEXT_FIELDS = ("title", "summary", "expect", "not_suitable")
PATH_FIELDS = ("video", "poster")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")

#: What each target board decodes in hardware, as (codec, max width,
#: max height, max fps). Anything else is decoded in software, which
#: stutters on a Raspberry Pi once the picture gets large.
BOARDS: dict[str, tuple[tuple[str, int, int, float], ...]] = {
    # The Pi 4 decodes H.264 up to 1080p30 and HEVC up to 4Kp60 in hardware.
    "pi4": (("h264", 1920, 1080, 30.0), ("hevc", 3840, 2160, 60.0)),
    # The Pi 5 has no H.264 decoder block: H.264 runs on the CPU, which is
    # smooth up to about 720p30. HEVC is still decoded in hardware.
    "pi5": (("h264", 1280, 720, 30.0), ("hevc", 3840, 2160, 60.0)),
}
BOARD_NAMES = {"pi4": "Raspberry Pi 4", "pi5": "Raspberry Pi 5"}


class MediaError(Exception):
    """Media that cannot be used; ``problems`` lists every reason as a
    ``path:location: message`` line."""

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# --------------------------------------------------------------------------
# WebVTT


@dataclass(frozen=True)
class Cue:
    """One caption: shown from ``start`` (inclusive) to ``end`` (exclusive),
    in seconds. ``text`` has the WebVTT markup removed and keeps its line
    breaks."""

    start: float
    end: float
    text: str


class VttError(ValueError):
    """A WebVTT file that does not parse; ``line`` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


_TIMESTAMP_RE = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_TAG_RE = re.compile(r"<[^>]*>")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&nbsp;": "\u00a0",
             "&lrm;": "\u200e", "&rlm;": "\u200f"}


def parse_timestamp(text: str) -> float:
    """``"01:02.500"`` or ``"00:01:02.500"`` -> seconds; ``ValueError`` if
    it is not a WebVTT timestamp."""
    match = _TIMESTAMP_RE.match(text)
    if not match:
        raise ValueError(f"not a WebVTT timestamp: {text!r} (expected mm:ss.ttt or hh:mm:ss.ttt)")
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _clean(text: str) -> str:
    text = _TAG_RE.sub("", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def parse_vtt(text: str) -> tuple[Cue, ...]:
    """Parse WebVTT text into cues sorted by start time.

    Follows the parts of the WebVTT spec a caption file for a short video
    uses: the ``WEBVTT`` header, optional cue identifiers, cue settings after
    the timings (ignored: the kiosk places captions itself), ``NOTE``,
    ``STYLE`` and ``REGION`` blocks (skipped) and inline tags (removed).
    Raises :class:`VttError` naming the first line that is wrong.

    >>> parse_vtt("WEBVTT\\n\\n00:01.000 --> 00:03.000\\nHello")
    (Cue(start=1.0, end=3.0, text='Hello'),)
    """
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not (lines[0] == "WEBVTT" or lines[0].startswith(("WEBVTT ", "WEBVTT\t"))):
        raise VttError(1, "a WebVTT file must start with the line 'WEBVTT'")
    cues: list[Cue] = []
    i = 1
    # The header runs to the first blank line.
    while i < len(lines) and lines[i].strip():
        i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        first = block[0]
        if first.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in first:
            continue
        timing_index = 0 if "-->" in first else 1
        if timing_index >= len(block) or "-->" not in block[timing_index]:
            # A first line that starts like a timestamp is a mistyped timing
            # line, not a cue identifier: point at it.
            looks_timed = re.match(r"\s*\d+:", first) is not None
            raise VttError(block_start + 1 + (0 if looks_timed else timing_index),
                           "expected a cue timing line 'start --> end'")
        line_no = block_start + 1 + timing_index
        start_text, _, rest = block[timing_index].partition("-->")
        end_text = rest.strip().split()[0] if rest.strip() else ""
        try:
            start = parse_timestamp(start_text.strip())
            end = parse_timestamp(end_text)
        except ValueError as exc:
            raise VttError(line_no, str(exc)) from None
        if end <= start:
            raise VttError(line_no, f"cue ends ({end_text}) before it starts ({start_text.strip()})")
        payload = "\n".join(_clean(line) for line in block[timing_index + 1:]).strip()
        if not payload:
            raise VttError(line_no, "cue has no text")
        cues.append(Cue(start, end, payload))
    if not cues:
        raise VttError(len(lines), "no cues")
    return tuple(sorted(cues, key=lambda cue: (cue.start, cue.end)))


def cues_at(cues: tuple[Cue, ...] | list[Cue], t: float) -> list[Cue]:
    """The cues showing at ``t`` seconds, in start order. ``cues`` must be
    sorted by start, as :func:`parse_vtt` returns them.

    >>> cues = parse_vtt("WEBVTT\\n\\n00:01.000 --> 00:03.000\\nHello")
    >>> [c.text for c in cues_at(cues, 2.0)], cues_at(cues, 3.0)
    (['Hello'], [])
    """
    # Only cues that started at or before t can show; overlapping cues are
    # rare, so a linear look-back over those is fine.
    stop = bisect.bisect_right([cue.start for cue in cues], t)
    return [cue for cue in cues[:stop] if cue.end > t]


def caption_at(cues: tuple[Cue, ...] | list[Cue], t: float) -> str:
    """The caption text to show at ``t`` seconds ("" when none)."""
    return "\n".join(cue.text for cue in cues_at(cues, t))


# --------------------------------------------------------------------------
# Probing videos


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learned about a video file."""

    path: Path
    codec: str
    width: int
    height: int
    fps: float
    duration: float
    pix_fmt: str
    warnings: tuple[str, ...] = ()


def board_warnings(info: VideoInfo, board: str | None = None) -> list[str]:
    """Why ``info`` may not play smoothly on ``board`` ("pi4", "pi5", or
    ``None`` for both). Pure: works on the probed numbers only.

    >>> board_warnings(VideoInfo(Path("a.mp4"), "h264", 1920, 1080, 30, 10, "yuv420p"), "pi5")[0][:40]
    'Raspberry Pi 5 has no H.264 hardware dec'
    """
    boards = [board] if board else list(BOARDS)
    warnings = []
    for name in boards:
        limits = BOARDS.get(name)
        if limits is None:
            warnings.append(f"unknown board {name!r} (known: {', '.join(BOARDS)})")
            continue
        label = BOARD_NAMES[name]
        by_codec = {codec: (w, h, fps) for codec, w, h, fps in limits}
        size = f"{info.width}x{info.height}"
        if info.codec not in by_codec:
            warnings.append(f"{label} decodes {info.codec} in software and it may stutter; "
                            f"use H.264 (up to 1080p30 on a Pi 4) or HEVC")
            continue
        max_w, max_h, max_fps = by_codec[info.codec]
        # Compare the long and short sides so portrait videos are judged fairly.
        too_big = (max(info.width, info.height) > max(max_w, max_h)
                   or min(info.width, info.height) > min(max_w, max_h))
        too_fast = info.fps > max_fps + 0.5
        if name == "pi5" and info.codec == "h264" and (too_big or too_fast):
            warnings.append(f"{label} has no H.264 hardware decoder: {size} at {info.fps:g} fps "
                            f"may stutter; re-encode at 1280x720 30 fps or as HEVC")
        elif too_big or too_fast:
            warnings.append(f"{label} plays {info.codec} smoothly up to {max_w}x{max_h} at "
                            f"{max_fps:g} fps; this is {size} at {info.fps:g} fps")
    if info.pix_fmt not in ("yuv420p", "yuvj420p", "nv12", ""):
        warnings.append(f"pixel format {info.pix_fmt} is not hardware-decoded on a Raspberry Pi; "
                        f"encode with yuv420p")
    return warnings


def probe(video_path: str | Path, board: str | None = None) -> VideoInfo:
    """Open ``video_path`` with PyAV and decode its first frame.

    Returns codec, resolution, frame rate and duration, with ``warnings``
    for ``board`` (see :func:`board_warnings`). A missing, corrupt or
    unsupported file raises :class:`MediaError` with a one-line reason that
    names the file, never another exception.
    """
    import av  # imported here: only `validate` and the checker child (see playable)

    path = Path(video_path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name if stream.codec_context else ""
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            if stream.duration is not None and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            # Decoding one frame is what separates a file with a valid header
            # from one that will actually play.
            frame = next(container.decode(stream), None)
            if frame is None:
                raise MediaError(f"{path}: no picture could be decoded")
            info = VideoInfo(path, codec, frame.width, frame.height, float(rate), duration,
                             frame.format.name if frame.format else "")
    except MediaError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MediaError(f"{path}: cannot be decoded as a video ({reason})") from None
    if info.width <= 0 or info.height <= 0:
        raise MediaError(f"{path}: video has no picture size")
    return VideoInfo(**{**info.__dict__, "warnings": tuple(board_warnings(info, board))})


#: Seconds a child process may take to check the files it was given.
CHECK_TIMEOUT = 60.0


def playable(videos: list[str | Path], timeout: float = CHECK_TIMEOUT,
             python: str | None = None) -> dict[str, str | None]:
    """Checks ``videos`` with :func:`probe` in a child process, for the
    kiosk's screens: ``{path: None}`` for a file that plays, or the one-line
    reason it does not.

    A child, because probing loads PyAV's own copy of FFmpeg (about 20 MB
    that the kiosk, which plays through ffpyplayer, would keep for good), and
    because a file that crashes FFmpeg then takes down only the checker: its
    files are reported as unchecked and the kiosk shows their posters.
    """
    results: dict[str, str | None] = {}
    todo = []
    for video in map(str, videos):
        if Path(video).is_file():
            todo.append(video)
        else:
            results[video] = f"{video}: file not found"
    if not todo:
        return results
    command = [python or sys.executable, "-m", "kiosk.media", "--probe", *todo]
    found: dict = {}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        why = f"the check took longer than {timeout:g} s"
    else:
        why = f"the checker stopped (exit status {done.returncode})"
        if done.returncode == 0:
            try:
                found = json.loads(done.stdout)
            except json.JSONDecodeError:
                why = "the checker's answer could not be read"
    for video in todo:
        results[video] = found[video] if video in found else f"{video}: not checked: {why}"
    return results


def _probe_main(videos: list[str]) -> int:
    """``python -m kiosk.media --probe FILE...``: prints ``{file: problem or
    null}`` as JSON (what :func:`playable` reads)."""
    results = {}
    for video in videos:
        try:
            probe(video)
            results[video] = None
        except MediaError as exc:
            results[video] = exc.problems[0]
    print(json.dumps(results))
    return 0


# --------------------------------------------------------------------------
# The catalogue


@dataclass(frozen=True)
class Technique:
    """One technique the clinic offers, with its texts per language."""

    id: str
    title: Mapping[str, str]
    summary: Mapping[str, str]
    expect: Mapping[str, str]
    not_suitable: Mapping[str, str]
    video: Path
    poster: Path
    captions: Mapping[str, Path]
    cues: Mapping[str, tuple[Cue, ...]] = field(default_factory=dict)
    scene: str | None = None
    default_language: str = "en"

    def text(self, name: str, language: str) -> str:
        """The text ``name`` ("title", "summary", ...) in ``language``,
        falling back to the catalogue's first language."""
        texts = getattr(self, name)
        return texts.get(language) or texts.get(self.default_language, "")

    def cues_for(self, language: str) -> tuple[Cue, ...]:
        """Caption cues in ``language`` (first language as fallback)."""
        return self.cues.get(language) or self.cues.get(self.default_language, ())


@dataclass(frozen=True)
class Catalogue:
    """The techniques of a manifest, in the manifest's order."""

    path: Path
    languages: tuple[str, ...]
    techniques: tuple[Technique, ...]
    #: Non-fatal problems found at load (a caption file that is missing or
    #: broken); :func:`validate` reports these and more.
    problems: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Technique]:
        return iter(self.techniques)

    def __len__(self) -> int:
        return len(self.techniques)

    def get(self, technique_id: str) -> Technique | None:
        for technique in self.techniques:
            if technique.id == technique_id:
                return technique
        return None

    def __getitem__(self, technique_id: str) -> Technique:
        technique = self.get(technique_id)
        if technique is None:
            raise KeyError(technique_id)
        return technique


def _json_problem(path: Path, exc: json.JSONDecodeError) -> str:
    return f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"


def _language_problems(value: Any, languages: list[str], what: str) -> list[tuple[tuple, str, Any]]:
    """Why ``value`` is not a map of each manifest language to ``what``."""
    if not isinstance(value, dict):
        return [((), f"must be an object mapping each language to {what}", value)]
    found = []
    for lang in value:
        if lang not in languages:
            found.append(((lang,), f"language {lang!r} is not one of the manifest's languages "
                                   f"({', '.join(languages)})", lang))
    for lang in languages:
        if lang not in value:
            found.append(((), f"missing language {lang!r}", value))
        elif not isinstance(value[lang], str) or not value[lang].strip():
            found.append(((lang,), f"must be non-empty {what}", value[lang]))
    return found


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _required(**kw):
    """A field that is checked even when it is missing (for its own message)."""
    return Field(default=None, validate_default=True, **kw)


class TechniqueSpec(_Manifest):
    """One entry of ``techniques``; its texts and captions are checked
    against the manifest's ``languages``, given as validation context."""

    id: Any = _required()
    title: Any = _required()
    summary: Any = _required()
    expect: Any = _required()
    not_suitable: Any = _required()
    video: Any = _required()
    poster: Any = _required()
    captions: Any = _required()
    scene: Any = None

    @field_validator("id")
    @classmethod
    def _id(cls, value):
        if not isinstance(value, str) or not ID_RE.match(value):
            raise ValueError("must be a lower-case id such as 'deep-tissue'")
        return value

    @field_validator(*TEXT_FIELDS)
    @classmethod
    def _texts(cls, value, info: ValidationInfo):
        found = _language_problems(value, (info.context or {}).get("languages", []), "text")
        if found:
            raise invalid(info.field_name, found)
        return value

    @field_validator(*PATH_FIELDS)
    @classmethod
    def _path(cls, value):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a file path")
        return value

    @field_validator("captions")
    @classmethod
    def _captions(cls, value, info: ValidationInfo):
        found = _language_problems(value, (info.context or {}).get("languages", []), "a .vtt file path")
        if found:
            raise invalid("captions", found)
        return value

    @field_validator("scene")
    @classmethod
    def _scene(cls, value):
        if value is not None and (not isinstance(value, str) or not ID_RE.match(value)):
            raise ValueError("must be a scene name such as 'swedish'")
        return value


class ManifestSpec(_Manifest):
    """``media/manifest.json``; each technique is then checked on its own
    (:class:`TechniqueSpec`), so every broken one is reported."""

    version: Any = _required()
    languages: Any = _required()
    techniques: Any = _required()

    @field_validator("version")
    @classmethod
    def _version(cls, value):
        if value != 1 or isinstance(value, bool):
            raise ValueError(f"unsupported manifest version {value!r} (expected 1)")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value):
        if not isinstance(value, list) or not value or not all(isinstance(lang, str) for lang in value):
            raise ValueError("must be a non-empty list of language codes such as [\"en\", \"es\"]")
        found = [((i,), f"{lang!r} is not a language code (expected e.g. 'en' or 'es')", lang)
                 for i, lang in enumerate(value) if not LANGUAGE_RE.match(lang)]
        if len(set(value)) != len(value):
            found.append(((), "a language is listed twice", value))
        if found:
            raise invalid("languages", found)
        return value

    @field_validator("techniques")
    @classmethod
    def _techniques(cls, value):
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list")
        return value


def check_manifest(data: Any, path: str | Path) -> list[str]:
    """Structural problems of already-parsed manifest ``data`` (pure: no
    files are touched). Each is a ``path:location: message`` line."""
    if not isinstance(data, dict):
        return [f"{path}:$: the manifest must be a JSON object"]
    problems: list[str] = []
    try:
        ManifestSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(str(path), exc, model=ManifestSpec))
    techniques = data.get("techniques")
    if not isinstance(techniques, list) or not techniques:
        return problems
    languages = data.get("languages")
    if not isinstance(languages, list) or not all(isinstance(lang, str) for lang in languages):
        languages = []
    context = {"languages": languages}
    seen: set[str] = set()
    for i, entry in enumerate(techniques):
        try:
            TechniqueSpec.model_validate(entry, context=context)
        except ValidationError as exc:
            problems.extend(pydantic_problems(str(path), exc, ("techniques", i), model=TechniqueSpec))
        tid = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(tid, str) and ID_RE.match(tid):
            if tid in seen:
                problems.append(f"{path}:techniques[{i}].id: duplicate id {tid!r}")
            seen.add(tid)
    return problems


def _read_manifest(path: Path) -> tuple[Any, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}:$: manifest not found"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}:$: cannot be read ({exc})"]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [_json_problem(path, exc)]


def _resolve(root: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else root / candidate


def _load_cues(path: Path) -> tuple[tuple[Cue, ...], str | None]:
    """Parse one caption file; returns (cues, problem line or None)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return (), f"{path}:1: caption file not found"
    except (OSError, UnicodeDecodeError) as exc:
        return (), f"{path}:1: caption file cannot be read ({exc})"
    try:
        return parse_vtt(text), None
    except VttError as exc:
        return (), f"{path}:{exc.line}: {exc.message}"


def load_catalogue(path: str | Path = DEFAULT_MANIFEST) -> Catalogue:
    """Load the manifest at ``path`` and parse every caption file.

    Raises :class:`MediaError` when the manifest's structure is wrong. Video
    and poster files are *not* opened here: a missing video must not stop
    the kiosk (the video screen falls back to the poster and text); use
    :func:`validate` to check them.
    """
    path = Path(path)
    data, problems = _read_manifest(path)
    if not problems:
        problems = check_manifest(data, path)
    if problems:
        raise MediaError(problems)
    root = path.parent
    languages = tuple(data["languages"])
    techniques = []
    load_problems = []
    for i, entry in enumerate(data["techniques"]):
        captions = {lang: _resolve(root, file) for lang, file in entry["captions"].items()}
        cues = {}
        for lang, file in captions.items():
            cues[lang], problem = _load_cues(file)
            if problem:
                load_problems.append(problem)
        techniques.append(Technique(
            id=entry["id"],
            title=dict(entry["title"]),
            summary=dict(entry["summary"]),
            expect=dict(entry["expect"]),
            not_suitable=dict(entry["not_suitable"]),
            video=_resolve(root, entry["video"]),
            poster=_resolve(root, entry["poster"]),
            captions=captions,
            cues=cues,
            scene=entry.get("scene"),
            default_language=languages[0],
        ))
    return Catalogue(path, languages, tuple(techniques), tuple(load_problems))


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check`; ``str()`` gives the
    ``path:location: message`` line."""

    path: str
    location: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.location}: {prefix}{self.message}"


def _split(line: str) -> Problem:
    """Turn a ``path:location: message`` line back into a Problem."""
    head, _, message = line.partition(": ")
    path, _, location = head.rpartition(":")
    if not path:
        path, location = location, "$"
    # JSON errors carry line:col; keep both in the location.
    if re.fullmatch(r"\d+", location) and re.search(r":\d+$", path):
        path, _, line_no = path.rpartition(":")
        location = f"{line_no}:{location}"
    return Problem(path, location, message)


def check(path: str | Path = DEFAULT_MANIFEST, board: str | None = None) -> list[Problem]:
    """Every error and warning for the manifest at ``path`` and its files.

    ``board`` ("pi4", "pi5", or ``None`` for both) selects which playback
    warnings to give. Only errors make a manifest invalid.
    """
    path = Path(path)
    data, lines = _read_manifest(path)
    if not lines:
        lines = check_manifest(data, path)
    if lines:
        return [_split(line) for line in lines]
    found: list[Problem] = []
    root = path.parent
    for i, entry in enumerate(data["techniques"]):
        here = f"techniques[{i}]"
        video = _resolve(root, entry["video"])
        duration = None
        # Demo media is rendered, not committed: say how to make it.
        hint = "; run `python -m kiosk.media_gen` (make media) to render it" if entry.get("scene") else ""
        if not video.is_file():
            found.append(Problem(str(path), f"{here}.video", f"file not found: {video}{hint}"))
        else:
            try:
                info = probe(video, board)
            except MediaError as exc:
                found.append(Problem(str(video), "video", exc.problems[0].partition(": ")[2]))
            else:
                duration = info.duration
                found.extend(Problem(str(video), "video", w, "warning") for w in info.warnings)
        poster = _resolve(root, entry["poster"])
        if not poster.is_file():
            found.append(Problem(str(path), f"{here}.poster", f"file not found: {poster}{hint}"))
        else:
            reason = _check_image(poster)
            if reason:
                found.append(Problem(str(poster), "poster", reason))
        for lang, file in entry["captions"].items():
            vtt = _resolve(root, file)
            if not vtt.is_file():
                found.append(Problem(str(path), f"{here}.captions.{lang}", f"file not found: {vtt}"))
                continue
            cues, line = _load_cues(vtt)
            if line:
                found.append(_split(line))
            elif duration and cues[-1].end > duration + 0.5:
                found.append(Problem(str(vtt), "$", f"the last caption ends at {cues[-1].end:g} s, "
                                     f"after the video ends ({duration:.1f} s)", "warning"))
    return found


def _check_image(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a readable image ({exc})"
    return None


def validate(path: str | Path = DEFAULT_MANIFEST, board: str | None = None) -> list[str]:
    """The errors for the manifest at ``path``, one ``path:location:
    message`` line each; an empty list means the media is usable.
    Warnings (see :func:`check`) are left out."""
    return [str(p) for p in check(path, board) if p.severity == "error"]


def validate_all(path: str | Path = DEFAULT_MANIFEST,
                 board: str | None = None) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for the manifest at ``path``, each a list of
    ``path:location: message`` lines, for ``clinic-kiosk validate``: errors
    make it exit 1; warnings (a video that may stutter on ``board``,
    captions running past the end) are printed on standard error."""
    found = check(path, board)
    errors = [str(p) for p in found if p.severity == "error"]
    warnings = [f"{p.path}:{p.location}: {p.message}" for p in found if p.severity == "warning"]
    return errors, warnings


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        sys.exit(_probe_main(sys.argv[2:]))
    sys.exit("usage: python -m kiosk.media --probe FILE...")
