"""One patient's visit: answers, where they are, and what happens next.

The app owns exactly one :class:`Visit` at a time and drops it whole when the
visit is submitted or the kiosk goes idle, so nothing of one patient can
reach the next. Navigation follows the pack's enableWhen live: changing an
answer can show or hide later questions.

>>> v = Visit(load_pack(), "en")                     # doctest: +SKIP
>>> v.current().link_id                              # doctest: +SKIP
'given-name'
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .display import display_block
from .questionnaire import Item, Pack, State, questionnaire_response, resolve
from .questionnaire.compose import VISIT_KINDS
from .rules import Result, evaluate
from .store import utcnow

log = logging.getLogger(__name__)


class VisitFileError(Exception):
    """A visit file that cannot be replayed or scored (exit code 2)."""


class Visit:
    """The state of one visit. Pure: no clock, no storage, no UI."""

    def __init__(self, pack: Pack, language: str, visit_date: dt.date | None = None, kiosk_id: str = "kiosk-1",
                 visit_kind: str = "first", staff_language: str = "en"):
        if visit_kind not in VISIT_KINDS:
            raise ValueError(f"visit kind {visit_kind!r} is not one of {', '.join(VISIT_KINDS)}")
        self.pack = pack
        self.language = language
        self.staff_language = staff_language  # the hub's second wording (config [kiosk] staff_language)
        self.visit_date = visit_date or dt.date.today()
        self.kiosk_id = kiosk_id
        self.intake_id = str(uuid.uuid4())
        self.answers: dict = {}
        self.position: str | None = None
        self.trail: list[str] = []  # questions shown, for the back button
        self.reviewing = False  # came from the review screen: return there
        self._state: tuple[dict, State] | None = None
        self._failures: set[str] = set()
        for item in pack.items:  # initial / initialSelected answers
            if item.initial is not None and item.asked:
                self.answers[item.link_id] = item.initial
        #: "first" or "returning", as the patient chose on the welcome
        #: screen; the pack's visit-kind item holds it too, so its skip
        #: logic (the short follow-up path) follows it.
        self.visit_kind = visit_kind
        if pack.role("visit_kind"):
            self.answers[pack.role("visit_kind")] = visit_kind

    # -- what is asked ---------------------------------------------------

    def state(self) -> State:
        """Enabled items and computed answers for the answers so far."""
        if self._state is None or self._state[0] != self.answers:
            state = resolve(self.pack, self.answers)
            for failure in state.failures:  # "linkId: error type", never an answer
                if failure not in self._failures:
                    self._failures.add(failure)
                    log.warning("FHIRPath of item %s could not be evaluated; the item stays empty", failure)
            self._state = (dict(self.answers), state)
        return self._state[1]

    def is_enabled(self, item: Item) -> bool:
        return item.link_id in self.state().enabled

    def questions(self) -> list[Item]:
        """The questions this patient is asked, given the answers so far."""
        return [i for i in self.pack.questions if self.is_enabled(i)]

    def start(self) -> Item | None:
        self.trail.clear()
        qs = self.questions()
        self.position = qs[0].link_id if qs else None
        return self.current()

    def current(self) -> Item | None:
        return self.pack.item(self.position) if self.position else None

    def go_to(self, link_id: str, reviewing: bool = False) -> Item:
        self.position = link_id
        self.reviewing = reviewing
        return self.current()

    def advance(self) -> Item | None:
        """Moves to the next enabled question; None when the intake is done."""
        order = [i.link_id for i in self.pack.questions]
        here = order.index(self.position) if self.position in order else -1
        if self.position:
            self.trail.append(self.position)
        if self.reviewing:
            self.reviewing = False
            self.position = None
            return None
        for link_id in order[here + 1 :]:
            item = self.pack.item(link_id)
            if self.is_enabled(item):
                self.position = link_id
                return item
        self.position = None
        return None

    def back(self) -> Item | None:
        """Returns to the previous question shown, or None at the start."""
        while self.trail:
            link_id = self.trail.pop()
            if self.is_enabled(self.pack.item(link_id)):
                self.position = link_id
                return self.current()
        return None

    def progress(self) -> tuple[int, int]:
        """(number of the current question, questions in all) for the progress bar."""
        qs = [i.link_id for i in self.questions()]
        if self.position in qs:
            return qs.index(self.position) + 1, len(qs)
        return len(qs), len(qs)

    # -- answers ---------------------------------------------------------

    def answer(self, link_id: str, value) -> None:
        item = self.pack.item(link_id)
        problem = item.check_answer(value)
        if problem:
            raise ValueError(f"{link_id}: {problem}")
        self.answers[link_id] = value

    def skip(self, link_id: str) -> None:
        self.answers.pop(link_id, None)

    def effective_answers(self) -> dict:
        """Answers to questions that are still asked (hidden ones drop out),
        after the kiosk's own (the visit kind)."""
        preset = [self.pack.item(p) for p in self.pack.preset if self.is_enabled(self.pack.item(p))]
        kept = [*preset, *self.questions()]
        return {i.link_id: self.answers[i.link_id] for i in kept if i.link_id in self.answers}

    def computed(self) -> dict:
        """Answers of the computed (calculatedExpression) items."""
        return dict(self.state().computed)

    def result(self) -> Result:
        return evaluate(self.pack.rules, {**self.computed(), **self.effective_answers()}, self.visit_date)

    def is_emergency(self) -> bool:
        return self.result().tier == "emergency"

    def unanswered_screening(self) -> list[str]:
        return [i.link_id for i in self.questions() if i.section == "safety" and i.link_id not in self.answers]

    def payload(self, status: str) -> dict:
        """The record the kiosk stores and the hub receives: the answers,
        the result, what the hub shows (``display``, see
        :mod:`kiosk.display`) and the visit as FHIR QuestionnaireResponses
        (status "completed", or "stopped" for an emergency).

        ``questionnaire_response`` answers the pack's first questionnaire
        (the whole pack when it has one); a composed pack's visit also
        carries ``questionnaire_responses``, one per questionnaire asked,
        the first being ``questionnaire_response``.
        """
        result = self.result()
        submitted = utcnow()
        values = {**self.computed(), **self.effective_answers()}
        enabled = self.state().enabled
        responses = self.questionnaire_responses(values, status, submitted, enabled)
        payload = {
            "intake_id": self.intake_id,
            "kiosk_id": self.kiosk_id,
            "submitted_at": submitted,
            "status": status,
            "language": self.language,
            "visit_date": self.visit_date.isoformat(),
            "content_version": self.pack.content_version,
            "answers": self.effective_answers(),
            "computed": self.computed(),
            "not_answered": self.unanswered_screening(),
            "result": result.as_json(),
            "summary": result.summary_json(),
            "notices": [s.notice for s in self.pack.rules.scores if s.notice],
            "visit_kind": self.visit_kind,
            "return_code": values.get(self.pack.role("return_code") or "") or None,
            "display": display_block(self.pack, self.language, self.staff_language, self.visit_date, values,
                                     enabled, result),
            "questionnaire_response": responses[0],
        }
        if len(responses) > 1:
            payload["questionnaire_responses"] = responses
        return payload

    def questionnaire_responses(self, values: dict, status: str, authored: str, enabled: set[str]) -> list[dict]:
        """One QuestionnaireResponse per questionnaire of the pack that the
        visit reached (the first always). The first has the intake id as
        its id, each later one an id derived from the intake id and the
        part's id, so a resent visit keeps the same ids."""
        parts = self.pack.parts if len(self.pack.parts) > 1 else ()
        if not parts:
            return [questionnaire_response(self.pack, values, status=status, authored=authored, enabled=enabled,
                                           language=self.language, response_id=self.intake_id)]
        out = []
        for n, part in enumerate(parts):
            rid = self.intake_id if n == 0 else str(uuid.uuid5(uuid.UUID(self.intake_id), f"part:{part.id}"))
            qr = questionnaire_response(part.pack, values, status=status, authored=authored, enabled=enabled,
                                        language=self.language, response_id=rid)
            if n == 0 or qr.get("item"):
                out.append(qr)
        return out


