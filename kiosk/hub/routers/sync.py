"""The sync API that kiosks talk to: health, enrollment, record intake.

See :mod:`kiosk.protocol` for the exchange. Every refusal is a 4xx Problem
that names record ids and fields, never what a patient entered.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import base64
import binascii
import hashlib
import json
import logging

from fastapi import APIRouter
from nacl.exceptions import CryptoError
from nacl.public import SealedBox

from ... import protocol as p
from ..db import Conflict, IncomingRecord
from ..deps import DeviceKiosk, Repo, State
from ..errors import Refused

log = logging.getLogger(__name__)

PROBLEMS = {
    400: {"model": p.Problem, "description": "Malformed request"},
    401: {"model": p.Problem, "description": "Missing, unknown or revoked device token"},
    409: {"model": p.Problem, "description": "A record id is already stored with different content"},
    413: {"model": p.Problem, "description": "Body over the size limit"},
    415: {"model": p.Problem, "description": "Body is not application/json"},
    422: {"model": p.Problem, "description": "A record or field is invalid"},
}

router = APIRouter(tags=["sync"])


@router.get(p.HEALTH_PATH, response_model=p.Health)
def health() -> p.Health:
    """Liveness, for the kiosk's `hub_reachable` and for monitoring."""
    return p.Health(ok=True)


@router.post(p.ENROLL_PATH, response_model=p.EnrollResponse, responses={**PROBLEMS, 403: {"model": p.Problem}})
def enroll(req: p.EnrollRequest, state: State) -> p.EnrollResponse:
    """Trades a one-time code for a device token and the clinic's public key."""
    token = state.repo.redeem_enroll_code(req.code, req.kiosk_id)
    if token is None:
        raise Refused(403, "enrollment code is not valid (unknown, already used or expired): "
                           "run `clinic-hub enroll-code` for a new one")
    log.info("kiosk %s enrolled", req.kiosk_id)
    return p.EnrollResponse(
        kiosk_id=req.kiosk_id,
        token=token,
        public_key=base64.b64encode(state.public_key).decode("ascii"),
        cert_sha256=state.cert_sha256,
    )


@router.post(p.RECORDS_PATH, response_model=p.BatchResponse, responses=PROBLEMS)
def submit(batch: p.BatchRequest, kiosk: DeviceKiosk, state: State) -> p.BatchResponse:
    """Stores a batch of sealed records exactly once (see kiosk.protocol)."""
    incoming = [open_record(state.box, i, rec) for i, rec in enumerate(batch.records)]
    try:
        statuses = state.repo.store_batch(kiosk, incoming)
    except Conflict as exc:
        log.warning("kiosk %s: %d record id(s) reused with different content", kiosk, len(exc.ids))
        raise Refused(
            409,
            "record id already stored with different content; nothing of this batch was stored",
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
    if not isinstance(payload, dict):
        raise Refused(422, f"{where}: sealed body must be a JSON object", [rid])
    intake = payload.get("intake_id") if rec.kind == "visit" else None
    submitted = payload.get("submitted_at", payload.get("created_at"))
    return IncomingRecord(
        id=rid,
        kind=rec.kind,
        digest=hashlib.sha256(plain).hexdigest(),
        payload_json=json.dumps(payload, sort_keys=True),
        intake_id=intake if isinstance(intake, str) else None,
        submitted_at=submitted if isinstance(submitted, str) else None,
    )
