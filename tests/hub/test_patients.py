"""Returning patients on the hub (issue 19), on SQLite and PostgreSQL:
matching when a visit arrives through the sync API, the staff's confirm /
link / split / undo on the intake page, the patient page's trends with the
clinically important difference, the outcomes page, the patient reference
in CSV and FHIR exports, retention by whole episodes, and erasure on
request that leaves nothing of the patient behind.

Visits are sealed and sent through the real sync API (see test_web.Web).
They carry ``visit_kind`` and ``display`` as SPEC-18/19 kiosks send them.
"""

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from kiosk.hub import export, retention
from kiosk.hub.db import PatientRepository
from kiosk.sync import SyncWorker
from kiosk.store import Store
from kiosk.crypto import sealer_for

from .test_web import Web, now_iso

GIVEN, FAMILY, DOB = "Philippa", "Wetherington", "1972-05-09"
PEG_RULE = {"points": 2, "percent": 30}


def visit(kind: str | None, peg: float, given: str = GIVEN, family: str = FAMILY, dob: str = DOB,
          at: dt.datetime | None = None, code: str | None = None, display: bool = True) -> dict:
    """A visit payload as a SPEC-18/19 kiosk seals it."""
    at = at or dt.datetime.now(dt.timezone.utc)
    payload = {
        "intake_id": str(uuid.uuid4()), "kiosk_id": "front-desk", "status": "complete", "language": "en",
        "submitted_at": at.isoformat(timespec="milliseconds"), "visit_date": at.date().isoformat(),
        "content_version": "default-1.0.0", "return_code": code,
        "answers": {"given-name": given, "family-name": family, "dob": dob, "pain-now": 6,
                    "peg-pain": 6, "peg-enjoyment": 6, "peg-activity": 6},
        "result": {"tier": "none", "codes": [],
                   "scores": {"pain-now": 6, "peg": peg, "startback": {"total": 3, "psychosocial": 1, "risk": "low"}}},
        "summary": [],
    }
    if kind is not None:
        payload["visit_kind"] = kind
    if display:
        payload["display"] = {
            "languages": ["en"], "patient": {"name": f"{given} {family}", "birth_date": dob, "age": 54},
            "scores": [
                {"id": "peg", "label": {"en": "PEG"}, "value": peg, "fields": [], "mcid": PEG_RULE, "better": "lower"},
                {"id": "startback", "label": {"en": "STarT Back"}, "value": None,
                 "fields": [{"id": "total", "label": {"en": "Total"}, "value": 3},
                            {"id": "risk", "label": {"en": "Risk"}, "value": "low"}], "better": "lower"},
            ],
        }
    return payload


@pytest.fixture
def web(db_url):
    w = Web(db_url)
    yield w
    w.db.close()


def send(web: Web, *payloads: dict) -> list[str]:
    for p in payloads:
        web.submit("visit", p, p["intake_id"])
    return [p["intake_id"] for p in payloads]


def patients_of(web: Web, intakes: list[str]) -> list[str]:
    pr = PatientRepository(web.db.backend)
    return [pr.link_of_intake(i).patient_id for i in intakes]


def every_row(web: Web, skip: tuple[str, ...] = ()) -> str:
    """Every row of every table of the hub, as text."""
    with web.db.backend.transaction() as tx:
        if web.db.backend.name == "sqlite":
            tables = [r[0] for r in tx.execute("select name from sqlite_master where type = 'table'").fetchall()]
        else:
            tables = [r[0] for r in tx.execute("select table_name from information_schema.tables "
                                               "where table_schema = current_schema()").fetchall()]
        return "\n".join(repr(tx.execute(f"select * from {t}").fetchall()) for t in tables if t not in skip)


# -- matching ----------------------------------------------------------------------------


