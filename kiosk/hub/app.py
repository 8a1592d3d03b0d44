"""The hub's HTTP API (FastAPI): enrollment and exactly-once record intake.

Every refusal is a 4xx with a JSON ``{"detail": ..., "ids": [...]}`` that says
what was wrong and where, and leaves the hub's data as it was. Messages name
record ids and fields, never what a patient entered.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency
# annotations of the nested functions below at run time.

import base64
import binascii
import hashlib
import json
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from starlette.types import ASGIApp, Receive, Scope, Send

from . import protocol as p
from .db import Conflict, HubRepository, IncomingRecord

log = logging.getLogger(__name__)


class Refused(Exception):
    """A request the hub will not act on; becomes a 4xx Problem response."""

    def __init__(self, status: int, detail: str, ids: list[str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.ids = ids or []


class BodyGuard:
    """ASGI middleware that refuses request bodies that are too large or not
    JSON *before* anything reads them, so an oversized upload costs the hub
    no memory and a form post never reaches the JSON parser."""

    def __init__(self, app: ASGIApp, max_bytes: int = p.MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            await _problem(send, 415, f"Content-Type must be application/json, got {ctype[:60] or 'none'!r}")
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _problem(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_bytes:
                await _problem(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
                return
        # Read the whole body here (bounded), so a chunked upload over the
        # limit is refused just like one that declared its length.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _problem(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _problem(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "ids": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _field_path(loc) -> str:
    parts = [str(x) for x in loc if x != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def _validation_problem(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return 400, f"request body is not valid JSON ({ctx.get('error', 'parse error')})"
    if any(err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",) for err in errors):
        return 400, "request body is missing: send a JSON object"
    # Pydantic's message and location only; never the offending input, which
    # could be patient data.
    lines = [f"{_field_path(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in errors[:10]]
    if len(errors) > 10:
        lines.append(f"... and {len(errors) - 10} more")
    return 422, "; ".join(lines)


def create_app(repo: HubRepository, private_key: bytes, cert_sha256: str, public_key: bytes) -> FastAPI:
    """The hub application over ``repo``; ``private_key`` opens submissions."""
    box = SealedBox(PrivateKey(private_key))
    app = FastAPI(
        title="clinic-hub",
        version="1",
        description="Sync API for clinic intake kiosks.",
    )
    app.add_middleware(BodyGuard)
    bearer = HTTPBearer(auto_error=False, description="Device token from enrollment.")

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail, "ids": exc.ids}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, detail = _validation_problem(exc)
        return JSONResponse({"detail": detail, "ids": []}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return JSONResponse({"detail": str(exc.detail), "ids": []}, status_code=exc.status_code, headers=exc.headers)

    def kiosk_id(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise Refused(401, "missing device token: send 'Authorization: Bearer <token>' (enroll the kiosk first)")
        found = repo.kiosk_for_token(creds.credentials)
        if found is None:
            raise Refused(401, "device token is not valid or was revoked: enroll the kiosk again")
        return found

    problems = {
        400: {"model": p.Problem, "description": "Malformed request"},
        401: {"model": p.Problem, "description": "Missing, unknown or revoked device token"},
        409: {"model": p.Problem, "description": "A record id is already stored with different content"},
        413: {"model": p.Problem, "description": "Body over the size limit"},
        415: {"model": p.Problem, "description": "Body is not application/json"},
        422: {"model": p.Problem, "description": "A record or field is invalid"},
    }

    @app.get(p.HEALTH_PATH, response_model=p.Health)
    def health() -> p.Health:
        """Liveness, for the kiosk's `hub_reachable` and for monitoring."""
        return p.Health(ok=True)

    @app.post(p.ENROLL_PATH, response_model=p.EnrollResponse, responses={**problems, 403: {"model": p.Problem}})
    def enroll(req: p.EnrollRequest) -> p.EnrollResponse:
        """Trades a one-time code for a device token and the clinic's public key."""
        token = repo.redeem_enroll_code(req.code, req.kiosk_id)
        if token is None:
            raise Refused(403, "enrollment code is not valid (unknown, already used or expired): "
                               "run `clinic-hub enroll-code` for a new one")
        log.info("kiosk %s enrolled", req.kiosk_id)
        return p.EnrollResponse(
            kiosk_id=req.kiosk_id,
            token=token,
            public_key=base64.b64encode(public_key).decode("ascii"),
            cert_sha256=cert_sha256,
        )

    @app.post(p.RECORDS_PATH, response_model=p.BatchResponse, responses=problems)
    def submit(batch: p.BatchRequest, kiosk: Annotated[str, Depends(kiosk_id)]) -> p.BatchResponse:
        """Stores a batch of sealed records exactly once (see kiosk.hub.protocol)."""
        incoming = [open_record(box, i, rec) for i, rec in enumerate(batch.records)]
        try:
            statuses = repo.store_batch(kiosk, incoming)
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

    return app


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
