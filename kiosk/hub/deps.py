"""FastAPI dependencies of the hub: the hub's state, the database and the
device token. Tests override them with ``app.dependency_overrides``.

The state (:class:`HubState`) is built once by :func:`kiosk.hub.app.create_app`
and kept on ``app.state.hub``; routers reach the database through :data:`Db`
(a :class:`kiosk.hub.db.Database`: ``db.accounts``, ``db.kiosks``,
``db.records``, ``db.content``, ``db.settings``).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import collections
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nacl.public import PrivateKey, SealedBox

from .db import Database, KiosksRepository
from .errors import Refused


@dataclass(frozen=True)
class StaffSettings:
    """How strict the staff page is (see :mod:`kiosk.hub.auth`)."""

    session_idle: dt.timedelta = dt.timedelta(minutes=30)
    max_failures: int = 5  # per account name
    max_address_failures: int = 20  # per client address, across names
    failure_window: dt.timedelta = dt.timedelta(minutes=15)
    lock_for: dt.timedelta = dt.timedelta(minutes=15)


@dataclass
class EnrollSession:
    """A started enrollment exchange, waiting for the kiosk's confirmation."""

    code_id: str
    name: str
    key: bytes
    transcript: bytes
    client: str
    expires: float


class Throttle:
    """At most ``limit`` events per ``window_s`` per key (a client address);
    the hub counts enrollment exchanges that did not succeed.

    >>> t = Throttle(limit=2, window_s=60)
    >>> [t.allow("10.0.0.5", now=0), t.allow("10.0.0.5", now=1), t.allow("10.0.0.5", now=2)]
    [True, True, False]
    >>> t.forgive("10.0.0.5"); t.allow("10.0.0.5", now=3), t.allow("10.0.0.9", now=3)
    (True, True)
    """

    def __init__(self, limit: int, window_s: float):
        self.limit = limit
        self.window_s = window_s
        self._seen: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            # Forget quiet addresses, so a scan of many addresses costs no memory for long.
            for k in [k for k, q in self._seen.items() if q and q[-1] <= now - self.window_s]:
                del self._seen[k]
            times = self._seen.setdefault(key, collections.deque())
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True

    def forgive(self, key: str) -> None:
        """Takes back one event of ``key`` (an attempt that succeeded), so
        enrolling many kiosks from one installer's laptop is never throttled."""
        with self._lock:
            times = self._seen.get(key)
            if times:
                times.pop()


@dataclass
class HubState:
    """What every request may need: the database, the clinic's keys, the
    staff page's settings, and the enrollment exchanges in flight (kept in
    memory: one finishes within seconds, and a restarted hub simply asks the
    kiosk to try again)."""

    db: Database
    private_key: bytes
    public_key: bytes
    cert_sha256: str
    staff: StaffSettings = field(default_factory=StaffSettings)
    #: Exchanges a code allows before it is burned.
    enroll_attempts: int = 3
    enroll_throttle: Throttle = field(default_factory=lambda: Throttle(limit=10, window_s=60.0))
    sessions: dict[str, EnrollSession] = field(default_factory=dict)
    #: Ed25519 seed the hub signs published content with (kiosk.hub.keys.content_signing_key).
    signing_key: bytes = b""

    def __post_init__(self):
        self.box = SealedBox(PrivateKey(self.private_key))
        self._sessions_lock = threading.Lock()
        if not self.signing_key:
            # A hub built without its data folder (tests of other areas): content it
            # signs is good for this process only.
            from nacl.signing import SigningKey

            self.signing_key = bytes(SigningKey.generate())
        from .content import verify_key_b64

        self.content_key = verify_key_b64(self.signing_key)

    def put_session(self, session_id: str, session: EnrollSession) -> None:
        with self._sessions_lock:
            now = time.monotonic()
            for sid in [s for s, v in self.sessions.items() if v.expires < now]:
                del self.sessions[sid]
            self.sessions[session_id] = session

    def take_session(self, session_id: str) -> EnrollSession | None:
        """The session, removed: a confirmation is checked once, right or wrong."""
        with self._sessions_lock:
            session = self.sessions.pop(session_id, None)
        if session is None or session.expires < time.monotonic():
            return None
        return session


def get_state(request: Request) -> HubState:
    return request.app.state.hub


def get_db(state: Annotated[HubState, Depends(get_state)]) -> Database:
    return state.db


bearer = HTTPBearer(auto_error=False, description="Device token from enrollment.")


def check_token(kiosks: KiosksRepository, authorization: str | None) -> str:
    """The kiosk id an ``Authorization`` header's device token authenticates;
    raises :class:`Refused` (401) otherwise. The body guard calls it before a
    body is read; the :data:`DeviceKiosk` dependency reuses its answer."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "missing device token: send 'Authorization: Bearer <token>' (enroll the kiosk first)")
    found = kiosks.kiosk_for_token(token.strip())
    if found is None:
        raise Refused(401, "device token is not valid or was revoked: enroll the kiosk again")
    return found


#: Where the body guard leaves the kiosk id it authenticated, in the ASGI scope's state.
SCOPE_KIOSK = "device_kiosk"


def device_kiosk(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The kiosk id that the request's device token authenticates."""
    known = request.scope.get("state", {}).get(SCOPE_KIOSK)
    if known:
        return known
    header = f"{creds.scheme} {creds.credentials}" if creds else None
    return check_token(db.kiosks, header)


Db = Annotated[Database, Depends(get_db)]
State = Annotated[HubState, Depends(get_state)]
DeviceKiosk = Annotated[str, Depends(device_kiosk)]
