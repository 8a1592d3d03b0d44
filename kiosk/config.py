"""Kiosk configuration: one TOML file with documented defaults.

Every setting has a default, so a kiosk runs with no file at all. A file only
names what it changes::

    [clinic]
    name = "Riverside Back Clinic"

    [kiosk]
    idle_timeout_s = 120

Unknown sections or keys and values of the wrong type are refused with the
file, the key and what was expected, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic.dataclasses import dataclass as model

from .problems import invalid
from .problems import problems as pydantic_problems

DEFAULT_CONFIG_PATH = Path("/etc/clinic-kiosk/kiosk.toml")

#: TOML has real types: a setting takes exactly its own (no "5" for 5, no 1
#: for true), and a whole number where a number is asked.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
StrList = Annotated[list[Str], Strict()]
SECTION = ConfigDict(extra="forbid")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


class ConfigError(Exception):
    """A configuration file could not be used. ``problems`` holds one
    ``path:location: message`` line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _doc(text: str, default, **kw):
    return field(default=default, metadata={"doc": text}, **kw)


def _doc_factory(text: str, factory):
    return field(default_factory=factory, metadata={"doc": text})


def _check(section: str, found: list[tuple[str, str, object]]):
    """Raises every range problem of a section at once (``(key, message, value)``)."""
    if found:
        raise invalid(section, [((key,), msg, value) for key, msg, value in found])


@model(frozen=True, config=SECTION)
class ClinicSection:
    name: Str = _doc("Clinic name shown on the welcome screen.", "Our Clinic")
    languages: StrList = _doc_factory(
        "Languages offered on the welcome screen, as codes of the content pack.",
        lambda: ["en", "es"],
    )
    default_language: Str = _doc("Language a new visit starts in.", "en")

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        if not self.languages:
            found.append(("languages", "must name at least one language", self.languages))
        if self.default_language not in self.languages:
            found.append(("default_language", f"'{self.default_language}' is not in clinic.languages",
                          self.default_language))
        _check("clinic", found)
        return self


@model(frozen=True, config=SECTION)
class KioskSection:
    idle_timeout_s: Int = _doc(
        "Seconds without a touch before the 'still there?' countdown (at least 20).", 90
    )
    idle_countdown_s: Int = _doc(
        "Seconds the 'still there?' countdown runs before the visit is wiped (at least 20).", 30
    )
    data_dir: Str = _doc(
        "Where the database, keys and tokens live.", "/var/lib/clinic-kiosk"
    )
    database: Str = _doc(
        "SQLite database file; empty means kiosk.db inside data_dir.", ""
    )
    content_pack: Str = _doc(
        "Folder of the content pack, or a FHIR R4 Questionnaire JSON file from another tool; "
        "empty means the built-in default pack.", ""
    )
    media_manifest: Str = _doc(
        "Manifest of the explainer videos; empty means the project's media/manifest.json.", ""
    )
    fullscreen: Bool = _doc("Run full screen (the kiosk) rather than in a window.", True)
    large_text: Bool = _doc("Start every visit with large text switched on.", False)
    staff_pin_hash: Str = _doc(
        "scrypt hash of the staff PIN, from `echo NEW-PIN | clinic-kiosk set-pin`; required: "
        "`validate` and `run` refuse a configuration without one (the demo PIN is public).",
        "",
    )
    kiosk_id: Str = _doc("A name for this kiosk, shown to staff.", "kiosk-1")
    staff_language: Str = _doc(
        "Language staff read on the hub, a language code the content pack offers: each visit also carries its answers worded in it.", "en"
    )
    screening: Str = _doc(
        'The red-flag screening and its emergency alert: "on", or "off" to run a content pack '
        "without them (a questionnaire from another tool on its own); `validate` says so each time.",
        "on",
    )

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        if self.idle_timeout_s < 20:
            found.append(("idle_timeout_s", "must be at least 20 seconds (patients need time to read)",
                          self.idle_timeout_s))
        if self.idle_countdown_s < 20:
            found.append(("idle_countdown_s", "must be at least 20 seconds", self.idle_countdown_s))
        if not LANGUAGE_RE.match(self.staff_language):
            found.append(("staff_language", f"{self.staff_language!r} is not a language code (e.g. 'en' or 'es')",
                          self.staff_language))
        if self.screening not in ("on", "off"):
            found.append(("screening", f'{self.screening!r} must be "on" or "off"', self.screening))
        _check("kiosk", found)
        return self


