"""``clinic-kiosk status``: the kiosk's health as JSON for staff and scripts."""

from __future__ import annotations

from . import config as config_mod
from .content import load_current_pack
from .questionnaire import PackError
from .store import Store
from .sync import status_info


def collect(cfg: config_mod.Config) -> dict:
    try:
        content_version = load_current_pack(cfg).content_version
    except PackError:
        content_version = None
    store = Store.open(cfg.database_path)
    try:
        out = status_info(store, cfg)
        out["gpio"] = gpio_status(cfg, store)
        out["audio"] = audio_status(cfg, store)
    finally:
        store.close()
    out["content_version"] = content_version
    # The id the hub assigned at enrollment (from status_info); the
    # configured name is only a label.
    out["name"] = cfg.kiosk.kiosk_id
    return out


def gpio_status(cfg: config_mod.Config, store: Store) -> dict:
    """What the running kiosk found at start-up (the pins are its own while
    it runs, so status does not open them)."""
    import json

    if not cfg.gpio.enabled:
        return {"mode": "disabled", "ok": True, "message": "GPIO disabled in the configuration"}
    saved = store.get_state("gpio")
    if saved is None:
        return {"mode": "unknown", "ok": False, "message": "the kiosk has not started yet"}
    return json.loads(saved)


def audio_status(cfg: config_mod.Config, store: Store) -> dict:
    """Read-aloud's device and health as a look at the machine finds them
    now (espeak-ng, its voices, the sound device: a USB speaker may have been
    unplugged since the kiosk started), with what the running kiosk last
    found when it played (``last_seen``)."""
    import json

    from .speech import audio_status as look

    out = look(cfg.audio, tuple(cfg.clinic.languages))
    try:
        saved = json.loads(store.get_state("audio") or "null")
    except ValueError:
        saved = None
    if isinstance(saved, dict):
        out["last_seen"] = {k: saved.get(k) for k in ("ok", "message")}
    return out
