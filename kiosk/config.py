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
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/clinic-kiosk/kiosk.toml")


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


@dataclass(frozen=True)
class ClinicSection:
    name: str = _doc("Clinic name shown on the welcome screen.", "Our Clinic")
    languages: list[str] = _doc_factory(
        "Languages offered on the welcome screen, as codes of the content pack.",
        lambda: ["en", "es"],
    )
    default_language: str = _doc("Language a new visit starts in.", "en")


@dataclass(frozen=True)
class KioskSection:
    idle_timeout_s: int = _doc(
        "Seconds without a touch before the 'still there?' countdown (at least 20).", 90
    )
    idle_countdown_s: int = _doc(
        "Seconds the 'still there?' countdown runs before the visit is wiped (at least 20).", 30
    )
    data_dir: str = _doc(
        "Where the database, keys and tokens live.", "/var/lib/clinic-kiosk"
    )
    database: str = _doc(
        "SQLite database file; empty means kiosk.db inside data_dir.", ""
    )
    content_pack: str = _doc(
        "Folder of the content pack, or a FHIR R4 Questionnaire JSON file from another tool; "
        "empty means the built-in default pack.", ""
    )
    media_manifest: str = _doc(
        "Manifest of the explainer videos; empty means the project's media/manifest.json.", ""
    )
    fullscreen: bool = _doc("Run full screen (the kiosk) rather than in a window.", True)
    large_text: bool = _doc("Start every visit with large text switched on.", False)
    staff_pin_hash: str = _doc(
        "scrypt hash of the staff PIN, from `echo NEW-PIN | clinic-kiosk set-pin`; required: "
        "`validate` and `run` refuse a configuration without one (the demo PIN is public).",
        "",
    )
    kiosk_id: str = _doc("A name for this kiosk, shown to staff.", "kiosk-1")


@dataclass(frozen=True)
class GpioSection:
    enabled: bool = _doc("Use the GPIO call button and lights.", True)
    call_button_pin: int = _doc("BCM pin of the staff call button (to ground).", 17)
    pull_up: bool = _doc("The button pulls the pin to ground when pressed.", True)
    bounce_time_s: float = _doc("Ignore contact bounce shorter than this.", 0.05)
    hold_time_s: float = _doc("A press this long by staff acknowledges a call.", 3.0)
    call_led_pin: int = _doc("BCM pin of the 'call received' LED.", 27)
    emergency_led_pin: int = _doc(
        "BCM pin of the emergency light; 0 uses the call LED with a distinct pattern.", 22
    )
    buzzer_pin: int = _doc("BCM pin of an optional buzzer; 0 for none.", 0)
    escalate_after_s: float = _doc(
        "Seconds before an unacknowledged call blinks faster and sounds the buzzer.", 120.0
    )
    demo_key: str = _doc("Keyboard key that stands in for the button with mock GPIO.", "f12")


@dataclass(frozen=True)
class HubSection:
    url: str = _doc("Clinic hub URL, e.g. https://hub.local:8443; empty for none.", "")
    sync_interval_s: float = _doc("Seconds between sync attempts while idle.", 10.0)
    retention_s: int = _doc(
        "Seconds a record stays on the kiosk after the hub acknowledged it (0: at once).", 0
    )
    batch_size: int = _doc("Most records sent to the hub in one request.", 100)
    backoff_base_s: float = _doc(
        "First wait after the hub could not be reached; doubles on each failure.", 1.0
    )
    backoff_max_s: float = _doc("Longest wait between attempts while the hub is away.", 300.0)
    request_timeout_s: float = _doc("Seconds to wait for the hub before trying again later.", 15.0)
    max_attempts: int = _doc(
        "Times the hub may fail on one record before the kiosk sets it aside (kept on the device, "
        "shown in `clinic-kiosk status`).",
        8,
    )


#: Screen rotations the display can be turned to, in degrees clockwise.
ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True)
class DisplaySection:
    rotation: int = _doc(
        "Turn the picture this many degrees (0, 90, 180 or 270), e.g. 180 for the official "
        "7-inch display mounted upside down in its case.", 0
    )
    width: int = _doc("Screen width in pixels; 0 uses the display's own resolution.", 0)
    height: int = _doc("Screen height in pixels; 0 uses the display's own resolution.", 0)
    touch_rotation: int = _doc(
        "Turn the touch input this many degrees (0, 90, 180 or 270) when the touch panel is "
        "mounted differently from the picture (some HDMI touch monitors).", 0
    )
    touch_invert_x: bool = _doc("Mirror the touch input left to right.", False)
    touch_invert_y: bool = _doc("Mirror the touch input top to bottom.", False)

    @property
    def touch_adjusted(self) -> bool:
        """Whether the touch input needs turning or mirroring at all."""
        return bool(self.touch_rotation or self.touch_invert_x or self.touch_invert_y)


