"""Export figures for `make bench`.

* ``export_csv_per_s``: intakes per second of ``clinic-hub``'s CSV export
  over 100,000 stored intakes on SQLite, written through the private
  temporary file. The hub makes each visit's CSV cells when it stores it
  (``db.records.store_batch``), so the export only reads them.
* ``export_cells_fill_per_s``: intakes per second of making those cells
  for visits stored without them (an older hub's records, made at the
  next export): the part of the CSV's cost that moved to ingest.
* ``export_fhir_per_s``: the same for the FHIR R4 Bundle.
* ``export_peak_rss_mb``: the highest peak resident memory of the export
  processes above (each export runs in a fresh subprocess, so the figure is
  what one export costs, interpreter included).

Rates are wall-clock, as a clinic would see them; on a machine shared with
other work they fall with the load, so ``export_csv_per_cpu_s`` and
``export_fhir_per_cpu_s`` give the same per CPU-second of the export
process, which the neighbours' load barely moves.

The intakes are realistic payloads (tests/hub/intakes.py: the default
pack's answers, a nested QuestionnaireResponse, summary and notices, and
the display block the kiosk words for the hub), about 15 kB each,
bulk-inserted into the records table.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INTAKES = 100_000
REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from kiosk.hub import export
from kiosk.hub.db import open_database
from kiosk.hub.export.table import CELLS

fmt, url, out = sys.argv[1:4]
db = open_database(url, cells=CELLS, migrate=False)
report = export.Report()
start, cpu = time.perf_counter(), time.process_time()
export.write_file(Path(out), export.stream(fmt, db.records, report=report))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
# through fork and exec, so it would report the bench's own peak.
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": report.exported, "s": seconds, "cpu_s": cpu, "rss_mb": kb / 1024}))
"""


def make_intakes(url: str, n: int) -> None:
    """``n`` stored intakes, from three payload templates (one in four rows
    lacks a few answers) with the intake id and time filled in per row,
    inserted in large batches."""
    import datetime as dt
    import uuid

    from kiosk.hub.db import open_database
    from tests.hub.intakes import intake

    texts = []
    for skipped in ((), ("pain-duration", "height"), ("phone",)):
        template = intake(0)
        template["intake_id"] = "@ID@"
        template["submitted_at"] = "@AT@"
        template["questionnaire_response"]["authored"] = "@AT@"
        template["questionnaire_response"]["id"] = "@ID@"
        # Visits differ in the items skip logic hid or patients skipped, so
        # rows do not all have the export's columns.
        for link_id in skipped:
            del template["answers"][link_id]
        texts.append(json.dumps(template, ensure_ascii=False))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    open_database(url).close()
    # Straight into the file in big transactions without waiting for the
    # disk: this is setup, not what is measured.
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    rows = []
    for i in range(n):
        rid = str(uuid.UUID(int=i + 1))
        at = (start + dt.timedelta(seconds=97 * i)).isoformat(timespec="milliseconds")
        text = texts[0] if i % 4 else texts[1 + i % 8 // 4]
        rows.append((rid, at, rid, at, text.replace("@ID@", rid).replace("@AT@", at)))
        if len(rows) == 10_000 or i == n - 1:
            conn.execute("begin")
            conn.executemany(
                "insert into records (id, kind, kiosk_id, digest, received_at, intake_id, submitted_at, "
                "payload) values (?, 'visit', 'kiosk-1', 'bench', ?, ?, ?, ?)", rows)
            conn.execute("commit")
            rows.clear()
    conn.close()


def fill_cells(url: str) -> float:
    """Seconds to make the CSV cells of every stored intake, as the hub
    does at ingest (and an export does for records stored without them)."""
    from kiosk.hub.db import open_database
    from kiosk.hub.export.table import CELLS_VERSION, visit_cells

    with open_database(url, migrate=False) as db:
        start = time.perf_counter()
        made = db.records.fill_visit_cells(None, None, CELLS_VERSION, visit_cells)
        seconds = time.perf_counter() - start
    if made != INTAKES:
        raise RuntimeError(f"made the cells of {made} intakes, expected {INTAKES}")
    return seconds


def export_once(fmt: str, url: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, fmt, url, str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{fmt} export failed: {proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout)
    if figures["n"] != INTAKES:
        raise RuntimeError(f"{fmt} export wrote {figures['n']} intakes, expected {INTAKES}")
    return figures


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        data, out = Path(tmp) / "hub", Path(tmp) / "out"
        data.mkdir()
        out.mkdir()
        url = f"sqlite:///{data / 'hub.db'}"
        make_intakes(url, INTAKES)
        fill_s = fill_cells(url)
        csv_fig = export_once("csv", url, out / "visits.csv")
        fhir_fig = export_once("fhir", url, out / "visits.json")
    return [
        ("export_csv_per_s", INTAKES / csv_fig["s"], "intakes/s"),
        ("export_fhir_per_s", INTAKES / fhir_fig["s"], "intakes/s"),
        ("export_cells_fill_per_s", INTAKES / fill_s, "intakes/s"),
        ("export_csv_per_cpu_s", INTAKES / csv_fig["cpu_s"], "intakes/s"),
        ("export_fhir_per_cpu_s", INTAKES / fhir_fig["cpu_s"], "intakes/s"),
        ("export_peak_rss_mb", max(csv_fig["rss_mb"], fhir_fig["rss_mb"]), "MB"),
    ]


if __name__ == "__main__":
    started = time.perf_counter()
    for name, value, unit in run():
        print(f"{name}: {value:.1f} {unit}")
    print(f"(bench_export took {time.perf_counter() - started:.0f} s)", file=sys.stderr)
