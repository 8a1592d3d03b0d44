"""The CSV export: the contract's :data:`CSV_COLUMNS`, then
:data:`PATIENT_REF` (the visit's patient, see :mod:`kiosk.hub.db.patients`),
then one column per answered linkId, in alphabetical order so two exports
of the same data line up, then one per score of the packs that is not a
fixed column (``score:odi``, and ``score:ID:FIELD`` for each part of a score
with several, such as a band), from what the kiosk sent with each visit
(``display.scores``, or the result's scores of a visit from an older kiosk).

Each visit's cells are made once, when the hub stores it
(:func:`visit_cells`, handed to the data layer as :data:`CELLS` and called by
:meth:`kiosk.hub.db.records.RecordsRepository.store_batch`), already
neutralised and CSV-quoted: the fixed columns as one piece of CSV text, the
linkId cells as a list in the order of the visit's own sorted linkIds, whose
set (its *shape*) is kept once in a small table. An export then never parses
a payload: it takes the union of the shapes in the range as its columns and
writes each row by filling a per-shape template (``",%s,,%s"``) with the
stored cells, which is what makes 100,000 intakes take seconds. Visits
stored another way, or before these cells existed, or under an older
:data:`CELLS_VERSION`, get theirs at the start of the next export that
covers them. Memory holds the shapes and one chunk of rows, whatever the
number of intakes.

No cell or header starts the way a spreadsheet formula does (see
:func:`neutralise`): a patient's typed answer, a kiosk id or a linkId from a
clinic's own questionnaire must never run in the clinic's spreadsheet.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import msgspec

from ..db.records import CellFormat
from .common import PROGRESS_EVERY, all_answers, as_dict

CSV_COLUMNS = [
    "intake_id",
    "submitted_at",
    "kiosk_id",
    "language",
    "tier",
    "codes",
    "pain_now",
    "peg",
    "startback_total",
    "startback_psychosocial",
    "startback_risk",
]

# What spreadsheets take as the start of a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets hold at most 32,767 characters in a cell; longer text is cut
# here, visibly, rather than spilling or being refused by the spreadsheet.
MAX_CELL = 32_000
#: The column after :data:`CSV_COLUMNS`: the stable, non-identifying
#: reference of the visit's patient (blank for a visit not linked to one).
#: It is not part of the stored cells, since staff may correct a match.
PATIENT_REF = "patient_ref"
_PLAIN_NOT = frozenset(FORMULA_START)
_FIXED = frozenset([*CSV_COLUMNS, PATIENT_REF])
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
CUT_MARK = " [cut]"


def neutralise(text: str) -> str:
    """``text`` with a leading quote when it starts like a formula.

    >>> neutralise("=HYPERLINK(1)"), neutralise("-3"), neutralise("ok")
    ("'=HYPERLINK(1)", "'-3", 'ok')
    """
    return "'" + text if text.startswith(FORMULA_START) else text


def _text(value: Any) -> str:
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if value is None:
        return ""
    if cls is list or cls is tuple:
        # One level only: nested lists and objects go out as JSON, without
        # recursing here however deep a stored value is.
        return ";".join(v if v.__class__ is str else _encode_sorted(v).decode("utf-8")
                        if v.__class__ in (list, dict) else _text(v) for v in value)
    if cls is dict:
        return _encode_sorted(value).decode("utf-8")
    return str(value)


def cells(values: Iterable[Any]) -> list[str]:
    """:func:`cell` of each value, with the common plain values (short text,
    booleans, counts) done inline: this is most of the CSV export's time."""
    return [
        v if v.__class__ is str and v[:1] not in _PLAIN_NOT and len(v) <= MAX_CELL
        else "false" if v is False else "true" if v is True else "" if v is None
        else str(v) if v.__class__ is int and v >= 0
        else cell(v)
        for v in values
    ]


def cell(value: Any) -> str:
    """One value as CSV text: lists joined with ';', booleans as
    true/false, missing as empty, objects as JSON; neutralised, and cut at
    :data:`MAX_CELL` characters."""
    text = _text(value)
    if len(text) > MAX_CELL:
        text = text[:MAX_CELL] + CUT_MARK
    return "'" + text if text.startswith(FORMULA_START) else text


