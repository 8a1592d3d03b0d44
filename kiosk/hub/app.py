"""The hub's web application (FastAPI), assembled from one router per area.

* :mod:`kiosk.hub.routers.sync`: the API kiosks talk to (enrollment, records).
* :mod:`kiosk.hub.routers.staff`: the staff web page at ``/`` (login, live
  list, intakes, alerts), :mod:`~kiosk.hub.routers.exports` (downloads) and
  :mod:`~kiosk.hub.routers.admin` (accounts, kiosks, audit, retention),
  :mod:`~kiosk.hub.routers.patients` (returning patients' trends, outcomes,
  match decisions, erasure), with their assets under ``/static``.

The state the routers share (database, keys) lives on ``app.state.hub``
and reaches them through the dependencies in :mod:`kiosk.hub.deps`. Every
refusal is a 4xx with a JSON ``{"detail": ..., "ids": [...]}`` that says what
was wrong and where, and leaves the hub's data as it was. Messages name
record ids and fields, never what a patient entered.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency
# annotations of the nested functions below at run time.

import contextlib
import json
import logging
import threading
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import protocol as p
from .content import MAX_UPLOAD_BYTES
from .db import Database, KiosksRepository
from . import retention
from .deps import SCOPE_KIOSK, HubState, StaffSettings, check_token
from .errors import Refused
from .routers import admin, exports, patients, staff, sync

log = logging.getLogger(__name__)


#: Paths whose requests need a device token; it is checked before the body is read.
TOKEN_PATHS = frozenset({p.RECORDS_PATH, p.HEARTBEAT_PATH})
#: Largest form body the staff pages take.
FORM_MAX_BYTES = 64 * 1024
#: Staff-page paths that take a file (multipart), with their limit: the
#: content upload (a pack as .zip or a Questionnaire .json).
UPLOAD_PATHS = {"/admin/content": MAX_UPLOAD_BYTES + 64 * 1024}


class BodyGuard:
    """ASGI middleware that refuses request bodies that are too large or of
    the wrong type *before* anything reads them, so an oversized upload costs
    the hub no memory: the API (under ``/v1``) takes JSON only, the staff
    pages take small url-encoded forms only. On the kiosk-only paths
    (:data:`TOKEN_PATHS`) the device token is checked first: a request
    without a valid one is answered 401 without reading a byte of its body."""

    def __init__(self, app: ASGIApp, max_bytes: int = p.MAX_BODY_BYTES, kiosks: KiosksRepository | None = None):
        self.app = app
        self.api_max_bytes = max_bytes
        self.kiosks = kiosks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if scope["path"].startswith(p.API_PREFIX + "/"):
            wanted, limit = "application/json", self.api_max_bytes
        elif scope["path"] in UPLOAD_PATHS:
            wanted, limit = "multipart/form-data", UPLOAD_PATHS[scope["path"]]
        else:
            wanted, limit = "application/x-www-form-urlencoded", FORM_MAX_BYTES
        # A bodiless form post (a lone button) may come without a type.
        if ctype != wanted and not (ctype == "" and wanted != "application/json"):
            await _problem(send, 415, f"Content-Type must be {wanted}, got {ctype[:60] or 'none'!r}")
            return
        if self.kiosks is not None and scope["path"] in TOKEN_PATHS:
            try:
                kiosk = await run_in_threadpool(check_token, self.kiosks, headers.get("authorization"))
            except Refused as exc:
                await _problem(send, exc.status, exc.detail, [(b"www-authenticate", b"Bearer")])
                return
            scope.setdefault("state", {})[SCOPE_KIOSK] = kiosk
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _problem(send, 400, "Content-Length is not a number")
                return
            if int(length) > limit:
                await _problem(send, 413, f"request body is over the limit of {limit} bytes")
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
            if received > limit:
                await _problem(send, 413, f"request body is over the limit of {limit} bytes")
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


async def _problem(send: Send, status: int, detail: str, extra_headers: list | None = None) -> None:
    body = json.dumps({"detail": detail, "ids": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *(extra_headers or [])],
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


RETENTION_EVERY_S = 3600


@contextlib.asynccontextmanager
async def _retention_job(app: FastAPI):
    """Applies the retention period at start-up and then hourly, in a thread
    of its own so a long deletion never holds up a request."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                retention.run(app.state.hub.db)
            except Exception:  # a database hiccup must not end the job
                log.exception("retention run failed; will try again in an hour")
            if stop.wait(RETENTION_EVERY_S):
                return

    thread = threading.Thread(target=loop, name="retention", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def create_app(db: Database, private_key: bytes, cert_sha256: str, public_key: bytes,
               staff_settings: StaffSettings | None = None, signing_key: bytes | None = None) -> FastAPI:
    """The hub application over ``db``; ``private_key`` opens submissions."""
    app = FastAPI(
        title="clinic-hub",
        version="1",
        description="Sync API for clinic intake kiosks.",
        lifespan=_retention_job,
    )
    app.state.hub = HubState(db, private_key, public_key, cert_sha256, staff=staff_settings or StaffSettings(),
                             signing_key=signing_key or b"")
    app.add_middleware(BodyGuard, kiosks=db.kiosks)

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

    staff.add_page_handlers(app)
    app.include_router(sync.router)
    app.include_router(staff.router)
    app.include_router(exports.router)
    app.include_router(admin.router)
    app.include_router(patients.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