@dataclass(frozen=True)
class AudioSection:
    read_aloud: bool = _doc(
        "Start every visit with read-aloud switched on (the patient can still switch it off).", False
    )
    device: str = _doc(
        "ALSA device the speech plays on, as `aplay -L` names it: e.g. \"plughw:CARD=Headphones\" "
        "(the Pi's headphone jack), \"plughw:CARD=vc4hdmi0\" (HDMI), \"plughw:CARD=Device\" (a USB "
        "speaker); empty means the system default.", ""
    )
    volume: int = _doc("Loudness of the speech, 0 to 100 (100 is as loud as it goes undistorted).", 80)


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


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "source"}


def _section_class(name: str):
    return typing.get_type_hints(Config)[name]


def _check_type(value, expected) -> bool:
    origin = typing.get_origin(expected)
    if origin is list:
        (inner,) = typing.get_args(expected)
        return isinstance(value, list) and all(_check_type(v, inner) for v in value)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected) -> str:
    if typing.get_origin(expected) is list:
        return f"a list of {_type_name(typing.get_args(expected)[0])}"
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}[
        expected
    ]


def _range_problems(cfg: Config) -> list[tuple[str, str]]:
    out = []
    k = cfg.kiosk
    if k.idle_timeout_s < 20:
        out.append(("kiosk.idle_timeout_s", "must be at least 20 seconds (patients need time to read)"))
    if k.idle_countdown_s < 20:
        out.append(("kiosk.idle_countdown_s", "must be at least 20 seconds"))
    if not cfg.clinic.languages:
        out.append(("clinic.languages", "must name at least one language"))
    if cfg.clinic.default_language not in cfg.clinic.languages:
        out.append(("clinic.default_language", f"'{cfg.clinic.default_language}' is not in clinic.languages"))
    g = cfg.gpio
    for key in ("call_button_pin", "call_led_pin", "emergency_led_pin", "buzzer_pin"):
        pin = getattr(g, key)
        if not 0 <= pin <= 27:
            out.append((f"gpio.{key}", f"{pin} is not a BCM GPIO number (0 to 27)"))
    if g.bounce_time_s < 0 or g.hold_time_s <= 0:
        out.append(("gpio.hold_time_s", "times must be positive"))
    d = cfg.display
    for key in ("rotation", "touch_rotation"):
        if getattr(d, key) not in ROTATIONS:
            out.append((f"display.{key}", f"{getattr(d, key)} is not a rotation (0, 90, 180 or 270)"))
    if (d.width == 0) != (d.height == 0) or d.width < 0 or d.height < 0:
        out.append(("display.width", f"{d.width}x{d.height}: give both width and height in pixels, or 0 for both"))
    if cfg.hub.url and not cfg.hub.url.startswith(("http://", "https://")):
        out.append(("hub.url", f"'{cfg.hub.url}' must start with https:// (or http:// for tests)"))
    if not 0 <= cfg.audio.volume <= 100:
        out.append(("audio.volume", f"{cfg.audio.volume} is not a volume (0 to 100)"))
    if cfg.hub.max_attempts < 1:
        out.append(("hub.max_attempts", "must be at least 1"))
    return out


def parse(data: dict, source: str = "<string>") -> Config:
    """Builds a :class:`Config` from parsed TOML, checking every key."""
    problems: list[str] = []
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            problems.append(f"{source}:{name}: unknown section (known: {', '.join(SECTIONS)})")
            continue
        if not isinstance(values, dict):
            problems.append(f"{source}:{name}: must be a [{name}] table")
            continue
        cls = _section_class(name)
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in hints:
                problems.append(
                    f"{source}:{name}.{key}: unknown key (known: {', '.join(hints)})"
                )
            elif not _check_type(value, hints[key]):
                problems.append(
                    f"{source}:{name}.{key}: expected {_type_name(hints[key])}, got {value!r}"
                )
            else:
                kwargs[key] = float(value) if hints[key] is float else value
        sections[name] = cls(**kwargs)
    if problems:
        raise ConfigError(problems)
    cfg = Config(**sections, source=source)
    range_problems = _range_problems(cfg)
    if range_problems:
        raise ConfigError([f"{source}:{loc}: {msg}" for loc, msg in range_problems])
    return cfg


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
