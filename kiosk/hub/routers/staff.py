"""The staff web page: login, the live list of today's intakes with alert
banners (updated over server-sent events), one page per intake with its
print view, "mark reviewed" and acknowledging alerts.

Pages are rendered on the server (Jinja2 templates in ``kiosk/hub/templates``);
``static/live.js`` only swaps in the live fragment the event stream sends,
plays the alert sound and reconnects after the hub restarts.

An unknown intake id and a malformed one get the same 404 page, and none of
the refusals changes data. Log lines carry account names and ids, never
what a patient entered.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import asyncio
import datetime as dt
import logging
import secrets
import uuid
from urllib.parse import quote
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import rules
from .. import audit
from ..auth import (
    LOCKED,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    WRONG_LOGIN,
    Csrf,
    LockedOut,
    PageRefused,
    Staff,
    authenticate,
    client_address,
    session_user,
    set_session_cookie,
    start_session,
)
from ..db import Database, RecordsRepository, StoredRecord
from ..db.patients import intake_view
from ..deps import Db, State
from ..view import patient_name, visit_view

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(tags=["staff"], include_in_schema=False)

#: How often the event stream looks for changes, and how often it re-sends
#: the list anyway so waiting times stay current.
POLL_S = 0.25
REFRESH_S = 30.0
NOT_FOUND = "There is no intake with this id on the hub (it may have been deleted under the retention period)."

TIER_LABEL = {"emergency": "⚠ EMERGENCY", "urgent": "! Urgent", "caution": "Caution", "none": "Routine"}
ALERT_LABEL = {"emergency": "⚠ EMERGENCY", "staff-call": "☎ Staff call"}


# -- template helpers --------------------------------------------------------------


def _parse(iso: str | None) -> dt.datetime | None:
    if not iso:
        return None
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def clock(iso: str | None) -> str:
    """Local wall-clock time of ``iso``, as the front desk reads it."""
    t = _parse(iso)
    return t.astimezone().strftime("%H:%M") if t else "?"


def when(iso: str | None) -> str:
    t = _parse(iso)
    return t.astimezone().strftime("%Y-%m-%d %H:%M") if t else "?"


def ago(iso: str | None, now: dt.datetime | None = None) -> str:
    """``"12 min"``, ``"2 h 5 min"``: how long since ``iso``."""
    t = _parse(iso)
    if t is None:
        return "?"
    minutes = max(0, int(((now or dt.datetime.now(dt.timezone.utc)) - t).total_seconds() // 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


templates.env.filters.update(clock=clock, when=when, ago=ago)
templates.env.globals.update(TIER_LABEL=TIER_LABEL, ALERT_LABEL=ALERT_LABEL)


CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "media-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status)
    # Staff pages hold patient data: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    return response


def valid_intake_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


# -- the live list ----------------------------------------------------------------------


@dataclass
class Row:
    """One intake on the live list."""

    intake_id: str
    kiosk_id: str
    since: str
    name: str = ""
    tier: str = "none"
    has_visit: bool = False
    alerts: list[str] = field(default_factory=list)
    reviewed: tuple[str, str] | None = None

    @property
    def rank(self) -> int:
        if "emergency" in self.alerts:
            return rules.TIER_RANK["emergency"]
        return rules.TIER_RANK.get(self.tier, 0)


@dataclass
class Banner:
    record_id: str
    kind: str
    kiosk_id: str
    at: str
    intake_id: str | None
    name: str


def today_start(now: dt.datetime) -> str:
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc).isoformat()


def live_view(records: RecordsRepository, now: dt.datetime) -> tuple[list[Banner], list[Row]]:
    """Open alerts (oldest first, emergencies before staff calls) and
    today's intakes (emergencies and urgent first, then longest waiting)."""
    today = records.records_received_since(today_start(now))
    open_alerts = records.unacknowledged_alerts()
    reviews = records.reviews()
    rows: dict[str, Row] = {}
    names: dict[str, str] = {}
    for rec in today + open_alerts:
        if rec.intake_id is None:
            continue
        row = rows.get(rec.intake_id)
        if row is None:
            row = rows[rec.intake_id] = Row(rec.intake_id, rec.kiosk_id, rec.submitted_at or rec.received_at)
        if rec.kind == "visit":
            row.has_visit = True
            row.name = names[rec.intake_id] = patient_name(rec.payload)
            row.tier = str((rec.payload.get("result") or {}).get("tier") or "none")
            row.since = min(row.since, rec.submitted_at or rec.received_at)
        else:
            kind = rec.payload.get("kind")
            if kind in ALERT_LABEL and kind not in row.alerts:
                row.alerts.append(kind)
    for row in rows.values():
        row.reviewed = reviews.get(row.intake_id)
    banners = [
        Banner(a.id, str(a.payload.get("kind")), a.kiosk_id, a.submitted_at or a.received_at, a.intake_id,
               names.get(a.intake_id or "", ""))
        for a in open_alerts
        if a.payload.get("kind") in ALERT_LABEL
    ]
    banners.sort(key=lambda b: (b.kind != "emergency", b.at))
    ordered = sorted(rows.values(), key=lambda r: (-r.rank, r.reviewed is not None, r.since))
    return banners, ordered