def test_returning_visits_join_the_patient_and_the_same_name_with_another_birth_date_does_not(web):
    day = dt.datetime(2026, 9, 1, 9, tzinfo=dt.timezone.utc)
    first, again, spelled, other_dob, other_name, new = send(
        web,
        visit("first", 6.7, at=day),
        visit("returning", 5.0, at=day + dt.timedelta(days=14)),
        # Case, accents and spacing do not count.
        visit("returning", 4.0, given="  PHILÍPPA ", family="wetherington", at=day + dt.timedelta(days=28)),
        visit("returning", 4.0, dob="1980-01-01", at=day + dt.timedelta(days=30)),
        visit("returning", 4.0, family="Wetherinton", at=day + dt.timedelta(days=31)),
        # Said first visit: a new patient even with a known name and birth date.
        visit("first", 6.0, at=day + dt.timedelta(days=32)),
    )
    a, b, c, d, e, f = patients_of(web, [first, again, spelled, other_dob, other_name, new])
    assert a == b == c
    assert len({a, d, e, f}) == 4
    pr = PatientRepository(web.db.backend)
    assert [pr.link_of_intake(i).method for i in (first, again, spelled, other_dob, other_name, new)] == [
        "first", "name-dob", "name-dob", "no-match", "no-match", "first"]
    # One episode for the three visits.
    assert [len(ep.visits) for ep in pr.episodes(a)] == [3]


def test_the_return_code_matches_with_the_birth_date_only(web):
    (first,) = send(web, visit("first", 6.0))
    patient = PatientRepository(web.db.backend).patient(patients_of(web, [first])[0])
    typed = patient.return_code[:3].lower() + "-" + patient.return_code[3:]
    by_code, wrong_dob = send(
        web,
        # A married name, but the code and birth date.
        visit("returning", 5.0, family="Okafor", code=typed),
        visit("returning", 5.0, given="Someone", family="Else", dob="1999-09-09", code=patient.return_code),
    )
    assert patients_of(web, [by_code])[0] == patient.id
    assert patients_of(web, [wrong_dob])[0] != patient.id
    pr = PatientRepository(web.db.backend)
    assert pr.link_of_intake(by_code).method == "code"


def test_a_visit_without_a_visit_kind_or_display_is_a_new_patient_scored_from_its_result(web):
    (old, again) = send(web, visit(None, 6.0, display=False), visit(None, 6.0, display=False))
    a, b = patients_of(web, [old, again])
    assert a != b
    link = PatientRepository(web.db.backend).link_of_intake(old)
    assert link.method == "no-kind"
    assert {m["id"]: (m["value"], m["mcid"]) for m in link.measures} == {
        "pain-now": (6.0, None), "peg": (6.0, None), "startback": (3.0, None)}


# -- staff decisions on the intake page --------------------------------------------------------


