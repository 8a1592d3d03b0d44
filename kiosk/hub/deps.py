"""FastAPI dependencies of the hub: the hub's state, the database and the
device token. Tests override them with ``app.dependency_overrides``.

The state (:class:`HubState`) is built once by :func:`kiosk.hub.app.create_app`
and kept on ``app.state.hub``.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nacl.public import PrivateKey, SealedBox

from .db import HubRepository
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
class HubState:
    """What every request may need: the repository, the clinic's keys and
    the staff page's settings."""

    repo: HubRepository
    private_key: bytes
    public_key: bytes
    cert_sha256: str
    staff: StaffSettings = field(default_factory=StaffSettings)

    def __post_init__(self):
        self.box = SealedBox(PrivateKey(self.private_key))


def get_state(request: Request) -> HubState:
    return request.app.state.hub


def get_repo(state: Annotated[HubState, Depends(get_state)]) -> HubRepository:
    return state.repo


bearer = HTTPBearer(auto_error=False, description="Device token from enrollment.")


def device_kiosk(
    repo: Annotated[HubRepository, Depends(get_repo)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The kiosk id that the request's device token authenticates."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise Refused(401, "missing device token: send 'Authorization: Bearer <token>' (enroll the kiosk first)")
    found = repo.kiosk_for_token(creds.credentials)
    if found is None:
        raise Refused(401, "device token is not valid or was revoked: enroll the kiosk again")
    return found


Repo = Annotated[HubRepository, Depends(get_repo)]
State = Annotated[HubState, Depends(get_state)]
DeviceKiosk = Annotated[str, Depends(device_kiosk)]
