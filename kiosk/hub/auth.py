"""Staff accounts on the hub: argon2 passwords, server-side sessions, CSRF,
and a lockout that does not tell whether an account exists.

* Passwords are hashed with argon2id (argon2-cffi). Hashes that libsodium
  wrote (the hub's first versions) use the same PHC string format, so they
  verify as they are and are rehashed on the next good login.
* A session is a random token in a ``Secure; HttpOnly; SameSite=Strict``
  cookie; the database keeps only its SHA-256, who it belongs to, its CSRF
  token and when it was last used. It ends after :attr:`StaffSettings.session_idle`
  without a request, at logout, or when the account is disabled.
* Every form carries the session's CSRF token (``csrf`` field), checked by
  :func:`check_csrf`; the login form, which has no session yet, uses a
  double-submit cookie.
* Failed logins are counted per account name *and* per client address,
  whether or not the account exists, and a wrong password for an unknown
  name costs the same argon2 verification as for a real one.

The FastAPI dependencies here (:data:`Staff`, :data:`Admin`, :data:`Csrf`)
are what the routers declare; tests may override them.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Form, Request

from .db import AccountsRepository
from .deps import Db, StaffSettings, State

SESSION_COOKIE = "hub_session"
LOGIN_COOKIE = "hub_login"
ROLES = ("staff", "admin")
MIN_PASSWORD = 8

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash string that carries its own salt and parameters."""
    return _hasher.hash(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so that the answer
    # takes as long as for a real account.
    return hash_password(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PageRefused(Exception):
    """A staff request the hub will not act on: rendered as a short HTML page
    (or redirected to the login form when ``login`` is set)."""

    def __init__(self, status: int, message: str, login: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.login = login


WRONG_LOGIN = "Wrong user name or password."
LOCKED = ("Too many failed logins from this account name or this computer: logging in is paused "
          "for {minutes} minutes. An admin can help if it cannot wait.")
SESSION_ENDED = "Your session has ended (logged out, or unused for too long). Please log in again."
BAD_CSRF = ("This form is out of date or did not come from this page, so nothing was changed. "
            "Reload the page and try again.")
ADMINS_ONLY = "This page is for admin accounts."


class LockedOut(Exception):
    pass


def authenticate(accounts: AccountsRepository, settings: StaffSettings, username: str, password: str,
                 address: str, now: dt.datetime | None = None) -> str | None:
    """The role of ``username`` when ``password`` is right and the account is
    enabled; None otherwise. Raises :class:`LockedOut` while the name or the
    address is locked (checked before the password, which is still hashed)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    keys = [f"user:{username.strip().lower()[:200]}", f"addr:{address}"]
    account = accounts.account(username)
    usable = account is not None and account.disabled_at is None
    stored = account.password_hash if usable else _dummy_hash()
    good = verify_password(password, stored) and usable
    if accounts.locked_until(keys, now.isoformat()):
        raise LockedOut()
    if not good:
        limits = {keys[0]: settings.max_failures, keys[1]: settings.max_address_failures}
        accounts.record_login_failure(limits, now, settings.failure_window, settings.lock_for)
        return None
    accounts.clear_login_failures(keys[0])
    if _hasher.check_needs_rehash(stored):
        accounts.set_password_hash(account.name, hash_password(password))
    return account.role


def start_session(accounts: AccountsRepository, user: str) -> str:
    """A new session for ``user``; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    accounts.create_session(token_hash(token), user, secrets.token_urlsafe(32))
    return token


def set_session_cookie(response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/")


@dataclass(frozen=True)
class StaffUser:
    name: str
    role: str
    csrf: str
    session: str  # hash of the session token

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def session_user(accounts: AccountsRepository, settings: StaffSettings, token: str | None,
                 touch: bool = True) -> StaffUser | None:
    """The user of a live session, or None (and the session ended) when it
    is unknown, logged out, idle too long or its account disabled."""
    if not token:
        return None
    digest = token_hash(token)
    row = accounts.session(digest)
    if row is None or row.ended_at or row.disabled_at:
        return None
    idle = dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(row.last_seen)
    if idle > settings.session_idle:
        accounts.end_session(digest)
        return None
    if touch:
        accounts.touch_session(digest)
    return StaffUser(row.user, row.role, row.csrf, digest)


def current_user(request: Request, db: Db, state: State) -> StaffUser:
    user = session_user(db.accounts, state.staff, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise PageRefused(401, SESSION_ENDED, login=True)
    return user


Staff = Annotated[StaffUser, Depends(current_user)]


def admin_user(user: Staff) -> StaffUser:
    if not user.is_admin:
        raise PageRefused(403, ADMINS_ONLY)
    return user


Admin = Annotated[StaffUser, Depends(admin_user)]


def check_csrf(user: Staff, csrf: Annotated[str, Form()] = "") -> StaffUser:
    """The current user, when the form's ``csrf`` field is the session's."""
    if not csrf or not hmac.compare_digest(csrf.encode(), user.csrf.encode()):
        raise PageRefused(403, BAD_CSRF)
    return user


Csrf = Annotated[StaffUser, Depends(check_csrf)]


def check_admin_csrf(user: Admin, csrf: Annotated[str, Form()] = "") -> StaffUser:
    """An admin's form: the role is checked first, then the CSRF token."""
    return check_csrf(user, csrf)


AdminCsrf = Annotated[StaffUser, Depends(check_admin_csrf)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