# -- visit files (the replay format of the public contract) -------------------


@dataclass
class VisitFile:
    language: str
    visit_date: dt.date
    answers: dict  # answers that the pack asks, in the pack's order
    warnings: list[str] = field(default_factory=list)


def read_visit_file(path: str | Path, pack: Pack) -> VisitFile:
    """Reads a visit JSON file and checks it against the pack.

    A required item that would be asked but is missing, or an answer of the
    wrong type, raises :class:`VisitFileError` naming the linkId. Answers the
    pack does not ask (unknown, or hidden by skip logic) are dropped with a
    warning, so one file works across pack versions.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VisitFileError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise VisitFileError(f"{path}:{exc.lineno}: broken JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        raise VisitFileError(f"{path}: expected an object with an 'answers' object")
    language = data.get("language", pack.languages[0])
    if language not in pack.languages:
        raise VisitFileError(f"{path}:language: {language!r} is not offered (offered: {', '.join(pack.languages)})")
    try:
        visit_date = dt.date.fromisoformat(data.get("visit_date") or dt.date.today().isoformat())
    except ValueError:
        raise VisitFileError(f"{path}:visit_date: expected YYYY-MM-DD") from None
    given = dict(data["answers"])
    warnings = []
    for link_id in given:
        if not pack.answerable(link_id):
            warnings.append(f"{path}:{link_id}: not asked by content pack {pack.content_version}; ignored")
    asked = _asked_answers(path, pack, given)
    enabled = resolve(pack, asked).enabled
    for item in _answerable(pack):
        if item.link_id in given and item.link_id not in enabled:
            warnings.append(f"{path}:{item.link_id}: hidden by skip logic for this visit; ignored")
        if item.required and item.asked and item.link_id in enabled and item.link_id not in asked:
            raise VisitFileError(f"{path}:{item.link_id}: required answer is missing")
    ordered = {i.link_id: asked[i.link_id] for i in _answerable(pack) if i.link_id in asked}
    return VisitFile(language, visit_date, ordered, warnings)


def _answerable(pack: Pack) -> list[Item]:
    """The items a visit file may answer: the kiosk's own (the visit kind
    of the welcome screen) first, then the questions, in order."""
    return [*(pack.item(p) for p in pack.preset), *(i for i in pack.questions if i.asked)]


def _asked_answers(path, pack: Pack, given: dict) -> dict:
    """The given answers the pack would ask, found as a fixed point: an
    answer counts only if its item is enabled by the answers that count."""
    asked: dict = {}
    for _ in range(len(pack.questions) + 1):
        enabled = resolve(pack, asked).enabled
        nxt = {}
        for item in _answerable(pack):
            value = given.get(item.link_id)
            if item.link_id in enabled and value is not None:
                problem = item.check_answer(value)
                if problem:
                    raise VisitFileError(f"{path}:{item.link_id}: {problem}")
                nxt[item.link_id] = value
        if nxt == asked:
            break
        asked = nxt
    return asked


def score_visit_file(vf: VisitFile, pack: Pack) -> Result:
    return evaluate(pack.rules, vf.answers, vf.visit_date)
