"""The alert channel: how the kiosk tells staff that someone needs them.

An :class:`Alert` carries no patient details beyond the intake id (which only
the hub can resolve). Back-ends implement :class:`AlertChannel`; the
:class:`AlertBus` fans one alert out to all of them, so a failing back-end
(a dead LED driver, an unreachable hub) never stops the others.

>>> bus = AlertBus([LogChannel()])
>>> bus.send(Alert(kind="staff-call", kiosk_id="kiosk-1"))
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from .store import Store, utcnow

log = logging.getLogger(__name__)

#: Kinds of alert. ``emergency`` comes from triage, ``staff-call`` from the
#: call button (physical or on screen), ``acknowledged`` when staff clear one.
KINDS = ("emergency", "staff-call", "acknowledged")


@dataclass(frozen=True)
class Alert:
    kind: str
    kiosk_id: str
    intake_id: str | None = None
    created_at: str = field(default_factory=utcnow)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class AlertChannel(Protocol):
    """Something that can carry an alert to staff."""

    def send(self, alert: Alert) -> None: ...


class LogChannel:
    """Writes the alert to the log (kind and ids only, never patient data)."""

    def send(self, alert: Alert) -> None:
        log.warning("ALERT %s from %s (alert %s)", alert.kind, alert.kiosk_id, alert.id)


class StoreChannel:
    """Records the alert as an event in the kiosk database; the sync worker
    sends it to the hub ahead of visits."""

    def __init__(self, store: Store):
        self.store = store

    def send(self, alert: Alert) -> None:
        kind = "staff-call" if alert.kind == "staff-call" else "alert"
        self.store.add(kind, alert.as_dict(), record_id=alert.id)


class AlertBus:
    """Sends each alert to every channel; one failing channel is logged and
    does not stop the rest."""

    def __init__(self, channels: list[AlertChannel] | None = None):
        self.channels: list[AlertChannel] = list(channels or [])

    def add(self, channel: AlertChannel) -> None:
        self.channels.append(channel)

    def send(self, alert: Alert) -> None:
        for channel in self.channels:
            try:
                channel.send(alert)
            except Exception:  # a broken back-end must not silence the others
                log.exception("alert channel %s failed for alert %s", type(channel).__name__, alert.id)
