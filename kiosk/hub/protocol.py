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

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/v1"
RECORDS_PATH = f"{API_PREFIX}/records"
ENROLL_PATH = f"{API_PREFIX}/enroll"
HEALTH_PATH = f"{API_PREFIX}/health"

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


class Health(BaseModel):
    ok: bool
    service: str = "clinic-hub"
