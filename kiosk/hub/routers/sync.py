"""The sync API that kiosks talk to: health, enrollment, record intake.

See :mod:`kiosk.protocol` for the exchange. Every refusal is a 4xx Problem
that names record ids and fields, never what a patient entered.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time

from fastapi import APIRouter, Request, Response
from nacl.exceptions import CryptoError
from nacl.public import SealedBox
from nacl.secret import SecretBox
from pydantic import ValidationError
from spake2 import SPAKE2_B

from ... import protocol as p
from ..db import CodeRefused, Conflict, IncomingRecord
from ..deps import DeviceKiosk, EnrollSession, State
from ..errors import Refused

log = logging.getLogger(__name__)

PROBLEMS = {
    400: {"model": p.Problem, "description": "Malformed request"},
    401: {"model": p.Problem, "description": "Missing, unknown or revoked device token"},
    409: {"model": p.Problem, "description": "A record id (or intake id) is already stored with different content"},
    413: {"model": p.Problem, "description": "Body over the size limit"},
    415: {"model": p.Problem, "description": "Body is not application/json"},
    422: {"model": p.Problem, "description": "A record or field is invalid"},
}

router = APIRouter(tags=["sync"])

#: Seconds a kiosk has between the two halves of enrollment.
ENROLL_SESSION_S = 120.0


@router.get(p.HEALTH_PATH, response_model=p.Health)
def health() -> p.Health:
    """Liveness, for the kiosk's `hub_reachable` and for monitoring."""
    return p.Health(ok=True)


ENROLL_PROBLEMS = {
    **PROBLEMS,
    403: {"model": p.Problem, "description": "Code unknown, used, expired or burned; confirmation wrong"},
    429: {"model": p.Problem, "description": "Too many enrollment attempts from this address"},
}


@router.post(p.ENROLL_START_PATH, response_model=p.EnrollChallenge, responses=ENROLL_PROBLEMS)
def enroll_start(req: p.EnrollStart, state: State, request: Request) -> p.EnrollChallenge:
    """First half of enrollment (see kiosk.protocol): the hub answers the
    kiosk's SPAKE2 message and proves, before the kiosk reveals anything,
    that it knows the code and which certificate and key are its own."""
    client = request.client.host if request.client else "unknown"
    if not state.enroll_throttle.allow(client):
        log.warning("enrollment: too many attempts from %s; refused", client)
        raise Refused(429, "too many enrollment attempts from this address: wait a minute and try again")
    try:
        password = state.db.kiosks.start_enrollment(req.code_id, state.enroll_attempts)
    except CodeRefused as exc:
        log.warning("enrollment: refused code %s from %s: %s", req.code_id, client, str(exc).split(":")[0])
        raise Refused(403, str(exc)) from None
    log.warning("enrollment: exchange started on code %s by %r from %s", req.code_id, req.name, client)
    spake = SPAKE2_B(password, idA=p.SPAKE2_ID_KIOSK, idB=p.SPAKE2_ID_HUB)
    msg_hub = p.b64(spake.start())
    try:
        key = spake.finish(base64.b64decode(req.spake2))
    except Exception:  # spake2 raises unrelated types (SPAKEError, ValueError, NotOnCurve) for a bad message
        log.warning("enrollment: malformed exchange for code %s from %s", req.code_id, client)
        raise Refused(422, "spake2: not a valid SPAKE2 message") from None
    public_key = p.b64(state.public_key)
    transcript = p.enroll_transcript(req.code_id, req.name, req.spake2, msg_hub, state.cert_sha256, public_key,
                                     state.content_key)
    session_id = secrets.token_urlsafe(18)
    state.put_session(session_id, EnrollSession(req.code_id, req.name, key, transcript, client,
                                                time.monotonic() + ENROLL_SESSION_S))
    return p.EnrollChallenge(session=session_id, spake2=msg_hub, public_key=public_key,
                             content_key=state.content_key, confirm=p.enroll_mac(key, "hub", transcript))


@router.post(p.ENROLL_FINISH_PATH, response_model=p.EnrollGranted, responses=ENROLL_PROBLEMS)
def enroll_finish(req: p.EnrollFinish, state: State, request: Request) -> p.EnrollGranted:
    """Second half: the kiosk's confirmation shows it knows the code and saw
    this hub's certificate; the device token goes back encrypted under the
    session key, with the kiosk id the hub assigned."""
    client = request.client.host if request.client else "unknown"
    session = state.take_session(req.session)
    if session is None:
        raise Refused(403, "enrollment session is unknown or expired: start again")
    if not hmac.compare_digest(req.confirm, p.enroll_mac(session.key, "kiosk", session.transcript)):
        log.warning("enrollment: FAILED attempt on code %s from %s (wrong code, or the exchange was "
                    "relayed or altered)", session.code_id, client)
        raise Refused(403, "enrollment failed: the kiosk's confirmation does not match (wrong code, or an "
                           "intercepted connection)")
    try:
        kiosk_id, token = state.db.kiosks.finish_enrollment(session.code_id, session.name)
    except CodeRefused as exc:
        raise Refused(403, str(exc)) from None
    log.warning("enrollment: kiosk %s (%r) enrolled with code %s from %s", kiosk_id, session.name,
                session.code_id, client)
    state.enroll_throttle.forgive(session.client)
    grant = p.Grant(kiosk_id=kiosk_id, token=token).model_dump_json().encode("utf-8")
    return p.EnrollGranted(sealed=p.b64(bytes(SecretBox(p.enroll_box_key(session.key)).encrypt(grant))))


