"""Staff downloads of the intakes (CSV today; JSON, FHIR and PDF once
:mod:`kiosk.hub.export` streams them). Every download is audited.

The form posts (with the session's CSRF token) rather than linking, so no
other site can make a logged-in browser pull an export.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
import io
import json
from typing import Annotated, Iterator

from fastapi import APIRouter, Form, Request
from fastapi.responses import StreamingResponse

from .. import audit
from .. import export as exports
from ..auth import Csrf, PageRefused, Staff
from ..db import HubRepository
from ..deps import Repo
from .staff import render

router = APIRouter(tags=["exports"], include_in_schema=False)

FORMATS = {"csv": ("text/csv; charset=utf-8", ".csv")}


def formats() -> dict[str, tuple[str, str]]:
    """Format -> (media type, file suffix) of what the hub can export now."""
    media = getattr(exports, "MEDIA_TYPES", None)
    suffix = getattr(exports, "FILE_SUFFIX", None)
    if media and suffix:
        return {fmt: (media[fmt], suffix[fmt]) for fmt in media}
    return dict(FORMATS)


def export_stream(fmt: str, repo: HubRepository, since: str | None, until: str | None) -> Iterator[bytes]:
    """The export as bytes: the one place to switch to ``export.stream``."""
    if hasattr(exports, "stream"):
        yield from exports.stream(fmt, repo, since, until)
        return
    visits = repo.visits(since)
    if until:
        visits = [v for v in visits if _submitted(v[2]) < until]
    header, rows = exports.csv_table(visits)
    buf = io.StringIO()
    exports.write_csv(buf, header, rows)
    yield buf.getvalue().encode("utf-8")


def _submitted(payload_json: str) -> str:
    return str(json.loads(payload_json).get("submitted_at") or "")


def _date(value: str, name: str) -> str | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise PageRefused(422, f"{name}: {value[:20]!r} is not a date (YYYY-MM-DD); nothing was exported.") from None


@router.get("/exports")
def export_page(request: Request, user: Staff):
    return render(request, "exports.html", user=user, formats=sorted(formats()))


@router.post("/exports/download")
def download(
    user: Csrf,
    repo: Repo,
    fmt: Annotated[str, Form(alias="format", max_length=10)] = "csv",
    since: Annotated[str, Form(max_length=20)] = "",
    until: Annotated[str, Form(max_length=20)] = "",
):
    known = formats()
    if fmt not in known:
        raise PageRefused(422, f"format: {fmt[:10]!r} is not one the hub exports ({', '.join(sorted(known))}).")
    since_iso, until_iso = _date(since, "since"), _date(until, "until")
    media, suffix = known[fmt]
    span = f"{since_iso or 'start'}..{until_iso or 'now'}"
    audit.record(repo, user.name, "export", f"{fmt} {span}")
    name = f"intakes-{dt.date.today().isoformat()}{suffix}"
    return StreamingResponse(
        export_stream(fmt, repo, since_iso, until_iso),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
