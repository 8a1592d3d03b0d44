"""The records kiosks submitted, and what hangs off them: staff reviews of
intakes, acknowledgements of alerts, and each visit's CSV export cells.

The tables ``records``, ``intake_reviews``, ``alert_acks``,
``export_cells`` and ``export_shapes`` are this repository's. It knows
nothing of the CSV format: the export passes in what makes a visit's cells
(:class:`CellFormat`, see :mod:`kiosk.hub.export.table`), once when the
database is opened, for :meth:`RecordsRepository.store_batch`, and to each
call that fills missing cells.

>>> from . import open_database
>>> db = open_database("sqlite:///:memory:")
>>> db.records.store_batch("kiosk-1", [IncomingRecord("a1", "staff-call", "d1", "{}", None, None)])
['stored']
>>> db.records.store_batch("kiosk-1", [IncomingRecord("a1", "staff-call", "d1", "{}", None, None)])
['duplicate']
>>> db.records.acknowledge_alert("a1", "ana"), db.records.acknowledged_among("kiosk-1", ["a1", "a2"])
(True, ['a1'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from .backends import Backend, Tx, marks, utcnow


class Conflict(Exception):
    """Records whose id is already on the hub with different content."""

    def __init__(self, ids: list[str]):
        super().__init__(f"{len(ids)} record id(s) already stored with different content")
        self.ids = ids


@dataclass(frozen=True)
class IncomingRecord:
    """A decrypted record ready to store."""

    id: str
    kind: str
    digest: str
    payload_json: str
    intake_id: str | None
    submitted_at: str | None


@dataclass(frozen=True)
class StoredRecord:
    """A record as the staff page reads it; ``payload`` is parsed JSON."""

    id: str
    kind: str
    kiosk_id: str
    received_at: str
    intake_id: str | None
    submitted_at: str | None
    payload: dict


class Cells(Protocol):
    """A visit's export cells as the export made them (its ``VisitCells``)."""

    shape: str | None
    link_ids: str | None
    line: str | None
    notes: str | None
    problem: str | None


@dataclass(frozen=True)
class CellFormat:
    """What makes a visit's export cells, passed in by the export
    (``kiosk.hub.export.table.CELLS``): cells of an older ``version`` are
    made again by the next export."""

    version: int
    #: (kiosk id, payload JSON as text or UTF-8 bytes) -> :class:`Cells`.
    make: Callable[[str, Any], Cells]


def _stored(row) -> StoredRecord:
    try:
        payload = json.loads(row[6])
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    intake = row[4] or (payload.get("intake_id") if isinstance(payload.get("intake_id"), str) else None)
    return StoredRecord(row[0], row[1], row[2], row[3], intake, row[5], payload)


_RECORD_COLUMNS = "id, kind, kiosk_id, received_at, intake_id, submitted_at, payload"


