"""Durable local storage: one SQLite database in WAL mode with synchronous=FULL.

Everything the kiosk keeps is a *record* in the ``outbox`` table: a submitted
visit, an emergency alert, a staff call. A record is written in one
transaction, so after a power cut it is either there whole or not at all, and
it stays until the clinic hub has acknowledged it (see :mod:`kiosk.sync`).

The body of a record goes through a :class:`Sealer` before it is written, so
the sync work can encrypt it to the clinic's key; the columns beside it hold
only what sync needs (id, kind, created time, attempts).

>>> store = Store.open(":memory:")
>>> rid = store.add("visit", {"answers": {"pain-now": 3}})
>>> store.depth()
1
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

if TYPE_CHECKING:
    import sqlite_utils


def m001_outbox(db: sqlite_utils.Database) -> None:
    db["outbox"].create(
        {
            "id": str,
            "kind": str,
            "priority": int,
            "created_at": str,
            "body": bytes,
            "attempts": int,
            "acked_at": str,
        },
        pk="id",
        not_null={"kind", "created_at", "body"},
        defaults={"attempts": 0, "priority": 0},
    )
    db["outbox"].create_index(["acked_at", "priority", "created_at"])


def m002_kiosk_state(db: sqlite_utils.Database) -> None:
    # Small key/value facts about the device (last sync, enrollment), never
    # patient data.
    db["kiosk_state"].create({"key": str, "value": str}, pk="key")


class Sealer(Protocol):
    """Turns a record body into what rests on disk."""

    def seal(self, plaintext: bytes) -> bytes: ...


class PlainSealer:
    """Stores bodies as they are; used only until the kiosk holds a clinic key
    and in tests of the storage layer itself."""

    def seal(self, plaintext: bytes) -> bytes:
        return plaintext


#: Kinds of record and their place in the sync queue (higher goes first).
PRIORITY = {"alert": 10, "staff-call": 10, "visit": 0}
#: Record kinds that carry an alert: each goes to the hub in a request of its own.
ALERT_KINDS = ("alert", "staff-call")
#: Alert payload kinds that stay open until staff acknowledge them.
RAISING_ALERTS = ("emergency", "staff-call")


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


#: One opening at a time in this process: the writer thread and the sync
#: worker open their connections at about the same moment after the first
#: frame, and two connections creating the tables or switching to WAL at once
#: fail with "database is locked" instead of waiting.
_OPENING = threading.Lock()


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Opens (creating if needed) the kiosk database with durable settings and
    applies pending migrations.

    The connection may be used from one thread at a time; :class:`Store`
    serialises access with a lock so the UI never writes directly.
    """
    with _OPENING:
        return _open_database(path)


def _open_database(path: str | Path) -> sqlite_utils.Database:
    import sqlite_utils  # here: importing it takes a tenth of the kiosk's start-up

    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False)
    else:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    # No sqlite-utils plugins: the kiosk uses none, and looking for them
    # reads the metadata of every installed package at start-up.
    db = sqlite_utils.Database(conn, execute_plugins=False)
    if str(path) != ":memory:":
        db.enable_wal()
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    migrations().apply(db)
    if str(path) != ":memory:":
        try:
            Path(path).chmod(0o600)
        except OSError:
            pass
    return db


