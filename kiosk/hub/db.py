"""The hub's storage: one schema on SQLite (one clinic) or PostgreSQL (a group).

Both back-ends sit behind :class:`Backend`; the SQL below is written in the
common subset of the two (TEXT columns, ``ON CONFLICT DO NOTHING``), and the
schema changes only through the numbered :data:`MIGRATIONS`, applied at
start-up and recorded in ``hub_migrations``.

>>> backend = open_backend("sqlite:///:memory:")
>>> repo = HubRepository(backend)
>>> repo.migrate()[0]
'001_initial'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Tx(Protocol):
    """A cursor inside one transaction; SQL uses ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Tx": ...

    def fetchone(self) -> tuple | None: ...

    def fetchall(self) -> list[tuple]: ...

    @property
    def rowcount(self) -> int: ...


class Backend(Protocol):
    """A database the hub can run transactions on."""

    name: str

    def transaction(self) -> contextlib.AbstractContextManager[Tx]: ...

    def close(self) -> None: ...


class SQLiteBackend:
    """One SQLite file in WAL mode with synchronous=FULL, so that an
    acknowledgement sent to a kiosk means the record survives a power cut.

    One connection guarded by a lock: SQLite has a single writer anyway, and
    the hub's batches are short.
    """

    name = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            Path(self.path).chmod(0o600)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            else:
                self._conn.commit()
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PgCursor:
    """Adapts a psycopg cursor to ``?`` placeholders, the form the SQL here uses."""

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "_PgCursor":
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return self

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self):
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount


