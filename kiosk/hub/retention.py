"""How long intakes stay on the hub.

A clinic sets a period in days (admin page or ``clinic-hub retention
--days N``); an intake whose newest record (visit, alert) reached the hub
longer ago than that is deleted whole, with its alerts, review and
acknowledgements, and the deletion is audited. Without a setting nothing is
deleted. A returning patient's visits form an episode of care
(:mod:`kiosk.hub.db.patients`): it goes whole, once its newest record is older
than the period, so a trend never loses its first visit while it goes on.

The rule, :func:`due`, is pure and takes the time as an argument:

>>> import datetime as dt
>>> now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
>>> rows = [("v1", "visit", "2026-10-01T08:00:00+00:00", "i1"),
...         ("a1", "alert", "2026-11-20T08:00:00+00:00", "i2")]
>>> due(rows, now, dt.timedelta(days=30)).record_ids
['v1']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from . import audit
from .db import Database

SETTING = "retention_days"
MAX_DAYS = 36500


@dataclass
class Due:
    record_ids: list[str] = field(default_factory=list)
    intake_ids: list[str] = field(default_factory=list)


def due(records: Iterable[tuple[str, str, str, str | None]], now: dt.datetime, keep: dt.timedelta,
        episode_of: dict[str, str] | None = None) -> Due:
    """Which of ``records`` (id, kind, received_at, intake_id) to delete:
    every record of an intake whose newest record is older than ``keep``,
    and records of no intake (a staff call) older than ``keep``. With
    ``episode_of`` (intake id -> episode id), the intakes of one episode
    count as one: they go together, when the newest record of the whole
    episode is older than ``keep``.

    >>> now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    >>> rows = [("v1", "visit", "2026-01-05T08:00:00+00:00", "i1"),
    ...         ("v2", "visit", "2026-11-01T08:00:00+00:00", "i2")]
    >>> due(rows, now, dt.timedelta(days=90), {"i1": "e1", "i2": "e1"}).record_ids
    []
    """
    cutoff = now - keep
    groups = episode_of or {}
    newest: dict[str, dt.datetime] = {}
    rows = [(rid, kind, dt.datetime.fromisoformat(at), intake) for rid, kind, at, intake in records]
    for _, _, at, intake in rows:
        if intake is not None:
            key = groups.get(intake, intake)
            newest[key] = max(at, newest.get(key, at))
    out = Due()
    for rid, _, at, intake in rows:
        if (newest[groups.get(intake, intake)] if intake is not None else at) < cutoff:
            out.record_ids.append(rid)
    out.intake_ids = sorted({i for _, _, _, i in rows if i is not None and newest[groups.get(i, i)] < cutoff})
    out.record_ids.sort()
    return out


def days(db: Database) -> int | None:
    value = db.settings.setting(SETTING)
    return int(value) if value else None


def set_days(db: Database, value: int | None, user: str) -> None:
    """Sets (or with None, clears) the period; raises ValueError when it is
    out of range."""
    if value is not None and not 1 <= value <= MAX_DAYS:
        raise ValueError(f"retention must be between 1 and {MAX_DAYS} days, got {value}")
    db.settings.set_setting(SETTING, "" if value is None else str(value))
    audit.record(db.accounts, user, "retention.set", "off" if value is None else f"{value} days")


def run(db: Database, now: dt.datetime | None = None, user: str = "retention") -> int:
    """Deletes what is due under the clinic's setting; returns how many
    intakes went (the deletion is audited when anything went)."""
    patients = db.patients
    # Visits that reached the database another way (a restore, an older
    # hub) are matched first: this job runs at start-up and hourly.
    patients.link_unlinked()
    period = days(db)
    if period is None:
        return 0
    now = now or dt.datetime.now(dt.timezone.utc)
    found = due(db.records.record_ages(), now, dt.timedelta(days=period), patients.episode_of_intakes())
    if not found.record_ids:
        return 0
    n = db.records.delete_records(found.record_ids, found.intake_ids)
    patients.prune()
    audit.record(db.accounts, user, "retention.delete",
                 f"{len(found.intake_ids)} intake(s), {n} record(s)", f"older than {period} days")
    return len(found.intake_ids)
