"""Returning patients, matched on the hub (issue 19): patients, episodes of
care, and which visit belongs to which.

The kiosk keeps nothing of earlier visits; it sends ``visit_kind``
("first" or "returning"), the name and date of birth (the pack's roles) and
an optional ``return_code``. The hub matches, when it stores a visit
(:func:`link_new_visit`, called once from
:meth:`kiosk.hub.db.records.RecordsRepository.store_batch`, in the same transaction):

* a first visit makes a new patient with a new episode;
* a returning visit joins the patient whose return code it gives, when the
  birth date matches too; else the patient of an earlier visit with exactly
  the same normalised name (:func:`name_key`: case, accents and spacing do
  not count) AND the same birth date, in that patient's latest episode;
* anything else (no match, no birth date) makes a new patient, marked
  "no match found" for staff; so does a visit that does not say whether it
  is a first one (a kiosk from before this question): staff may link it.

The same name with another birth date is another patient: never merged.
Staff confirm a match, link the visit to another patient, split it off
into a patient of its own, or undo their last change, each in one step and
audited (:class:`PatientRepository`).

What is kept here identifies no one by itself: a random reference
(``P-XXXXXXXX``, the one exports carry), a short return code, a birth date
and a digest of the normalised name per visit. Names are read from the visit
payloads when a page shows them, so erasing the visits (:meth:`PatientRepository.erase`)
erases the patient.

>>> name_key("  ANA   López ") == name_key("ana lopez")
True
>>> name_key("Ana López") == name_key("Ana Lopes")
False
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from ...protocol import CODE_ALPHABET
from ..trends import number as _number

# The tables are made by migration 007_patients in kiosk.hub.db.MIGRATIONS.

REF_PREFIX = "P-"
REF_CHARS = 8
CODE_CHARS = 6

#: How a visit came to its patient.
METHODS = {
    "first": "first visit: a new patient",
    "code": "returning: return code and birth date",
    "name-dob": "returning: same name and birth date",
    "no-match": "said returning, but no earlier visit matched: a new patient",
    "no-identity": "no name or birth date: a new patient",
    "no-kind": "first or returning not asked (an older kiosk): a new patient",
    "staff": "linked by staff",
    "split": "split off by staff: a patient of its own",
}
STATES = ("auto", "confirmed", "corrected")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# -- identity and measures (pure) ---------------------------------------------------


def normalise_name(text: str) -> str:
    """Case folded, accents stripped, whitespace collapsed.

    >>> normalise_name("  José   MARÍA\\tÑúñez ")
    'jose maria nunez'
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def name_key(name: str) -> str | None:
    """A digest of the normalised name, or None for an empty one."""
    norm = normalise_name(name)
    if not norm:
        return None
    return hashlib.sha256(("clinic-hub name v1\x00" + norm).encode("utf-8")).hexdigest()


_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")


@dataclass(frozen=True)
class Identity:
    """What a visit says about who the patient is."""

    name: str = ""
    given: str = ""
    family: str = ""
    birth_date: str | None = None
    visit_kind: str | None = None
    return_code: str | None = None

    @property
    def key(self) -> str | None:
        return name_key(self.name)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def identity_of(payload: dict) -> Identity:
    """The identity a stored visit payload carries: ``display.patient``
    (SPEC-18) when present, else the answers ``given-name``,
    ``family-name`` and ``dob``; ``visit_kind`` and ``return_code`` from the
    top level (or the answers ``visit-kind`` / ``return-code``).

    >>> identity_of({"answers": {"given-name": "Ana", "family-name": "López", "dob": "1961-04-02"},
    ...              "visit_kind": "returning"}).name
    'Ana López'
    """
    answers = payload.get("answers") if isinstance(payload.get("answers"), dict) else {}
    display = payload.get("display") if isinstance(payload.get("display"), dict) else {}
    person = display.get("patient") if isinstance(display.get("patient"), dict) else {}
    given, family = _text(answers.get("given-name")), _text(answers.get("family-name"))
    name = _text(person.get("name")) or " ".join(p for p in (given, family) if p)
    birth = _text(person.get("birth_date")) or _text(answers.get("dob"))
    kind = payload.get("visit_kind") or answers.get("visit-kind")
    code = payload.get("return_code") or answers.get("return-code")
    return Identity(
        name=name[:200], given=given[:100], family=family[:100],
        birth_date=birth[:10] if _DATE.fullmatch(birth[:10]) else None,
        visit_kind=kind if kind in ("first", "returning") else None,
        return_code=normalise_code(code) if isinstance(code, str) else None,
    )