#: Scores the fixed columns already hold (pain_now, peg, startback_*).
FIXED_SCORES = frozenset({"pain-now", "peg", "startback"})
#: Marks a score's key among the linkIds of a visit's shape: a linkId never
#: starts with it (one that does gets U+FFFD instead, see :func:`_keyed`).
SCORE = "\x1e"


class _Scores(msgspec.Struct):
    scores: Any = None


class _Row(msgspec.Struct):
    """The fields of :class:`StoredVisit` a row needs: msgspec skips the
    ones not named here (the response, the summary) without building
    Python objects for them, which halves the CSV's decoding time."""

    intake_id: Any = None
    submitted_at: Any = None
    language: Any = None
    answers: Any = None
    computed: Any = None
    result: Any = None
    # Only its scores are read (the rest is skipped as it is parsed).
    display: Optional[_Scores] = None


class _LooseRow(_Row):
    """A row whose ``display`` is not an object: read without it."""

    display: Any = None


def header(link_id: str) -> str:
    """The column name of a linkId (or of a score's key): the linkId itself,
    unless a questionnaire uses one of the :data:`CSV_COLUMNS` names as a
    linkId.

    >>> header("pain-now"), header("tier"), header(SCORE + "odi")
    ('pain-now', 'tier (answer)', 'score:odi')
    """
    if link_id.startswith(SCORE):
        return "score:" + link_id[1:]
    return f"{link_id} (answer)" if link_id in _FIXED else link_id


def score_values(visit: _Row) -> dict[str, Any]:
    """The scores of a visit beyond the fixed columns, by column key
    (:data:`SCORE` + ``id``, or + ``id:field``): from the kiosk's
    ``display.scores``, else (an older kiosk) from the result's scores."""
    out: dict[str, Any] = {}
    entries = visit.display.scores if visit.display.__class__ is _Scores else None
    if entries.__class__ is list:
        for entry in entries:
            if entry.__class__ is not dict or entry.get("id").__class__ is not str or entry["id"] in FIXED_SCORES:
                continue
            out[SCORE + entry["id"]] = entry.get("value")
            fields = entry.get("fields")
            for f in fields if fields.__class__ is list else ():
                if f.__class__ is dict and f.get("id").__class__ is str:
                    out[f"{SCORE}{entry['id']}:{f['id']}"] = f.get("value")
        return out
    scores = as_dict(as_dict(visit.result).get("scores"))
    for sid, value in scores.items():
        if sid in FIXED_SCORES:
            continue
        if value.__class__ is dict:
            out[SCORE + sid] = value.get("total")
            out.update((f"{SCORE}{sid}:{k}", v) for k, v in value.items() if k != "total")
        else:
            out[SCORE + sid] = value
    return out


def _keyed(answers: dict) -> dict:
    """``answers`` with a linkId that starts like a score's key made
    harmless (it is someone's odd questionnaire, not a score)."""
    if not any(k.startswith(SCORE) for k in answers):
        return answers
    return {("\ufffd" + k[1:] if k.startswith(SCORE) else k): v for k, v in answers.items()}


def fixed_cells(visit: _Row, kiosk_id: str) -> list[str]:
    """The :data:`CSV_COLUMNS` of one visit."""
    result = as_dict(visit.result)
    scores = as_dict(result.get("scores"))
    startback = as_dict(scores.get("startback"))
    return cells((
        visit.intake_id, visit.submitted_at, kiosk_id, visit.language, result.get("tier"),
        result.get("codes"), scores.get("pain-now"), scores.get("peg"), startback.get("total"),
        startback.get("psychosocial"), startback.get("risk"),
    ))


