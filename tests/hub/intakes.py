"""Realistic stored intakes for the export tests and bench, written by hand:
the payload a kiosk seals for the default pack, with the FHIR R4
QuestionnaireResponse it builds (nested items, valueCoding, valueQuantity, a
calculated PEG score), the clinician summary and the paraphrase notices.

``store(repo, visits)`` puts payloads straight into the hub's records
table in one transaction per few thousand rows, the fast way to make
100,000 of them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from pathlib import Path
from typing import Iterable

QUESTIONNAIRE = "https://clinic-kiosk.org/fhir/Questionnaire/default|1.0.0"
BODY = "https://clinic-kiosk.org/fhir/CodeSystem/body-area"
ANSWERS_CS = "https://clinic-kiosk.org/fhir/CodeSystem/answers"
NOTICE = ("STarT Back items are paraphrased; the licensed wording is "
          "available from Keele University.")


QUESTIONS = {
    "rf-saddle": "Since this pain began, have you had numbness, tingling or a strange feeling between "
                 "your legs, around your bottom or your private parts?",
    "rf-cancer": "Have you ever been told you have cancer?",
}


def _coding(code: str, display: str, system: str = ANSWERS_CS) -> dict:
    return {"valueCoding": {"system": system, "code": code, "display": display}}


def questionnaire_response(visit: dict) -> dict:
    """The response the kiosk would build for ``visit``'s answers."""
    a = visit["answers"]
    peg = visit["computed"]["peg-score"]
    about = [
        {"linkId": "given-name", "text": "Your first name", "answer": [{"valueString": a["given-name"]}]},
        {"linkId": "family-name", "text": "Your family name", "answer": [{"valueString": a["family-name"]}]},
        {"linkId": "dob", "text": "Your date of birth", "answer": [{"valueDate": a["dob"]}]},
        {"linkId": "height", "text": "Your height",
         "answer": [{"valueQuantity": {"value": a["height"]["value"], "unit": "cm",
                                       "system": "http://unitsofmeasure.org", "code": "cm"}}]},
    ]
    pain = [
        {"linkId": "pain-areas", "text": "Where does it hurt?",
         "answer": [_coding(x, x.replace("-", " ").capitalize(), BODY) for x in a["pain-areas"]]},
        # A question with an item under it: the answer carries the child.
        {"linkId": "pain-now", "text": "How bad is the pain right now?",
         "answer": [{"valueInteger": a["pain-now"],
                     "item": [{"linkId": "pain-duration", "text": "How long have you had it?",
                               "answer": [_coding(a["pain-duration"], "More than 12 weeks")]}]}]},
    ]
    screening = [
        {"linkId": k, "text": QUESTIONS.get(k, f"Screening question {k}"), "answer": [{"valueBoolean": a[k]}]}
        for k in sorted(a) if k.startswith(("rf-", "ci-"))
    ]
    questionnaires = [
        {"linkId": k, "text": f"PEG item {k}", "answer": [{"valueInteger": a[k]}]}
        for k in ("peg-pain", "peg-enjoyment", "peg-activity")
    ] + [{"linkId": "peg-score", "text": "PEG score (calculated)", "answer": [{"valueDecimal": peg}]}] + [
        {"linkId": k, "text": f"STarT Back item {k}", "answer": [_coding(a[k], a[k].capitalize())]}
        for k in sorted(a) if k.startswith("sbst-")
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": visit["intake_id"],
        "language": visit["language"],
        "questionnaire": QUESTIONNAIRE,
        "status": "stopped" if visit["status"] == "emergency" else "completed",
        "authored": visit["submitted_at"],
        "item": [
            {"linkId": "about-you", "text": "About you", "item": about},
            {"linkId": "pain", "text": "Your pain", "item": pain},
            {"linkId": "screening", "text": "Safety questions", "item": screening},
            {"linkId": "questionnaires", "text": "Questionnaires", "item": questionnaires},
        ],
    }


@functools.cache
def _figure() -> dict:
    """The default pack's body-map figure, as pack.json holds it."""
    return json.loads((Path(__file__).resolve().parents[2] / "kiosk" / "packs" / "default" / "pack.json")
                      .read_text(encoding="utf-8"))["body_map"]


def display(visit: dict) -> dict:
    """The display block the kiosk writes for ``visit`` (kiosk/display.py),
    by hand: English for staff, the visit's own language first."""
    a = visit["answers"]
    langs = [visit["language"]] + (["en"] if visit["language"] != "en" else [])
    figure = _figure()
    scores = visit["result"]["scores"]
    both = lambda en, other=None: {lang: (other if lang != "en" and other else en) for lang in langs}  # noqa: E731
    sb = scores["startback"]
    qr_items = []

    def walk(items, level):
        for item in items:
            answer = item.get("answer")
            if answer:
                text = ", ".join((str(v.get("display") or v.get("code") or "") or f"{v.get('value')} {v.get('unit', '')}".strip())
                                 if isinstance(v, dict)
                                 else str(v) for x in answer for k, v in x.items() if k.startswith("value"))
                qr_items.append({"linkId": item["linkId"], "level": level, "text": both(item["text"]),
                                 "answer": both(text)})
                for x in answer:
                    walk(x.get("item", []), level + 1)
            else:
                qr_items.append({"linkId": item["linkId"], "level": level, "text": both(item["text"]),
                                 "answer": None})
                walk(item.get("item", []), level + 1)

    walk(questionnaire_response(visit)["item"], 0)
    covered = {item["linkId"] for item in qr_items}
    qr_items += [{"linkId": k, "level": 0, "text": both(k), "answer": both(str(v))}
                 for k, v in a.items() if k not in covered]
    return {
        "languages": langs,
        "patient": {"name": f"{a['given-name']} {a['family-name']}", "birth_date": a["dob"], "age": 65},
        "body_map": {"view": figure["view"], "aspect": figure["aspect"], "outline": figure["outline"],
                     "regions": [{"code": r["code"], "box": r["box"],
                                  "label": {lang: r["label"].get(lang, r["label"]["en"]) for lang in langs}}
                                 for r in figure["regions"]],
                     "marked": list(a["pain-areas"])},
        "scores": [
            {"id": "pain-now", "label": both("Pain now (0-10)", "Dolor ahora (0-10)"), "value": scores["pain-now"],
             "fields": []},
            {"id": "peg", "label": both("PEG (0-10)"), "value": scores["peg"], "fields": [], "notice": NOTICE},
            {"id": "startback", "label": both("STarT Back total (0-9)"), "value": sb["total"],
             "fields": [{"id": "psychosocial", "label": both("psychosocial (0-5)", "psicosocial (0-5)"),
                         "value": sb["psychosocial"]},
                        {"id": "risk", "label": both("risk group", "grupo de riesgo"), "value": sb["risk"]}],
             "notice": NOTICE},
        ],
        "questionnaires": [{"id": "default", "url": QUESTIONNAIRE, "title": both("Back pain intake"),
                            "items": qr_items}],
    }