def normalise_code(code: str) -> str | None:
    """A return code as stored: upper case, without spaces or dashes.

    >>> normalise_code(" k7q-f93 ")
    'K7QF93'
    """
    out = "".join(ch for ch in code.upper() if ch.isalnum())
    return out[:32] or None


def show_code(code: str) -> str:
    """``K7QF93`` as staff read it out: ``K7Q-F93``."""
    return f"{code[:3]}-{code[3:]}" if len(code) == CODE_CHARS else code


def _label(value: Any, fallback: str) -> dict:
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()) and value:
        return {str(k): v[:80] for k, v in value.items()}
    if isinstance(value, str) and value.strip():
        return {"en": value[:80]}
    return {"en": fallback}


def _mcid(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    out = {k: _number(value.get(k)) for k in ("points", "percent")}
    out = {k: v for k, v in out.items() if v is not None and v > 0}
    return out or None


def measures_of(payload: dict) -> list[dict]:
    """The visit's numeric scores as ``{"id", "label", "value", "mcid",
    "better"}``: from ``display.scores`` (with the pack's MCID and
    direction) when present, else from ``result.scores`` (a number, or an
    object's ``total``) with no MCID.

    >>> measures_of({"result": {"scores": {"peg": 5.3, "startback": {"total": 4}, "x": None}}})
    [{'id': 'peg', 'label': {'en': 'peg'}, 'value': 5.3, 'mcid': None, 'better': None}, \
{'id': 'startback', 'label': {'en': 'startback'}, 'value': 4.0, 'mcid': None, 'better': None}]
    """
    display = payload.get("display") if isinstance(payload.get("display"), dict) else {}
    out: list[dict] = []
    if isinstance(display.get("scores"), list):
        for score in display["scores"][:50]:
            if not isinstance(score, dict) or not isinstance(score.get("id"), str):
                continue
            value = _number(score.get("value"))
            better, mcid = score.get("better"), score.get("mcid")
            if value is None:
                # A score whose value is an object (STarT Back): its total.
                fields = score.get("fields") if isinstance(score.get("fields"), list) else []
                total = next((f for f in fields if isinstance(f, dict) and f.get("id") == "total"), None)
                if total is not None:
                    value = _number(total.get("value"))
                    better = total.get("better", better)
                    mcid = total.get("mcid", mcid)
            if value is None:
                continue
            out.append({"id": score["id"][:64], "label": _label(score.get("label"), score["id"][:64]),
                        "value": value, "mcid": _mcid(mcid),
                        "better": better if better in ("lower", "higher") else None})
        return out
    result = payload.get("result") if isinstance(payload.get("result"), dict) else {}
    scores = result.get("scores") if isinstance(result.get("scores"), dict) else {}
    for sid, raw in list(scores.items())[:50]:
        value = _number(raw)
        if value is None and isinstance(raw, dict):
            value = _number(raw.get("total"))
        if value is not None and isinstance(sid, str):
            out.append({"id": sid[:64], "label": {"en": sid[:64]}, "value": value, "mcid": None, "better": None})
    return out


# -- the repository ---------------------------------------------------------------------


@dataclass
class Patient:
    id: str
    ref: str
    return_code: str
    birth_date: str | None
    created_at: str


@dataclass
class VisitLink:
    record_id: str
    intake_id: str | None
    patient_id: str
    episode_id: str
    submitted_at: str | None
    method: str
    state: str
    decided_by: str | None
    decided_at: str | None
    previous: str | None
    measures: list[dict]
    visit_kind: str | None = None
    birth_date: str | None = None


_LINK_COLUMNS = ("record_id, intake_id, patient_id, episode_id, submitted_at, method, state, decided_by, "
                 "decided_at, previous, measures, visit_kind, birth_date")


def _link(row) -> VisitLink:
    try:
        measures = json.loads(row[10] or "[]")
    except ValueError:
        measures = []
    return VisitLink(*row[:10], measures if isinstance(measures, list) else [], row[11], row[12])


@dataclass
class Episode:
    id: str
    started_at: str
    visits: list[VisitLink] = field(default_factory=list)


class NotFound(LookupError):
    pass


def _random(n: int) -> str:
    """``n`` random characters of :data:`CODE_ALPHABET` (32 of them, so a
    random byte's low five bits pick one without bias); one call to the
    system's random source instead of one per character, as every first
    visit a hub stores makes two.

    >>> len(_random(8)), set(_random(64)) <= set(CODE_ALPHABET)
    (8, True)
    """
    return "".join(CODE_ALPHABET[b & 31] for b in secrets.token_bytes(n))


class PatientRepository:
    """Patients, episodes and visit links, over the hub's backend (SQLite or
    PostgreSQL, the same :class:`~kiosk.hub.db.Backend` API as
    :class:`~kiosk.hub.db.records.RecordsRepository`)."""

    def __init__(self, backend):
        self.backend = backend

    # -- matching (in the transaction that stores the visit) -------------------------

    @staticmethod
    def _new_patient(tx, birth_date: str | None, now: str) -> tuple[str, str]:
        """(patient id, episode id) of a new patient with a new episode."""
        patient_id = str(uuid.uuid4())
        while True:
            tx.execute(
                "insert into patients (id, ref, return_code, birth_date, created_at) values (?, ?, ?, ?, ?) "
                "on conflict do nothing",
                [patient_id, REF_PREFIX + _random(REF_CHARS), _random(CODE_CHARS), birth_date, now],
            )
            if tx.rowcount == 1:
                break
        episode_id = str(uuid.uuid4())
        tx.execute("insert into episodes (id, patient_id, started_at) values (?, ?, ?)",
                   [episode_id, patient_id, now])
        return patient_id, episode_id

    @staticmethod
    def _latest_episode(tx, patient_id: str, now: str) -> str:
        row = tx.execute("select id from episodes where patient_id = ? order by started_at desc, id desc limit 1",
                         [patient_id]).fetchone()
        if row:
            return row[0]
        episode_id = str(uuid.uuid4())
        tx.execute("insert into episodes (id, patient_id, started_at) values (?, ?, ?)",
                   [episode_id, patient_id, now])
        return episode_id

    @staticmethod
    def find_match(tx, who: Identity) -> tuple[str | None, str]:
        """(patient id or None, method) for a returning visit."""
        if who.birth_date is None:
            return None, "no-identity"
        if who.return_code:
            row = tx.execute("select id from patients where return_code = ? and birth_date = ?",
                             [who.return_code, who.birth_date]).fetchone()
            if row:
                return row[0], "code"
        key = who.key
        if key is None:
            return None, "no-identity"
        row = tx.execute(
            "select patient_id from visit_links where name_key = ? and birth_date = ? "
            "order by submitted_at desc, record_id desc limit 1", [key, who.birth_date]
        ).fetchone()
        if row:
            return row[0], "name-dob"
        return None, "no-match"

    @classmethod
    def link_visit(cls, tx, record_id: str, payload: dict, submitted_at: str | None) -> VisitLink:
        """Matches one stored visit and records its link (see the module
        doc), inside the caller's transaction ``tx``; a visit already linked
        keeps its link."""
        row = tx.execute(f"select {_LINK_COLUMNS} from visit_links where record_id = ?", [record_id]).fetchone()
        if row is not None:
            return _link(row)
        who = identity_of(payload)
        now = submitted_at or _now()
        if who.visit_kind == "returning":
            patient_id, method = cls.find_match(tx, who)
        else:
            patient_id, method = None, "first" if who.visit_kind == "first" else "no-kind"
        if patient_id is None:
            patient_id, episode_id = cls._new_patient(tx, who.birth_date, now)
        else:
            episode_id = cls._latest_episode(tx, patient_id, now)
        intake = payload.get("intake_id") if isinstance(payload.get("intake_id"), str) else None
        measures = json.dumps(measures_of(payload), ensure_ascii=False)
        tx.execute(
            f"insert into visit_links ({_LINK_COLUMNS}, name_key, patient_ref) "
            "select ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ref from patients where id = ? "
            "on conflict (record_id) do nothing",
            [record_id, intake, patient_id, episode_id, submitted_at, method, "auto", None, None, None,
             measures, who.visit_kind, who.birth_date, who.key, patient_id],
        )
        return VisitLink(record_id, intake, patient_id, episode_id, submitted_at, method, "auto", None, None,
                         None, json.loads(measures), who.visit_kind, who.birth_date)

    def link_intake(self, intake_id: str) -> None:
        """Links the visit of one intake if it is not linked yet."""
        with self.backend.transaction() as tx:
            row = tx.execute("select id, payload, submitted_at from records where kind = 'visit' "
                             "and intake_id = ?", [intake_id]).fetchone()
            if row is not None:
                try:
                    parsed = json.loads(row[1])
                except ValueError:
                    parsed = {}
                self.link_visit(tx, row[0], parsed if isinstance(parsed, dict) else {}, row[2])

    def link_unlinked(self, chunk: int = 500) -> int:
        """Links the visits stored before this module existed (or another way
        than the sync API), oldest first; returns how many."""
        done = 0
        while True:
            with self.backend.transaction() as tx:
                rows = tx.execute(
                    "select r.id, r.payload, r.submitted_at from records r where r.kind = 'visit' and not exists "
                    "(select 1 from visit_links l where l.record_id = r.id) "
                    "order by r.submitted_at, r.id limit ?", [chunk]
                ).fetchall()
                for rid, payload, submitted in rows:
                    try:
                        parsed = json.loads(payload)
                    except ValueError:
                        parsed = {}
                    self.link_visit(tx, rid, parsed if isinstance(parsed, dict) else {}, submitted)
            done += len(rows)
            if len(rows) < chunk:
                return done

    # -- reading ---------------------------------------------------------------------------

    def patient(self, patient_id: str) -> Patient | None:
        with self.backend.transaction() as tx:
            row = tx.execute("select id, ref, return_code, birth_date, created_at from patients where id = ?",
                             [patient_id]).fetchone()
        return Patient(*row) if row else None

    def by_ref(self, ref: str) -> Patient | None:
        """The patient of a reference (``P-XXXXXXXX``) or a return code."""
        text = ref.strip().upper()
        with self.backend.transaction() as tx:
            row = tx.execute("select id, ref, return_code, birth_date, created_at from patients where ref = ?",
                             [text]).fetchone()
            if row is None and (code := normalise_code(text)):
                row = tx.execute("select id, ref, return_code, birth_date, created_at from patients "
                                 "where return_code = ?", [code]).fetchone()
        return Patient(*row) if row else None

    def link_of_intake(self, intake_id: str) -> VisitLink | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_LINK_COLUMNS} from visit_links where intake_id = ? "
                             "order by submitted_at desc limit 1", [intake_id]).fetchone()
        return _link(row) if row else None

    def episodes(self, patient_id: str) -> list[Episode]:
        """The patient's episodes, oldest first, each with its visits in order."""
        with self.backend.transaction() as tx:
            eps = tx.execute("select id, started_at from episodes where patient_id = ? order by started_at, id",
                             [patient_id]).fetchall()
            rows = tx.execute(f"select {_LINK_COLUMNS} from visit_links where patient_id = ? "
                              "order by submitted_at, record_id", [patient_id]).fetchall()
        episodes = {e[0]: Episode(e[0], e[1]) for e in eps}
        for link in map(_link, rows):
            episodes.setdefault(link.episode_id, Episode(link.episode_id, link.submitted_at or "")).visits.append(link)
        return [e for e in episodes.values() if e.visits]

    def latest_payload(self, patient_id: str) -> dict:
        """The newest visit payload of a patient (for the name shown on a page)."""
        with self.backend.transaction() as tx:
            row = tx.execute(
                "select r.payload from visit_links l join records r on r.id = l.record_id "
                "where l.patient_id = ? order by l.submitted_at desc, l.record_id desc limit 1", [patient_id]
            ).fetchone()
        try:
            payload = json.loads(row[0]) if row else {}
        except ValueError:
            payload = {}
        return payload if isinstance(payload, dict) else {}

    def all_episode_measures(self) -> Iterator[tuple[str, str | None, list[dict]]]:
        """(episode id, submitted_at, measures) of every linked visit, by
        episode and time, in bounded chunks."""
        last: tuple[str, str, str] = ("", "", "")
        while True:
            with self.backend.transaction() as tx:
                rows = tx.execute(
                    "select episode_id, coalesce(submitted_at, ''), record_id, measures from visit_links "
                    "where episode_id > ? or (episode_id = ? and (coalesce(submitted_at, '') > ? or "
                    "(coalesce(submitted_at, '') = ? and record_id > ?))) "
                    "order by episode_id, coalesce(submitted_at, ''), record_id limit 2000",
                    [last[0], last[0], last[1], last[1], last[2]],
                ).fetchall()
            for ep, at, _rid, measures in rows:
                try:
                    parsed = json.loads(measures or "[]")
                except ValueError:
                    parsed = []
                yield ep, at or None, parsed if isinstance(parsed, list) else []
            if len(rows) < 2000:
                return
            last = (rows[-1][0], rows[-1][1], rows[-1][2])

    def episode_of_intakes(self) -> dict[str, str]:
        """intake id -> episode id, for retention."""
        with self.backend.transaction() as tx:
            rows = tx.execute("select intake_id, episode_id from visit_links where intake_id is not null").fetchall()
        return {r[0]: r[1] for r in rows}

    def candidates(self, intake_id: str) -> list[Patient]:
        """Other patients with the same birth date as the intake's visit (at
        most 20), for the "link to" choice on the intake page."""
        link = self.link_of_intake(intake_id)
        if link is None or not link.birth_date:
            return []
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "select id, ref, return_code, birth_date, created_at from patients "
                "where birth_date = ? and id <> ? order by created_at desc limit 20",
                [link.birth_date, link.patient_id],
            ).fetchall()
        return [Patient(*r) for r in rows]

    # -- staff decisions -------------------------------------------------------------------------

    def confirm(self, intake_id: str, user: str) -> VisitLink:
        with self.backend.transaction() as tx:
            link = self._intake_link(tx, intake_id)
            tx.execute("update visit_links set state = 'confirmed', decided_by = ?, decided_at = ? "
                       "where record_id = ?", [user, _now(), link.record_id])
        return link

    def relink(self, intake_id: str, user: str, to_patient: str | None) -> tuple[VisitLink, str]:
        """Moves the intake's visit to ``to_patient`` (its latest episode),
        or with None to a new patient of its own; returns (the link before,
        the patient id after). Episodes and patients left without visits go;
        "undo" brings them back."""
        now = _now()
        with self.backend.transaction() as tx:
            link = self._intake_link(tx, intake_id)
            if to_patient is not None and tx.execute("select 1 from patients where id = ?",
                                                     [to_patient]).fetchone() is None:
                raise NotFound("no such patient")
            if to_patient == link.patient_id:
                return link, link.patient_id
            before = self._snapshot(tx, link)
            if to_patient is None:
                patient_id, episode_id = self._new_patient(tx, link.birth_date, link.submitted_at or now)
                method = "split"
            else:
                patient_id, episode_id = to_patient, self._latest_episode(tx, to_patient, now)
                method = "staff"
            tx.execute("update visit_links set patient_id = ?, episode_id = ?, method = ?, state = 'corrected', "
                       "decided_by = ?, decided_at = ?, previous = ?, "
                       "patient_ref = (select ref from patients where id = ?) where record_id = ?",
                       [patient_id, episode_id, method, user, now, json.dumps(before), patient_id, link.record_id])
            self._prune(tx, link.patient_id, link.episode_id)
        return link, patient_id

    def undo(self, intake_id: str, user: str) -> tuple[VisitLink, str]:
        """Puts the intake's visit back where it was before the last staff
        change; returns (the link before the undo, the patient id after)."""
        with self.backend.transaction() as tx:
            link = self._intake_link(tx, intake_id)
            if not link.previous:
                raise NotFound("nothing to undo")
            before = json.loads(link.previous)
            patient = before["patient"]
            tx.execute("insert into patients (id, ref, return_code, birth_date, created_at) values (?, ?, ?, ?, ?) "
                       "on conflict do nothing",
                       [patient["id"], patient["ref"], patient["return_code"], patient["birth_date"],
                        patient["created_at"]])
            episode = before["episode"]
            tx.execute("insert into episodes (id, patient_id, started_at) values (?, ?, ?) on conflict do nothing",
                       [episode["id"], patient["id"], episode["started_at"]])
            tx.execute("update visit_links set patient_id = ?, episode_id = ?, method = ?, state = ?, "
                       "decided_by = ?, decided_at = ?, previous = null, patient_ref = ? where record_id = ?",
                       [patient["id"], episode["id"], before["method"], before["state"], user, _now(),
                        patient["ref"], link.record_id])
            self._prune(tx, link.patient_id, link.episode_id)
        return link, patient["id"]

    @staticmethod
    def _intake_link(tx, intake_id: str) -> VisitLink:
        row = tx.execute(f"select {_LINK_COLUMNS} from visit_links where intake_id = ? "
                         "order by submitted_at desc limit 1", [intake_id]).fetchone()
        if row is None:
            raise NotFound("no such intake")
        return _link(row)

    @staticmethod
    def _snapshot(tx, link: VisitLink) -> dict:
        p = tx.execute("select id, ref, return_code, birth_date, created_at from patients where id = ?",
                       [link.patient_id]).fetchone()
        e = tx.execute("select id, started_at from episodes where id = ?", [link.episode_id]).fetchone()
        return {"patient": dict(zip(("id", "ref", "return_code", "birth_date", "created_at"), p)),
                "episode": {"id": e[0], "started_at": e[1]}, "method": link.method, "state": link.state}

    @staticmethod
    def _prune(tx, patient_id: str | None = None, episode_id: str | None = None) -> None:
        """Deletes episodes without visits and patients without episodes
        (those named, or all of them)."""
        if episode_id is not None:
            tx.execute("delete from episodes where id = ? and not exists "
                       "(select 1 from visit_links l where l.episode_id = episodes.id)", [episode_id])
        else:
            tx.execute("delete from episodes where not exists "
                       "(select 1 from visit_links l where l.episode_id = episodes.id)")
        if patient_id is not None:
            tx.execute("delete from patients where id = ? and not exists "
                       "(select 1 from episodes e where e.patient_id = patients.id)", [patient_id])
        else:
            tx.execute("delete from patients where not exists "
                       "(select 1 from episodes e where e.patient_id = patients.id)")

    def prune(self) -> None:
        """After records were deleted (retention): episodes and patients left empty go."""
        with self.backend.transaction() as tx:
            self._prune(tx)

    # -- erasure on request --------------------------------------------------------------------

    def erase(self, patient_id: str) -> dict[str, int]:
        """Deletes everything of one patient in one transaction: their visit
        records (with export cells and links), the alerts raised during
        their intakes, reviews and acknowledgements of those, their episodes
        and the patient row. Returns counts (for the audit entry).

        On SQLite the freed pages are overwritten (``secure_delete``) and the
        write-ahead log is emptied afterwards, so the data is gone from the
        file too, not only from queries.
        """
        sqlite = self.backend.name == "sqlite"
        with self.backend.transaction() as tx:
            if sqlite:
                tx.execute("PRAGMA secure_delete = ON")
            if tx.execute("select 1 from patients where id = ?", [patient_id]).fetchone() is None:
                raise NotFound("no such patient")
            links = tx.execute("select record_id, intake_id from visit_links where patient_id = ?",
                               [patient_id]).fetchall()
            record_ids = [r[0] for r in links]
            intakes = sorted({r[1] for r in links if r[1]})
            alert_ids: list[str] = []
            for intake in intakes:
                rows = tx.execute("select id, payload from records where kind in ('alert', 'staff-call') "
                                  "and payload like ?", [f'%"{intake}"%']).fetchall()
                for rid, payload in rows:
                    try:
                        if json.loads(payload).get("intake_id") == intake:
                            alert_ids.append(rid)
                    except (ValueError, AttributeError):
                        continue
            every = record_ids + alert_ids
            for i in range(0, len(every), 500):
                part = every[i : i + 500]
                marks = ", ".join("?" for _ in part)
                tx.execute(f"delete from alert_acks where record_id in ({marks})", part)
                tx.execute(f"delete from visit_links where record_id in ({marks})", part)
                tx.execute(f"delete from export_cells where id in ({marks})", part)
                tx.execute(f"delete from records where id in ({marks})", part)
            for i in range(0, len(intakes), 500):
                part = intakes[i : i + 500]
                marks = ", ".join("?" for _ in part)
                tx.execute(f"delete from intake_reviews where intake_id in ({marks})", part)
            tx.execute("delete from episodes where patient_id = ?", [patient_id])
            tx.execute("delete from patients where id = ?", [patient_id])
        if sqlite:
            _checkpoint(self.backend)
        return {"visits": len(record_ids), "alerts": len(alert_ids), "intakes": len(intakes)}

    def visit_records(self, patient_id: str) -> list[tuple[str, str, str]]:
        """(record id, kiosk id, payload JSON) of the patient's visits, oldest first."""
        with self.backend.transaction() as tx:
            return tx.execute(
                "select r.id, r.kiosk_id, r.payload from visit_links l join records r on r.id = l.record_id "
                "where l.patient_id = ? order by l.submitted_at, l.record_id", [patient_id]
            ).fetchall()


