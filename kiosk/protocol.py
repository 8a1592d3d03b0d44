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

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import urllib.parse
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

API_PREFIX = "/v1"
RECORDS_PATH = f"{API_PREFIX}/records"
ENROLL_START_PATH = f"{API_PREFIX}/enroll/start"
ENROLL_FINISH_PATH = f"{API_PREFIX}/enroll/finish"
HEALTH_PATH = f"{API_PREFIX}/health"
HEARTBEAT_PATH = f"{API_PREFIX}/heartbeat"
#: ``GET CONTENT_PATH/<id>``: a published content bundle (see :mod:`kiosk.content`).
CONTENT_PATH = f"{API_PREFIX}/content"

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


# -- enrollment ---------------------------------------------------------------
#
# An enrollment code reads ``ABCD-EFGH-JKLM``: the first group is the code's
# id (it travels), the rest is its secret (it never does). Both sides run
# SPAKE2 over the secret, so only a party that knows the secret ends up with
# the same session key; a relay learns nothing it can test a guess against
# offline. The hub proves itself first, with a MAC over the transcript, the
# fingerprint of its TLS certificate and the clinic public key: a kiosk that
# talks to an interceptor (another certificate, another key) sees the MAC
# fail before it sends its own confirmation, and stays unenrolled.

#: Read-aloud alphabet of codes: no 0/O, no 1/I.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_ID_CHARS = 4
CODE_SECRET_CHARS = 8
SPAKE2_ID_KIOSK = b"clinic-kiosk"
SPAKE2_ID_HUB = b"clinic-hub"
_B64_MSG = r"^[A-Za-z0-9+/=]{1,200}$"


class CodeFormatError(ValueError):
    pass


def split_code(code: str) -> tuple[str, str]:
    """(code id, secret) of a code as typed; case, spaces and dashes do not
    matter.

    >>> split_code("abcd-efgh jklm")
    ('ABCD', 'EFGHJKLM')
    """
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    if len(raw) != CODE_ID_CHARS + CODE_SECRET_CHARS or any(ch not in CODE_ALPHABET for ch in raw):
        raise CodeFormatError(
            "an enrollment code looks like ABCD-EFGH-JKLM (12 letters and digits, from `clinic-hub enroll-code`)"
        )
    return raw[:CODE_ID_CHARS], raw[CODE_ID_CHARS:]


def code_password(code_id: str, secret: str) -> bytes:
    """The SPAKE2 password of a code (what the hub keeps instead of the code)."""
    return hashlib.sha256(f"clinic-enroll:{code_id}:{secret}".encode("ascii")).hexdigest().encode("ascii")


def enroll_transcript(code_id: str, name: str, msg_kiosk: str, msg_hub: str, cert_sha256: str,
                      public_key: str, content_key: str = "") -> bytes:
    """What both confirmations cover: the exchange and the hub's identity as
    each side sees it (the certificate the kiosk saw; the hub's own), and
    the key the hub signs published content with."""
    return json.dumps(
        [code_id, name, msg_kiosk, msg_hub, cert_sha256.lower(), public_key, content_key], separators=(",", ":")
    ).encode("utf-8")


def enroll_mac(key: bytes, role: Literal["hub", "kiosk"], transcript: bytes) -> str:
    return hmac.new(key, role.encode("ascii") + b"\0" + transcript, hashlib.sha256).hexdigest()


def enroll_box_key(key: bytes) -> bytes:
    """The SecretBox key that carries the device token (32 bytes)."""
    return hmac.new(key, b"token-box", hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class EnrollStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code_id: str = Field(pattern=f"^[{CODE_ALPHABET}]{{{CODE_ID_CHARS}}}$",
                         description="The first group of the code; never the secret.")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="The kiosk's configured name, shown to staff.")
    spake2: str = Field(pattern=_B64_MSG, description="The kiosk's SPAKE2 message, base64.")


class EnrollChallenge(BaseModel):
    session: str
    spake2: str = Field(description="The hub's SPAKE2 message, base64.")
    public_key: str = Field(description="The clinic public key, base64.")
    content_key: str = Field(default="", description="The hub's Ed25519 content signing key (public), base64.")
    confirm: str = Field(description="The hub's key confirmation (HMAC-SHA256, hex).")


class EnrollFinish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    confirm: str = Field(pattern=r"^[0-9a-f]{64}$", description="The kiosk's key confirmation, hex.")


