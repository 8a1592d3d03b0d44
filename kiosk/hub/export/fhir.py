"""The FHIR export: one R4 ``Bundle`` of type ``collection`` holding a
``QuestionnaireResponse`` per intake, written entry by entry (and, for an
intake asked with a composed pack, one per questionnaire it asked).

The kiosk builds each visit's QuestionnaireResponse itself (it holds the
questionnaire; the hub does not) and seals it into the payload as
``questionnaire_response``; the hub passes it on, adding the intake id as
the resource id. A visit of a composed pack also carries
``questionnaire_responses``, one per questionnaire asked, the first being
``questionnaire_response``: each goes out as an entry of its own, the later
ones under the ids the kiosk gave them. Visits stored by older kiosks have none: for them
:func:`from_answers` builds a minimal valid response from the flat
``answers``, one top-level item per linkId, with the value type taken from
the JSON type (no ``questionnaire`` canonical, no nesting, no display texts:
the hub does not have the questionnaire those would come from).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Callable, Iterator

import msgspec

from .common import Report, StoredVisit, all_answers, counted, decoded_rows

# Patterns of the FHIR R4 primitive types (datatypes.html).
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
FHIR_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
FHIR_DATETIME = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))"
)
FHIR_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?")
RESPONSE_STATUSES = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
# FHIR strings are at most 1 MB; one answer longer than this is cut.
MAX_STRING = 1_000_000


def status_of(visit_status: Any) -> str:
    """The response status of a stored visit: an intake stopped for an
    emergency is ``stopped``, any other is ``completed``."""
    return "stopped" if visit_status in ("emergency", "stopped") else "completed"


def answer_values(value: Any, report: Report, in_list: bool = False) -> list[dict]:
    """FHIR ``answer`` entries for one stored answer, typed by its JSON type
    (a list is one answer per element)."""
    if isinstance(value, list) and not in_list:
        return [a for v in value for a in answer_values(v, report, in_list=True)]
    if isinstance(value, bool):
        return [{"valueBoolean": value}]
    if isinstance(value, int):
        return [{"valueInteger": value}]
    if isinstance(value, float):
        return [{"valueDecimal": value}]
    if isinstance(value, str):
        if not value.strip():
            return []
        if FHIR_DATE.fullmatch(value):
            return [{"valueDate": value}]
        if FHIR_DATETIME.fullmatch(value):
            return [{"valueDateTime": value}]
        if FHIR_TIME.fullmatch(value):
            return [{"valueTime": value}]
        if len(value) > MAX_STRING:
            report.note("an answer longer than a FHIR string allows was cut")
            value = value[:MAX_STRING]
        return [{"valueString": value}]
    if isinstance(value, dict):
        number = value.get("value")
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            quantity: dict[str, Any] = {"value": number}
            if isinstance(value.get("unit"), str) and value["unit"].strip():
                quantity["unit"] = value["unit"]
            return [{"valueQuantity": quantity}]
        if isinstance(value.get("code"), str) and value["code"].strip():
            coding = {k: value[k] for k in ("system", "code", "display")
                      if isinstance(value.get(k), str) and value[k].strip()}
            return [{"valueCoding": coding}]
    if value is not None:
        report.note("an answer of a type FHIR cannot carry was left out")
    return []


def from_answers(visit: StoredVisit, report: Report) -> dict:
    """A minimal QuestionnaireResponse from a visit's flat ``answers`` and
    ``computed`` (calculated items).

    >>> v = StoredVisit(status="complete", submitted_at="2026-11-21T09:00:00+00:00",
    ...                 answers={"rf-saddle": False, "pain-now": 6})
    >>> from_answers(v, Report())["item"][1]
    {'linkId': 'pain-now', 'answer': [{'valueInteger': 6}]}
    """
    response: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "status": status_of(visit.status)}
    if isinstance(visit.submitted_at, str) and FHIR_DATETIME.fullmatch(visit.submitted_at):
        response["authored"] = visit.submitted_at
    items = []
    for link_id, value in all_answers(visit).items():
        if not (isinstance(link_id, str) and link_id.strip()):
            continue
        values = answer_values(value, report)
        if values:
            items.append({"linkId": link_id, "answer": values})
    if items:
        response["item"] = items
    return response


class _Visit(msgspec.Struct):
    """What the FHIR export reads of a stored visit; the answers and the
    kiosk's response are kept as raw JSON until needed."""

    intake_id: Any = None
    submitted_at: Any = None
    status: Any = None
    answers: msgspec.Raw = msgspec.Raw(b"null")
    computed: msgspec.Raw = msgspec.Raw(b"null")
    questionnaire_response: msgspec.Raw = msgspec.Raw(b"null")
    questionnaire_responses: msgspec.Raw = msgspec.Raw(b"null")


class _ResponseHead(msgspec.Struct):
    resourceType: Any = None
    status: Any = None
    id: Any = None


