"""Staff downloads of the intakes in every format :mod:`kiosk.hub.export`
streams (CSV, JSON lines, FHIR Bundle, PDF). Every download is audited.

The form posts (with the session's CSRF token) rather than linking, so no
other site can make a logged-in browser pull an export.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
import itertools
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import StreamingResponse

from .. import audit
from .. import export as exports
from ..auth import Csrf, PageRefused, Staff
from ..deps import Db
from .staff import render

router = APIRouter(tags=["exports"], include_in_schema=False)


def _date(value: str, name: str) -> str | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise PageRefused(422, f"{name}: {value[:20]!r} is not a date (YYYY-MM-DD); nothing was exported.") from None


@router.get("/exports")
def export_page(request: Request, user: Staff):
    return render(request, "exports.html", user=user, formats=list(exports.FORMATS))


@router.post("/exports/download")
def download(
    user: Csrf,
    db: Db,
    fmt: Annotated[str, Form(alias="format", max_length=10)] = "csv",
    since: Annotated[str, Form(max_length=20)] = "",
    until: Annotated[str, Form(max_length=20)] = "",
    patients: Annotated[str, Form(max_length=5)] = "",
):
    if fmt not in exports.FORMATS:
        raise PageRefused(422, f"format: {fmt[:10]!r} is not one the hub exports ({', '.join(exports.FORMATS)}).")
    since_iso, until_iso = _date(since, "since"), _date(until, "until")
    try:
        # A range the format cannot take (dates reversed, a PDF of too many
        # intakes) is refused before the first byte, as a page, not a broken download.
        chunks = exports.stream(fmt, db.records, since_iso, until_iso, patients=patients == "on")
        first = next(chunks, b"")
    except exports.ExportError as exc:
        raise PageRefused(422, f"{exc}; nothing was exported.") from None
    span = f"{since_iso or 'start'}..{until_iso or 'now'}"
    audit.record(db.accounts, user.name, "export", f"{fmt} {span}")
    name = f"intakes-{dt.date.today().isoformat()}{exports.FILE_SUFFIX[fmt]}"
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
