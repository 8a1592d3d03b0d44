"""The CSV export: the contract's :data:`CSV_COLUMNS`, then one column per
answered linkId, in alphabetical order so two exports of the same data line
up.

The linkId columns must be known before the first row is written, so the
export reads the visits twice: a cheap first pass that decodes only the
answer keys (values are skipped unparsed), then the rows. Memory holds the
set of linkIds and one chunk of records, whatever the number of intakes.

No cell or header starts the way a spreadsheet formula does (see
:func:`neutralise`): a patient's typed answer, a kiosk id or a linkId from a
clinic's own questionnaire must never run in the clinic's spreadsheet.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Callable, Iterable, Iterator

import msgspec

from .common import all_answers, as_dict, counted, read_visits

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
_PLAIN_NOT = frozenset(FORMULA_START)
_FIXED = frozenset(CSV_COLUMNS)
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


class _AnswerKeys(msgspec.Struct):
    answers: dict[str, msgspec.Raw] = {}
    computed: dict[str, msgspec.Raw] = {}


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


def link_ids(repo, since: str | None, before: str | None) -> list[str]:
    """Every linkId answered or computed in the range, sorted. Records that
    cannot be read are left to the second pass, which reports them."""
    decode = msgspec.json.Decoder(_AnswerKeys).decode
    decode_loose = msgspec.json.Decoder(_Row).decode
    keys: set[str] = set()
    for _, _, payload in repo.iter_visits(since, before):
        try:
            visit = decode(payload)
        except msgspec.ValidationError:
            try:  # a field of the wrong type: take what the rows will use
                visit = decode_loose(payload)
            except (msgspec.DecodeError, RecursionError):
                continue
            keys.update(all_answers(visit))
            continue
        except (msgspec.DecodeError, TypeError, RecursionError):
            continue
        keys.update(visit.answers)
        keys.update(visit.computed)
    return sorted(keys)


def header(link_id: str) -> str:
    """The column name of a linkId: the linkId itself, unless a questionnaire
    uses one of the :data:`CSV_COLUMNS` names as a linkId.

    >>> header("pain-now"), header("tier")
    ('pain-now', 'tier (answer)')
    """
    return f"{link_id} (answer)" if link_id in _FIXED else link_id


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


def stream(repo, since: str | None, before: str | None, report,
           progress: Callable[[int], None] | None) -> Iterator[bytes]:
    columns = link_ids(repo, since, before)
    known = set(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS + [cell(header(k)) for k in columns])
    decoder = msgspec.json.Decoder(_Row)
    for n, (_, kiosk_id, visit) in enumerate(
        counted(read_visits(repo, since, before, decoder, report), report, progress)
    ):
        if visit.answers.__class__ is not dict and visit.answers is not None:
            report.note("answers were not an object and were left out")
        answers = all_answers(visit)
        if not known.issuperset(answers):
            report.note("answers to a linkId that arrived during the export were left out")
        row = fixed_cells(visit, kiosk_id)
        row += cells(map(answers.get, columns))
        if sum(map(len, row)) > MAX_CELL and any(c.endswith(CUT_MARK) for c in row):
            report.note(f"a value longer than {MAX_CELL} characters was cut")
        writer.writerow(row)
        if n % 256 == 255:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")