class EnrollGranted(BaseModel):
    sealed: str = Field(description="SecretBox (under the session key) of {kiosk_id, token}, base64.")


class Grant(BaseModel):
    """What the sealed part of :class:`EnrollGranted` holds."""

    kiosk_id: str
    token: str


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
    audio: dict[str, str | bool | int | None] = Field(
        default_factory=dict, description="Read-aloud: the sound device and its health (never what was spoken).")
    open_alerts: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_BATCH, description="Alert record ids this kiosk still shows as open."
    )
    set_aside: int = Field(default=0, ge=0, description="Records the kiosk set aside after repeated refusals.")
    content_error: str = Field(default="", max_length=500,
                               description="Why the kiosk refused the published content (no patient data).")


class ContentOffer(BaseModel):
    """The content version an admin published: the kiosk fetches ``url``
    (with its device token) when it runs another, and uses it only when
    ``signature`` (Ed25519 over the exact bytes) verifies with the hub's
    content key."""

    version: str = Field(max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    url: str = Field(max_length=200, description="Path of the bundle on the hub.")
    signature: str = Field(max_length=200, description="Ed25519 signature of the bundle, base64.")


class HeartbeatResponse(BaseModel):
    kiosk_id: str = Field(description="The id the hub gave this kiosk at enrollment.")
    acknowledged: list[uuid.UUID] = Field(
        default_factory=list, description="Those of `open_alerts` that staff have acknowledged."
    )
    content: ContentOffer | None = Field(default=None, description="The published content version, if any.")
    content_key: str = Field(
        default="",
        description="The hub's content signing key (public), base64: taken once, over the pinned connection, "
                    "by a kiosk enrolled before the hub had one.",
    )


# -- what a sealed body holds (checked by the hub once opened) ---------------

#: Deepest nesting of lists and objects an opened body may have: a visit of
#: the default pack needs about eight (its QuestionnaireResponse), one with
#: a clinic's deeply nested questionnaire about seventeen (groups in groups,
#: items under answers, in the list of responses); thousands would be an
#: attack on the parser.
MAX_PAYLOAD_DEPTH = 32


def _iso_text(value):
    # pydantic would read a number as seconds since 1970; a kiosk always
    # sends ISO text, so anything else is a broken or forged record.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date and time with a time zone")
    return value


#: An ISO 8601 timestamp with a time zone, as text.
Stamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class VisitPayload(BaseModel):
    """The opened body of a ``visit`` record (see ``kiosk.visit.Visit.payload``).
    Only the fields the hub files the record by are checked strictly; the
    rest is kept as sent."""

    model_config = ConfigDict(extra="allow")

    intake_id: uuid.UUID
    submitted_at: Stamp
    language: str = Field(default="en", min_length=2, max_length=16)
    status: str = Field(default="complete", max_length=32)
    visit_date: dt.date | None = None
    content_version: str = Field(default="", max_length=200)
    answers: dict[str, Any] = Field(default_factory=dict, max_length=2000)
    result: dict[str, Any] | None = None


class AlertPayload(BaseModel):
    """The opened body of an ``alert`` or ``staff-call`` record (``kiosk.alerts.Alert``)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["emergency", "staff-call", "acknowledged"]
    intake_id: uuid.UUID | None = None
    created_at: Stamp | None = None


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    "visit": VisitPayload, "alert": AlertPayload, "staff-call": AlertPayload,
}


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


def redact_url(url: str) -> str:
    """The URL without its password (in the user part or the query string),
    for messages and logs.

    >>> redact_url("postgresql://hub:s3cret@db/clinic?sslmode=require&password=s3cret")
    'postgresql://hub:***@db/clinic?sslmode=require&password=***'
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        if ":" in creds:
            netloc = f"{creds.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = "&".join(
                f"{k}=***" if k.lower() in SECRET_PARAMS else (f"{k}={v}" if v else k) for k, v in pairs
            )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


SECRET_PARAMS = {"password", "passwd", "pwd", "sslpassword", "token", "secret"}


def redact_text(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with every secret of ``url``
    blanked out, in case the driver echoed part of its connection string."""
    parts = urllib.parse.urlsplit(url)
    secrets_in_url = [parts.password or ""] + [
        v for k, v in urllib.parse.parse_qsl(parts.query) if k.lower() in SECRET_PARAMS
    ]
    for secret in secrets_in_url:
        if len(secret) >= 3:
            text = text.replace(secret, "***").replace(urllib.parse.quote(secret, safe=""), "***")
    return text.replace(url, redact_url(url))