def test_staff_confirm_split_undo_and_link_each_in_one_audited_step(web):
    first, wrong = send(web, visit("first", 6.0), visit("returning", 5.0))
    stranger = send(web, visit("first", 4.0, given="Olu", family="Bankole", dob="1990-02-02"))[0]
    patient_a, = patients_of(web, [first])
    pr = PatientRepository(web.db.backend)
    ref_a = pr.patient(patient_a).ref
    client, csrf = web.staff()

    page = client.get(f"/intakes/{wrong}").text
    assert ref_a in page and "same name and birth date" in page and "Confirm: same patient" in page
    assert client.post(f"/intakes/{wrong}/patient/confirm", data={"csrf": csrf}).status_code == 303
    assert "confirmed by ana" in client.get(f"/intakes/{wrong}").text

    # A wrong match is undone in one step: the visit becomes a patient of its own.
    assert client.post(f"/intakes/{wrong}/patient/split", data={"csrf": csrf}).status_code == 303
    split_to = patients_of(web, [wrong])[0]
    assert split_to != patient_a and [len(e.visits) for e in pr.episodes(patient_a)] == [1]
    # ... and that change is undone in one step too.
    assert client.post(f"/intakes/{wrong}/patient/undo", data={"csrf": csrf}).status_code == 303
    assert patients_of(web, [wrong])[0] == patient_a
    assert pr.patient(split_to) is None  # the patient made by the split had no other visit

    # Linked to another patient by reference (the old one keeps its other visit).
    ref_b = pr.patient(patients_of(web, [stranger])[0]).ref
    assert client.post(f"/intakes/{wrong}/patient/link", data={"csrf": csrf, "ref": ref_b}).status_code == 303
    assert patients_of(web, [wrong])[0] == patients_of(web, [stranger])[0]
    assert pr.patient(patient_a) is not None
    bad = client.post(f"/intakes/{wrong}/patient/link", data={"csrf": csrf, "ref": "P-NOSUCH00"})
    assert bad.status_code == 422 and patients_of(web, [wrong])[0] == patients_of(web, [stranger])[0]
    assert client.post(f"/intakes/{wrong}/patient/undo", data={"csrf": csrf}).status_code == 303
    assert patients_of(web, [wrong])[0] == patient_a
    assert client.post(f"/intakes/{wrong}/patient/undo", data={"csrf": csrf}).status_code == 409

    steps = [(e["action"], e["target"]) for e in web.db.accounts.audit_entries() if e["action"].startswith("patient.")]
    assert steps == [("patient.confirm", wrong), ("patient.split", wrong), ("patient.undo", wrong),
                     ("patient.link", wrong), ("patient.undo", wrong)]
    audit_text = json.dumps(web.db.accounts.audit_entries())
    assert GIVEN not in audit_text and FAMILY not in audit_text
    # Without the form token nothing changes.
    assert client.post(f"/intakes/{wrong}/patient/split", data={}).status_code == 403
    assert patients_of(web, [wrong])[0] == patient_a


# -- trends and outcomes ---------------------------------------------------------------------------


def test_patient_page_shows_each_measure_as_a_plot_with_the_change_and_the_mcid_flag(web):
    day = dt.datetime(2026, 9, 1, 9, tzinfo=dt.timezone.utc)
    intakes = send(web, visit("first", 6.7, at=day), visit("returning", 5.0, at=day + dt.timedelta(days=14)),
                   visit("returning", 3.3, at=day + dt.timedelta(days=42)))
    patient_id = patients_of(web, intakes)[0]
    client, _ = web.staff()
    page = client.get(f"/patients/{patient_id}").text
    assert f"{GIVEN} {FAMILY}" in page and "Born 1972-05-09" in page
    peg = page[page.index('id="measure-1-peg"'):page.index('id="measure-1-startback"')]
    assert "First visit <b>6.7</b>, latest <b>3.3</b>" in peg and "−3.4" in peg
    assert "Clinically important improvement (at least 2 points and 30 % lower than the first visit)" in peg
    svg = peg[peg.index("<svg"):peg.index("</svg>")]
    # Readable without colour: every visit's value is written at its marker,
    # the first visit and the target are labelled lines.
    assert re.findall(r'class="value"[^>]*>([^<]+)<', svg) == ["6.7", "5", "3.3"]
    assert "first visit 6.7" in svg and "target ≤ 4.69" in svg
    assert svg.count("<circle") == 2 and svg.count('class="marker first"') == 1
    # STarT Back declares a direction but no MCID: no flag either way.
    rest = page[page.index('id="measure-1-startback"'):]
    assert "declares no clinically important difference" in rest
    assert [e["target"] for e in web.audit("patient.view")] == [PatientRepository(web.db.backend).patient(patient_id).ref]
    ref = PatientRepository(web.db.backend).patient(patient_id).ref
    found = client.get("/patients", params={"ref": ref.lower()})
    assert found.status_code == 303 and found.headers["location"] == f"/patients/{patient_id}"
    assert client.get("/patients", params={"ref": "P-NOSUCH00"}).status_code == 404
    assert client.get("/patients/" + str(uuid.uuid4())).status_code == 404
    assert client.get("/patients/not-an-id").status_code == 404


