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
from .content import load_current_pack
from .questionnaire import Pack, PackError
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
    speaker: object = None  # kiosk.speech.Speaker; the app makes one from [audio] when none is given

    @classmethod
    def create(cls, config: config_mod.Config, sealer: Sealer | None = None, pack: Pack | None = None,
               catalogue=None) -> "Runtime":
        """Loads the pack and the media catalogue (unless given ones already
        loaded) and prepares the store; raises PackError or NotEnrolled before
        anything is shown. The database itself opens on first use: the kiosk
        app opens it on its writer thread just after its first frame, and a
        database that cannot be opened then puts the kiosk out of order."""
        pack = pack or load_current_pack(config)
        store = Store.opened_later(config.database_path, sealer or sealer_for(config))
        bus = AlertBus([StoreChannel(store), LogChannel()])
        return cls(config, pack, store, bus, catalogue if catalogue is not None else load_media(config))

    def records_saved(self) -> None:
        """Called after a record is committed: send it without waiting."""
        if self.sync is not None:
            self.sync.wake()

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        if self.speaker is not None:
            self.speaker.close()
        self.store.close()


def sealer_for(config: config_mod.Config) -> Sealer:
    """The sealer records go through before they rest on disk: a sealed box
    to the clinic's public key from enrollment. Raises
    :class:`kiosk.crypto.NotEnrolled` (saying what to run) before enrollment,
    because a visit is never stored unsealed."""
    from .crypto import sealer_for as clinic_sealer

    return clinic_sealer(config)


def data_dir_problems(config: config_mod.Config) -> list[str]:
    """One ``path:location: message`` line when the data folder cannot be
    created or written (a read-only disk, a wrong owner), else none.

    Checked at start-up by writing and removing a small file, because the
    first sign of a read-only disk must not be a visit that cannot be saved.
    """
    import os
    import tempfile

    folder = config.data_path
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [f"{config.source}:kiosk.data_dir: cannot write to {folder} ({reason}); the kiosk keeps its "
                "database and keys there: check the disk is not read-only and the folder belongs to the kiosk user"]
    return []


def startup_problems(config: config_mod.Config) -> tuple[Pack | None, object, list[str]]:
    """Everything ``clinic-kiosk run`` cannot start past, as
    ``path:location: message`` lines: the content pack, the media manifest,
    the data folder and the staff PIN (without its own, the staff pad would
    open with the published demo PIN). Returns the loaded pack and media
    catalogue too (None when broken), for :meth:`Runtime.create`."""
    from .media import MediaError, load_catalogue

    problems: list[str] = []
    pack = catalogue = None
    try:
        pack = load_current_pack(config)
    except PackError as exc:
        problems.extend(exc.problems)
    try:
        catalogue = load_catalogue(media_manifest_path(config))
    except MediaError as exc:
        problems.extend(exc.problems)
    problems.extend(data_dir_problems(config))
    problems.extend(config_mod.staff_pin_problems(config))
    return pack, catalogue, problems


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