class Store:
    """The kiosk's records. Thread-safe: the UI hands writes to a worker
    thread, the sync worker reads and acknowledges from its own."""

    def __init__(self, db: sqlite_utils.Database | None, sealer: Sealer | None = None, path: str | Path | None = None):
        self._db = db
        self._path = path
        self._closed = False
        self.sealer: Sealer = sealer or PlainSealer()
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path, sealer: Sealer | None = None) -> "Store":
        return cls(open_database(path), sealer)

    @classmethod
    def opened_later(cls, path: str | Path, sealer: Sealer | None = None) -> "Store":
        """A store whose database opens on first use (or :meth:`open_now`),
        on whichever thread that is: the kiosk opens it on its writer thread
        just after the first frame, not on the UI thread before it."""
        return cls(None, sealer, path)

    @property
    def db(self) -> sqlite_utils.Database:
        with self._lock:
            if self._db is None:
                if self._closed:
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                self._db = open_database(self._path)
            return self._db

    def open_now(self) -> None:
        """Opens the database if it is not open yet; raises what opening
        raises (a corrupt file, a full or read-only disk)."""
        self.db  # noqa: B018  (the property opens it)

    def add(self, kind: str, payload: dict, record_id: str | None = None) -> str:
        """Seals ``payload`` and commits it as one record; returns its id.

        The commit is durable (WAL + synchronous=FULL) when this returns.
        """
        if kind not in PRIORITY:
            raise ValueError(f"unknown record kind {kind!r}")
        record_id = record_id or str(uuid.uuid4())
        body = self.sealer.seal(json.dumps(payload, sort_keys=True).encode("utf-8"))
        with self.write_transaction():
            if kind in ALERT_KINDS and payload.get("kind") in RAISING_ALERTS:
                # Open until staff acknowledge it on the hub (learnt through
                # the heartbeat); kept apart from the outbox row, which goes
                # once the hub has it.
                self.db["open_alerts"].insert(
                    {"id": record_id, "kind": payload["kind"], "raised_at": utcnow(), "acknowledged_at": None}
                )
            self.db["outbox"].insert(
                {
                    "id": record_id,
                    "kind": kind,
                    "priority": PRIORITY[kind],
                    "created_at": utcnow(),
                    "body": body,
                    "attempts": 0,
                    "acked_at": None,
                }
            )
        return record_id

    def depth(self) -> int:
        with self._lock:
            return self.db["outbox"].count_where("acked_at is null")

    def oldest_pending_created(self) -> str | None:
        with self._lock:
            row = self.db.execute(
                "select min(created_at) from outbox where acked_at is null"
            ).fetchone()
        return row[0] if row else None

    def get_state(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            rows = list(self.db["kiosk_state"].rows_where("key = ?", [key]))
        return rows[0]["value"] if rows else default

    def set_state(self, key: str, value: str) -> None:
        with self.write_transaction():
            self.db["kiosk_state"].upsert({"key": key, "value": value}, pk="key")

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[None]:
        """A write transaction that takes SQLite's write lock up front
        (``BEGIN IMMEDIATE``).

        The UI's store and the sync worker's store are two connections to one
        file. A deferred ``BEGIN`` that reads first (sqlite-utils looks at the
        table before it inserts) and then writes fails at once with "database
        is locked" when the other connection committed in between; taking the
        lock first makes it wait (up to the connection timeout) instead.
        sqlite-utils calls inside become savepoints of this transaction.
        """
        with self._lock:
            if self.db.conn.in_transaction:
                yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.conn.rollback()
                raise
            else:
                self.db.conn.commit()

    # -- sync support (kiosk.sync) --

    def sync_pending(self, limit: int = 100, *, kinds: tuple[str, ...] | None = None,
                     exclude: frozenset[str] | set[str] = frozenset()) -> list[dict]:
        """Records still to send: unacknowledged and not set aside, alerts first,
        then oldest first; only of ``kinds`` when given, never those in ``exclude``."""
        where = "acked_at is null and rejected_at is null"
        params: list = []
        if kinds:
            where += f" and kind in ({_marks(kinds)})"
            params += list(kinds)
        if exclude:
            where += f" and id not in ({_marks(exclude)})"
            params += list(exclude)
        with self._lock:
            return list(
                self.db["outbox"].rows_where(where, params, order_by="priority desc, created_at, id", limit=limit)
            )

    def sync_depth(self) -> int:
        """How many records still wait for the hub (set-aside ones excluded)."""
        with self._lock:
            return self.db["outbox"].count_where("acked_at is null and rejected_at is null")

    def mark_acked(self, ids: list[str], retention_s: float = 0) -> None:
        """Records the hub's acknowledgement of ``ids``; with ``retention_s`` 0
        deletes them in the same transaction, so nothing acknowledged lingers."""
        if not ids:
            return
        with self.write_transaction():
            if retention_s <= 0:
                self.db.execute(f"delete from outbox where id in ({_marks(ids)})", list(ids))
            else:
                self.db.execute(
                    f"update outbox set acked_at = ? where id in ({_marks(ids)}) and acked_at is null",
                    [utcnow(), *ids],
                )

    def purge_acked(self, older_than: str) -> int:
        """Deletes acknowledged records acked at or before ``older_than`` (ISO
        time); returns how many."""
        with self.write_transaction():
            cur = self.db.execute(
                "delete from outbox where acked_at is not null and acked_at <= ?", [older_than]
            )
            return cur.rowcount

    def bump_attempts(self, ids: list[str], set_aside_after: int | None = None) -> list[str]:
        """Counts one failed send of ``ids``; with ``set_aside_after``, sets
        aside those that have failed that often and returns their ids."""
        if not ids:
            return []
        with self.write_transaction():
            self.db.execute(
                f"update outbox set attempts = attempts + 1 where id in ({_marks(ids)})", list(ids)
            )
            if set_aside_after is None:
                return []
            worn = [r[0] for r in self.db.execute(
                f"select id from outbox where id in ({_marks(ids)}) and attempts >= ?", [*ids, set_aside_after]
            ).fetchall()]
            self.mark_rejected(worn)
        return worn

    def mark_rejected(self, ids: list[str]) -> None:
        if not ids:
            return
        with self.write_transaction():
            self.db.execute(
                f"update outbox set rejected_at = ? where id in ({_marks(ids)})", [utcnow(), *ids]
            )

    def rejected_count(self) -> int:
        with self._lock:
            return self.db["outbox"].count_where("rejected_at is not null and acked_at is null")

    def open_alert_ids(self) -> list[str]:
        """Alerts raised here that staff have not acknowledged yet, oldest first
        (in the order raised when two share a timestamp)."""
        with self._lock:
            rows = self.db.execute(
                "select id from open_alerts where acknowledged_at is null order by raised_at, rowid"
            ).fetchall()
        return [r[0] for r in rows]

    def close_alerts(self, ids) -> list[str]:
        """Marks ``ids`` acknowledged; returns those that were still open."""
        ids = list(ids)
        if not ids:
            return []
        with self.write_transaction():
            still_open = [r[0] for r in self.db.execute(
                f"select id from open_alerts where id in ({_marks(ids)}) and acknowledged_at is null", ids
            ).fetchall()]
            if still_open:
                self.db.execute(
                    f"update open_alerts set acknowledged_at = ? where id in ({_marks(still_open)})",
                    [utcnow(), *still_open],
                )
        return still_open

    def all_records(self) -> Iterator[dict]:
        """Every record on the device, acknowledged or not (for recovery)."""
        with self._lock:
            rows = list(self.db["outbox"].rows_where(order_by="created_at, id"))
        yield from rows

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()


def _marks(ids) -> str:
    return ", ".join("?" for _ in ids)


def m003_outbox_rejected(db: sqlite_utils.Database) -> None:
    # A record the hub refused for good (same id, other content; a body that
    # does not open) is set aside rather than resent forever or deleted: it
    # stays on the device for `clinic-kiosk export`.
    db["outbox"].add_column("rejected_at", str)


def m004_open_alerts(db: sqlite_utils.Database) -> None:
    # Alerts raised on this kiosk and whether staff acknowledged them (ids
    # and times only, never patient data).
    db["open_alerts"].create(
        {"id": str, "kind": str, "raised_at": str, "acknowledged_at": str}, pk="id", not_null={"kind", "raised_at"}
    )


@functools.cache
def migrations():
    """The kiosk database's migrations (sqlite-utils), in order; built on
    first use so that importing this module does not import sqlite-utils."""
    from sqlite_utils.migrations import Migrations

    steps = Migrations("clinic-kiosk")
    for step in (m001_outbox, m002_kiosk_state, m003_outbox_rejected, m004_open_alerts):
        steps()(step)
    return steps