def _checkpoint(backend) -> None:
    """Empties a SQLite hub's write-ahead log into the (securely deleted)
    database file. It must run outside a transaction, which the Backend
    API does not offer, hence the backend's own connection and lock."""
    conn, lock = getattr(backend, "_conn", None), getattr(backend, "_lock", None)
    if conn is None or lock is None:
        return
    with lock:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def link_new_visit(tx, record_id: str, payload_json: str, submitted_at: str | None) -> None:
    """The matching hook of :meth:`kiosk.hub.db.records.RecordsRepository.store_batch`:
    links a visit it just stored, inside its transaction."""
    try:
        payload = json.loads(payload_json)
    except ValueError:
        payload = {}
    PatientRepository.link_visit(tx, record_id, payload if isinstance(payload, dict) else {}, submitted_at)


def intake_view(backend, intake_id: str) -> dict | None:
    """What the intake page shows of the visit's patient (``_patient_link.html``),
    or None."""
    pr = PatientRepository(backend)
    link = pr.link_of_intake(intake_id)
    if link is None:
        pr.link_intake(intake_id)  # a visit stored before matching existed, or another way
        link = pr.link_of_intake(intake_id)
    if link is None:
        return None
    patient = pr.patient(link.patient_id)
    if patient is None:
        return None
    others = sum(len(e.visits) for e in pr.episodes(patient.id)) - 1
    previous = json.loads(link.previous) if link.previous else None
    return {
        "link": link, "patient": patient, "code": show_code(patient.return_code),
        "method": METHODS.get(link.method, link.method), "other_visits": others,
        "matched": link.method in ("code", "name-dob", "staff"),
        "undo_ref": previous["patient"]["ref"] if previous else None,
        "candidates": pr.candidates(intake_id),
    }