def test_outcomes_count_the_episodes_improved_by_the_mcid_per_month(web):
    sept = dt.datetime(2026, 9, 1, 9, tzinfo=dt.timezone.utc)
    send(web,
         # Improved by 3.4 points (51 %): counts.
         visit("first", 6.7, at=sept), visit("returning", 3.3, at=sept + dt.timedelta(days=40)),
         # 1.5 points (50 %): not enough points.
         visit("first", 3.0, given="Ana", dob="1950-01-01", at=sept),
         visit("returning", 1.5, given="Ana", dob="1950-01-01", at=sept + dt.timedelta(days=45)),
         # One visit only: not followed up.
         visit("first", 8.0, given="Bo", dob="1960-01-01", at=sept))
    client, _ = web.staff()
    page = client.get("/outcomes").text
    row = re.search(r"<tr><th scope=\"row\">2026-10</th>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[0] == "2" and cells[1].startswith("1 of 2 (50 %)")
    assert "2026-09" not in page


# -- exports -------------------------------------------------------------------------------------


def test_csv_and_fhir_exports_carry_a_stable_patient_reference(web):
    a1, a2, b1 = send(web, visit("first", 6.0), visit("returning", 4.0),
                      visit("returning", 5.0, dob="1980-01-01"))
    pr = PatientRepository(web.db.backend)
    ref_a, ref_b = (pr.patient(p).ref for p in patients_of(web, [a1, b1]))
    lines = b"".join(export.stream("csv", web.db.records)).decode().splitlines()
    header = lines[0].split(",")
    assert header[: len(export.CSV_COLUMNS) + 1] == [*export.CSV_COLUMNS, "patient_ref"]
    at = len(export.CSV_COLUMNS)
    refs = {line.split(",")[0]: line.split(",")[at] for line in lines[1:]}
    assert refs == {a1: ref_a, a2: ref_a, b1: ref_b}
    assert re.fullmatch(r"P-[A-Z2-9]{8}", ref_a) and GIVEN not in ref_a

    plain = json.loads(b"".join(export.stream("fhir", web.db.records)))
    Bundle.model_validate(plain)
    assert {e["resource"]["resourceType"] for e in plain["entry"]} == {"QuestionnaireResponse"}
    # Without Patient resources, each response still names its patient by reference.
    named = {e["resource"]["id"]: e["resource"]["subject"]["identifier"]["value"] for e in plain["entry"]}
    assert named == {a1: ref_a, a2: ref_a, b1: ref_b}
    bundle = json.loads(b"".join(export.stream("fhir", web.db.records, patients=True)))
    Bundle.model_validate(bundle)
    people = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
    assert sorted(p["identifier"][0]["value"] for p in people.values()) == sorted([ref_a, ref_b])
    assert {p["birthDate"] for p in people.values()} == {DOB, "1980-01-01"}
    responses = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "QuestionnaireResponse"}
    by_ref = {p["identifier"][0]["value"]: url for url, p in people.items()}
    assert responses[a1]["subject"]["reference"] == responses[a2]["subject"]["reference"] == by_ref[ref_a]
    assert responses[b1]["subject"]["reference"] == by_ref[ref_b]
    assert responses[b1]["subject"]["identifier"]["value"] == ref_b
    # A staff correction shows in the next export.
    client, csrf = web.staff()
    client.post(f"/intakes/{a2}/patient/split", data={"csrf": csrf})
    again = b"".join(export.stream("csv", web.db.records)).decode().splitlines()
    assert {line.split(",")[0]: line.split(",")[at] for line in again[1:]}[a2] not in (ref_a, ref_b)


# -- retention and erasure -----------------------------------------------------------------------------


