"""Admin pages: accounts, kiosks (enrollment code with a QR code, revoking),
published content (upload, publish), the audit log (read only) and the
retention period. Staff accounts get a
403 page here, and nothing on these pages can edit the audit log.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
import json
from typing import Annotated

import segno
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from .. import audit, retention
from ...content import ContentError
from ..content import MAX_UPLOAD_BYTES, store_upload
from ..auth import MIN_PASSWORD, ROLES, Admin, AdminCsrf, PageRefused, hash_password
from ..deps import Db, State
from .staff import render

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)


@router.get("/users")
def users_page(request: Request, user: Admin, db: Db, message: str = ""):
    return render(request, "admin_users.html", user=user, accounts=db.accounts.accounts(), roles=ROLES,
                  message=message[:200])


@router.post("/users")
def add_user(
    request: Request,
    user: AdminCsrf,
    db: Db,
    name: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=10)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
):
    name = name.strip()
    problem = None
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        problem = "name: use letters, digits, '-', '_' or '.'"
    elif role not in ROLES:
        problem = f"role: must be one of {', '.join(ROLES)}"
    elif len(password) < MIN_PASSWORD:
        problem = f"password: at least {MIN_PASSWORD} characters"
    if problem is None:
        try:
            db.accounts.add_user(name, role, hash_password(password))
        except ValueError:
            problem = f"name: an account {name!r} already exists"
    if problem:
        return render(request, "admin_users.html", 422, user=user, accounts=db.accounts.accounts(), roles=ROLES,
                      message=f"Not added: {problem}.")
    audit.record(db.accounts, user.name, "user.add", name, role)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{name}/disable")
def disable_user(name: str, user: AdminCsrf, db: Db):
    if name == user.name:
        raise PageRefused(409, "You cannot disable your own account; ask another admin.")
    if not db.accounts.disable_user(name):
        raise PageRefused(404, "There is no enabled account with that name.")
    audit.record(db.accounts, user.name, "user.disable", name)
    return RedirectResponse("/admin/users", status_code=303)


def kiosk_view(row: dict) -> dict:
    try:
        report = json.loads(row.get("report") or "{}")
    except ValueError:
        report = {}
    gpio = report.get("gpio") or {}
    return {**row, "queue_depth": report.get("queue_depth"), "oldest_unsynced_s": report.get("oldest_unsynced_s"),
            "content_version": report.get("content_version") or "",
            "content_error": str(report.get("content_error") or "")[:500], "open_alerts": len(report.get("open_alerts") or []),
            "gpio": ", ".join(f"{k}: {v}" for k, v in sorted(gpio.items())) if isinstance(gpio, dict) else "",
            "audio": audio_view(report.get("audio"))}


def audio_view(audio) -> str:
    """The kiosks page's Audio cell: device and health, as the kiosk last
    reported them (an older kiosk reports none)."""
    if not isinstance(audio, dict) or not audio:
        return ""
    state = "ok" if audio.get("ok") else f"not working: {audio.get('message') or 'unknown'}"
    reading = ", read-aloud on at start" if audio.get("read_aloud") else ""
    return f"{audio.get('device') or 'default'}: {state}{reading}"[:300]


@router.get("/kiosks")
def kiosks_page(request: Request, user: Admin, db: Db):
    return render(request, "admin_kiosks.html", user=user, kiosks=[kiosk_view(r) for r in db.kiosks.kiosk_rows()],
                  code=None, qr=None)


@router.post("/kiosks/enroll-code")
def enroll_code(request: Request, user: AdminCsrf, db: Db):
    code = db.kiosks.new_enroll_code(dt.timedelta(hours=24))
    audit.record(db.accounts, user.name, "kiosk.enroll-code", code[:4] + "-…")
    url = str(request.base_url).rstrip("/")
    command = f"clinic-kiosk enroll {url} {code}"
    qr = segno.make(command, error="m").svg_inline(scale=5, title="Enrollment command")
    return render(request, "admin_kiosks.html", user=user, kiosks=[kiosk_view(r) for r in db.kiosks.kiosk_rows()],
                  code=code, command=command, qr=qr)


@router.post("/kiosks/{kiosk_id}/revoke")
def revoke(kiosk_id: str, user: AdminCsrf, db: Db):
    if db.kiosks.revoke(kiosk_id) == 0:
        raise PageRefused(404, "That kiosk has no live token (unknown or already revoked).")
    audit.record(db.accounts, user.name, "kiosk.revoke", kiosk_id)
    return RedirectResponse("/admin/kiosks", status_code=303)


def _content_page(request: Request, user, state, status: int = 200, problems=(), message: str = ""):
    return render(request, "admin_content.html", status, user=user, versions=state.db.content.versions(),
                  problems=list(problems), message=message)


@router.get("/content")
def content_page(request: Request, user: Admin, state: State):
    return _content_page(request, user, state)


@router.post("/content")
async def upload_content(request: Request, user: AdminCsrf, state: State, file: UploadFile = File(...)):
    """Checks an uploaded pack (.zip) or Questionnaire (.json) and keeps it
    as a new version; refuses with its ``path:location: message`` lines."""
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    name = (file.filename or "upload")[:200]
    try:
        version, notices = store_upload(state.db.content, state.signing_key, name, data, user.name)
    except ContentError as exc:
        audit.record(state.db.accounts, user.name, "content.refused", name[:100], exc.problems[0][:200])
        return _content_page(request, user, state, 422, problems=exc.problems[:50])
    audit.record(state.db.accounts, user.name, "content.upload", version.content_version, version.sha256)
    return _content_page(request, user, state, message=" ".join([
        f"Checked and kept as {version.content_version}.", *notices, "Publish it to send it to the kiosks."]))


@router.post("/content/{version_id}/publish")
def publish_content(version_id: str, user: AdminCsrf, state: State):
    version = state.db.content.get(version_id)
    if version is None or not state.db.content.publish(version_id):
        raise PageRefused(404, "There is no such content version.")
    audit.record(state.db.accounts, user.name, "content.publish", version.content_version, version.sha256)
    return RedirectResponse("/admin/content", status_code=303)


@router.get("/audit")
def audit_page(request: Request, user: Admin, db: Db, since: str = ""):
    since_iso = None
    if since:
        try:
            since_iso = dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise PageRefused(422, f"since: {since[:20]!r} is not a date (YYYY-MM-DD).") from None
    entries = db.accounts.audit_entries(since_iso, limit=500)
    return render(request, "admin_audit.html", user=user, entries=list(reversed(entries)), since=since_iso or "")


@router.get("/retention")
def retention_page(request: Request, user: Admin, db: Db, message: str = ""):
    return render(request, "admin_retention.html", user=user, days=retention.days(db), message="")


@router.post("/retention")
def set_retention(
    request: Request, user: AdminCsrf, db: Db,
    days: Annotated[str, Form(max_length=10)] = "",
):
    try:
        value = int(days) if days.strip() else None
        retention.set_days(db, value, user.name)
    except ValueError:
        return render(request, "admin_retention.html", 422, user=user, days=retention.days(db),
                      message=f"days: a whole number from 1 to {retention.MAX_DAYS}, or empty to keep everything.")
    deleted = retention.run(db, user=user.name)
    return render(request, "admin_retention.html", user=user, days=retention.days(db),
                  message=f"Saved. {deleted} intake(s) were past the period and have been deleted.")