@model(frozen=True, config=SECTION)
class GpioSection:
    enabled: Bool = _doc("Use the GPIO call button and lights.", True)
    call_button_pin: Int = _doc("BCM pin of the staff call button (to ground).", 17)
    pull_up: Bool = _doc("The button pulls the pin to ground when pressed.", True)
    bounce_time_s: Float = _doc("Ignore contact bounce shorter than this.", 0.05)
    hold_time_s: Float = _doc("A press this long by staff acknowledges a call.", 3.0)
    call_led_pin: Int = _doc("BCM pin of the 'call received' LED.", 27)
    emergency_led_pin: Int = _doc(
        "BCM pin of the emergency light; 0 uses the call LED with a distinct pattern.", 22
    )
    buzzer_pin: Int = _doc("BCM pin of an optional buzzer; 0 for none.", 0)
    escalate_after_s: Float = _doc(
        "Seconds before an unacknowledged call blinks faster and sounds the buzzer.", 120.0
    )
    demo_key: Str = _doc("Keyboard key that stands in for the button with mock GPIO.", "f12")

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        for key in ("call_button_pin", "call_led_pin", "emergency_led_pin", "buzzer_pin"):
            pin = getattr(self, key)
            if not 0 <= pin <= 27:
                found.append((key, f"{pin} is not a BCM GPIO number (0 to 27)", pin))
        if self.bounce_time_s < 0 or self.hold_time_s <= 0:
            found.append(("hold_time_s", "times must be positive", self.hold_time_s))
        _check("gpio", found)
        return self


@model(frozen=True, config=SECTION)
class HubSection:
    url: Str = _doc("Clinic hub URL, e.g. https://hub.local:8443; empty for none.", "")
    sync_interval_s: Float = _doc("Seconds between sync attempts while idle.", 10.0)
    retention_s: Int = _doc(
        "Seconds a record stays on the kiosk after the hub acknowledged it (0: at once).", 0
    )
    batch_size: Int = _doc("Most records sent to the hub in one request.", 100)
    backoff_base_s: Float = _doc(
        "First wait after the hub could not be reached; doubles on each failure.", 1.0
    )
    backoff_max_s: Float = _doc("Longest wait between attempts while the hub is away.", 300.0)
    request_timeout_s: Float = _doc("Seconds to wait for the hub before trying again later.", 15.0)
    max_attempts: Int = _doc(
        "Times the hub may fail on one record before the kiosk sets it aside (kept on the device, "
        "shown in `clinic-kiosk status`).",
        8,
    )

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        if self.url and not self.url.startswith(("http://", "https://")):
            found.append(("url", f"'{self.url}' must start with https:// (or http:// for tests)", self.url))
        if self.max_attempts < 1:
            found.append(("max_attempts", "must be at least 1", self.max_attempts))
        _check("hub", found)
        return self


#: Screen rotations the display can be turned to, in degrees clockwise.
ROTATIONS = (0, 90, 180, 270)


@model(frozen=True, config=SECTION)
class DisplaySection:
    rotation: Int = _doc(
        "Turn the picture this many degrees (0, 90, 180 or 270), e.g. 180 for the official "
        "7-inch display mounted upside down in its case.", 0
    )
    width: Int = _doc("Screen width in pixels; 0 uses the display's own resolution.", 0)
    height: Int = _doc("Screen height in pixels; 0 uses the display's own resolution.", 0)
    touch_rotation: Int = _doc(
        "Turn the touch input this many degrees (0, 90, 180 or 270) when the touch panel is "
        "mounted differently from the picture (some HDMI touch monitors).", 0
    )
    touch_invert_x: Bool = _doc("Mirror the touch input left to right.", False)
    touch_invert_y: Bool = _doc("Mirror the touch input top to bottom.", False)

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        for key in ("rotation", "touch_rotation"):
            if getattr(self, key) not in ROTATIONS:
                found.append((key, f"{getattr(self, key)} is not a rotation (0, 90, 180 or 270)",
                              getattr(self, key)))
        if (self.width == 0) != (self.height == 0) or self.width < 0 or self.height < 0:
            found.append(("width", f"{self.width}x{self.height}: give both width and height in pixels, "
                                   "or 0 for both", self.width))
        _check("display", found)
        return self

    @property
    def touch_adjusted(self) -> bool:
        """Whether the touch input needs turning or mirroring at all."""
        return bool(self.touch_rotation or self.touch_invert_x or self.touch_invert_y)