def render_live(request: Request, records: RecordsRepository, user) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    banners, rows = live_view(records, now)
    return templates.get_template("_live.html").render(
        request=request, banners=banners, rows=rows, user=user, now=now
    )


# -- login and logout --------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, db: Db, state: State, next: str = "/"):
    if session_user(db.accounts, state.staff, request.cookies.get(SESSION_COOKIE), touch=False):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next=next)


def _login_page(request: Request, status: int = 200, message: str = "", next: str = "/"):
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status, message=message, login_csrf=token, next=_safe_next(next))
    response.set_cookie(LOGIN_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/login")
    return response


def _safe_next(value: str) -> str:
    # Only a path on this hub: never an open redirect.
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


@router.post("/login")
def login(
    request: Request,
    db: Db,
    state: State,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
):
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not csrf or not secrets.compare_digest(csrf, cookie):
        return _login_page(request, 403, "The login form was out of date. Please try again.", next)
    try:
        role = authenticate(db.accounts, state.staff, username, password, client_address(request))
    except LockedOut:
        audit.record(db.accounts, username or "?", "login.failed", username or "?", "locked")
        minutes = int(state.staff.lock_for.total_seconds() // 60)
        return _login_page(request, 429, LOCKED.format(minutes=minutes), next)
    if role is None:
        audit.record(db.accounts, username or "?", "login.failed", username or "?")
        return _login_page(request, 401, WRONG_LOGIN, next)
    audit.record(db.accounts, username, "login", username)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, start_session(db.accounts, username))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(user: Csrf, db: Db):
    db.accounts.end_session(user.session)
    audit.record(db.accounts, user.name, "logout", user.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the list and its event stream -------------------------------------------------------


@router.get("/")
def live_list(request: Request, user: Staff, db: Db):
    return render(request, "list.html", user=user, live=render_live(request, db.records, user))


@router.get("/events")
async def events(request: Request, user: Staff, db: Db, state: State):
    """Server-sent events: ``update`` with the live fragment whenever
    something changed (and every :data:`REFRESH_S`), ``ended`` when the
    session is over. The stream itself does not keep a session alive."""
    token = request.cookies.get(SESSION_COOKIE)

    async def stream():
        last, sent_at = None, 0.0
        loop = asyncio.get_running_loop()
        while True:
            alive = await run_in_threadpool(session_user, db.accounts, state.staff, token, False)
            if alive is None:
                yield ServerSentEvent(data="/login", event="ended")
                return
            marker = await run_in_threadpool(db.records.change_marker)
            if marker != last or loop.time() - sent_at > REFRESH_S:
                html = await run_in_threadpool(render_live, request, db.records, user)
                yield ServerSentEvent(data=html, event="update", retry=1000)
                last, sent_at = marker, loop.time()
            await asyncio.sleep(POLL_S)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


@router.get("/whoami")
def whoami(request: Request, db: Db, state: State):
    """Who the session belongs to, or 401: the page's script asks before it
    reconnects, so a logged-out tab goes to the login form. Does not count
    as activity."""
    user = session_user(db.accounts, state.staff, request.cookies.get(SESSION_COOKIE), touch=False)
    if user is None:
        return JSONResponse({"detail": "not logged in"}, status_code=401)
    return {"user": user.name, "role": user.role}


# -- alerts and reviews --------------------------------------------------------------------


@router.post("/alerts/{record_id}/ack")
def acknowledge(record_id: str, user: Csrf, db: Db):
    if not valid_intake_id(record_id) or db.records.alert_record(record_id) is None:
        raise PageRefused(404, "There is no such alert on the hub.")
    if db.records.acknowledge_alert(record_id, user.name):
        audit.record(db.accounts, user.name, "alert.ack", record_id)
    return RedirectResponse("/", status_code=303)


@router.post("/intakes/{intake_id}/review")
def mark_reviewed(intake_id: str, user: Csrf, db: Db):
    _intake_records(db.records, intake_id)
    if db.records.mark_reviewed(intake_id, user.name):
        audit.record(db.accounts, user.name, "intake.review", intake_id)
    return RedirectResponse(f"/intakes/{intake_id}", status_code=303)


# -- the intake page -------------------------------------------------------------------------


def _intake_records(records: RecordsRepository, intake_id: str) -> list[StoredRecord]:
    found = records.intake_records(intake_id) if valid_intake_id(intake_id) else []
    if not found:
        raise PageRefused(404, NOT_FOUND)
    return found


def intake_context(db: Database, intake_id: str) -> dict:
    records = _intake_records(db.records, intake_id)
    visits = [r for r in records if r.kind == "visit"]
    visit = visits[-1] if visits else None
    acks = db.records.acknowledgements()
    alerts = [(r, acks.get(r.id)) for r in records if r.kind != "visit" and r.payload.get("kind") in ALERT_LABEL]
    payload = visit.payload if visit else {}
    result = payload.get("result") or {}
    view = visit_view(payload)
    return {
        "intake_id": intake_id,
        "visit": visit,
        "v": payload,
        "view": view,
        "patient": view.name,
        "result": result,
        "summary": payload.get("summary") or [],
        "notices": payload.get("notices") or [],
        "not_answered": payload.get("not_answered") or [],
        "alerts": alerts,
        "kiosk_id": visit.kiosk_id if visit else records[0].kiosk_id,
        "review": db.records.reviews().get(intake_id),
        # Issue 19: the visit's patient and the match controls (kiosk.hub.db.patients).
        "patient_link": intake_view(db.backend, intake_id) if visit else None,
    }


@router.get("/intakes/{intake_id}")
def intake_page(request: Request, intake_id: str, user: Staff, db: Db):
    context = intake_context(db, intake_id)
    audit.record(db.accounts, user.name, "intake.view", intake_id)
    return render(request, "intake.html", user=user, printing=False, **context)


@router.get("/intakes/{intake_id}/print")
def intake_print(request: Request, intake_id: str, user: Staff, db: Db):
    context = intake_context(db, intake_id)
    audit.record(db.accounts, user.name, "intake.view", intake_id, "print")
    return render(request, "intake.html", user=user, printing=True, **context)


def add_page_handlers(app) -> None:
    """Renders :class:`PageRefused` as a page (or a redirect to the login
    form), and gives an intake address that matches no route (an id with a
    slash in it) the same 404 page as an unknown id."""

    @app.exception_handler(StarletteHTTPException)
    async def _no_route(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404 and request.url.path.startswith("/intakes/"):
            return render(request, "refused.html", 404, message=NOT_FOUND, login=False)
        return JSONResponse({"detail": str(exc.detail), "ids": []}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused):
        if exc.login:
            if request.method == "GET" and request.url.path != "/events":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
                response.delete_cookie(SESSION_COOKIE, path="/")
                return response
        response = render(request, "refused.html", exc.status, message=exc.message, login=exc.login)
        if exc.login:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