class PostgresBackend:
    """PostgreSQL through psycopg, with a small pool of connections so the
    request threads do not wait on one another."""

    name = "postgresql"

    def __init__(self, url: str, pool_size: int = 8):
        import psycopg  # imported here: SQLite-only hubs never need it

        self._psycopg = psycopg
        self.url = url
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.Semaphore(pool_size)
        # Fail fast with a clear message when the server is not there.
        with self.transaction() as tx:
            tx.execute("select 1")

    def _connect(self):
        return self._psycopg.connect(self.url, connect_timeout=10, autocommit=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._slots:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = self._connect()
            if conn.closed or conn.broken:
                conn = self._connect()
            ok = False
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield _PgCursor(cur)
                ok = True
            finally:
                if ok or not conn.broken:
                    self._pool.put(conn)
                else:
                    conn.close()

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


class DatabaseURLError(ValueError):
    pass


def open_backend(url: str) -> Backend:
    """Opens ``sqlite:///PATH`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        return SQLiteBackend(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url)
    raise DatabaseURLError(
        f"database URL {redact_url(url)!r} is not supported: use sqlite:///PATH or postgresql://..."
    )


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


# Each migration is a list of statements valid on both SQLite and PostgreSQL.
MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "001_initial",
        [
            """create table kiosk_tokens (
                token_hash text primary key,
                kiosk_id text not null,
                created_at text not null,
                revoked_at text
            )""",
            "create index kiosk_tokens_kiosk on kiosk_tokens (kiosk_id)",
            """create table enroll_codes (
                code_hash text primary key,
                created_at text not null,
                expires_at text not null,
                used_at text,
                used_by text
            )""",
            """create table users (
                name text primary key,
                role text not null,
                password_hash text not null,
                created_at text not null
            )""",
            # One row per record a kiosk submitted, keyed by its UUID; digest
            # is of the decrypted body, to tell an identical resend from a
            # different record reusing the id.
            """create table records (
                id text primary key,
                kind text not null,
                kiosk_id text not null,
                digest text not null,
                received_at text not null,
                intake_id text,
                submitted_at text,
                payload text not null
            )""",
            "create index records_kind_submitted on records (kind, submitted_at)",
        ],
    ),
    (
        "002_kiosks_alert_acks",
        [
            # One row per enrolled kiosk: what it last reported (a
            # protocol.Heartbeat as JSON) and when it was last heard from.
            """create table kiosks (
                kiosk_id text primary key,
                name text not null default '',
                enrolled_at text not null,
                last_contact text,
                report text not null default '{}',
                revoked_at text
            )""",
            # Staff acknowledgement of an alert record (kind 'alert' or
            # 'staff-call'); the kiosk learns it through the heartbeat.
            """create table alert_acks (
                record_id text primary key,
                kiosk_id text not null,
                acknowledged_at text not null,
                acknowledged_by text not null
            )""",
        ],
    ),
]


def hash_secret(secret: str) -> str:
    """Tokens and enrollment codes are random and long, so a plain SHA-256 is
    enough to keep them out of the database in usable form."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Conflict(Exception):
    """Records whose id is already on the hub with different content."""

    def __init__(self, ids: list[str]):
        super().__init__(f"{len(ids)} record id(s) already stored with different content")
        self.ids = ids


@dataclass(frozen=True)
class IncomingRecord:
    """A decrypted record ready to store."""

    id: str
    kind: str
    digest: str
    payload_json: str
    intake_id: str | None
    submitted_at: str | None


class HubRepository:
    """What the hub keeps: kiosk tokens, enrollment codes, staff accounts and
    the records kiosks submitted."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def migrate(self) -> list[str]:
        """Applies pending migrations; returns the names applied."""
        applied: list[str] = []
        with self.backend.transaction() as tx:
            tx.execute(
                "create table if not exists hub_migrations (name text primary key, applied_at text not null)"
            )
        for name, statements in MIGRATIONS:
            with self.backend.transaction() as tx:
                if tx.execute("select 1 from hub_migrations where name = ?", [name]).fetchone():
                    continue
                for sql in statements:
                    tx.execute(sql)
                tx.execute(
                    "insert into hub_migrations (name, applied_at) values (?, ?)", [name, utcnow()]
                )
            applied.append(name)
        return applied

    # -- enrollment -----------------------------------------------------------

    def new_enroll_code(self, valid_for: dt.timedelta = dt.timedelta(hours=24)) -> str:
        """A fresh one-time code, e.g. ``K7QF-93XM-2PLA``; only its hash is kept."""
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud
        raw = "".join(secrets.choice(alphabet) for _ in range(12))
        code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
        now = dt.datetime.now(dt.timezone.utc)
        with self.backend.transaction() as tx:
            tx.execute(
                "insert into enroll_codes (code_hash, created_at, expires_at) values (?, ?, ?)",
                [hash_secret(normalise_code(code)), now.isoformat(), (now + valid_for).isoformat()],
            )
        return code

    def redeem_enroll_code(self, code: str, kiosk_id: str) -> str | None:
        """Uses up ``code`` and returns a new device token, or None when the
        code is unknown, used or expired. One transaction, so two kiosks
        racing for one code cannot both win."""
        now = utcnow()
        token = secrets.token_urlsafe(32)
        with self.backend.transaction() as tx:
            tx.execute(
                "update enroll_codes set used_at = ?, used_by = ? "
                "where code_hash = ? and used_at is null and expires_at > ?",
                [now, kiosk_id, hash_secret(normalise_code(code)), now],
            )
            if tx.rowcount != 1:
                return None
            tx.execute(
                "insert into kiosk_tokens (token_hash, kiosk_id, created_at) values (?, ?, ?)",
                [hash_secret(token), kiosk_id, now],
            )
        return token

    def kiosk_for_token(self, token: str) -> str | None:
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select kiosk_id from kiosk_tokens where token_hash = ? and revoked_at is null",
                [hash_secret(token)],
            ).fetchone()
        return row[0] if row else None

    def revoke(self, kiosk_id: str) -> int:
        """Revokes every live token of ``kiosk_id``; returns how many."""
        with self.backend.transaction() as tx:
            tx.execute(
                "update kiosk_tokens set revoked_at = ? where kiosk_id = ? and revoked_at is null",
                [utcnow(), kiosk_id],
            )
            return tx.rowcount

    # -- kiosks and alert acknowledgements -------------------------------------

    def record_heartbeat(self, kiosk_id: str, report_json: str) -> None:
        """Keeps what ``kiosk_id`` reported and when (a row is made for a
        kiosk enrolled before the kiosks table existed)."""
        now = utcnow()
        with self.backend.transaction() as tx:
            tx.execute(
                "update kiosks set last_contact = ?, report = ? where kiosk_id = ?", [now, report_json, kiosk_id]
            )
            if tx.rowcount == 0:
                tx.execute(
                    "insert into kiosks (kiosk_id, enrolled_at, last_contact, report) values (?, ?, ?, ?) "
                    "on conflict (kiosk_id) do nothing",
                    [kiosk_id, now, now, report_json],
                )

    def acknowledge_alert(self, record_id: str, user: str) -> bool:
        """Marks an alert record acknowledged by ``user``; False when there
        is no such alert or it was already acknowledged (the first wins)."""
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select kiosk_id from records where id = ? and kind in ('alert', 'staff-call')", [record_id]
            ).fetchone()
            if row is None:
                return False
            tx.execute(
                "insert into alert_acks (record_id, kiosk_id, acknowledged_at, acknowledged_by) "
                "values (?, ?, ?, ?) on conflict (record_id) do nothing",
                [record_id, row[0], utcnow(), user],
            )
            return tx.rowcount == 1

    def acknowledged_among(self, kiosk_id: str, record_ids: Sequence[str]) -> list[str]:
        """Those of ``record_ids`` (alerts of ``kiosk_id``) that staff acknowledged."""
        if not record_ids:
            return []
        marks = ", ".join("?" for _ in record_ids)
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select record_id from alert_acks where kiosk_id = ? and record_id in ({marks})",
                [kiosk_id, *record_ids],
            ).fetchall()
        return sorted(r[0] for r in rows)

    # -- staff ----------------------------------------------------------------

    def add_user(self, name: str, role: str, password_hash: str) -> None:
        with self.backend.transaction() as tx:
            if tx.execute("select 1 from users where name = ?", [name]).fetchone():
                raise ValueError(f"user {name!r} already exists")
            tx.execute(
                "insert into users (name, role, password_hash, created_at) values (?, ?, ?, ?)",
                [name, role, password_hash, utcnow()],
            )

    def user(self, name: str) -> tuple[str, str] | None:
        """(role, password_hash) of a user."""
        with self.backend.transaction() as tx:
            row = tx.execute("select role, password_hash from users where name = ?", [name]).fetchone()
        return (row[0], row[1]) if row else None

    # -- records --------------------------------------------------------------

    def store_batch(self, kiosk_id: str, records: Sequence[IncomingRecord]) -> list[str]:
        """Stores a batch in one transaction; returns "stored" or "duplicate"
        per record. Raises :class:`Conflict` (and stores nothing) when an id
        is already there with a different digest."""
        statuses: list[str] = []
        conflicts: list[str] = []
        now = utcnow()
        with self.backend.transaction() as tx:
            for rec in records:
                tx.execute(
                    "insert into records (id, kind, kiosk_id, digest, received_at, intake_id, "
                    "submitted_at, payload) values (?, ?, ?, ?, ?, ?, ?, ?) "
                    "on conflict (id) do nothing",
                    [rec.id, rec.kind, kiosk_id, rec.digest, now, rec.intake_id,
                     rec.submitted_at, rec.payload_json],
                )
                if tx.rowcount == 1:
                    statuses.append("stored")
                    continue
                row = tx.execute("select digest, kind from records where id = ?", [rec.id]).fetchone()
                if row and row[0] == rec.digest and row[1] == rec.kind:
                    statuses.append("duplicate")
                else:
                    conflicts.append(rec.id)
            if conflicts:
                # Raising inside the transaction rolls the whole batch back.
                raise Conflict(conflicts)
        return statuses

    def count_records(self, kind: str | None = None) -> int:
        with self.backend.transaction() as tx:
            if kind:
                row = tx.execute("select count(*) from records where kind = ?", [kind]).fetchone()
            else:
                row = tx.execute("select count(*) from records").fetchone()
        return int(row[0])

    def record_ids(self, kind: str | None = None) -> list[str]:
        with self.backend.transaction() as tx:
            if kind:
                rows = tx.execute("select id from records where kind = ? order by id", [kind]).fetchall()
            else:
                rows = tx.execute("select id from records order by id").fetchall()
        return [r[0] for r in rows]

    def visits(self, since: str | None = None) -> list[tuple[str, str, str]]:
        """(id, kiosk_id, payload JSON) of every visit, oldest first;
        ``since`` (ISO date or time) keeps those submitted on or after it."""
        sql = "select id, kiosk_id, payload from records where kind = 'visit'"
        params: list[str] = []
        if since:
            sql += " and submitted_at >= ?"
            params.append(since)
        sql += " order by submitted_at, id"
        with self.backend.transaction() as tx:
            return [tuple(r) for r in tx.execute(sql, params).fetchall()]


def normalise_code(code: str) -> str:
    """Codes are read aloud and typed: ignore case, spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())
