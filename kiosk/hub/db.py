"""The hub's storage: one schema on SQLite (one clinic) or PostgreSQL (a group).

Both back-ends sit behind :class:`Backend`; the SQL below is written in the
common subset of the two (TEXT columns, ``ON CONFLICT DO NOTHING``), and the
schema changes only through the numbered :data:`MIGRATIONS`, applied at
start-up and recorded in ``hub_migrations``.

>>> backend = open_backend("sqlite:///:memory:")
>>> repo = HubRepository(backend)
>>> repo.migrate()[0]
'001_initial'
>>> repo.count_records()
0
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import queue
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from ..protocol import CODE_ALPHABET, CODE_ID_CHARS, CODE_SECRET_CHARS, code_password, redact_url
from .export.table import CELLS_VERSION, visit_cells


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
        # Enforced references (off by default in SQLite), so that deleting a
        # record deletes what was derived from it, as on PostgreSQL.
        self._conn.execute("PRAGMA foreign_keys=ON")
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
    (
        "003_staff",
        [
            # Accounts are disabled, never deleted, so the audit log keeps
            # naming real accounts.
            "alter table users add column disabled_at text",
            # Failed logins per key ("user:NAME" or "addr:IP"): the lockout
            # counts both, whether or not the account exists.
            """create table login_failures (
                key text primary key,
                failures integer not null,
                first_at text not null,
                locked_until text
            )""",
            # Server-side sessions; the cookie holds a random token, the
            # table only its hash.
            """create table staff_sessions (
                token_hash text primary key,
                user_name text not null,
                csrf text not null,
                created_at text not null,
                last_seen text not null,
                ended_at text
            )""",
            # Append-only: the repository has no method that updates or
            # deletes a row of it.
            """create table audit (
                id text primary key,
                at text not null,
                user_name text not null,
                action text not null,
                target text not null,
                detail text not null default ''
            )""",
            "create index audit_at on audit (at)",
            """create table intake_reviews (
                intake_id text primary key,
                reviewed_at text not null,
                reviewed_by text not null
            )""",
            """create table hub_settings (
                key text primary key,
                value text not null
            )""",
            "create index records_received on records (received_at)",
        ],
    ),
    (
        "004_enrollment",
        [
            # Codes of the SPAKE2 enrollment (kiosk.protocol): keyed by the
            # code's public id, holding the derived password instead of the
            # code; ``attempts`` counts exchanges started, so a code that is
            # being guessed at is burned after a few.
            "drop table enroll_codes",
            """create table enrollment_codes (
                code_id text primary key,
                password text not null,
                created_at text not null,
                expires_at text not null,
                attempts integer not null default 0,
                used_at text,
                kiosk_id text
            )""",
            # One intake is one visit record, whatever record ids a kiosk uses.
            "create unique index records_intake_id on records (intake_id)",
        ],
    ),
    (
        "005_export_cells",
        [
            # A visit's CSV cells, made once when it is stored (see
            # kiosk.hub.export.table), so an export never parses payloads;
            # they go when the record goes. Checked at commit (deferred), so
            # a restore may load the tables in any order.
            """create table export_cells (
                id text primary key references records (id) on delete cascade
                    deferrable initially deferred,
                version integer not null,
                shape text,
                line text,
                notes text,
                problem text
            )""",
            # Each distinct set of linkIds a visit answered, once.
            "create table export_shapes (shape text primary key, link_ids text not null)",
            # Lets an export walk the visits in order from the index alone;
            # it serves every query the narrower index served.
            "create index records_kind_submitted_id on records (kind, submitted_at, id)",
            "drop index records_kind_submitted",
        ],
    ),
    (
        "006_content_versions",
        [
            # Every uploaded content version, kept for good (kiosk.hub.content):
            # a visit names the version it was asked with, and its page shows
            # that version's wording. One row at most has published = 1.
            """create table content_versions (
                id text primary key,
                content_version text not null,
                uploaded_at text not null,
                uploaded_by text not null,
                sha256 text not null,
                signature text not null,
                bundle text not null,
                published_at text,
                published integer not null default 0
            )""",
            "create index content_versions_version on content_versions (content_version)",
        ],
    ),
    # Issue 19, returning patients: see kiosk.hub.patients.
    (
        "007_patients",
        [
            # One row per patient: a random id, the reference exports carry, the
            # code the patient may type on the kiosk next time (shown to staff
            # on the intake page), and the birth date of the first visit.
            """create table patients (
                id text primary key,
                ref text not null unique,
                return_code text not null unique,
                birth_date text,
                created_at text not null
            )""",
            # A course of care: a first visit starts one, returning visits join
            # the patient's latest.
            """create table episodes (
                id text primary key,
                patient_id text not null,
                started_at text not null
            )""",
            "create index episodes_patient on episodes (patient_id, started_at)",
            # Which patient and episode a visit record belongs to, and how that
            # was decided; goes with the record. ``patient_ref`` repeats the
            # patient's reference, so an export joins one table. ``measures`` holds the visit's
            # numeric scores with their MCID (see :func:`measures_of`), so the
            # trend and outcome pages never parse payloads. ``previous`` is the
            # link before the last staff change, for "undo".
            """create table visit_links (
                record_id text primary key references records (id) on delete cascade
                    deferrable initially deferred,
                intake_id text,
                patient_id text not null,
                patient_ref text,
                episode_id text not null,
                submitted_at text,
                name_key text,
                birth_date text,
                visit_kind text,
                method text not null,
                state text not null,
                decided_by text,
                decided_at text,
                previous text,
                measures text not null default '[]'
            )""",
            "create index visit_links_patient on visit_links (patient_id, submitted_at)",
            "create index visit_links_episode on visit_links (episode_id, submitted_at)",
            "create index visit_links_identity on visit_links (name_key, birth_date)",
            "create index visit_links_intake on visit_links (intake_id)",
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



# == staff web page: accounts, sessions, audit, reviews, settings, live list ==
# (what kiosk.hub.routers.staff/admin/exports need; HubRepository inherits it)


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str
    created_at: str
    disabled_at: str | None


@dataclass(frozen=True)
class SessionRow:
    user: str
    role: str
    csrf: str
    last_seen: str
    ended_at: str | None
    disabled_at: str | None


@dataclass(frozen=True)
class StoredRecord:
    """A record as the staff page reads it; ``payload`` is parsed JSON."""

    id: str
    kind: str
    kiosk_id: str
    received_at: str
    intake_id: str | None
    submitted_at: str | None
    payload: dict


def _stored(row) -> StoredRecord:
    try:
        payload = json.loads(row[6])
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    intake = row[4] or (payload.get("intake_id") if isinstance(payload.get("intake_id"), str) else None)
    return StoredRecord(row[0], row[1], row[2], row[3], intake, row[5], payload)


_RECORD_COLUMNS = "id, kind, kiosk_id, received_at, intake_id, submitted_at, payload"


class StaffRepository:
    """Mixin of :class:`HubRepository` for the staff web page."""

    backend: Backend

    # -- accounts --------------------------------------------------------------

    def account(self, name: str) -> Account | None:
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select name, role, password_hash, created_at, disabled_at from users where name = ?", [name]
            ).fetchone()
        return Account(*row) if row else None

    def accounts(self) -> list[Account]:
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "select name, role, password_hash, created_at, disabled_at from users order by name"
            ).fetchall()
        return [Account(*r) for r in rows]

    def disable_user(self, name: str) -> bool:
        """Disables ``name`` and ends its sessions; False when there is no
        such enabled account."""
        now = utcnow()
        with self.backend.transaction() as tx:
            tx.execute("update users set disabled_at = ? where name = ? and disabled_at is null", [now, name])
            if tx.rowcount != 1:
                return False
            tx.execute("update staff_sessions set ended_at = ? where user_name = ? and ended_at is null",
                       [now, name])
        return True

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("update users set password_hash = ? where name = ?", [password_hash, name])

    # -- login failures (lockout) ----------------------------------------------

    def locked_until(self, keys: Sequence[str], now: str) -> str | None:
        """The latest lock still in force on any of ``keys``, or None."""
        marks = ", ".join("?" for _ in keys)
        with self.backend.transaction() as tx:
            row = tx.execute(
                f"select max(locked_until) from login_failures where key in ({marks}) and locked_until > ?",
                [*keys, now],
            ).fetchone()
        return row[0] if row and row[0] else None

    def record_login_failure(self, limits: dict[str, int], now: dt.datetime,
                             window: dt.timedelta, lock_for: dt.timedelta) -> None:
        """Counts one failure on each key; a key reaching its limit of
        failures within ``window`` is locked for ``lock_for``."""
        with self.backend.transaction() as tx:
            for key, limit in limits.items():
                row = tx.execute("select failures, first_at from login_failures where key = ?", [key]).fetchone()
                if row is None or dt.datetime.fromisoformat(row[1]) < now - window:
                    failures, first = 1, now
                else:
                    failures, first = int(row[0]) + 1, dt.datetime.fromisoformat(row[1])
                locked = (now + lock_for).isoformat() if failures >= limit else None
                tx.execute("delete from login_failures where key = ?", [key])
                tx.execute(
                    "insert into login_failures (key, failures, first_at, locked_until) values (?, ?, ?, ?)",
                    [key, 0 if locked else failures, now.isoformat() if locked else first.isoformat(), locked],
                )

    def clear_login_failures(self, key: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("delete from login_failures where key = ? and (locked_until is null or locked_until < ?)",
                       [key, utcnow()])

    # -- sessions ----------------------------------------------------------------

    def create_session(self, token_hash: str, user: str, csrf: str) -> None:
        now = utcnow()
        with self.backend.transaction() as tx:
            tx.execute(
                "insert into staff_sessions (token_hash, user_name, csrf, created_at, last_seen) "
                "values (?, ?, ?, ?, ?)",
                [token_hash, user, csrf, now, now],
            )

    def session(self, token_hash: str) -> SessionRow | None:
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select s.user_name, u.role, s.csrf, s.last_seen, s.ended_at, u.disabled_at "
                "from staff_sessions s join users u on u.name = s.user_name where s.token_hash = ?",
                [token_hash],
            ).fetchone()
        return SessionRow(*row) if row else None

    def touch_session(self, token_hash: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("update staff_sessions set last_seen = ? where token_hash = ? and ended_at is null",
                       [utcnow(), token_hash])

    def end_session(self, token_hash: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("update staff_sessions set ended_at = ? where token_hash = ? and ended_at is null",
                       [utcnow(), token_hash])

    # -- audit (append-only) -------------------------------------------------------

    def add_audit(self, user: str, action: str, target: str, detail: str = "") -> None:
        with self.backend.transaction() as tx:
            tx.execute(
                "insert into audit (id, at, user_name, action, target, detail) values (?, ?, ?, ?, ?, ?)",
                [secrets.token_hex(12), utcnow(), user, action, target, detail],
            )

    def audit_entries(self, since: str | None = None, limit: int | None = None) -> list[dict]:
        """Oldest first; with ``limit``, the newest ``limit`` entries."""
        sql = "select at, user_name, action, target, detail, id from audit"
        params: list[Any] = []
        if since:
            sql += " where at >= ?"
            params.append(since)
        sql += " order by at desc, id desc"
        if limit:
            sql += f" limit {int(limit)}"
        with self.backend.transaction() as tx:
            rows = tx.execute(sql, params).fetchall()
        return [{"at": r[0], "user": r[1], "action": r[2], "target": r[3], "detail": r[4]} for r in reversed(rows)]

    # -- reviews and settings ----------------------------------------------------------

    def mark_reviewed(self, intake_id: str, user: str) -> bool:
        """False when the intake was already marked reviewed (the first wins)."""
        with self.backend.transaction() as tx:
            tx.execute(
                "insert into intake_reviews (intake_id, reviewed_at, reviewed_by) values (?, ?, ?) "
                "on conflict (intake_id) do nothing",
                [intake_id, utcnow(), user],
            )
            return tx.rowcount == 1

    def reviews(self) -> dict[str, tuple[str, str]]:
        """intake_id -> (reviewed_at, reviewed_by)."""
        with self.backend.transaction() as tx:
            rows = tx.execute("select intake_id, reviewed_at, reviewed_by from intake_reviews").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def acknowledgements(self) -> dict[str, tuple[str, str]]:
        """alert record id -> (acknowledged_at, acknowledged_by)."""
        with self.backend.transaction() as tx:
            rows = tx.execute("select record_id, acknowledged_at, acknowledged_by from alert_acks").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def setting(self, key: str) -> str | None:
        with self.backend.transaction() as tx:
            row = tx.execute("select value from hub_settings where key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.backend.transaction() as tx:
            tx.execute("delete from hub_settings where key = ?", [key])
            tx.execute("insert into hub_settings (key, value) values (?, ?)", [key, value])

    # -- what the live list shows ----------------------------------------------------

    def change_marker(self) -> str:
        """Changes whenever a record, acknowledgement or review is added or
        removed: cheap enough to poll a few times a second."""
        with self.backend.transaction() as tx:
            a = tx.execute("select count(*), max(received_at) from records").fetchone()
            b = tx.execute("select count(*) from alert_acks").fetchone()
            c = tx.execute("select count(*) from intake_reviews").fetchone()
        return f"{a[0]}|{a[1]}|{b[0]}|{c[0]}"

    def records_received_since(self, since: str) -> list[StoredRecord]:
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records where received_at >= ? order by received_at, id", [since]
            ).fetchall()
        return [_stored(r) for r in rows]

    def unacknowledged_alerts(self) -> list[StoredRecord]:
        """Every alert and staff call staff have not acknowledged, of any day."""
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records r where kind in ('alert', 'staff-call') "
                "and not exists (select 1 from alert_acks a where a.record_id = r.id) order by received_at, id"
            ).fetchall()
        return [_stored(r) for r in rows]

    def alert_record(self, record_id: str) -> StoredRecord | None:
        with self.backend.transaction() as tx:
            row = tx.execute(
                f"select {_RECORD_COLUMNS} from records where id = ? and kind in ('alert', 'staff-call')",
                [record_id],
            ).fetchone()
        return _stored(row) if row else None

    def intake_records(self, intake_id: str) -> list[StoredRecord]:
        """The visit(s) and alerts of one intake. Alerts keep their intake id
        only in the payload, so they are matched there."""
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records where intake_id = ? "
                "or (kind in ('alert', 'staff-call') and payload like ?) order by received_at, id",
                [intake_id, f'%"{intake_id}"%'],
            ).fetchall()
        return [r for r in map(_stored, rows) if r.intake_id == intake_id]

    def record_ages(self) -> list[tuple[str, str, str, str | None]]:
        """(id, kind, received_at, intake_id) of every record, for retention."""
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_RECORD_COLUMNS} from records").fetchall()
        return [(r.id, r.kind, r.received_at, r.intake_id) for r in map(_stored, rows)]

    def delete_records(self, ids: Sequence[str], intake_ids: Sequence[str]) -> int:
        """Deletes records (and the reviews and acknowledgements that refer
        to them) in one transaction; returns how many records went."""
        deleted = 0
        with self.backend.transaction() as tx:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i : i + 500])
                marks = ", ".join("?" for _ in chunk)
                tx.execute(f"delete from alert_acks where record_id in ({marks})", chunk)
                tx.execute(f"delete from records where id in ({marks})", chunk)
                deleted += tx.rowcount
            for i in range(0, len(intake_ids), 500):
                chunk = list(intake_ids[i : i + 500])
                marks = ", ".join("?" for _ in chunk)
                tx.execute(f"delete from intake_reviews where intake_id in ({marks})", chunk)
        return deleted

    def kiosk_rows(self) -> list[dict]:
        """Every kiosk the hub knows (enrolled or reporting), with what it
        last reported and whether it still has a live token."""
        with self.backend.transaction() as tx:
            known = tx.execute(
                "select kiosk_id, name, enrolled_at, last_contact, report, revoked_at from kiosks"
            ).fetchall()
            tokens = tx.execute(
                "select kiosk_id, min(created_at), sum(case when revoked_at is null then 1 else 0 end) "
                "from kiosk_tokens group by kiosk_id"
            ).fetchall()
        out: dict[str, dict] = {}
        for kiosk_id, created, live in tokens:
            out[kiosk_id] = {"kiosk_id": kiosk_id, "name": "", "enrolled_at": created, "last_contact": None,
                             "report": "{}", "live_tokens": int(live or 0)}
        for kiosk_id, name, enrolled, last, report, _revoked in known:
            row = out.setdefault(kiosk_id, {"kiosk_id": kiosk_id, "live_tokens": 0})
            row.update(name=name, enrolled_at=enrolled, last_contact=last, report=report)
        return sorted(out.values(), key=lambda r: r["kiosk_id"])

# == end of the staff web page section ==


class HubRepository(StaffRepository):
    """What the hub keeps: kiosk tokens, enrollment codes, staff accounts and
    the records kiosks submitted."""

    def __init__(self, backend: Backend):
        self.backend = backend
        # Export shapes known to be stored (they are never deleted), so a
        # visit of a common shape costs no statement for it.
        self._stored_shapes: set[str] = set()

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
        """A fresh one-time code, e.g. ``K7QF-93XM-2PLA``: the first group is
        its id, the rest the secret; the hub keeps only the SPAKE2 password
        derived from it."""
        now = dt.datetime.now(dt.timezone.utc)
        while True:
            raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_ID_CHARS + CODE_SECRET_CHARS))
            code_id, secret = raw[:CODE_ID_CHARS], raw[CODE_ID_CHARS:]
            with self.backend.transaction() as tx:
                tx.execute(
                    "insert into enrollment_codes (code_id, password, created_at, expires_at) "
                    "values (?, ?, ?, ?) on conflict do nothing",
                    [code_id, code_password(code_id, secret).decode("ascii"), now.isoformat(),
                     (now + valid_for).isoformat()],
                )
                if tx.rowcount == 1:
                    break
        return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))

    def start_enrollment(self, code_id: str, max_attempts: int) -> bytes:
        """Counts one exchange on ``code_id`` and returns its SPAKE2 password.
        Raises :class:`CodeRefused` (with a message for the kiosk) when the
        code is unknown, used, expired or burned by failed attempts."""
        now = utcnow()
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select password, expires_at, attempts, used_at from enrollment_codes where code_id = ?",
                [code_id],
            ).fetchone()
            if row is None or row[3] is not None or row[1] <= now:
                raise CodeRefused(
                    "enrollment code is not valid (unknown, already used or expired): "
                    "run `clinic-hub enroll-code` for a new one"
                )
            if int(row[2]) >= max_attempts:
                raise CodeRefused(
                    f"enrollment code was burned after {max_attempts} failed attempts: "
                    "run `clinic-hub enroll-code` for a new one"
                )
            tx.execute("update enrollment_codes set attempts = attempts + 1 where code_id = ?", [code_id])
        return row[0].encode("ascii")

    def finish_enrollment(self, code_id: str, name: str) -> tuple[str, str]:
        """Uses up ``code_id`` and enrolls a kiosk called ``name``: returns
        (its new unique kiosk id, its device token). One transaction, so two
        kiosks racing for one code cannot both win."""
        now = utcnow()
        token = secrets.token_urlsafe(32)
        with self.backend.transaction() as tx:
            tx.execute(
                "update enrollment_codes set used_at = ? where code_id = ? and used_at is null", [now, code_id]
            )
            if tx.rowcount != 1:
                raise CodeRefused("enrollment code was used by another kiosk meanwhile")
            while True:
                kiosk_id = f"{_slug(name)}-{secrets.token_hex(3)}"
                tx.execute(
                    "insert into kiosks (kiosk_id, name, enrolled_at) values (?, ?, ?) on conflict do nothing",
                    [kiosk_id, name, now],
                )
                if tx.rowcount == 1:
                    break
            tx.execute("update enrollment_codes set kiosk_id = ? where code_id = ?", [kiosk_id, code_id])
            tx.execute(
                "insert into kiosk_tokens (token_hash, kiosk_id, created_at) values (?, ?, ?)",
                [hash_secret(token), kiosk_id, now],
            )
        return kiosk_id, token

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
            revoked = tx.rowcount
            tx.execute("update kiosks set revoked_at = ? where kiosk_id = ? and revoked_at is null",
                       [utcnow(), kiosk_id])
            return revoked

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
        per record, and makes each new visit's export cells (once, here,
        rather than at every export). Raises :class:`Conflict` (and stores nothing) when an id
        is already there with a different digest."""
        statuses: list[str] = []
        conflicts: list[str] = []
        shapes: set[str] = set()
        now = utcnow()
        with self.backend.transaction() as tx:
            for rec in records:
                tx.execute(
                    "insert into records (id, kind, kiosk_id, digest, received_at, intake_id, "
                    "submitted_at, payload) values (?, ?, ?, ?, ?, ?, ?, ?) "
                    # Any unique key (the id, or the intake id under another
                    # record id): a clash is sorted out below, never a 500.
                    "on conflict do nothing",
                    [rec.id, rec.kind, kiosk_id, rec.digest, now, rec.intake_id,
                     rec.submitted_at, rec.payload_json],
                )
                if tx.rowcount == 1:
                    statuses.append("stored")
                    if rec.kind == "visit":
                        self._store_cells(tx, rec.id, CELLS_VERSION, visit_cells(kiosk_id, rec.payload_json),
                                          shapes)
                        # == issue 19: match the visit to a patient, in this transaction ==
                        from .patients import link_new_visit

                        link_new_visit(tx, rec.id, rec.payload_json, rec.submitted_at)
                    continue
                row = tx.execute("select digest, kind from records where id = ?", [rec.id]).fetchone()
                if row and row[0] == rec.digest and row[1] == rec.kind:
                    statuses.append("duplicate")
                else:
                    conflicts.append(rec.id)
            if conflicts:
                # Raising inside the transaction rolls the whole batch back.
                raise Conflict(conflicts)
        self._remember_shapes(shapes)
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

    @staticmethod
    def _visit_range(since: str | None, before: str | None) -> tuple[str, list[str]]:
        """The SQL condition (on ``records r``) of the visits in a range."""
        sql, params = "r.kind = 'visit'", []
        if since:
            sql += " and r.submitted_at >= ?"
            params.append(since)
        if before:
            sql += " and r.submitted_at < ?"
            params.append(before)
        return sql, params

    def count_visits(self, since: str | None = None, before: str | None = None) -> int:
        """How many visits :meth:`iter_visits` would yield (for a progress bar)."""
        where, params = self._visit_range(since, before)
        with self.backend.transaction() as tx:
            return int(tx.execute(f"select count(*) from records r where {where}", params).fetchone()[0])

    def _visit_rows(self, columns: str, since: str | None, before: str | None, chunk: int,
                    join: str = "", join_params: Sequence[Any] = (), also: str = "") -> Iterator[tuple]:
        """Rows ``(r.id, r.submitted_at, *columns)`` of the visits in a range
        from ``records r`` (with ``join``, and the condition ``also``),
        oldest first, ``chunk`` per query.

        Keyset pagination on (submitted_at, id), so any number of visits
        stream in bounded memory on both back-ends and no transaction (nor
        SQLite's lock) is held while the caller works on a chunk. Visits
        without a submission time come first, and only in an unbounded
        range, where they would otherwise be lost.
        """
        where, params = self._visit_range(since, before)
        select = f"select r.id, r.submitted_at{columns} from records r {join} where {where}{also}"
        if since is None and before is None:
            last = ""
            while True:
                with self.backend.transaction() as tx:
                    rows = tx.execute(f"{select} and r.submitted_at is null and r.id > ? order by r.id limit ?",
                                      [*join_params, *params, last, chunk]).fetchall()
                yield from rows
                if len(rows) < chunk:
                    break
                last = rows[-1][0]
        cursor: tuple[str, str] | None = None
        while True:
            sql, args = select, [*join_params, *params]
            if cursor is None:
                sql += " and r.submitted_at is not null"
            else:
                # Written so both back-ends use the (kind, submitted_at, id) index.
                sql += " and r.submitted_at >= ? and (r.submitted_at > ? or r.id > ?)"
                args += [cursor[1], cursor[1], cursor[0]]
            sql += " order by r.submitted_at, r.id limit ?"
            with self.backend.transaction() as tx:
                rows = tx.execute(sql, [*args, chunk]).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            cursor = (rows[-1][0], rows[-1][1])

    def iter_visits(
        self, since: str | None = None, before: str | None = None, chunk: int = 1000
    ) -> Iterator[tuple[str, str, str]]:
        """(id, kiosk_id, payload JSON) of every visit submitted at or after
        ``since`` and before ``before`` (ISO dates or times), oldest first,
        in bounded memory (see :meth:`_visit_rows`). ``kiosk_id`` is the
        kiosk whose device token sent the record, never one named inside
        the payload.

        The payload comes as UTF-8 bytes on SQLite (no text decoding for a
        JSON parser that wants bytes anyway) and as text on PostgreSQL.
        """
        payload = "cast(r.payload as blob)" if self.backend.name == "sqlite" else "r.payload"
        for row in self._visit_rows(f", r.kiosk_id, {payload}", since, before, chunk):
            yield row[0], row[2], row[3]

    # -- export cells (see kiosk.hub.export.table) ----------------------------

    def _store_cells(self, tx: Tx, record_id: str, version: int, made, shapes: set[str]) -> None:
        """Keeps ``made`` (a :class:`~kiosk.hub.export.table.VisitCells`) as
        the export cells of ``record_id``, replacing older ones; adds its
        shape to ``shapes`` when this transaction stores it (the caller
        remembers those once the transaction has committed)."""
        if made.shape is not None and made.shape not in self._stored_shapes:
            tx.execute("insert into export_shapes (shape, link_ids) values (?, ?) on conflict do nothing",
                       [made.shape, made.link_ids])
            shapes.add(made.shape)
        tx.execute(
            "insert into export_cells (id, version, shape, line, notes, problem) "
            "values (?, ?, ?, ?, ?, ?) on conflict (id) do update set version = excluded.version, "
            "shape = excluded.shape, line = excluded.line, notes = excluded.notes, problem = excluded.problem",
            [record_id, version, made.shape, made.line, made.notes, made.problem],
        )

    def visit_cell_shapes(self, since: str | None, before: str | None,
                          version: int) -> tuple[dict[str, str], bool]:
        """({shape: its linkIds as JSON} of the visits in the range, whether
        some visit there has no export cells of ``version`` yet)."""
        where, params = self._visit_range(since, before)
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "select distinct e.shape, case when e.id is null then 1 else 0 end from records r "
                f"left join export_cells e on e.id = r.id and e.version = ? where {where}",
                [version, *params],
            ).fetchall()
            shapes = sorted({r[0] for r in rows if r[0] is not None})
            link_ids: dict[str, str] = {}
            for i in range(0, len(shapes), 500):
                part = shapes[i : i + 500]
                marks = ", ".join("?" for _ in part)
                link_ids.update(tx.execute(
                    f"select shape, link_ids from export_shapes where shape in ({marks})", part).fetchall())
        return link_ids, any(r[1] for r in rows)

    def visit_cell_shape(self, shape: str) -> str | None:
        """The linkIds (JSON) of one shape."""
        with self.backend.transaction() as tx:
            row = tx.execute("select link_ids from export_shapes where shape = ?", [shape]).fetchone()
        return row[0] if row else None

    def fill_visit_cells(self, since: str | None, before: str | None, version: int, make,
                         chunk: int = 500) -> int:
        """Makes the missing or outdated export cells of the visits in the
        range with ``make(kiosk_id, payload)``; returns how many. For visits
        stored before the cells existed, or not through :meth:`store_batch`."""
        done = 0
        missing = self._visit_rows("", since, before, chunk, "left join export_cells e on e.id = r.id "
                                   "and e.version = ?", [version], " and e.id is null")
        batch: list[str] = []
        for row in missing:
            batch.append(row[0])
            if len(batch) == chunk:
                done += self._fill_cells(batch, version, make)
                batch.clear()
        if batch:
            done += self._fill_cells(batch, version, make)
        return done

    def _fill_cells(self, ids: list[str], version: int, make) -> int:
        marks = ", ".join("?" for _ in ids)
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select id, kiosk_id, payload from records where id in ({marks})", ids).fetchall()
        made = [(rid, make(kiosk_id, payload)) for rid, kiosk_id, payload in rows]
        shapes: set[str] = set()
        with self.backend.transaction() as tx:
            for rid, cells in made:
                # A record deleted meanwhile keeps no cells (and breaks no reference).
                if tx.execute("select 1 from records where id = ?", [rid]).fetchone():
                    self._store_cells(tx, rid, version, cells, shapes)
        self._remember_shapes(shapes)
        return len(made)

    def _remember_shapes(self, shapes: set[str]) -> None:
        if len(self._stored_shapes) > 10_000:  # a bound, for a hub up for years
            self._stored_shapes.clear()
        self._stored_shapes |= shapes

    def iter_visit_cells(self, since: str | None, before: str | None, version: int,
                         chunk: int = 2000) -> Iterator[tuple]:
        """(id, shape, line, notes, problem) of every visit in the range
        that has export cells of ``version``, oldest first."""
        for row in self._visit_rows(", e.shape, e.line, e.notes, e.problem", since, before, chunk,
                                    "join export_cells e on e.id = r.id and e.version = ?", [version]):
            yield (row[0], *row[2:])


class CodeRefused(Exception):
    """An enrollment code that cannot be used; the message says why."""


def _slug(name: str) -> str:
    """A kiosk name as the readable start of its id: ``Front desk`` -> ``front-desk``."""
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out[:24].strip("-") or "kiosk"
