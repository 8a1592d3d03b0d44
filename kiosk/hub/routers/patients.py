"""Staff pages of returning patients (issue 19): a patient's page with the
trend of each measure across their visits, the clinic's outcomes per
month, the match controls on the intake page (confirm, link to another
patient, split off, undo), a patient's export and, for admins, erasure.

Trends are SVG drawn on the server (:func:`chart`), no script: each visit is
a marker with its value written beside it, the first visit's value and the
clinically important target are dashed lines with their own labels, so the
plot reads the same in black and white. Every decision and every view of a
patient is audited; the audit names the patient's reference and intake
ids, never a name.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at
# run time.

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .. import audit
from .. import export as exports
from ..auth import AdminCsrf, Csrf, PageRefused, Staff
from ..deps import Db
from ..db.patients import METHODS, NotFound, PatientRepository, identity_of, show_code
from ..trends import Trend, mcid_text, outcomes, trends
from .staff import render, valid_intake_id

router = APIRouter(tags=["patients"], include_in_schema=False)

NO_PATIENT = "There is no patient with this reference on the hub (it may have been erased)."


def _patients(db) -> PatientRepository:
    return db.patients


def _valid_id(value: str) -> bool:
    return valid_intake_id(value)  # patient ids are UUIDs too


def _patient_or_404(db, patient_id: str):
    patient = _patients(db).patient(patient_id) if _valid_id(patient_id) else None
    if patient is None:
        raise PageRefused(404, NO_PATIENT)
    return patient


# -- the trend chart ------------------------------------------------------------------------

W, H = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 150, 26, 46
MAX_LABELLED = 12
MAX_DATES = 6


@dataclass
class Mark:
    x: float
    y: float
    value: str
    date: str
    labelled: bool
    dated: bool
    first: bool
    last: bool


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value - round(value)) > 1e-9 else str(int(round(value)))


def _day(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%-d %b %y")
    except ValueError:
        return iso[:10]


def _spaced(indices, xs: list[float], gap: float) -> set[int]:
    """Those of ``indices`` (in order of preference) at least ``gap`` apart on x."""
    kept: list[int] = []
    for i in indices:
        if i not in kept and all(abs(xs[i] - xs[j]) >= gap for j in kept):
            kept.append(i)
    return set(kept)


def chart(trend: Trend) -> dict:
    """The geometry of one measure's SVG plot (see ``_trend.html``)."""
    values = [v for _, v in trend.points]
    change = trend.change
    target = change.target if change and len(values) else None
    top = max([*values, target or 0, 0.0])
    ymax = 10.0 if top <= 10 else float(-(-top // 5) * 5)
    ymin = min(0.0, *values)
    span = (ymax - ymin) or 1.0
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def y_of(v: float) -> float:
        return round(TOP + inner_h * (1 - (v - ymin) / span), 1)

    n = len(values)
    step = inner_w / (n - 1) if n > 1 else 0
    xs = [round(LEFT + (i * step if n > 1 else inner_w / 2), 1) for i in range(n)]
    # Every value is written when they fit; with many visits, the first,
    # the latest, the lowest, the highest and evenly spaced ones, never two
    # written on top of each other. Dates likewise, at most MAX_DATES.
    wanted = [0, n - 1, values.index(min(values)), values.index(max(values))] if n else []
    wanted += [round(k * (n - 1) / (MAX_LABELLED - 1)) for k in range(MAX_LABELLED)] if n > 1 else []
    labelled = _spaced(wanted if n > MAX_LABELLED else range(n), xs, 22 if n > MAX_LABELLED else 0)
    dated = _spaced([0, n - 1, *(round(k * (n - 1) / (MAX_DATES - 1)) for k in range(MAX_DATES))]
                    if n > MAX_DATES else range(n), xs, 70)
    marks = [
        Mark(xs[i], y_of(v), _fmt(v), _day(at), labelled=i in labelled, dated=i in dated,
             first=i == 0, last=i == n - 1)
        for i, (at, v) in enumerate(trend.points)
    ]
    grid = [(y_of(v), _fmt(v)) for v in (ymin, (ymin + ymax) / 2, ymax)]
    return {
        "w": W, "h": H, "left": LEFT, "right": W - RIGHT, "top": TOP, "bottom": H - BOTTOM,
        "marks": marks, "grid": grid,
        "line": " ".join(f"{m.x},{m.y}" for m in marks),
        "first_y": marks[0].y if marks else None, "first_value": marks[0].value if marks else "",
        "target_y": y_of(target) if target is not None and ymin <= target <= ymax else None,
        "target": _fmt(target) if target is not None else "",
        "sign": "≤" if trend.better == "lower" else "≥",
    }


def trend_view(trend: Trend) -> dict:
    change = trend.change
    improved = change.improved if change and len(trend.points) > 1 else None
    delta = change.delta if change else 0.0
    return {
        "id": trend.id, "label": trend.label, "chart": chart(trend), "n": len(trend.points),
        "first": _fmt(change.first) if change else "", "latest": _fmt(change.latest) if change else "",
        "delta": ("+" if delta > 0 else "−" if delta < 0 else "±") + _fmt(abs(delta)),
        "better": trend.better, "rule": mcid_text(trend.mcid, trend.better),
        "has_mcid": bool(trend.mcid and trend.better), "improved": improved,
    }


# -- the patient page ------------------------------------------------------------------------


def _age(birth: str | None, on: dt.date) -> int | None:
    try:
        born = dt.date.fromisoformat(birth or "")
    except ValueError:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def patient_context(db, patient_id: str) -> dict:
    patient = _patient_or_404(db, patient_id)
    pr = _patients(db)
    episodes = pr.episodes(patient.id)
    who = identity_of(pr.latest_payload(patient.id))
    shown = []
    for n, ep in enumerate(episodes, 1):
        ts = trends(ep.visits)
        ids = [t.id for t in ts]
        rows = [{"link": v, "values": {m["id"]: _fmt(float(m["value"])) for m in v.measures
                                       if isinstance(m, dict) and m.get("id") in ids},
                 "method": METHODS.get(v.method, v.method)} for v in ep.visits]
        shown.append({"n": n, "started": ep.started_at, "visits": rows, "trends": [trend_view(t) for t in ts],
                      "columns": [(t.id, t.label) for t in ts]})
    shown.reverse()  # the current episode first
    return {
        "patient": patient, "name": who.name, "birth_date": patient.birth_date or who.birth_date,
        "age": _age(patient.birth_date or who.birth_date, dt.date.today()),
        "code": show_code(patient.return_code), "episodes": shown,
        "visit_count": sum(len(e["visits"]) for e in shown),
    }


@router.get("/patients")
def find_patient(request: Request, user: Staff, db: Db, ref: str = ""):
    """Finds a patient by reference (``P-XXXXXXXX``) or return code."""
    message = ""
    if ref.strip():
        patient = _patients(db).by_ref(ref[:40])
        if patient is not None:
            return RedirectResponse(f"/patients/{patient.id}", status_code=303)
        message = "No patient has this reference or return code."
    return render(request, "patients_find.html", 404 if message else 200, user=user, message=message)


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: str, user: Staff, db: Db):
    context = patient_context(db, patient_id)
    audit.record(db.accounts, user.name, "patient.view", context["patient"].ref)
    return render(request, "patient.html", user=user, **context)


@router.post("/patients/{patient_id}/export")
def patient_export(patient_id: str, user: Csrf, db: Db):
    """The patient's records on request: a FHIR R4 Bundle with their Patient
    and every QuestionnaireResponse, audited."""
    patient = _patient_or_404(db, patient_id)
    body = b"".join(exports.patient_stream(db.records, patient.id))
    audit.record(db.accounts, user.name, "patient.export", patient.ref, "fhir")
    return Response(body, media_type=exports.MEDIA_TYPES["fhir"], headers={
        "Content-Disposition": f'attachment; filename="patient-{patient.ref}.json"', "Cache-Control": "no-store"})


@router.post("/patients/{patient_id}/erase")
def patient_erase(request: Request, patient_id: str, user: AdminCsrf, db: Db,
                  confirm: Annotated[str, Form(max_length=40)] = ""):
    """Erases the patient and everything of theirs (admins; the reference
    must be typed to confirm)."""
    patient = _patient_or_404(db, patient_id)
    if confirm.strip().upper() != patient.ref:
        raise PageRefused(422, f"To erase, type the patient's reference {patient.ref}; nothing was erased.")
    counts = erase(db, patient, user.name)
    return render(request, "patient_erased.html", user=user, ref=patient.ref, counts=counts)


def erase(db, patient, user: str) -> dict:
    """Erases one patient, audited by reference (the CLI does the same)."""
    counts = _patients(db).erase(patient.id)
    audit.record(db.accounts, user, "patient.erase", patient.ref,
                 f"{counts['visits']} visit(s), {counts['alerts']} alert(s), {counts['intakes']} intake(s)")
    return counts


# -- the clinic's outcomes --------------------------------------------------------------------


@router.get("/outcomes")
def outcomes_page(request: Request, user: Staff, db: Db):
    months, measures = outcomes(_patients(db).all_episode_measures())
    return render(request, "outcomes.html", user=user, months=months, measures=measures)


# -- the match on the intake page (its block: kiosk.hub.db.patients.intake_view) ------------------


def _decide(db, intake_id: str):
    if not valid_intake_id(intake_id):
        raise PageRefused(404, "There is no intake with this id on the hub.")
    return _patients(db)


def _back(intake_id: str) -> RedirectResponse:
    return RedirectResponse(f"/intakes/{intake_id}#patient", status_code=303)


@router.post("/intakes/{intake_id}/patient/confirm")
def confirm_match(intake_id: str, user: Csrf, db: Db):
    pr = _decide(db, intake_id)
    try:
        link = pr.confirm(intake_id, user.name)
    except NotFound:
        raise PageRefused(404, "This intake has no patient to confirm.") from None
    patient = pr.patient(link.patient_id)
    audit.record(db.accounts, user.name, "patient.confirm", intake_id, patient.ref if patient else "")
    return _back(intake_id)


@router.post("/intakes/{intake_id}/patient/link")
def link_match(intake_id: str, user: Csrf, db: Db, ref: Annotated[str, Form(max_length=40)] = ""):
    pr = _decide(db, intake_id)
    target = pr.by_ref(ref) if ref.strip() else None
    if target is None:
        raise PageRefused(422, "No patient has this reference or return code; the match was not changed.")
    current = pr.link_of_intake(intake_id)
    old = pr.patient(current.patient_id) if current else None
    try:
        before, _ = pr.relink(intake_id, user.name, target.id)
    except NotFound:
        raise PageRefused(404, "This intake has no patient to change.") from None
    audit.record(db.accounts, user.name, "patient.link", intake_id,
                 f"{old.ref if old else before.patient_id[:8]} -> {target.ref}")
    return _back(intake_id)


@router.post("/intakes/{intake_id}/patient/split")
def split_match(intake_id: str, user: Csrf, db: Db):
    pr = _decide(db, intake_id)
    try:
        before = pr.link_of_intake(intake_id)
        old = pr.patient(before.patient_id) if before else None
        _, new_id = pr.relink(intake_id, user.name, None)
    except NotFound:
        raise PageRefused(404, "This intake has no patient to change.") from None
    new = pr.patient(new_id)
    audit.record(db.accounts, user.name, "patient.split", intake_id,
                 f"{old.ref if old else '?'} -> {new.ref if new else '?'}")
    return _back(intake_id)


@router.post("/intakes/{intake_id}/patient/undo")
def undo_match(intake_id: str, user: Csrf, db: Db):
    pr = _decide(db, intake_id)
    try:
        before, back_to = pr.undo(intake_id, user.name)
    except NotFound:
        raise PageRefused(409, "There is no change of this match to undo.") from None
    restored = pr.patient(back_to)
    audit.record(db.accounts, user.name, "patient.undo", intake_id, f"back to {restored.ref if restored else '?'}")
    return _back(intake_id)