_decode_head = msgspec.json.Decoder(_ResponseHead).decode
_decode_raws = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_any = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def response_for(visit: _Visit, report: Report) -> bytes:
    """The QuestionnaireResponse of one stored visit as JSON, with the
    intake id as its resource id.

    The kiosk's own response is passed on as the bytes it sent, the id
    spliced in, which spares decoding and encoding every item; a response
    that is not one is replaced by :func:`from_answers`.
    """
    own_id = visit.intake_id if isinstance(visit.intake_id, str) and FHIR_ID.fullmatch(visit.intake_id) else None
    raw = bytes(visit.questionnaire_response)
    try:
        head = _decode_head(raw) if raw != b"null" else None
    except msgspec.DecodeError:
        head = None
    if head is not None and head.resourceType == "QuestionnaireResponse" and head.status in RESPONSE_STATUSES:
        if head.id == own_id:  # as the kiosk builds it
            return raw
        if head.id is None:
            return b'{"id":' + _encode(own_id) + b"," + raw[1:]
        response = _decode_any(raw)
    else:
        if raw != b"null":
            report.note("the stored questionnaire_response was unusable; rebuilt from the answers")
        response = from_answers(StoredVisit(status=visit.status, submitted_at=visit.submitted_at,
                                            answers=_decode_any(visit.answers),
                                            computed=_decode_any(visit.computed)), report)
    if own_id:
        response["id"] = own_id
    else:
        response.pop("id", None)
    return _encode(response)


def later_responses(visit: _Visit, report: Report) -> list[tuple[str, bytes]]:
    """(fullUrl, JSON) of the responses after the first of a visit that
    asked several questionnaires; one that is not a usable response, or
    whose id is not a UUID, is left out (and counted)."""
    raw = bytes(visit.questionnaire_responses)
    if raw == b"null":
        return []
    try:
        responses = _decode_raws(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        report.note("the stored questionnaire_responses were unusable; only the first response went out")
        return []
    out = []
    for response in responses[1:]:
        try:
            head = _decode_head(response)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            head = None
        url = _full_url(head.id) if head is not None else None
        if head is None or head.resourceType != "QuestionnaireResponse" or head.status not in RESPONSE_STATUSES \
                or url is None or head.id == visit.intake_id:
            report.note("a stored questionnaire response of a later questionnaire was unusable and left out")
            continue
        out.append((url, bytes(response)))
    return out


def _full_url(intake_id: Any) -> str | None:
    if not isinstance(intake_id, str):
        return None
    try:
        return uuid.UUID(intake_id).urn
    except ValueError:
        return None


class _Subject(msgspec.Struct):
    subject: Any = None


_decode_subject = msgspec.json.Decoder(_Subject).decode


def with_subject(response: bytes, subject: dict) -> bytes:
    """A QuestionnaireResponse (JSON) with ``subject`` (a FHIR Reference)."""
    if _decode_subject(response).subject is None:
        return b'{"subject":' + _encode(subject) + b"," + response[1:]
    whole = _decode_any(response)
    whole["subject"] = subject
    return _encode(whole)


def stream(records, since: str | None, before: str | None, report: Report,
           progress: Callable[[int], None] | None, patients: bool = False,
           visits: Iterator[tuple] | None = None) -> Iterator[bytes]:
    """The Bundle of the visits from ``since`` to ``before``. The response
    of a visit matched to a patient names them in ``subject`` by their
    reference (an ``identifier``, ``P-XXXXXXXX``); with ``patients``, a
    ``Patient`` resource (see :func:`kiosk.hub.db.patients.fhir_patient`) also
    goes in before the first response of each patient, and ``subject``
    references it. ``visits`` replaces the range by the given (id, kiosk
    id, payload, patient id, ref) tuples (one patient's export)."""
    from ..db.patients import PATIENT_REF_SYSTEM, fhir_patient, iter_visits_with_patients

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    yield b'{"resourceType":"Bundle","type":"collection","timestamp":' + _encode(now)
    # FHIR allows no empty arrays: "entry" is opened by the first intake.
    separator = b',"entry":['
    buf = bytearray()
    decoder = msgspec.json.Decoder(_Visit)
    source = visits if visits is not None else iter_visits_with_patients(records, since, before)
    seen: set[str] = set()
    for (_, _, payload, patient_id, ref), visit in counted(decoded_rows(source, decoder, report), report, progress):
        buf += separator
        separator = b","
        subject = None
        if patient_id and ref:
            subject = {"identifier": {"system": PATIENT_REF_SYSTEM, "value": ref}}
        if patients and subject:
            url = uuid.UUID(patient_id).urn
            subject = {"reference": url, **subject}
            if patient_id not in seen:
                seen.add(patient_id)
                try:
                    whole = _decode_any(payload)
                except msgspec.DecodeError:
                    whole = {}
                buf += b'{"fullUrl":' + _encode(url) + b',"resource":'
                buf += _encode(fhir_patient(patient_id, ref, whole if isinstance(whole, dict) else {}))
                buf += b"},"
        url = _full_url(visit.intake_id)
        buf += b'{"fullUrl":' + _encode(url) + b',"resource":' if url else b'{"resource":'
        response = response_for(visit, report)
        buf += with_subject(response, subject) if subject else response
        buf += b"}"
        for later_url, response in later_responses(visit, report):
            buf += b',{"fullUrl":' + _encode(later_url) + b',"resource":'
            buf += (with_subject(response, subject) if subject else response) + b"}"
        if len(buf) > 1 << 16:
            yield bytes(buf)
            buf.clear()
    buf += b"]}" if separator == b"," else b"}"
    yield bytes(buf)

