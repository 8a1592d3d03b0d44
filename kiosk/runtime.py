"""Assembles the kiosk's services from its configuration.

The CLI and the Kivy app both start from a :class:`Runtime`: the loaded
config, the content pack, the store and the alert bus, created once at
start-up and passed in (never module globals).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import config as config_mod
from .alerts import AlertBus, LogChannel, StoreChannel
from .pack import Pack, load_pack
from .store import Sealer, Store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: config_mod.Config
    pack: Pack
    store: Store
    alerts: AlertBus
    catalogue: object = None  # kiosk.media.Catalogue, or None when the media cannot be used
    sync: object = None  # kiosk.sync.SyncWorker while `run` syncs in the background

    @classmethod
    def create(cls, config: config_mod.Config, sealer: Sealer | None = None, pack: Pack | None = None) -> "Runtime":
        """Loads the pack (unless given one already loaded) and opens the
        store; raises PackError or NotEnrolled before anything is shown."""
        pack = pack or load_pack(config.kiosk.content_pack or None)
        store = Store.open(config.database_path, sealer or sealer_for(config))
        bus = AlertBus([StoreChannel(store), LogChannel()])
        return cls(config, pack, store, bus, load_media(config))

    def records_saved(self) -> None:
        """Called after a record is committed: send it without waiting."""
        if self.sync is not None:
            self.sync.wake()

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        self.store.close()


def sealer_for(config: config_mod.Config) -> Sealer:
    """The sealer records go through before they rest on disk: a sealed box
    to the clinic's public key from enrollment. Raises
    :class:`kiosk.crypto.NotEnrolled` (saying what to run) before enrollment,
    because a visit is never stored unsealed."""
    from .crypto import sealer_for as clinic_sealer

    return clinic_sealer(config)


def media_manifest_path(config: config_mod.Config | None) -> Path:
    """The configured media manifest, else the project's own."""
    from .media import DEFAULT_MANIFEST

    return Path(config.kiosk.media_manifest) if config and config.kiosk.media_manifest else DEFAULT_MANIFEST


def load_media(config: config_mod.Config):
    """The explainer-video catalogue. A broken manifest never stops the
    intake: the problems are logged and the kiosk runs without videos."""
    from .media import MediaError, load_catalogue

    try:
        return load_catalogue(media_manifest_path(config))
    except MediaError as exc:
        for line in exc.problems:
            log.warning("media: %s", line)
        return None