def test_retention_removes_whole_episodes_only(web):
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=100)
    first, follow_up, lone = send(web, visit("first", 6.0), visit("returning", 4.0),
                                  visit("first", 5.0, given="Olu", dob="1990-02-02"))
    with web.db.backend.transaction() as tx:
        tx.execute("update records set received_at = ? where intake_id in (?, ?)",
                   [long_ago.isoformat(), first, lone])
    retention.set_days(web.db, 30, "boss")
    # The old first visit stays while its episode goes on.
    assert retention.run(web.db) == 1
    kept = [r.intake_id for r in web.db.records.records_received_since("1970-01-01")]
    assert sorted(kept) == sorted([first, follow_up])
    with web.db.backend.transaction() as tx:
        tx.execute("update records set received_at = ?", [long_ago.isoformat()])
    assert retention.run(web.db) == 2
    assert web.db.records.count_records() == 0
    with web.db.backend.transaction() as tx:
        assert [tx.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("patients", "episodes", "visit_links")] == [0, 0, 0]


def test_erase_leaves_nothing_of_the_patient_in_the_database_or_its_exports(web):
    intakes = send(web, visit("first", 6.0), visit("returning", 5.0), visit("returning", 4.0))
    alert = str(uuid.uuid4())
    web.submit("alert", {"kind": "emergency", "kiosk_id": "front-desk", "intake_id": intakes[2],
                         "created_at": now_iso(), "id": alert}, alert)
    other = send(web, visit("first", 5.0, given="Olu", family="Bankole", dob="1990-02-02"))[0]
    web.db.records.acknowledge_alert(alert, "ana")
    web.db.records.mark_reviewed(intakes[0], "ana")
    patient = PatientRepository(web.db.backend).patient(patients_of(web, intakes)[0])
    client, csrf = web.staff()
    client.get(f"/intakes/{intakes[1]}")
    download = client.post(f"/patients/{patient.id}/export", data={"csrf": csrf})
    assert download.status_code == 200 and f"patient-{patient.ref}" in download.headers["content-disposition"]
    copy = download.json()
    Bundle.model_validate(copy)
    assert [e["resource"]["resourceType"] for e in copy["entry"]] == ["Patient"] + ["QuestionnaireResponse"] * 3

    # Staff cannot erase; an admin must type the reference.
    assert client.post(f"/patients/{patient.id}/erase", data={"csrf": csrf, "confirm": patient.ref}).status_code == 403
    admin, admin_csrf = web.staff("boss")
    assert admin.post(f"/patients/{patient.id}/erase", data={"csrf": admin_csrf, "confirm": "P-"}).status_code == 422
    assert web.db.records.count_records() == 5
    done = admin.post(f"/patients/{patient.id}/erase", data={"csrf": admin_csrf, "confirm": patient.ref.lower()})
    assert done.status_code == 200 and "erased" in done.text

    gone = [GIVEN, FAMILY, DOB, patient.id, patient.return_code, *intakes, alert]
    rows = every_row(web, skip=("audit",))
    assert [g for g in gone + [patient.ref] if g in rows] == []
    assert other in rows and "Bankole" in rows  # another patient is kept
    audit = every_row(web)
    assert [g for g in (GIVEN, FAMILY, DOB) if g in audit] == []
    assert [(e["action"], e["target"]) for e in web.audit("patient.erase")] == [("patient.erase", patient.ref)]
    for fmt in ("csv", "json", "fhir"):
        data = b"".join(export.stream(fmt, web.db.records, patients=True)).decode()
        assert [g for g in gone + [patient.ref] if g in data] == [], fmt
        assert other in data
    assert admin.get(f"/patients/{patient.id}").status_code == 404
    assert admin.get(f"/intakes/{intakes[0]}").status_code == 404
    if web.db.backend.name == "sqlite":
        # Gone from the file too, not only from queries.
        path = web.db.backend.path
        raw = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())
        assert GIVEN.encode() not in raw and FAMILY.encode() not in raw