# -- exports ---------------------------------------------------------------------------------

_REF_JOIN = "left join visit_links l on l.record_id = r.id"


def iter_visit_cells_with_refs(repo, since: str | None, before: str | None, version: int,
                               chunk: int = 2000) -> Iterator[tuple]:
    """(id, shape, line, notes, problem, patient ref) of every visit in the
    range with export cells of ``version``, oldest first: what
    :meth:`~kiosk.hub.db.records.RecordsRepository.iter_visit_cells` yields, with the
    patient reference joined on (the same keyset walk)."""
    for row in repo._visit_rows(", e.shape, e.line, e.notes, e.problem, l.patient_ref", since, before, chunk,
                                f"join export_cells e on e.id = r.id and e.version = ? {_REF_JOIN}", [version]):
        yield (row[0], *row[2:])


def iter_visits_with_patients(repo, since: str | None, before: str | None,
                              chunk: int = 1000) -> Iterator[tuple]:
    """(id, kiosk id, payload, patient id, patient ref) of every visit in
    the range, oldest first; the patient is None for a visit not linked."""
    payload = "cast(r.payload as blob)" if repo.backend.name == "sqlite" else "r.payload"
    for row in repo._visit_rows(f", r.kiosk_id, {payload}, l.patient_id, l.patient_ref", since, before, chunk,
                                _REF_JOIN):
        yield row[0], row[2], row[3], row[4], row[5]