def intake(i: int, kiosk_id: str = "kiosk-1", given: str = "Zoë", family: str = "Łukasiewicz",
           language: str = "en", day: dt.date = dt.date(2026, 11, 21), with_response: bool = True,
           with_display: bool = True) -> dict:
    """A stored visit payload with a deterministic intake id."""
    intake_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"export-visit-{i}"))
    at = dt.datetime.combine(day, dt.time(8), dt.timezone.utc) + dt.timedelta(seconds=7 * i % 36000)
    answers = {
        "given-name": given, "family-name": family, "dob": "1961-04-02", "phone": "+34 600 123 456",
        "height": {"value": 170 + i % 20, "unit": "cm"},
        "pain-areas": ["lower-back", "left-leg"], "pain-now": i % 11, "pain-duration": "over-12-weeks",
        "peg-pain": 6, "peg-enjoyment": 5, "peg-activity": 5,
    }
    for k in ("rf-saddle", "rf-bladder", "rf-bowel", "rf-sexual", "rf-weakness", "rf-both-legs", "rf-fever",
              "rf-infection-risk", "rf-weight-loss", "rf-major-trauma", "rf-bone-risk", "rf-night-pain",
              "rf-first-episode", "ci-clot", "ci-pregnant", "ci-skin", "ci-surgery", "ci-fracture",
              "ci-cancer-treatment", "ci-contagious", "ci-implant"):
        answers[k] = False
    answers["rf-cancer"] = True
    answers["ci-blood-thinner"] = True
    for n, v in enumerate(["agree", "disagree", "agree", "agree", "disagree", "agree", "disagree", "disagree"], 1):
        answers[f"sbst-{n}"] = v
    answers["sbst-9"] = "moderately"
    visit = {
        "intake_id": intake_id,
        "kiosk_id": kiosk_id,
        "submitted_at": at.isoformat(timespec="milliseconds"),
        "status": "complete",
        "language": language,
        "visit_date": day.isoformat(),
        "content_version": "default-1.0.0",
        "answers": answers,
        # Calculated items: the kiosk computes them, the patient is never asked.
        "computed": {"peg-score": round((answers["peg-pain"] + answers["peg-enjoyment"]
                                   + answers["peg-activity"]) / 3, 1)},
        "not_answered": [],
        "result": {"tier": "urgent", "codes": ["ci-blood-thinner", "rf-cancer"],
                   "scores": {"pain-now": i % 11, "peg": 5.3,
                              "startback": {"total": 4, "psychosocial": 2, "risk": "medium"}}},
        "summary": [
            {"code": "rf-cancer", "tier": "urgent", "rule": "red-flag-cancer",
             "reason": "History of cancer: rule out spinal metastasis before treatment."},
            {"code": "ci-blood-thinner", "tier": "caution", "rule": "ci-anticoagulant",
             "reason": "Takes blood thinners: light pressure only, watch for bruising."},
        ],
        "notices": [NOTICE],
    }
    if with_response:
        visit["questionnaire_response"] = questionnaire_response(visit)
    if with_display:
        visit["display"] = display(visit)
    return visit


def store(repo, visits: Iterable[dict | tuple[str, str, str]], kiosk_id: str = "kiosk-1",
          per_tx: int = 5000) -> int:
    """Inserts visit payloads (dicts, or (record id, submitted_at, raw
    payload text) for stored values a kiosk could not have sent) into the
    records table as the hub stores them. Returns how many."""
    n = 0
    batch: list[list] = []

    def flush():
        sql = ("insert into records (id, kind, kiosk_id, digest, received_at, intake_id, submitted_at, "
               "payload) values (?, 'visit', ?, ?, ?, ?, ?, ?)")
        with repo.backend.transaction() as tx:
            if hasattr(tx, "executemany"):  # sqlite3's cursor: one call for the batch
                tx.executemany(sql, batch)
            else:
                for row in batch:
                    tx.execute(sql, row)
        batch.clear()

    for v in visits:
        if isinstance(v, dict):
            rid, at, text = v["intake_id"], v["submitted_at"], json.dumps(v, ensure_ascii=False)
        else:
            rid, at, text = v
        batch.append([rid, kiosk_id, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                      at or "2026-11-21T12:00:00.000+00:00", rid, at, text])
        n += 1
        if len(batch) >= per_tx:
            flush()
    if batch:
        flush()
    return n