def test_cli_exports_and_erases_a_patient(hub, kiosk, tmp_path):
    store = Store.open(kiosk.database_path, sealer_for(kiosk))
    day = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=14)
    payloads = [visit("first", 6.0, at=day), visit("returning", 4.0, at=day + dt.timedelta(days=7)),
                visit("returning", 4.0, dob="1980-01-01", at=day + dt.timedelta(days=7))]
    for p in payloads:
        store.add("visit", p, record_id=p["intake_id"])
    assert SyncWorker(kiosk).drain().remaining == 0
    store.close()
    with hub.repo() as repo:
        pr = PatientRepository(repo.backend)
        patient = pr.patient(pr.link_of_intake(payloads[0]["intake_id"]).patient_id)
    out = tmp_path / "patient.json"
    r = hub.cli("patient", "export", patient.ref, "--out", str(out))
    assert r.exit_code == 0, r.output
    Bundle.model_validate(json.loads(out.read_text()))
    assert "2 visit(s)" in r.output
    assert hub.cli("patient", "erase", "P-NOSUCH00", "--yes").exit_code == 1
    r = hub.cli("patient", "erase", patient.ref, "--yes")
    assert r.exit_code == 0 and "2 visit(s)" in r.output
    csv_text = hub.cli("export", "--format", "csv").stdout
    assert GIVEN in csv_text  # the other patient, same name, other birth date
    assert payloads[0]["intake_id"] not in csv_text and payloads[2]["intake_id"] in csv_text
    audit = hub.cli("audit").stdout
    assert f'"action": "patient.erase", "target": "{patient.ref}"' in audit and GIVEN not in audit


def test_a_long_trend_writes_its_values_and_dates_without_overlap():
    from kiosk.hub.trends import Trend
    from kiosk.hub.routers.patients import chart

    start = dt.datetime(2025, 1, 6, tzinfo=dt.timezone.utc)
    points = [((start + dt.timedelta(days=7 * n)).isoformat(), 7 - n % 5) for n in range(50)]
    c = chart(Trend("pain-now", "Pain now", points, PEG_RULE, "lower"))
    written = [m for m in c["marks"] if m.labelled]
    dated = [m for m in c["marks"] if m.dated]
    assert c["marks"][0] in written and c["marks"][-1] in written
    assert min(b.x - a.x for a, b in zip(written, written[1:])) >= 22
    assert 3 <= len(dated) <= 6 and min(b.x - a.x for a, b in zip(dated, dated[1:])) >= 70
    assert c["target"] == "4.9" and c["sign"] == "≤"


def test_visits_stored_before_matching_existed_are_matched_by_the_hourly_job_or_when_opened(web):
    old = [visit("first", 6.0), visit("returning", 4.0), visit("returning", 4.0, given="Olu", dob="1990-02-02")]
    with web.db.backend.transaction() as tx:
        for p in old:
            tx.execute("insert into records (id, kind, kiosk_id, digest, received_at, intake_id, submitted_at, "
                       "payload) values (?, 'visit', 'k', 'd', ?, ?, ?, ?)",
                       [p["intake_id"], p["submitted_at"], p["intake_id"], p["submitted_at"], json.dumps(p)])
    client, _ = web.staff()
    assert "first visit: a new patient" in client.get(f"/intakes/{old[0]['intake_id']}").text
    assert retention.run(web.db) == 0  # no period set: nothing deleted, but every visit matched
    a, b, c = patients_of(web, [p["intake_id"] for p in old])
    assert a == b != c
    assert PatientRepository(web.db.backend).link_unlinked() == 0


def test_a_typed_control_character_cannot_stand_in_for_the_patient_reference(web):
    p = visit("first", 6.0)
    p["answers"]["free-text"] = "before\x1eafter"
    send(web, p)
    ref = PatientRepository(web.db.backend).patient(patients_of(web, [p["intake_id"]])[0]).ref
    header, row = b"".join(export.stream("csv", web.db.records)).decode().splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["patient_ref"] == ref and cells["free-text"] == "before\ufffdafter"
