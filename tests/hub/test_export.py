"""Staff exports as a clinic uses them: each format read back with the tool
a clinic would use (a CSV reader, a JSON parser, fhir.resources, poppler),
on SQLite and PostgreSQL, from intakes stored in the hub's records table."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import re
import subprocess
import uuid

import pytest
from fhir.resources.R4B.bundle import Bundle

from kiosk.hub import export
from kiosk.hub.db import Conflict, IncomingRecord, open_database
from kiosk.hub.db import patients
from kiosk.hub.export import fhir as fhir_export
from kiosk.hub.export import pdf as pdf_export
from kiosk.hub.export import table

from .intakes import QUESTIONNAIRE, intake, store
from tests.tools import require_tool

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def repo(db_url):
    """The records of a hub that makes the CSV cells as it stores visits."""
    db = open_database(db_url, cells=table.CELLS)
    yield db.records
    db.close()


def run(fmt: str, repo, **kw) -> tuple[bytes, export.Report]:
    report = export.Report()
    return b"".join(export.stream(fmt, repo, report=report, **kw)), report


def csv_rows(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert {len(r) for r in rows} == {len(rows[0])}  # every row has a cell under every column
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


# -- reading --------------------------------------------------------------------


def test_visits_are_read_in_chunks_oldest_first_each_exactly_once(repo):
    same_time = [intake(i) for i in range(5)]
    for v in same_time:  # ties on submitted_at must not lose or repeat rows at a chunk edge
        v["submitted_at"] = "2026-11-21T10:00:00.000+00:00"
    earlier = intake(10)
    earlier["submitted_at"] = "2026-11-20T10:00:00.000+00:00"
    later = intake(11)
    later["submitted_at"] = "2026-11-22T10:00:00.000+00:00"
    store(repo, [*same_time, earlier, later])
    store(repo, [("no-time", None, json.dumps({"answers": {}}))])
    with repo.backend.transaction() as tx:
        tx.execute("insert into records (id, kind, kiosk_id, digest, received_at, payload) "
                   "values ('an-alert', 'alert', 'kiosk-1', 'd', 'now', '{}')")

    ids = [rid for rid, _, _ in repo.iter_visits(chunk=2)]
    assert ids[0] == "no-time"
    assert ids[1] == earlier["intake_id"]
    assert sorted(ids[2:7]) == sorted(v["intake_id"] for v in same_time)
    assert ids[7:] == [later["intake_id"]]
    assert len(ids) == len(set(ids)) == 8 == repo.count_visits()
    assert [r for r, _, _ in repo.iter_visits(since="2026-11-21", chunk=3)] == ids[2:]
    assert [r for r, _, _ in repo.iter_visits(before="2026-11-21", chunk=3)] == [earlier["intake_id"]]


# -- CSV ------------------------------------------------------------------------


def test_csv_has_the_contract_columns_then_one_per_linkid(repo):
    visits = [intake(i) for i in range(3)]
    visits[2]["answers"]["tier"] = "a clinic's own item named like a fixed column"
    store(repo, visits, kiosk_id="kiosk-7")
    data, report = run("csv", repo)
    header, rows = csv_rows(data)
    assert header[: len(export.CSV_COLUMNS)] == export.CSV_COLUMNS
    # Then the patient reference (blank: these visits were put in the table
    # directly, never matched), then the linkIds.
    assert header[len(export.CSV_COLUMNS)] == "patient_ref"
    link_ids = header[len(export.CSV_COLUMNS) + 1:]
    # The calculated item too; a linkId named like a fixed column keeps both.
    assert link_ids == sorted([*intake(0)["answers"], "peg-score", "tier (answer)"])
    assert [r["intake_id"] for r in rows] == [intake(i)["intake_id"] for i in range(3)]
    first = rows[0]
    # The kiosk whose token sent the record, not the one named in the payload.
    assert first["kiosk_id"] == "kiosk-7"
    assert first["tier"] == "urgent" and first["codes"] == "ci-blood-thinner;rf-cancer"
    assert (first["pain_now"], first["peg"]) == ("0", "5.3")
    assert (first["startback_total"], first["startback_psychosocial"], first["startback_risk"]) == ("4", "2", "medium")
    assert first["given-name"] == "Zoë" and first["family-name"] == "Łukasiewicz"
    assert first["peg-score"] == "5.3" and first["tier (answer)"] == ""
    assert rows[2]["tier (answer)"] == "a clinic's own item named like a fixed column" and rows[2]["tier"] == "urgent"
    assert first["pain-areas"] == "lower-back;left-leg" and first["rf-cancer"] == "true"
    assert json.loads(first["height"]) == {"value": 170, "unit": "cm"}
    assert report.exported == 3 and not report.lines()


def test_csv_has_a_column_per_score_of_the_packs_after_the_linkids(repo):
    clinic = intake(1)  # a visit of a pack with a score of its own, as the kiosk sent it
    clinic["display"]["scores"].append({"id": "neck-impact", "label": {"en": "Neck impact"}, "value": 3,
                                        "fields": [{"id": "band", "label": {"en": "impact"}, "value": "high"}]})
    older = intake(2, with_display=False)  # from a kiosk before the display block: its result's scores
    older["result"]["scores"]["odi"] = 42.5
    odd = intake(3)
    odd["answers"]["\x1eodi"] = "a linkId that starts like a score's key"
    store(repo, [clinic, older, odd, intake(4)])
    header, rows = csv_rows(run("csv", repo)[0])
    assert header[: len(export.CSV_COLUMNS)] == export.CSV_COLUMNS
    assert header[-3:] == ["score:neck-impact", "score:neck-impact:band", "score:odi"]
    assert "\ufffdodi" in header and header.index("\ufffdodi") < header.index("score:neck-impact")
    by_id = {r["intake_id"]: r for r in rows}
    first, second, fourth = (by_id[intake(i)["intake_id"]] for i in (1, 2, 4))
    assert (first["score:neck-impact"], first["score:neck-impact:band"], first["score:odi"]) == ("3", "high", "")
    assert (second["score:odi"], second["score:neck-impact"], second["peg"]) == ("42.5", "", "5.3")
    assert fourth["score:neck-impact"] == fourth["score:odi"] == "" and fourth["startback_risk"] == "medium"


def test_no_csv_cell_or_header_starts_like_a_formula(repo):
    hostile = intake(1)
    hostile["intake_id"] = "=1+1"
    hostile["language"] = "@SUM(A1)"
    hostile["answers"]["given-name"] = "=HYPERLINK(\"http://evil\",\"x\")"
    hostile["answers"]["family-name"] = "-2+3"
    hostile["answers"]["free-text"] = "\tcmd"
    hostile["answers"]["note"] = "\r=1"
    hostile["answers"]["=cmd|' /C calc'!A0"] = "yes"
    hostile["answers"]["-linkid"] = -4
    hostile["result"]["codes"] = ["-code", "=x"]
    hostile["result"]["tier"] = "+urgent"
    store(repo, [hostile, intake(2)], kiosk_id="-kiosk")
    data, _ = run("csv", repo)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    for row in rows:
        for value in row:
            assert not value.startswith(FORMULA_START), value
    header, body = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in header and "'-linkid" in header
    bad = next(r for r in body if r["intake_id"] == "'=1+1")
    assert bad["codes"] == "'-code;=x" and bad["kiosk_id"] == "'-kiosk" and bad["tier"] == "'+urgent"
    assert bad["family-name"] == "'-2+3" and bad["'-linkid"] == "'-4" and bad["language"] == "'@SUM(A1)"
    assert bad["free-text"] == "'\tcmd" and bad["note"] == "'\r=1"


def test_since_and_until_are_whole_days(repo):
    days = [dt.date(2026, 11, d) for d in (19, 20, 21, 22)]
    store(repo, [intake(i, day=d) for i, d in enumerate(days)])

    def exported(**kw):
        return [r["submitted_at"][:10] for r in csv_rows(run("csv", repo, **kw)[0])[1]]

    assert exported(since="2026-11-20", until="2026-11-21") == ["2026-11-20", "2026-11-21"]
    assert exported(since=dt.date(2026, 11, 22)) == ["2026-11-22"]
    assert exported(until="2026-11-19") == ["2026-11-19"]
    with pytest.raises(export.ExportError, match="before since"):
        run("csv", repo, since="2026-11-22", until="2026-11-20")
    with pytest.raises(export.ExportError, match="not a date"):
        run("csv", repo, since="last week")


def stored_through_the_api(repo, visits: list[dict], kiosk_id: str = "kiosk-1") -> list[str]:
    """Stores visits as the sync API does, with :meth:`RecordsRepository.store_batch`."""
    records = []
    for v in visits:
        text = json.dumps(v, sort_keys=True, ensure_ascii=False)
        records.append(IncomingRecord(
            id=v["intake_id"], kind="visit", digest=hashlib.sha256(text.encode()).hexdigest(), payload_json=text,
            intake_id=v["intake_id"], submitted_at=v["submitted_at"]))
    return repo.store_batch(kiosk_id, records)


def cell_rows(repo) -> dict[str, int]:
    with repo.backend.transaction() as tx:
        return dict(tx.execute("select id, version from export_cells").fetchall())


def test_csv_cells_are_made_at_ingest_or_by_the_next_export_and_go_with_their_record(repo):
    ingested, legacy = intake(1), intake(2)
    assert stored_through_the_api(repo, [ingested], kiosk_id="kiosk-9") == ["stored"]
    assert cell_rows(repo) == {ingested["intake_id"]: table.CELLS_VERSION}
    store(repo, [legacy])  # as an older hub stored it: no cells yet
    first, _ = run("csv", repo)
    assert cell_rows(repo) == {v["intake_id"]: table.CELLS_VERSION for v in (ingested, legacy)}
    assert [r["kiosk_id"] for r in csv_rows(first)[1]] == ["kiosk-9", "kiosk-1"]

    # Cells of another version (the rendering changed) are made again.
    with repo.backend.transaction() as tx:
        tx.execute("update export_cells set version = 0, line = 'stale'")
    again, _ = run("csv", repo)
    assert again == first and set(cell_rows(repo).values()) == {table.CELLS_VERSION}

    # Retention deleting a record takes its cells with it.
    with repo.backend.transaction() as tx:
        tx.execute("delete from records where id = ?", [legacy["intake_id"]])
    assert cell_rows(repo) == {ingested["intake_id"]: table.CELLS_VERSION}
    assert [r["intake_id"] for r in csv_rows(run("csv", repo)[0])[1]] == [ingested["intake_id"]]


def test_a_batch_refused_for_a_conflict_leaves_no_cells_and_later_visits_keep_their_columns(repo):
    first = intake(1)
    stored_through_the_api(repo, [first])
    odd = intake(2)
    odd["answers"]["only-here"] = "yes"
    clash = dict(first, language="es")  # the same record id with other content
    with pytest.raises(Conflict):
        stored_through_the_api(repo, [odd, clash])
    assert cell_rows(repo) == {first["intake_id"]: table.CELLS_VERSION}
    stored_through_the_api(repo, [odd])  # its shape was rolled back with the batch: stored now
    header, rows = csv_rows(run("csv", repo)[0])
    assert "only-here" in header and [r["only-here"] for r in rows] == ["", "yes"]


def test_a_visit_stored_during_a_csv_export_never_breaks_its_columns(repo, monkeypatch):
    # A chunk read and written per row, so the export can be paused between rows.
    monkeypatch.setattr(table, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(patients, "iter_visit_cells_with_refs",
                        functools.partial(patients.iter_visit_cells_with_refs, chunk=1))
    store(repo, [intake(i) for i in range(2)])
    report = export.Report()
    chunks = export.stream("csv", repo, report=report)
    started = next(chunks)
    late = intake(3, day=dt.date(2026, 11, 22))
    late["answers"]["a-new-item"] = "=answered late"
    del late["answers"]["phone"]
    stored_through_the_api(repo, [late])
    header, rows = csv_rows(started + b"".join(chunks))
    assert "a-new-item" not in header
    assert [r["intake_id"] for r in rows] == [intake(i)["intake_id"] for i in (0, 1, 3)]
    assert rows[2]["phone"] == "" and rows[2]["given-name"] == "Zoë" and rows[2]["peg-score"] == "5.3"
    assert report.exported == 3
    assert report.notes == {table.NOTE_LATE: 1}


# -- JSON lines -----------------------------------------------------------------


def test_json_lines_hold_one_intake_each_with_the_authenticated_kiosk(repo):
    visits = [intake(i, kiosk_id="kiosk-from-payload") for i in range(3)]
    store(repo, visits, kiosk_id="kiosk-2")
    data, report = run("json", repo)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 3 and report.exported == 3
    for line, sent in zip(lines, visits):
        got = json.loads(line)
        assert got["kiosk_id"] == "kiosk-2"
        assert {k: v for k, v in got.items() if k != "kiosk_id"} == {k: v for k, v in sent.items() if k != "kiosk_id"}


# -- FHIR -----------------------------------------------------------------------


def no_empty_values(node, path="$"):
    """FHIR forbids empty strings, arrays and objects anywhere."""
    assert node not in ("", [], {}), path
    if isinstance(node, dict):
        for k, v in node.items():
            no_empty_values(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            no_empty_values(v, f"{path}[{i}]")


def validated_bundle(data: bytes) -> dict:
    bundle = json.loads(data)
    Bundle.model_validate(bundle)  # raises on anything FHIR R4(B) does not allow
    no_empty_values(bundle)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    for entry in bundle.get("entry", []):
        assert entry["resource"]["status"] in fhir_export.RESPONSE_STATUSES
    return bundle


def test_fhir_export_is_a_valid_r4_bundle_of_questionnaire_responses(repo):
    emergency = intake(2)
    emergency["status"] = "emergency"
    emergency["questionnaire_response"]["status"] = "stopped"
    emergency["questionnaire_response"]["id"] = "an-id-of-the-kiosks-own"
    old_kiosk = intake(3, with_response=False)
    old_kiosk["status"] = "emergency"
    old_kiosk["answers"]["note"] = "  "
    old_kiosk["answers"]["weight-kg"] = 71.5
    old_kiosk["answers"]["wake-time"] = "07:30:00"
    no_id = intake(4)
    del no_id["questionnaire_response"]["id"]
    sent = [intake(1), emergency, old_kiosk, no_id]
    store(repo, sent)

    bundle = validated_bundle(run("fhir", repo)[0])
    responses = [e["resource"] for e in bundle["entry"]]
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"urn:uuid:{v['intake_id']}" for v in sent]
    assert [r["id"] for r in responses] == [v["intake_id"] for v in sent]
    assert responses[3] == {**no_id["questionnaire_response"], "id": no_id["intake_id"]}

    kiosk_built = responses[0]
    assert kiosk_built["questionnaire"] == QUESTIONNAIRE and kiosk_built["status"] == "completed"
    pain = next(i for i in kiosk_built["item"] if i["linkId"] == "pain")
    now = next(i for i in pain["item"] if i["linkId"] == "pain-now")
    assert now["answer"][0]["item"][0]["linkId"] == "pain-duration"  # nested as asked
    areas = next(i for i in pain["item"] if i["linkId"] == "pain-areas")
    assert areas["answer"][0]["valueCoding"]["code"] == "lower-back"
    scores = next(i for i in kiosk_built["item"] if i["linkId"] == "questionnaires")
    assert {"linkId": "peg-score", "text": "PEG score (calculated)", "answer": [{"valueDecimal": 5.3}]} in scores["item"]
    assert responses[1]["status"] == "stopped"

    rebuilt = responses[2]
    assert rebuilt["status"] == "stopped" and rebuilt["authored"] == old_kiosk["submitted_at"]
    assert "questionnaire" not in rebuilt
    values = {i["linkId"]: i["answer"] for i in rebuilt["item"]}
    assert values["rf-saddle"] == [{"valueBoolean": False}]
    assert values["pain-now"] == [{"valueInteger": 3}]
    assert values["weight-kg"] == [{"valueDecimal": 71.5}]
    assert values["dob"] == [{"valueDate": "1961-04-02"}]
    assert values["wake-time"] == [{"valueTime": "07:30:00"}]
    assert values["sbst-9"] == [{"valueString": "moderately"}]
    assert values["pain-areas"] == [{"valueString": "lower-back"}, {"valueString": "left-leg"}]
    assert values["height"] == [{"valueQuantity": {"value": 173, "unit": "cm"}}]
    assert values["peg-score"] == [{"valueDecimal": 5.3}]  # the calculated item, from "computed"
    assert "note" not in values  # blank text is no answer in FHIR


def test_fhir_export_has_a_response_per_questionnaire_a_composed_visit_asked(repo):
    composed = intake(1)
    later = {"resourceType": "QuestionnaireResponse", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "part")),
             "questionnaire": "https://riverside.example/fhir/Questionnaire/neck|3", "status": "completed",
             "authored": composed["submitted_at"],
             "item": [{"linkId": "nk-arm-numb", "text": "Is one of your arms numb?", "answer": [{"valueBoolean": True}]}]}
    broken = {"resourceType": "Patient", "id": str(uuid.uuid4())}
    composed["questionnaire_responses"] = [composed["questionnaire_response"], later, broken]
    store(repo, [composed, intake(2)])
    data, report = run("fhir", repo)
    bundle = validated_bundle(data)
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        f"urn:uuid:{composed['intake_id']}", f"urn:uuid:{later['id']}", f"urn:uuid:{intake(2)['intake_id']}"]
    assert bundle["entry"][1]["resource"] == later
    assert report.exported == 2
    assert any("later questionnaire was unusable" in line for line in report.lines())


def test_fhir_export_of_nothing_is_still_a_valid_bundle(repo):
    bundle = validated_bundle(run("fhir", repo)[0])
    assert "entry" not in bundle


# -- bad stored values ----------------------------------------------------------


def bad_records() -> list:
    wrong_types = intake(20)
    wrong_types["answers"] = ["not", "an", "object"]
    wrong_types["result"] = "urgent"
    wrong_types["summary"] = {"code": 1}
    wrong_types["notices"] = 7
    wrong_types["questionnaire_response"] = "oops"
    huge = intake(21)
    huge["answers"]["free-text"] = "Zoë " * 50_000
    huge["answers"]["pain-areas"] = [None, 3, {"x": 1}]
    odd = intake(22)
    odd["result"]["codes"] = 5
    odd["result"]["scores"] = {"startback": "high"}
    odd["answers"]["control"] = "a\x00b\x07c"
    # Nesting the JSON parser still reads, in an answer and in the response.
    deep = intake(23)
    text = json.dumps(deep, ensure_ascii=False)
    text = text.replace('"phone": "+34 600 123 456"', '"phone": ' + "[" * 900 + "]" * 900)
    items = '{"linkId": "d", "item": [' * 60 + '{"linkId": "leaf"}' + "]}" * 60
    text = text.replace('"item": [{"linkId": "about-you"', f'"item": [{items}, {{"linkId": "about-you"')
    return [
        intake(1),
        ("broken", "2026-11-21T09:00:00.000+00:00", '{"intake_id": "x", "answers": {'),
        ("a-list", "2026-11-21T09:00:01.000+00:00", "[1, 2, 3]"),
        ("too-deep", "2026-11-21T09:00:02.000+00:00", '{"answers": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"),
        (deep["intake_id"], deep["submitted_at"], text),
        wrong_types, huge, odd,
    ]


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_one_bad_stored_value_never_breaks_an_export(repo, fmt):
    store(repo, bad_records())
    data, report = run(fmt, repo)
    assert report.exported == 5
    assert report.skipped == {"broken": "broken JSON", "a-list": "payload is not a JSON object",
                              "too-deep": "JSON nested too deeply"}
    warnings = "\n".join(report.lines())
    assert "broken" in warnings and "a-list" in warnings
    assert "Zoë" not in warnings and "Łukasiewicz" not in warnings  # no patient data in warnings
    if fmt == "csv":
        header, rows = csv_rows(data)
        assert len(rows) == 5
        huge = next(r for r in rows if r["intake_id"] == intake(21)["intake_id"])
        assert len(huge["free-text"]) == table.MAX_CELL + len(table.CUT_MARK)
        assert any("was cut" in w for w in report.lines())
        assert next(r for r in rows if r["intake_id"] == intake(22)["intake_id"])["codes"] == "5"
    elif fmt == "json":
        assert len(data.splitlines()) == 5
    elif fmt == "fhir":
        bundle = validated_bundle(data)
        assert len(bundle["entry"]) == 5
        assert any("rebuilt from the answers" in w for w in report.lines())
    else:
        assert data.startswith(b"%PDF-")
        assert not any("could not be laid out" in w for w in report.lines())


# -- PDF ------------------------------------------------------------------------


@pytest.fixture
def poppler():
    """pdftotext and pdftoppm read the PDFs back; missing, they fail the run
    under CI and ``make test`` (tests/tools.py)."""
    for tool in ("pdftotext", "pdftoppm"):
        require_tool(tool, "poppler-utils")


needs_poppler = pytest.mark.usefixtures("poppler")


@needs_poppler
def test_pdf_has_a_page_per_intake_with_summary_scores_and_every_answer(repo, tmp_path):
    emergency = intake(2, given="José", family="Ñúñez", language="es", with_response=False)
    emergency["status"] = "emergency"
    emergency["result"]["tier"] = "emergency"
    emergency["answers"]["pain-areas"] = ["neck", "buttocks", "right-leg"]
    emergency["display"]["body_map"]["marked"] = ["neck", "buttocks", "right-leg"]
    older = intake(3, given="Olga", family="Older", with_response=False, with_display=False)
    store(repo, [intake(1), emergency, older])
    data, report = run("pdf", repo)
    pdf = tmp_path / "intakes.pdf"
    pdf.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.M)
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    first, second, third = pages[0], pages[1], pages[2]
    assert "Zoë Łukasiewicz" in first and "Tier: URGENT" in first and "1961-04-02 (65 years)" in first
    assert "History of cancer: rule out spinal metastasis before treatment." in first
    assert "Takes blood thinners" in first
    # The scores under the labels the kiosk sent with the visit.
    assert "PEG (0-10): 5.3" in first and "risk group medium" in first
    assert "STarT Back items are paraphrased" in first
    assert "Painful areas: Lower back, Left leg" in first
    # Every answer, by the question texts the kiosk sent.
    assert "PEG score (calculated)" in first and "How long have you had it?" in first
    assert "More than 12 weeks" in first
    # A question too long for its column is named by its linkId.
    assert "rf-saddle: Since this pain began" in first
    assert "José Ñúñez" in second and "Tier: EMERGENCY" in second and "stopped early" in second
    assert "Painful areas: Neck, Buttocks, Right leg" in second  # in the staff language
    # A visit from an older kiosk (no display block): every answer by linkId.
    assert "(no name given)" in third and "No body map" in third
    for link_id in older["answers"]:
        assert link_id in third, link_id
    # The body map marks the painful areas in red: the marked area's
    # centre is red on the page, an unmarked one is not.
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    from PIL import Image

    figure = emergency["display"]["body_map"]

    def colour_at(page: int, area: str) -> tuple[int, int, int]:
        img = Image.open(tmp_path / f"page-{page}.png").convert("RGB")
        x, y, w, h = next(r["box"] for r in figure["regions"] if r["code"] == area)
        scale = pdf_export.MAP_HEIGHT / 100
        # The figure sits under the fixed-height page header (29 mm) and its title.
        mm_x = pdf_export.MAP_X + (x + w / 2) * figure["aspect"] * scale
        mm_y = 31 + 6 + (y + h / 2) * scale
        return img.getpixel((round(mm_x / 25.4 * 50), round(mm_y / 25.4 * 50)))

    assert colour_at(1, "lower-back") == pdf_export.MARKED
    assert colour_at(1, "neck") == pdf_export.UNMARKED
    assert colour_at(2, "neck") == pdf_export.MARKED
    assert colour_at(2, "lower-back") == pdf_export.UNMARKED


def test_pdf_refuses_a_range_too_long_to_print(repo, monkeypatch):
    monkeypatch.setattr(export, "PDF_MAX_INTAKES", 2)
    store(repo, [intake(i) for i in range(3)])
    with pytest.raises(export.ExportError, match="at most 2 intakes and this range has 3"):
        run("pdf", repo)
    assert run("pdf", repo, until="2026-11-20")[0].startswith(b"%PDF-")


def test_pdf_without_the_font_says_which_package_to_install(repo, monkeypatch):
    monkeypatch.setattr(export.pdf, "FONT_DIRS", ("/nonexistent/fonts",))
    with pytest.raises(export.ExportError, match="fonts-dejavu-core"):
        run("pdf", repo)


# -- writing files and `clinic-hub export` ----------------------------------------


def test_a_failed_export_leaves_the_previous_file_and_no_partial_one(tmp_path):
    out = tmp_path / "visits.csv"
    out.write_text("yesterday's export")

    def chunks():
        yield b"intake_id\n"
        raise export.ExportError("database went away")

    with pytest.raises(export.ExportError, match="went away"):
        export.write_file(out, chunks())
    assert out.read_text() == "yesterday's export"
    assert [p.name for p in tmp_path.iterdir()] == ["visits.csv"]


@pytest.fixture
def hub_dir(tmp_path, sqlite_url):
    """An initialised hub (not serving) with three intakes stored."""
    from .conftest import Hub

    h = Hub(tmp_path / "hub-data", sqlite_url)
    with h.repo() as repo:
        store(repo, [intake(i) for i in range(3)])
    return h


@pytest.mark.parametrize("fmt, magic", [("csv", b"intake_id,"), ("json", b'{"intake_id"'),
                                        ("fhir", b'{"resourceType":"Bundle"'), ("pdf", b"%PDF-")])
def test_cli_export_writes_a_private_file_in_each_format(hub_dir, tmp_path, fmt, magic):
    out = tmp_path / "exports" / f"visits{export.FILE_SUFFIX[fmt]}"
    out.parent.mkdir()
    result = hub_dir.cli("export", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == "3 intake(s) exported"
    assert out.read_bytes().startswith(magic)
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_cli_export_never_writes_through_a_link_or_into_the_data_folder(hub_dir, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    link = tmp_path / "visits.csv"
    link.symlink_to(victim)
    result = hub_dir.cli("export", "--out", str(link))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {link}: is a symbolic link; refusing to write through it"
    assert victim.read_text() == "not yours" and link.is_symlink()

    before = sorted(p.name for p in hub_dir.data.iterdir())
    inside = hub_dir.cli("export", "--out", str(hub_dir.data / "visits.csv"))
    assert inside.exit_code == 1 and "inside the hub's data folder" in inside.output
    alias = tmp_path / "alias"
    alias.symlink_to(hub_dir.data)
    via_alias = hub_dir.cli("export", "--format", "json", "--out", str(alias / "visits.jsonl"))
    assert via_alias.exit_code == 1 and "inside the hub's data folder" in via_alias.output
    assert sorted(p.name for p in hub_dir.data.iterdir()) == before


def test_cli_export_bad_destination_or_dates_are_one_clear_line(hub_dir, tmp_path):
    missing = hub_dir.cli("export", "--out", str(tmp_path / "no" / "such" / "visits.csv"))
    assert missing.exit_code == 1
    assert missing.output.strip() == f"Error: {tmp_path / 'no/such/visits.csv'}: the folder {tmp_path / 'no/such'} does not exist"
    backwards = hub_dir.cli("export", "--since", "2026-11-22", "--until", "2026-11-01")
    assert backwards.exit_code == 1 and "before since" in backwards.output
    bad = hub_dir.cli("export", "--until", "soon")
    assert bad.exit_code == 2 and "--until" in bad.output
    for result in (missing, backwards, bad):
        assert "Traceback" not in result.output


def test_cli_export_on_a_broken_database_is_one_line_and_leaves_no_file(hub_dir, tmp_path):
    with hub_dir.repo() as repo, repo.backend.transaction() as tx:
        tx.execute("alter table records rename to records_lost")
    out = tmp_path / "visits.csv"
    result = hub_dir.cli("export", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: the database failed during the export: OperationalError")
    assert "Traceback" not in result.output and not list(tmp_path.glob("*visits*"))


def test_cli_export_shows_a_progress_bar_on_a_terminal(hub_dir, tmp_path):
    import os
    import pty
    import sys
    import time

    from .conftest import REPO_ROOT

    out = tmp_path / "visits.csv"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.hub.cli", "export", "--out", str(out), "--data", str(hub_dir.data),
         "--db", hub_dir.db], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd=REPO_ROOT)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(30) == 0
    text = seen.decode("utf-8", "replace")
    assert "exporting csv" in text and "100%" in text
    assert "3 intake(s) exported" in text
    assert len(out.read_text().splitlines()) == 4


def test_pdf_of_characters_the_font_lacks_logs_no_patient_data(repo, caplog):
    import logging

    store(repo, [intake(1, given="李小龍", family="Łukasiewicz")])
    caplog.set_level(logging.DEBUG)
    data, report = run("pdf", repo)
    assert data.startswith(b"%PDF-") and report.exported == 1
    assert "李" not in caplog.text and "\\u674e" not in caplog.text
    assert any("no glyph" in line for line in report.lines())


# -- from the kiosk's engine to the export, end to end ----------------------------


def fhir_answers(response: dict) -> dict[str, list]:
    """Every answered item of a QuestionnaireResponse by linkId, however it nests."""
    found: dict[str, list] = {}

    def walk(items):
        for item in items:
            if "answer" in item:
                found[item["linkId"]] = item["answer"]
            walk(item.get("item", []))
            for answer in item.get("answer", []):
                walk(answer.get("item", []))

    walk(response.get("item", []))
    return found


def test_visits_answered_on_the_kiosk_reach_every_export_through_a_real_sync(hub, tmp_path):
    """The default pack and a published questionnaire with a calculated item,
    answered with the kiosk's own engine, sealed into its outbox, synced to a
    real hub over TLS, exported by `clinic-hub export`: the FHIR Bundle
    validates with the computed answers in it, and the CSV has a column per
    linkId holding the answers, under the kiosk id the hub gave the kiosk."""
    from kiosk.crypto import read_enrollment, sealer_for
    from kiosk.questionnaire import load_pack
    from kiosk.store import Store
    from kiosk.sync import SyncWorker
    from kiosk.visit import Visit

    from .conftest import REPO_ROOT, enroll_kiosk

    def answered(pack, answers: dict) -> Visit:
        visit = Visit(pack, "en", dt.date(2026, 11, 21))
        for link_id, value in answers.items():
            visit.answer(link_id, value)
        return visit

    data = REPO_ROOT / "tests" / "data"
    apgar = "lhc-forms-apgar-with-itemWeight-variable.json"
    visits = [
        answered(load_pack(), json.loads((data / "selftest.json").read_text())["answers"]),
        answered(load_pack(data / "questionnaires" / apgar),
                 json.loads((data / "questionnaires" / "visits" / apgar).read_text())["answers"]),
    ]
    payloads = [v.payload("complete") for v in visits]
    assert payloads[1]["computed"] == {"9272-6": 8}  # the Apgar total, never asked

    cfg = enroll_kiosk(hub, tmp_path / "kiosk-data")
    store = Store.open(cfg.database_path, sealer_for(cfg))
    try:
        for payload in payloads:
            store.add("visit", payload)
        assert SyncWorker(cfg).drain().remaining == 0
    finally:
        store.close()
    kiosk_id = read_enrollment(cfg.data_path)["kiosk_id"]

    out = tmp_path / "exports"
    out.mkdir()
    for fmt, name in (("fhir", "visits.json"), ("csv", "visits.csv")):
        result = hub.cli("export", "--format", fmt, "--out", str(out / name))
        assert result.exit_code == 0, result.output

    bundle = validated_bundle((out / "visits.json").read_bytes())
    responses = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert set(responses) == {p["intake_id"] for p in payloads}
    for payload in payloads:
        response = responses[payload["intake_id"]]
        sealed = payload["questionnaire_response"]
        assert response["questionnaire"] == sealed["questionnaire"] and response["status"] == "completed"
        got = fhir_answers(response)
        assert got == fhir_answers(sealed)
        for link_id in [*payload["answers"], *payload["computed"]]:
            assert got.get(link_id), link_id  # every answer and calculated item is in the response
    apgar_answers = fhir_answers(responses[payloads[1]["intake_id"]])
    assert apgar_answers["9272-6"] == [{"valueDecimal": 8}]
    assert apgar_answers["32406-1"][0]["valueCoding"]["code"] == "LA6723-6"

    header, rows = csv_rows((out / "visits.csv").read_bytes())
    assert header[: len(export.CSV_COLUMNS) + 1] == [*export.CSV_COLUMNS, "patient_ref"]
    link_ids = {k for p in payloads for k in (*p["answers"], *p["computed"])}
    assert header[len(export.CSV_COLUMNS) + 1:] == sorted(link_ids)
    by_id = {r["intake_id"]: r for r in rows}
    default, scored = by_id[payloads[0]["intake_id"]], by_id[payloads[1]["intake_id"]]
    assert default["kiosk_id"] == scored["kiosk_id"] == kiosk_id
    assert default["tier"] == payloads[0]["result"]["tier"]
    assert default["pain-now"] == str(payloads[0]["answers"]["pain-now"])
    assert default["given-name"] == payloads[0]["answers"]["given-name"]
    assert scored["9272-6"] == "8" and scored["32406-1"] == "LA6723-6"
    assert scored["pain-now"] == "" and default["9272-6"] == ""  # each has only its own answers