@model(frozen=True, config=SECTION)
class AudioSection:
    read_aloud: Bool = _doc(
        "Start every visit with read-aloud switched on (the patient can still switch it off).", False
    )
    device: Str = _doc(
        "ALSA device the speech plays on, as `aplay -L` names it: e.g. \"plughw:CARD=Headphones\" "
        "(the Pi's headphone jack), \"plughw:CARD=vc4hdmi0\" (HDMI), \"plughw:CARD=Device\" (a USB "
        "speaker); empty means the system default.", ""
    )
    volume: Int = _doc("Loudness of the speech, 0 to 100 (100 is as loud as it goes undistorted).", 80)

    @model_validator(mode="after")
    def _ranges(self):
        found = []
        if not 0 <= self.volume <= 100:
            found.append(("volume", f"{self.volume} is not a volume from 0 to 100", self.volume))
        _check("audio", found)
        return self


@dataclass(frozen=True)
class Config:
    clinic: ClinicSection = field(default_factory=ClinicSection)
    kiosk: KioskSection = field(default_factory=KioskSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    hub: HubSection = field(default_factory=HubSection)
    display: DisplaySection = field(default_factory=DisplaySection)
    audio: AudioSection = field(default_factory=AudioSection)
    source: str = "<defaults>"

    @property
    def data_path(self) -> Path:
        return Path(self.kiosk.data_dir)

    @property
    def database_path(self) -> Path:
        return Path(self.kiosk.database) if self.kiosk.database else self.data_path / "kiosk.db"

    def with_data_dir(self, data_dir: str | os.PathLike) -> "Config":
        """A copy whose data (database, keys, tokens) lives in ``data_dir``."""
        kiosk = dataclasses.replace(self.kiosk, data_dir=str(data_dir), database="")
        return dataclasses.replace(self, kiosk=kiosk)

    def replace(self, section: str, **changes) -> "Config":
        """A copy with some keys of one section changed (used by tests and the demo)."""
        new = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: new})


class ConfigFile(BaseModel):
    """The TOML file: each ``[section]`` is optional, unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")
    unknown_word: ClassVar[str] = "section"
    clinic: ClinicSection = Field(default_factory=ClinicSection)
    kiosk: KioskSection = Field(default_factory=KioskSection)
    gpio: GpioSection = Field(default_factory=GpioSection)
    hub: HubSection = Field(default_factory=HubSection)
    display: DisplaySection = Field(default_factory=DisplaySection)
    audio: AudioSection = Field(default_factory=AudioSection)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "source"}


def parse(data: dict, source: str = "<string>") -> Config:
    """Builds a :class:`Config` from parsed TOML, checking every key: one
    ``path:location: message`` line per problem (:mod:`kiosk.problems`)."""
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(source, exc, model=ConfigFile)) from None
    return Config(**{name: getattr(parsed, name) for name in SECTIONS}, source=source)


def staff_pin_problems(cfg: Config) -> list[str]:
    """Why ``cfg`` may not run a kiosk for patients: no staff PIN, or one
    that is not a hash ``clinic-kiosk set-pin`` makes. Without it the staff
    pad would open with the demo PIN, which the README publishes.

    >>> staff_pin_problems(Config(source="kiosk.toml"))[0].split(": ")[0]
    'kiosk.toml:kiosk.staff_pin_hash'
    """
    where = f"{cfg.source}:kiosk.staff_pin_hash"
    value = cfg.kiosk.staff_pin_hash.strip()
    if not value:
        return [f"{where}: no staff PIN set; run `echo NEW-PIN | clinic-kiosk set-pin` and put the line "
                "it prints under [kiosk]"]
    parts = value.split("$")
    if len(parts) != 3 or parts[0] != "scrypt" or not all(parts[1:]):
        return [f"{where}: not a PIN hash from `clinic-kiosk set-pin` (expected scrypt$SALT$HASH)"]
    return []


def load(path: str | os.PathLike | None = None) -> Config:
    """Loads the kiosk configuration.

    With no path, uses ``/etc/clinic-kiosk/kiosk.toml`` when it exists, else
    the built-in defaults.
    """
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return Config()
        path = DEFAULT_CONFIG_PATH
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}:1: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}:1: cannot read: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}:{_toml_line(exc)}: not valid TOML: {exc}"]) from None
    return parse(data, str(path))


def _toml_line(exc: Exception) -> str:
    import re

    m = re.search(r"line (\d+)", str(exc))
    return m.group(1) if m else "1"


def documented_defaults() -> str:
    """The full configuration file with every default and its description,
    as written to ``deploy/kiosk.toml``."""
    lines = ["# clinic-kiosk configuration. Every key is optional; shown here with its default.", ""]
    cfg = Config()
    for name in SECTIONS:
        section = getattr(cfg, name)
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)