# Bump when the cells a visit gets change (a new rule for a value, a new
# fixed column): stored cells of another version are made again.
CELLS_VERSION = 3  # 2: score columns (issue 18) or the patient reference (issue 19); 3: both
# Separates the stored cells of a visit (see VisitCells): a control
# character no stored cell holds, because quote() replaces it.
SEP = "\x1f"
# What makes csv.writer (QUOTE_MINIMAL, the default dialect) quote a field.
_QUOTED = re.compile(r'[",\r\n]').search
# What a stored cell cannot hold: the separator, and NUL (PostgreSQL text
# cannot); neither has a place in an answer.
# Stands in a stored line for the patient reference cell, which is filled
# in at export time (staff may correct a match): a control character no
# stored cell holds either.
REF_MARK = "\x1e"
_UNSTORABLE = re.compile("[\x00\x1e\x1f]")
_SPECIAL = re.compile('[",\r\n\x00\x1e\x1f]').search
_ODD = re.compile('[",\r\n\x00\x1e]').search
_decode_row = msgspec.json.Decoder(_Row).decode
_decode_loose_row = msgspec.json.Decoder(_LooseRow).decode
_encode = msgspec.json.Encoder().encode
_decode_list = msgspec.json.Decoder(list[str]).decode
NOTE_NOT_OBJECT = "answers were not an object and were left out"
NOTE_CUT = f"a value longer than {MAX_CELL} characters was cut"
NOTE_LATE = "answers to a linkId that arrived during the export were left out"


def quote(text: str) -> str:
    """``text`` as one CSV field, quoted as :func:`csv.writer` would; NUL
    and the unit separator U+001F become U+FFFD.

    >>> quote("plain"), quote('say "hi", then'), quote("a\\x00b")
    ('plain', '"say ""hi"", then"', 'a\\ufffdb')
    """
    if not _SPECIAL(text):
        return text
    text = _UNSTORABLE.sub("\ufffd", text)
    return '"' + text.replace('"', '""') + '"' if _QUOTED(text) else text


def joined(fields: list[str]) -> str:
    """``fields`` CSV-quoted and joined with :data:`SEP`, with one search
    for the common case where none needs quoting.

    >>> joined(["a", "b,c"]) == "a" + SEP + '"b,c"'
    True
    """
    text = SEP.join(fields)
    if _ODD(text) or text.count(SEP) != len(fields) - 1:
        return SEP.join([quote(f) if _SPECIAL(f) else f for f in fields])
    return text


@dataclass(frozen=True)
class VisitCells:
    """One stored visit made ready for the CSV export by :func:`visit_cells`.

    ``line`` holds the CSV-quoted cells joined with :data:`SEP`: first the
    :data:`CSV_COLUMNS`, then :data:`REF_MARK` in place of the patient
    reference (filled in by the export), then one per linkId of the visit in the sorted
    order of ``link_ids`` (JSON), whose digest is ``shape``; so when an
    export's columns are exactly those linkIds, the row is ``line`` with
    each separator made a comma. ``notes`` is a JSON list of what was
    rendered in a safe form (for the export's :class:`Report`). A record
    that cannot be read has only ``problem``, why the export skips it.
    """

    shape: str | None = None
    link_ids: str | None = None
    line: str | None = None
    notes: str | None = None
    problem: str | None = None


@functools.lru_cache(maxsize=256)
def shape_of(link_ids: tuple[str, ...]) -> tuple[str, str]:
    """(digest, JSON) of sorted linkIds; most visits share a few shapes."""
    text = _encode(link_ids).decode("utf-8")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32], text


def visit_cells(kiosk_id: str, payload: str | bytes) -> VisitCells:
    """The CSV cells of one stored visit payload, sent by ``kiosk_id`` (the
    kiosk of the device token, never one named in the payload). Never
    raises on what is stored: an unreadable payload gives a ``problem``.
    """
    try:
        try:
            visit = _decode_row(payload)
        except msgspec.ValidationError:
            visit = _decode_loose_row(payload)  # a display of the wrong shape: no scores from it
    except msgspec.ValidationError:
        return VisitCells(problem="payload is not a JSON object")
    except (msgspec.DecodeError, TypeError):
        return VisitCells(problem="broken JSON")
    except RecursionError:
        return VisitCells(problem="JSON nested too deeply")
    notes = []
    if visit.answers.__class__ is not dict and visit.answers is not None:
        notes.append(NOTE_NOT_OBJECT)
    answers = _keyed(all_answers(visit))
    scores = score_values(visit)
    keys = sorted(answers)
    score_keys = sorted(scores)
    fixed = fixed_cells(visit, kiosk_id)
    answered = cells(map(answers.__getitem__, keys)) + cells(map(scores.__getitem__, score_keys))
    keys += score_keys
    if max(map(len, fixed + answered)) > MAX_CELL and any(c.endswith(CUT_MARK) for c in fixed + answered):
        notes.append(NOTE_CUT)
    shape, link_ids = shape_of(tuple(keys))
    line = joined(fixed) + SEP + REF_MARK + (SEP + joined(answered) if answered else "")
    return VisitCells(shape=shape, link_ids=link_ids, line=line,
                      notes=_encode(notes).decode("utf-8") if notes else None)


