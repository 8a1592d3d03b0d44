"""What the export formats share: reading stored visits defensively and
reporting what could not be read, without patient data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import msgspec

# Progress is reported every this many intakes: often enough for a bar,
# rarely enough to cost nothing.
PROGRESS_EVERY = 500


class ExportError(Exception):
    """An export that cannot be made, with one line saying why."""


@dataclass
class Report:
    """What an export did: how many intakes went out, which stored records
    were skipped and which values were rendered in a safe form. Record ids
    and kinds of problem only, so it can be printed and logged."""

    exported: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # the first MAX_NAMED
    skipped_count: int = 0
    notes: Counter = field(default_factory=Counter)

    MAX_NAMED = 100

    def skip(self, record_id: str, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < self.MAX_NAMED:
            self.skipped[record_id] = why

    def note(self, what: str) -> None:
        self.notes[what] += 1

    def lines(self, limit: int = 10) -> list[str]:
        """Warnings for standard error, at most ``limit`` record ids named."""
        out = []
        if self.skipped_count:
            named = ", ".join(f"{rid} ({why})" for rid, why in list(self.skipped.items())[:limit])
            more = f" and {self.skipped_count - limit} more" if self.skipped_count > limit else ""
            out.append(f"warning: {self.skipped_count} stored record(s) could not be read and were "
                       f"left out: {named}{more}")
        for what, n in sorted(self.notes.items()):
            out.append(f"warning: {what} ({n} time(s))")
        return out


class StoredVisit(msgspec.Struct):
    """The parts of a stored visit payload the exports read. Every field is
    ``Any`` so a value of the wrong type decodes and is dealt with where it
    is used, instead of failing the whole record."""

    intake_id: Any = None
    submitted_at: Any = None
    status: Any = None
    language: Any = None
    answers: Any = None
    computed: Any = None
    result: Any = None
    summary: Any = None
    notices: Any = None
    questionnaire_response: Any = None
    questionnaire_responses: Any = None
    display: Any = None


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def all_answers(visit: Any) -> dict:
    """The patient's answers and the computed (calculated) items of a
    visit, by linkId; an answer wins over a computed value of the same id."""
    answers, computed = visit.answers, visit.computed
    if computed.__class__ is not dict or not computed:
        return answers if answers.__class__ is dict else {}
    if answers.__class__ is not dict:
        return computed
    return {**computed, **answers}


def read_visits(records, since: str | None, before: str | None, decoder: msgspec.json.Decoder,
                report: Report) -> Iterator[tuple[str, str, Any]]:
    """(record id, kiosk id, decoded payload) of each readable visit;
    unreadable ones are skipped and reported."""
    for (record_id, kiosk_id, _), visit in decoded_rows(records.iter_visits(since, before), decoder, report):
        yield record_id, kiosk_id, visit


def decoded_rows(rows: Iterator[tuple], decoder: msgspec.json.Decoder, report: Report) -> Iterator[tuple]:
    """(row, decoded payload) of each row (record id, kiosk id, payload,
    ...) whose payload the decoder reads; the others are skipped and
    reported under their record id."""
    for row in rows:
        try:
            visit = decoder.decode(row[2])
        except msgspec.ValidationError:
            report.skip(row[0], "payload is not a JSON object")
            continue
        except (msgspec.DecodeError, TypeError):
            report.skip(row[0], "broken JSON")
            continue
        except RecursionError:
            report.skip(row[0], "JSON nested too deeply")
            continue
        yield row, visit


def counted(visits: Iterator, report: Report, progress: Callable[[int], None] | None) -> Iterator:
    """``visits`` as they are exported, counted in ``report`` and reported
    to ``progress`` (the number done so far) now and then."""
    for visit in visits:
        yield visit
        report.exported += 1
        if progress and report.exported % PROGRESS_EVERY == 0:
            progress(report.exported)
    if progress:
        progress(report.exported)
