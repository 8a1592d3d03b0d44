"""The sync protocol between kiosk and hub: one set of types for both sides.

A kiosk submits its outbox in batches::

    POST /v1/records            Authorization: Bearer <device token>
    {"records": [{"id": "<uuid>", "kind": "visit", "sealed": "<base64>"}]}

``sealed`` is the record body exactly as it rests on the kiosk: JSON sealed to
the clinic's public key. The hub answers 200 with one result per record
(``stored`` the first time, ``duplicate`` for an identical resend), so a kiosk
that lost an acknowledgement just sends again. A batch is all or nothing: if
any record is refused (same id with different content: 409; a body that does
not open: 422) nothing of the batch is stored and the answer names the ids in
``ids``, so the kiosk can set those aside and send the rest.
"""

from __future__ import annotations

import hashlib
import ssl
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/v1"
RECORDS_PATH = f"{API_PREFIX}/records"
ENROLL_PATH = f"{API_PREFIX}/enroll"
HEALTH_PATH = f"{API_PREFIX}/health"
HEARTBEAT_PATH = f"{API_PREFIX}/heartbeat"

#: Largest request body the hub reads; larger ones get 413 before parsing.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Most records in one batch.
MAX_BATCH = 500
#: Longest sealed body (base64 characters) of one record.
MAX_SEALED_CHARS = 256 * 1024

RecordKind = Literal["visit", "alert", "staff-call"]


class SubmittedRecord(BaseModel):
    """One outbox record as sent: its UUID, kind and sealed body (base64)."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="The record's UUID, chosen by the kiosk; the idempotency key.")
    kind: RecordKind
    sealed: str = Field(
        min_length=1,
        max_length=MAX_SEALED_CHARS,
        description="The record body sealed to the clinic public key, base64.",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[SubmittedRecord] = Field(min_length=1, max_length=MAX_BATCH)


class RecordResult(BaseModel):
    id: uuid.UUID
    status: Literal["stored", "duplicate"]


class BatchResponse(BaseModel):
    results: list[RecordResult]


class Problem(BaseModel):
    """Every refusal: what went wrong and, where it applies, which record ids."""

    detail: str
    ids: list[str] = Field(default_factory=list)


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    kiosk_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class EnrollResponse(BaseModel):
    kiosk_id: str
    token: str
    public_key: str = Field(description="The clinic public key, base64.")
    cert_sha256: str = Field(description="SHA-256 of the hub's TLS certificate (DER), hex.")


class Heartbeat(BaseModel):
    """What a kiosk reports on every sync cycle (device facts, never patient
    data), and the alerts it still shows as open.

    The hub answers with :class:`HeartbeatResponse`: which of those alerts
    staff have acknowledged, so the kiosk can turn its call light off.
    """

    model_config = ConfigDict(extra="forbid")

    queue_depth: int = Field(ge=0, le=10_000_000, description="Records waiting in the outbox.")
    oldest_unsynced_s: float | None = Field(default=None, ge=0, description="Age of the oldest waiting record.")
    content_version: str = Field(default="", max_length=200)
    gpio: dict[str, str | bool | int | None] = Field(default_factory=dict, description="GPIO mode and health.")
    open_alerts: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_BATCH, description="Alert record ids this kiosk still shows as open."
    )
    set_aside: int = Field(default=0, ge=0, description="Records the kiosk set aside after repeated refusals.")


class HeartbeatResponse(BaseModel):
    kiosk_id: str = Field(description="The id the hub gave this kiosk at enrollment.")
    acknowledged: list[uuid.UUID] = Field(
        default_factory=list, description="Those of `open_alerts` that staff have acknowledged."
    )


class Health(BaseModel):
    ok: bool
    service: str = "clinic-hub"


def cert_fingerprint(pem: bytes | str) -> str:
    """SHA-256 of a PEM certificate's DER encoding, lower-case hex: what the
    kiosk pins and the hub vouches for. Standard library only, so both sides
    share it without the hub's certificate tooling.
    """
    if isinstance(pem, bytes):
        pem = pem.decode("ascii")
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