def iter_patient_visits(repo, patient_id: str) -> Iterator[tuple]:
    """The same tuples for one patient's visits (their export on request)."""
    patient = PatientRepository(repo.backend).patient(patient_id)
    if patient is None:
        return
    for rid, kiosk_id, payload in PatientRepository(repo.backend).visit_records(patient_id):
        yield rid, kiosk_id, payload, patient.id, patient.ref


def fhir_patient(patient_id: str, ref: str, payload: dict) -> dict:
    """The FHIR R4 ``Patient`` of a matched patient, named as in ``payload``
    (the first of their visits in the export): the reference as its
    identifier, the name and the birth date.

    >>> fhir_patient("5b6f3c1e-0000-4000-8000-000000000001", "P-ABCD2345",
    ...              {"answers": {"given-name": "Ana", "family-name": "López", "dob": "1961-04-02"}})["name"]
    [{'text': 'Ana López', 'family': 'López', 'given': ['Ana']}]
    """
    who = identity_of(payload)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": PATIENT_REF_SYSTEM, "value": ref}],
    }
    name: dict[str, Any] = {}
    if who.name:
        name["text"] = who.name
    if who.family:
        name["family"] = who.family
    if who.given:
        name["given"] = [who.given]
    if name:
        resource["name"] = [name]
    if who.birth_date:
        resource["birthDate"] = who.birth_date
    return resource


#: The identifier system of the patient references (``P-XXXXXXXX``) in FHIR exports.
PATIENT_REF_SYSTEM = "https://clinic-kiosk.org/fhir/NamingSystem/patient-ref"
