"""Kiosks: enrollment codes, device tokens, and what each kiosk last reported.

The tables ``enrollment_codes``, ``kiosk_tokens`` and ``kiosks`` are this
repository's. Enrollment is SPAKE2 over a one-time code (see
:mod:`kiosk.protocol`): the hub keeps the password derived from a code,
never the code, and only the hash of a device token.

>>> from . import open_database
>>> db = open_database("sqlite:///:memory:")
>>> code = db.kiosks.new_enroll_code()
>>> code_id = code.split("-")[0]
>>> len(db.kiosks.start_enrollment(code_id, max_attempts=3)) > 0
True
>>> kiosk_id, token = db.kiosks.finish_enrollment(code_id, "Front desk")
>>> kiosk_id.startswith("front-desk-"), db.kiosks.kiosk_for_token(token) == kiosk_id
(True, True)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from ...protocol import CODE_ALPHABET, CODE_ID_CHARS, CODE_SECRET_CHARS, code_password
from .backends import Backend, utcnow


def hash_secret(secret: str) -> str:
    """Tokens and enrollment codes are random and long, so a plain SHA-256 is
    enough to keep them out of the database in usable form."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class CodeRefused(Exception):
    """An enrollment code that cannot be used; the message says why."""


def _slug(name: str) -> str:
    """A kiosk name as the readable start of its id: ``Front desk`` -> ``front-desk``."""
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out[:24].strip("-") or "kiosk"


class KiosksRepository:
    """Enrollment, device tokens, revocation, and the kiosks' heartbeats."""

    def __init__(self, backend: Backend):
        self.backend = backend

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

    # -- device tokens --------------------------------------------------------

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

    # -- what kiosks report ---------------------------------------------------

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