class RecordsRepository:
    """Storing batches exactly once, the live list and intake pages, alerts
    and reviews, retention's deletions, and the exports' reads."""

    def __init__(self, backend: Backend, cells: CellFormat | None = None,
                 on_visit_stored: Callable[[Tx, str, str, str | None], None] | None = None):
        self.backend = backend
        #: called with (tx, record id, payload JSON, submitted_at) for each new
        #: visit, in the transaction that stores it (the patients' matching)
        self.on_visit_stored = on_visit_stored
        #: Made for each visit :meth:`store_batch` stores; without it, a
        #: visit's cells are made by the first export that covers it.
        self.cells = cells
        # Export shapes known to be stored (they are never deleted), so a
        # visit of a common shape costs no statement for it.
        self._stored_shapes: set[str] = set()

    # -- storing --------------------------------------------------------------

    def store_batch(self, kiosk_id: str, records: Sequence[IncomingRecord]) -> list[str]:
        """Stores a batch in one transaction; returns "stored" or "duplicate"
        per record, and makes each new visit's export cells (once, here,
        rather than at every export). Raises :class:`Conflict` (and stores nothing) when an id
        is already there with a different digest."""
        statuses: list[str] = []
        conflicts: list[str] = []
        shapes: set[str] = set()
        new_visits: list[IncomingRecord] = []
        cells = self.cells
        now = utcnow()
        with self.backend.transaction() as tx:
            for rec in records:
                tx.execute(
                    "insert into records (id, kind, kiosk_id, digest, received_at, intake_id, "
                    "submitted_at, payload) values (?, ?, ?, ?, ?, ?, ?, ?) "
                    # Any unique key (the id, or the intake id under another
                    # record id): a clash is sorted out below, never a 500.
                    "on conflict do nothing",
                    [rec.id, rec.kind, kiosk_id, rec.digest, now, rec.intake_id,
                     rec.submitted_at, rec.payload_json],
                )
                if tx.rowcount == 1:
                    statuses.append("stored")
                    if rec.kind == "visit" and cells is not None:
                        self._store_cells(tx, rec.id, cells.version, cells.make(kiosk_id, rec.payload_json),
                                          shapes)
                    if rec.kind == "visit":
                        new_visits.append(rec)
                    continue
                row = tx.execute("select digest, kind from records where id = ?", [rec.id]).fetchone()
                if row and row[0] == rec.digest and row[1] == rec.kind:
                    statuses.append("duplicate")
                else:
                    conflicts.append(rec.id)
            if conflicts:
                # Raising inside the transaction rolls the whole batch back.
                raise Conflict(conflicts)
            if self.on_visit_stored is not None:
                # In the order they were submitted: a kiosk back online sends
                # a backlog, whose first visit comes before its follow-ups.
                for rec in sorted(new_visits, key=lambda r: r.submitted_at or ""):
                    self.on_visit_stored(tx, rec.id, rec.payload_json, rec.submitted_at)
        self._remember_shapes(shapes)
        return statuses

    def count_records(self, kind: str | None = None) -> int:
        with self.backend.transaction() as tx:
            if kind:
                row = tx.execute("select count(*) from records where kind = ?", [kind]).fetchone()
            else:
                row = tx.execute("select count(*) from records").fetchone()
        return int(row[0])

    def record_ids(self, kind: str | None = None) -> list[str]:
        with self.backend.transaction() as tx:
            if kind:
                rows = tx.execute("select id from records where kind = ? order by id", [kind]).fetchall()
            else:
                rows = tx.execute("select id from records order by id").fetchall()
        return [r[0] for r in rows]

    # -- what the live list and the intake page show ---------------------------

    def change_marker(self) -> str:
        """Changes whenever a record, acknowledgement or review is added or
        removed: cheap enough to poll a few times a second."""
        with self.backend.transaction() as tx:
            a = tx.execute("select count(*), max(received_at) from records").fetchone()
            b = tx.execute("select count(*) from alert_acks").fetchone()
            c = tx.execute("select count(*) from intake_reviews").fetchone()
        return f"{a[0]}|{a[1]}|{b[0]}|{c[0]}"

    def records_received_since(self, since: str) -> list[StoredRecord]:
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records where received_at >= ? order by received_at, id", [since]
            ).fetchall()
        return [_stored(r) for r in rows]

    def intake_records(self, intake_id: str) -> list[StoredRecord]:
        """The visit(s) and alerts of one intake. Alerts keep their intake id
        only in the payload, so they are matched there."""
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records where intake_id = ? "
                "or (kind in ('alert', 'staff-call') and payload like ?) order by received_at, id",
                [intake_id, f'%"{intake_id}"%'],
            ).fetchall()
        return [r for r in map(_stored, rows) if r.intake_id == intake_id]

    # -- reviews ----------------------------------------------------------------

    def mark_reviewed(self, intake_id: str, user: str) -> bool:
        """False when the intake was already marked reviewed (the first wins)."""
        with self.backend.transaction() as tx:
            tx.execute(
                "insert into intake_reviews (intake_id, reviewed_at, reviewed_by) values (?, ?, ?) "
                "on conflict (intake_id) do nothing",
                [intake_id, utcnow(), user],
            )
            return tx.rowcount == 1

    def reviews(self) -> dict[str, tuple[str, str]]:
        """intake_id -> (reviewed_at, reviewed_by)."""
        with self.backend.transaction() as tx:
            rows = tx.execute("select intake_id, reviewed_at, reviewed_by from intake_reviews").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    # -- alerts and their acknowledgements ------------------------------------

    def unacknowledged_alerts(self) -> list[StoredRecord]:
        """Every alert and staff call staff have not acknowledged, of any day."""
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select {_RECORD_COLUMNS} from records r where kind in ('alert', 'staff-call') "
                "and not exists (select 1 from alert_acks a where a.record_id = r.id) order by received_at, id"
            ).fetchall()
        return [_stored(r) for r in rows]

    def alert_record(self, record_id: str) -> StoredRecord | None:
        with self.backend.transaction() as tx:
            row = tx.execute(
                f"select {_RECORD_COLUMNS} from records where id = ? and kind in ('alert', 'staff-call')",
                [record_id],
            ).fetchone()
        return _stored(row) if row else None

    def acknowledge_alert(self, record_id: str, user: str) -> bool:
        """Marks an alert record acknowledged by ``user``; False when there
        is no such alert or it was already acknowledged (the first wins)."""
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select kiosk_id from records where id = ? and kind in ('alert', 'staff-call')", [record_id]
            ).fetchone()
            if row is None:
                return False
            tx.execute(
                "insert into alert_acks (record_id, kiosk_id, acknowledged_at, acknowledged_by) "
                "values (?, ?, ?, ?) on conflict (record_id) do nothing",
                [record_id, row[0], utcnow(), user],
            )
            return tx.rowcount == 1

    def acknowledgements(self) -> dict[str, tuple[str, str]]:
        """alert record id -> (acknowledged_at, acknowledged_by)."""
        with self.backend.transaction() as tx:
            rows = tx.execute("select record_id, acknowledged_at, acknowledged_by from alert_acks").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def acknowledged_among(self, kiosk_id: str, record_ids: Sequence[str]) -> list[str]:
        """Those of ``record_ids`` (alerts of ``kiosk_id``) that staff acknowledged."""
        if not record_ids:
            return []
        with self.backend.transaction() as tx:
            rows = tx.execute(
                f"select record_id from alert_acks where kiosk_id = ? and record_id in ({marks(record_ids)})",
                [kiosk_id, *record_ids],
            ).fetchall()
        return sorted(r[0] for r in rows)

    # -- retention ----------------------------------------------------------------

    def record_ages(self) -> list[tuple[str, str, str, str | None]]:
        """(id, kind, received_at, intake_id) of every record, for retention."""
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_RECORD_COLUMNS} from records").fetchall()
        return [(r.id, r.kind, r.received_at, r.intake_id) for r in map(_stored, rows)]

    def delete_records(self, ids: Sequence[str], intake_ids: Sequence[str]) -> int:
        """Deletes records (and the reviews and acknowledgements that refer
        to them) in one transaction; returns how many records went."""
        deleted = 0
        with self.backend.transaction() as tx:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i : i + 500])
                tx.execute(f"delete from alert_acks where record_id in ({marks(chunk)})", chunk)
                tx.execute(f"delete from records where id in ({marks(chunk)})", chunk)
                deleted += tx.rowcount
            for i in range(0, len(intake_ids), 500):
                chunk = list(intake_ids[i : i + 500])
                tx.execute(f"delete from intake_reviews where intake_id in ({marks(chunk)})", chunk)
        return deleted

    # -- reading visits for the exports -------------------------------------------

    @staticmethod
    def _visit_range(since: str | None, before: str | None) -> tuple[str, list[str]]:
        """The SQL condition (on ``records r``) of the visits in a range."""
        sql, params = "r.kind = 'visit'", []
        if since:
            sql += " and r.submitted_at >= ?"
            params.append(since)
        if before:
            sql += " and r.submitted_at < ?"
            params.append(before)
        return sql, params

    def count_visits(self, since: str | None = None, before: str | None = None) -> int:
        """How many visits :meth:`iter_visits` would yield (for a progress bar)."""
        where, params = self._visit_range(since, before)
        with self.backend.transaction() as tx:
            return int(tx.execute(f"select count(*) from records r where {where}", params).fetchone()[0])

    def _visit_rows(self, columns: str, since: str | None, before: str | None, chunk: int,
                    join: str = "", join_params: Sequence[Any] = (), also: str = "") -> Iterator[tuple]:
        """Rows ``(r.id, r.submitted_at, *columns)`` of the visits in a range
        from ``records r`` (with ``join``, and the condition ``also``),
        oldest first, ``chunk`` per query.

        Keyset pagination on (submitted_at, id), so any number of visits
        stream in bounded memory on both back-ends and no transaction (nor
        SQLite's lock) is held while the caller works on a chunk. Visits
        without a submission time come first, and only in an unbounded
        range, where they would otherwise be lost.
        """
        where, params = self._visit_range(since, before)
        select = f"select r.id, r.submitted_at{columns} from records r {join} where {where}{also}"
        if since is None and before is None:
            last = ""
            while True:
                with self.backend.transaction() as tx:
                    rows = tx.execute(f"{select} and r.submitted_at is null and r.id > ? order by r.id limit ?",
                                      [*join_params, *params, last, chunk]).fetchall()
                yield from rows
                if len(rows) < chunk:
                    break
                last = rows[-1][0]
        cursor: tuple[str, str] | None = None
        while True:
            sql, args = select, [*join_params, *params]
            if cursor is None:
                sql += " and r.submitted_at is not null"
            else:
                # Written so both back-ends use the (kind, submitted_at, id) index.
                sql += " and r.submitted_at >= ? and (r.submitted_at > ? or r.id > ?)"
                args += [cursor[1], cursor[1], cursor[0]]
            sql += " order by r.submitted_at, r.id limit ?"
            with self.backend.transaction() as tx:
                rows = tx.execute(sql, [*args, chunk]).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            cursor = (rows[-1][0], rows[-1][1])

    def iter_visits(
        self, since: str | None = None, before: str | None = None, chunk: int = 1000
    ) -> Iterator[tuple[str, str, str]]:
        """(id, kiosk_id, payload JSON) of every visit submitted at or after
        ``since`` and before ``before`` (ISO dates or times), oldest first,
        in bounded memory (see :meth:`_visit_rows`). ``kiosk_id`` is the
        kiosk whose device token sent the record, never one named inside
        the payload.

        The payload comes as UTF-8 bytes on SQLite (no text decoding for a
        JSON parser that wants bytes anyway) and as text on PostgreSQL.
        """
        payload = "cast(r.payload as blob)" if self.backend.name == "sqlite" else "r.payload"
        for row in self._visit_rows(f", r.kiosk_id, {payload}", since, before, chunk):
            yield row[0], row[2], row[3]

    # -- export cells (made by the export, see CellFormat) ------------------------

    def _store_cells(self, tx: Tx, record_id: str, version: int, made: Cells, shapes: set[str]) -> None:
        """Keeps ``made`` as the export cells of ``record_id``, replacing
        older ones; adds its shape to ``shapes`` when this transaction
        stores it (the caller remembers those once the transaction has
        committed)."""
        if made.shape is not None and made.shape not in self._stored_shapes:
            tx.execute("insert into export_shapes (shape, link_ids) values (?, ?) on conflict do nothing",
                       [made.shape, made.link_ids])
            shapes.add(made.shape)
        tx.execute(
            "insert into export_cells (id, version, shape, line, notes, problem) "
            "values (?, ?, ?, ?, ?, ?) on conflict (id) do update set version = excluded.version, "
            "shape = excluded.shape, line = excluded.line, notes = excluded.notes, problem = excluded.problem",
            [record_id, version, made.shape, made.line, made.notes, made.problem],
        )

    def visit_cell_shapes(self, since: str | None, before: str | None,
                          version: int) -> tuple[dict[str, str], bool]:
        """({shape: its linkIds as JSON} of the visits in the range, whether
        some visit there has no export cells of ``version`` yet)."""
        where, params = self._visit_range(since, before)
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "select distinct e.shape, case when e.id is null then 1 else 0 end from records r "
                f"left join export_cells e on e.id = r.id and e.version = ? where {where}",
                [version, *params],
            ).fetchall()
            shapes = sorted({r[0] for r in rows if r[0] is not None})
            link_ids: dict[str, str] = {}
            for i in range(0, len(shapes), 500):
                part = shapes[i : i + 500]
                link_ids.update(tx.execute(
                    f"select shape, link_ids from export_shapes where shape in ({marks(part)})", part).fetchall())
        return link_ids, any(r[1] for r in rows)

    def visit_cell_shape(self, shape: str) -> str | None:
        """The linkIds (JSON) of one shape."""
        with self.backend.transaction() as tx:
            row = tx.execute("select link_ids from export_shapes where shape = ?", [shape]).fetchone()
        return row[0] if row else None

    def fill_visit_cells(self, since: str | None, before: str | None, version: int,
                         make: Callable[[str, Any], Cells], chunk: int = 500) -> int:
        """Makes the missing or outdated export cells of the visits in the
        range with ``make(kiosk_id, payload)``; returns how many. For visits
        stored before the cells existed, or not through :meth:`store_batch`."""
        done = 0
        missing = self._visit_rows("", since, before, chunk, "left join export_cells e on e.id = r.id "
                                   "and e.version = ?", [version], " and e.id is null")
        batch: list[str] = []
        for row in missing:
            batch.append(row[0])
            if len(batch) == chunk:
                done += self._fill_cells(batch, version, make)
                batch.clear()
        if batch:
            done += self._fill_cells(batch, version, make)
        return done

    def _fill_cells(self, ids: list[str], version: int, make: Callable[[str, Any], Cells]) -> int:
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select id, kiosk_id, payload from records where id in ({marks(ids)})",
                              ids).fetchall()
        made = [(rid, make(kiosk_id, payload)) for rid, kiosk_id, payload in rows]
        shapes: set[str] = set()
        with self.backend.transaction() as tx:
            for rid, cells in made:
                # A record deleted meanwhile keeps no cells (and breaks no reference).
                if tx.execute("select 1 from records where id = ?", [rid]).fetchone():
                    self._store_cells(tx, rid, version, cells, shapes)
        self._remember_shapes(shapes)
        return len(made)

    def _remember_shapes(self, shapes: set[str]) -> None:
        if len(self._stored_shapes) > 10_000:  # a bound, for a hub up for years
            self._stored_shapes.clear()
        self._stored_shapes |= shapes

    def iter_visit_cells(self, since: str | None, before: str | None, version: int,
                         chunk: int = 2000) -> Iterator[tuple]:
        """(id, shape, line, notes, problem) of every visit in the range
        that has export cells of ``version``, oldest first."""
        for row in self._visit_rows(", e.shape, e.line, e.notes, e.problem", since, before, chunk,
                                    "join export_cells e on e.id = r.id and e.version = ?", [version]):
            yield (row[0], *row[2:])
