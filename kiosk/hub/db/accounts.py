"""Staff accounts, their login failures and sessions, and the audit log.

The tables ``users``, ``login_failures``, ``staff_sessions`` and ``audit``
are this repository's (see :mod:`kiosk.hub.auth` and :mod:`kiosk.hub.audit`
for the rules that use them).

>>> from . import open_database
>>> db = open_database("sqlite:///:memory:")
>>> db.accounts.add_user("ana", "staff", "argon2-hash")
>>> db.accounts.user("ana")
('staff', 'argon2-hash')
>>> db.accounts.add_audit("ana", "login", "ana")
>>> [e["action"] for e in db.accounts.audit_entries()]
['login']
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from .backends import Backend, marks, utcnow


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


class AccountsRepository:
    """Accounts (disabled, never deleted, so the audit log keeps naming real
    accounts), the lockout's failure counts, server-side sessions and the
    append-only audit log: nothing here updates or deletes an audit entry."""

    def __init__(self, backend: Backend):
        self.backend = backend

    # -- accounts --------------------------------------------------------------

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
        with self.backend.transaction() as tx:
            row = tx.execute(
                f"select max(locked_until) from login_failures where key in ({marks(keys)}) and locked_until > ?",
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
