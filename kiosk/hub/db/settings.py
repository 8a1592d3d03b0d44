"""The hub's own settings that admins change at run time (the retention
period, :mod:`kiosk.hub.retention`): the ``hub_settings`` table.

>>> from . import open_database
>>> db = open_database("sqlite:///:memory:")
>>> db.settings.set_setting("retention_days", "30")
>>> db.settings.setting("retention_days"), db.settings.setting("unknown")
('30', None)
"""

from __future__ import annotations

from .backends import Backend


class SettingsRepository:
    """Text values by key."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def setting(self, key: str) -> str | None:
        with self.backend.transaction() as tx:
            row = tx.execute("select value from hub_settings where key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("delete from hub_settings where key = ?", [key])
            tx.execute("insert into hub_settings (key, value) values (?, ?)", [key, value])