#: What the hub's database makes each visit's cells with when it stores it
#: (``open_database(url, cells=CELLS)``): the data layer never imports this module.
CELLS = CellFormat(CELLS_VERSION, visit_cells)


def row_maker(columns: list[str], link_ids: list[str]) -> Callable[[str], str]:
    """What turns the stored ``line`` of a visit whose linkIds are
    ``link_ids`` into its CSV row under the export's sorted ``columns``
    (blank where it has no answer, leaving out linkIds that are not
    columns).

    ``line`` holds :data:`REF_MARK` after the fixed cells, where the
    patient reference goes.

    >>> make = row_maker(["a", "b", "c"], ["a", "c", "d"])
    >>> make(SEP.join(["fixed"] * (len(CSV_COLUMNS) + 1) + ["A", "C", "D"])).split(",")[len(CSV_COLUMNS) + 1:]
    ['A', '', 'C']
    """
    if link_ids == columns:
        return lambda line: line.replace(SEP, ",")
    where = {key: i for i, key in enumerate(link_ids)}
    fixed = len(CSV_COLUMNS) + 1
    # Index -1 is the blank appended to the fields below.
    pick = operator.itemgetter(*range(fixed), *(fixed + where[c] if c in where else -1 for c in columns))

    def make(line: str) -> str:
        fields = line.split(SEP)
        fields.append("")
        return ",".join(pick(fields))

    return make


def stream(records, since: str | None, before: str | None, report,
           progress: Callable[[int], None] | None) -> Iterator[bytes]:
    """The CSV export of the visits from ``since`` to ``before``."""
    shapes, missing = records.visit_cell_shapes(since, before, CELLS_VERSION)
    if missing:
        records.fill_visit_cells(since, before, CELLS_VERSION, visit_cells)
        shapes, _ = records.visit_cell_shapes(since, before, CELLS_VERSION)
    keys_of = {shape: _decode_list(link_ids) for shape, link_ids in shapes.items()}
    every = {k for keys in keys_of.values() for k in keys}
    # The linkIds, then the scores (a visit's own keys are in this order too).
    columns = sorted(k for k in every if not k.startswith(SCORE)) + sorted(k for k in every if k.startswith(SCORE))
    makers = {shape: row_maker(columns, keys) for shape, keys in keys_of.items()}
    del keys_of
    out = [",".join([*CSV_COLUMNS, PATIENT_REF, *(quote(cell(header(k))) for k in columns)]), "\r\n"]
    from ..db.patients import iter_visit_cells_with_refs

    for record_id, shape, line, notes, problem, ref in iter_visit_cells_with_refs(records, since, before,
                                                                                  CELLS_VERSION):
        if problem is not None:
            report.skip(record_id, problem)
            continue
        make = makers.get(shape)
        if make is None:  # a shape first stored during this export
            keys = _decode_list(records.visit_cell_shape(shape) or "[]")
            if not set(columns).issuperset(keys):
                report.note(NOTE_LATE)
            make = makers[shape] = row_maker(columns, keys)
        out.append(make(line).replace(REF_MARK, ref or ""))
        out.append("\r\n")
        if notes is not None:
            for what in _decode_list(notes):
                report.note(what)
        report.exported += 1
        if report.exported % PROGRESS_EVERY == 0:
            yield "".join(out).encode("utf-8")
            out.clear()
            if progress:
                progress(report.exported)
    yield "".join(out).encode("utf-8")
    if progress:
        progress(report.exported)
