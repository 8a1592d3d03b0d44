"""The two databases the hub runs on: SQLite (one clinic) or PostgreSQL (a group).

Both sit behind :class:`Backend`, whose transactions hand out a :class:`Tx`
that takes ``?`` placeholders; the repositories' SQL is written in the
common subset of the two (TEXT columns, ``ON CONFLICT DO NOTHING``).

>>> backend = open_backend("sqlite:///:memory:")
>>> with backend.transaction() as tx:
...     tx.execute("select 1 + 1").fetchone()
(2,)
>>> open_backend("mysql://clinic@db/hub")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kiosk.hub.db.backends.DatabaseURLError: database URL 'mysql://clinic@db/hub' is not supported: use sqlite:///...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from ...protocol import redact_url


def utcnow() -> str:
    """Now, as the hub stores times: ISO 8601 in UTC, to the millisecond."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ?``: one placeholder per value, for ``in (...)``."""
    return ", ".join("?" for _ in values)


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
    """PostgreSQL through psycopg, with a pool of connections
    (:class:`psycopg_pool.ConnectionPool`) so the request threads do not
    wait on one another.

    The pool opens one connection at start and up to ``pool_size`` under
    load, drops a connection that broke (the transaction that met the break
    fails, as any database error does, and the kiosk sends again), and
    replaces connections that sat idle for ten minutes or lived an hour.
    Connections are not checked before use: that would cost every
    transaction a round trip.
    """

    name = "postgresql"

    def __init__(self, url: str, pool_size: int = 8):
        # Imported here: SQLite-only hubs never need them.
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        # Fail fast with the server's own reason (refused, unknown database,
        # bad password) when it cannot be reached: a pool would only retry
        # in the background and time out.
        psycopg.connect(url, connect_timeout=10).close()
        self._pool = ConnectionPool(
            url,
            kwargs={"connect_timeout": 10, "autocommit": True},
            min_size=1,
            max_size=pool_size,
            open=False,
            name="clinic-hub",
        )
        self._pool.open(wait=True, timeout=30)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgCursor(cur)

    def close(self) -> None:
        self._pool.close()


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