@router.post(p.HEARTBEAT_PATH, response_model=p.HeartbeatResponse, responses=PROBLEMS)
def heartbeat(beat: p.Heartbeat, kiosk: DeviceKiosk, state: State) -> p.HeartbeatResponse:
    """A kiosk's report on every sync cycle; answers which of its open
    alerts staff have acknowledged."""
    state.db.kiosks.record_heartbeat(kiosk, beat.model_dump_json())
    acked = state.db.records.acknowledged_among(kiosk, [str(i) for i in beat.open_alerts])
    published = state.db.content.published()
    offer = None
    if published is not None:
        offer = p.ContentOffer(version=published.content_version, sha256=published.sha256, url=published.url,
                               signature=published.signature)
    return p.HeartbeatResponse(kiosk_id=kiosk, acknowledged=acked, content=offer, content_key=state.content_key)


@router.get(p.CONTENT_PATH + "/{version_id}", responses={**PROBLEMS, 404: {"model": p.Problem}},
            response_class=Response)
def content_bundle(version_id: str, kiosk: DeviceKiosk, state: State) -> Response:
    """A stored content bundle, byte for byte as signed (see kiosk.content),
    for an enrolled kiosk."""
    bundle = state.db.content.bundle(version_id) if version_id.isalnum() and len(version_id) <= 32 else None
    if bundle is None:
        raise Refused(404, "no such content version")
    return Response(bundle, media_type="application/json")


@router.post(p.RECORDS_PATH, response_model=p.BatchResponse, responses=PROBLEMS)
def submit(batch: p.BatchRequest, kiosk: DeviceKiosk, state: State) -> p.BatchResponse:
    """Stores a batch of sealed records exactly once (see kiosk.protocol)."""
    incoming = [open_record(state.box, i, rec) for i, rec in enumerate(batch.records)]
    try:
        statuses = state.db.records.store_batch(kiosk, incoming)
    except Conflict as exc:
        log.warning("kiosk %s: %d record id(s) reused with different content", kiosk, len(exc.ids))
        raise Refused(
            409,
            "record id (or its intake id) already stored with different content; nothing of this batch was stored",
            exc.ids,
        ) from None
    log.info("kiosk %s: %d record(s) stored, %d duplicate(s)", kiosk,
             statuses.count("stored"), statuses.count("duplicate"))
    return p.BatchResponse(
        results=[p.RecordResult(id=rec.id, status=s) for rec, s in zip(batch.records, statuses)]
    )


def open_record(box: SealedBox, index: int, rec: p.SubmittedRecord) -> IncomingRecord:
    """Decrypts and checks one submitted record; raises :class:`Refused` (422)
    naming the record's place and id when it cannot be used."""
    rid = str(rec.id)
    where = f"records[{index}] (id {rid})"
    try:
        sealed = base64.b64decode(rec.sealed, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(422, f"{where}: 'sealed' is not base64", [rid]) from None
    try:
        plain = box.decrypt(sealed)
    except CryptoError:
        raise Refused(422, f"{where}: sealed body does not open with this clinic's key", [rid]) from None
    try:
        payload = json.loads(plain)
    except (UnicodeDecodeError, ValueError):
        raise Refused(422, f"{where}: sealed body is not JSON", [rid]) from None
    except RecursionError:
        raise Refused(422, f"{where}: sealed body is nested too deeply", [rid]) from None
    if not isinstance(payload, dict):
        raise Refused(422, f"{where}: sealed body must be a JSON object", [rid])
    if _depth(payload) > p.MAX_PAYLOAD_DEPTH:
        raise Refused(422, f"{where}: sealed body is nested deeper than {p.MAX_PAYLOAD_DEPTH} levels", [rid])
    try:
        # ensure_ascii=False, so that a lone surrogate fails here rather than in the database.
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(422, f"{where}: sealed body holds text that is not valid Unicode", [rid]) from None
    try:
        checked = p.PAYLOAD_MODELS[rec.kind].model_validate(payload)
    except ValidationError as exc:
        # Field names and pydantic's message only, never the value.
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first.get("loc", ())) or "body"
        raise Refused(422, f"{where}: {field}: {first.get('msg', 'invalid')}", [rid]) from None
    intake = str(checked.intake_id) if rec.kind == "visit" else None
    stamp = checked.submitted_at if isinstance(checked, p.VisitPayload) else checked.created_at
    return IncomingRecord(
        id=rid,
        kind=rec.kind,
        digest=hashlib.sha256(plain).hexdigest(),
        payload_json=canonical.decode("utf-8"),
        intake_id=intake,
        submitted_at=stamp.isoformat(timespec="milliseconds") if stamp else None,
    )


def _depth(value, limit: int = p.MAX_PAYLOAD_DEPTH + 1) -> int:
    """Nesting depth of a parsed JSON value, counted no further than ``limit``."""
    if limit <= 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in children), default=0)
