"""Staff exports of the visits on the hub.

CSV columns (contract.md, "Export"): the fixed :data:`CSV_COLUMNS`, then one
column per answered linkId, in alphabetical order so two exports of the same
data line up.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Iterable, Iterator

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

FORMATS_LATER = ("json", "fhir", "pdf")


def cell(value) -> str:
    """One answer as CSV text: lists joined with ';', booleans as true/false,
    missing as empty. Text that a spreadsheet would run as a formula gets a
    leading quote, because a patient's typed answer must never execute."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "@", "\t", "\r"):
        return "'" + text
    return text


def visit_row(payload: dict, kiosk_id: str) -> dict[str, str]:
    """The fixed columns of one visit payload."""
    result = payload.get("result") or {}
    scores = result.get("scores") or {}
    startback = scores.get("startback") or {}
    return {
        "intake_id": cell(payload.get("intake_id")),
        "submitted_at": cell(payload.get("submitted_at")),
        "kiosk_id": cell(payload.get("kiosk_id") or kiosk_id),
        "language": cell(payload.get("language")),
        "tier": cell(result.get("tier")),
        "codes": ";".join(str(c) for c in (result.get("codes") or [])),
        "pain_now": cell(scores.get("pain-now")),
        "peg": cell(scores.get("peg")),
        "startback_total": cell(startback.get("total")),
        "startback_psychosocial": cell(startback.get("psychosocial")),
        "startback_risk": cell(startback.get("risk")),
    }


def csv_table(visits: Iterable[tuple[str, str, str]]) -> tuple[list[str], Iterator[list[str]]]:
    """Header and rows for ``visits`` as (record id, kiosk id, payload JSON)."""
    parsed = [(kiosk, json.loads(payload)) for _, kiosk, payload in visits]
    link_ids = sorted({k for _, v in parsed for k in (v.get("answers") or {})})
    header = CSV_COLUMNS + link_ids

    def rows() -> Iterator[list[str]]:
        for kiosk, visit in parsed:
            fixed = visit_row(visit, kiosk)
            answers = visit.get("answers") or {}
            yield [fixed[c] for c in CSV_COLUMNS] + [cell(answers.get(k)) for k in link_ids]

    return header, rows()


def write_csv(out: IO[str], header: list[str], rows: Iterable[list[str]]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n
