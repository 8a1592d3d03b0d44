"""Staff exports of the intakes on the hub: CSV, JSON lines, a FHIR R4
Bundle and a printable PDF, for `clinic-hub export` and the staff page.

>>> with open("visits.csv", "wb") as out:          # doctest: +SKIP
...     for chunk in stream("csv", db.records, since="2026-11-01"):
...         out.write(chunk)

Every format streams, so 100,000 intakes go out in bounded memory (the PDF,
a printout, is capped at :data:`PDF_MAX_INTAKES`): JSON lines, FHIR and PDF
from the payloads (``iter_visits`` of the hub's ``db.records``), the CSV from
cells the hub made when it stored each visit (``iter_visit_cells``, see
:mod:`.table`, which hands the data layer the :data:`~.table.CELLS` that
make them). A stored record that cannot be read (broken JSON,
a payload that is not an object) is skipped, and a value of the wrong type or
of absurd size is rendered safely; both are counted in a :class:`Report`,
which names record ids only, never patient data.

The kiosk id in every format is the kiosk whose device token sent the record
(``records.kiosk_id``), never a ``kiosk_id`` found inside the payload.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterator

import msgspec

from .common import ExportError, Report, counted, read_visits
from .files import write_file
from .table import CSV_COLUMNS, cell, neutralise

__all__ = [
    "CSV_COLUMNS", "FILE_SUFFIX", "FORMATS", "MEDIA_TYPES", "PDF_MAX_INTAKES", "ExportError", "Report",
    "cell", "day_range", "neutralise", "patient_stream", "stream", "write_file",
]

FORMATS = ("csv", "json", "fhir", "pdf")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/x-ndjson",
    "fhir": "application/fhir+json",
    "pdf": "application/pdf",
}
FILE_SUFFIX = {"csv": ".csv", "json": ".jsonl", "fhir": ".json", "pdf": ".pdf"}
# fpdf2 builds a whole document in memory; a printout of more intakes than
# this is a mistake in the date range rather than something to print.
PDF_MAX_INTAKES = 1000


def day_range(since: dt.date | str | None, until: dt.date | str | None) -> tuple[str | None, str | None]:
    """Inclusive days ``since``..``until`` as the (since, before) bounds of
    :meth:`~kiosk.hub.db.records.RecordsRepository.iter_visits`. ``until`` counts the whole day.

    >>> day_range("2026-11-01", dt.date(2026, 11, 30))
    ('2026-11-01', '2026-12-01')
    """
    def day(value, name):
        if value is None or isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise ExportError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None

    first, last = day(since, "since"), day(until, "until")
    if first and last and last < first:
        raise ExportError(f"until {last} is before since {first}")
    return (first.isoformat() if first else None,
            (last + dt.timedelta(days=1)).isoformat() if last else None)


def stream(fmt: str, records, since: dt.date | str | None = None, until: dt.date | str | None = None, *,
           report: Report | None = None, progress: Callable[[int], None] | None = None,
           patients: bool = False) -> Iterator[bytes]:
    """The export of the visits submitted from ``since`` to ``until``
    (inclusive days, either open) in format ``fmt``, as chunks of bytes,
    read from ``records`` (the hub's ``db.records``).

    ``report`` collects counts and warnings; ``progress`` is called with the
    number of intakes done so far. With ``patients`` the FHIR Bundle also
    holds a ``Patient`` per matched patient, referenced by each
    response's ``subject`` (the CSV always has the ``patient_ref`` column).
    Raises :class:`ExportError` before the first chunk when the export
    cannot be made.
    """
    if fmt not in FORMATS:
        raise ExportError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    first, before = day_range(since, until)
    report = report if report is not None else Report()
    if fmt == "pdf":
        from . import pdf  # fpdf2 and the font are needed only here

        pdf.check_font()
        total = records.count_visits(first, before)
        if total > PDF_MAX_INTAKES:
            raise ExportError(f"a PDF holds at most {PDF_MAX_INTAKES} intakes and this range has {total}: "
                              "narrow it with --since/--until, or export csv, json or fhir")
        return pdf.stream(records, first, before, report, progress)
    if fmt == "csv":
        from . import table

        return table.stream(records, first, before, report, progress)
    if fmt == "json":
        return _json_lines(records, first, before, report, progress)
    from . import fhir

    return fhir.stream(records, first, before, report, progress, patients=patients)


def patient_stream(records, patient_id: str, report: Report | None = None) -> Iterator[bytes]:
    """One patient's records on request: a FHIR R4 Bundle with their
    ``Patient`` and every QuestionnaireResponse of theirs, referencing it."""
    from . import fhir
    from ..db.patients import iter_patient_visits

    return fhir.stream(records, None, None, report if report is not None else Report(), None, patients=True,
                       visits=iter_patient_visits(records, patient_id))


def _json_lines(records, since, before, report, progress) -> Iterator[bytes]:
    """One stored payload per line, its ``kiosk_id`` the authenticated one."""
    decoder = msgspec.json.Decoder(dict)
    encode = msgspec.json.Encoder().encode
    buf = bytearray()
    for _, kiosk_id, payload in counted(read_visits(records, since, before, decoder, report), report, progress):
        payload["kiosk_id"] = kiosk_id
        buf += encode(payload)
        buf += b"\n"
        if len(buf) > 1 << 16:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)
