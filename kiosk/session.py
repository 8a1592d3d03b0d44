"""The intake session: the flow of one visit at a time, without any UI.

:class:`IntakeSession` holds the current :class:`kiosk.visit.Visit` and says,
after every step of the patient, which screen comes next (``"privacy"``,
``"question"``, ``"review"``, ``"emergency"``, ``"thanks"`` or
``"welcome"``). The Kivy app only wires screens to it, so the flow is tested
without a window (``tests/test_session.py``).

Records are written on one writer thread, never on the caller's (the UI)
thread. What happens after a write comes back through ``deliver``, which the
app sets to "run this on the Kivy clock" and tests set to run at once::

    session = IntakeSession(runtime, deliver=lambda fn: fn())
    session.begin()                    # -> "privacy"
    session.start_questions()          # -> "question"
    session.answer("given-name", "Ana")

An emergency answer stops the visit at once: what was answered is saved and
staff are alerted, and the alert goes out even when the save fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .alerts import Alert
from .idle import IdleTimer
from .visit import Visit

log = logging.getLogger(__name__)

#: Screens where no visit is under way: the idle timer does not run there
#: (unless a submitted visit's thanks screen led there).
RESTING = frozenset({"welcome", "techniques", "video"})
#: Screens that stay until staff act: never wiped by the idle timer.
STAFF_ONLY = frozenset({"emergency", "staff"})


class IntakeSession:
    """One visit at a time, its navigation, its writes and its idle wipe.

    ``runtime`` is a :class:`kiosk.runtime.Runtime` (pack, store, alerts,
    config). ``deliver(fn)`` runs ``fn`` on the thread that owns the UI.
    ``source`` tells staff a self-test ("replay") from a patient ("kiosk").
    """

    def __init__(self, runtime, deliver: Callable[[Callable[[], None]], None], *,
                 source: str = "kiosk", now: Callable[[], float] = time.monotonic):
        self.runtime = runtime
        self.config = runtime.config
        self.pack = runtime.pack
        self.deliver = deliver
        self.source = source
        self.now = now
        self.visit: Visit | None = None
        self.language = self.start_language()
        #: True from a submitted visit's thanks screen until the kiosk resets.
        self.after_visit = False
        self.pending_writes = 0
        #: A new content version waiting for the end of the visit (offer_pack).
        self.offered_pack = None
        #: intake_id and result of the last saved visit (never the answers).
        self.last_submitted: dict | None = None
        self.idle = IdleTimer(self.config.kiosk.idle_timeout_s, self.config.kiosk.idle_countdown_s, now=now())
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-writer")

    # -- published content ---------------------------------------------------

    def offer_pack(self, pack) -> None:
        """A new content version that passed its checks: kept aside until
        :meth:`take_offered_pack` finds no visit under way."""
        self.offered_pack = pack

    def take_offered_pack(self, screen: str):
        """Switches to the offered pack when ``screen`` is the welcome screen
        and no visit is under way or being saved; returns the pack it
        switched to, else None. A visit is asked with one pack from start to
        end: :class:`Visit` keeps the pack it began with."""
        pack = self.offered_pack
        if pack is None or screen != "welcome" or self.visit is not None or self.after_visit \
                or self.pending_writes:
            return None
        self.offered_pack = None
        self.pack = pack
        self.runtime.pack = pack
        self.language = self.start_language()
        return pack

    # -- languages ---------------------------------------------------------

    def languages(self) -> list[str]:
        """The languages offered: those of ``[clinic] languages`` that the
        content pack covers, in the clinic's order."""
        return [code for code in self.config.clinic.languages if code in self.pack.languages]

    def start_language(self) -> str:
        """The language a visit starts in: the clinic's default when the pack
        is written in it, else the first language offered (a questionnaire
        from another tool may not cover the clinic's default)."""
        default = self.config.clinic.default_language
        if default in self.pack.languages:
            return default
        return next(iter(self.languages()), None) or next(iter(self.pack.languages), default)

    def set_language(self, code: str) -> bool:
        if code not in self.pack.languages:
            return False
        self.language = code
        if self.visit is not None:
            self.visit.language = code
        return True

    # -- the flow ------------------------------------------------------------

    def begin(self, visit_kind: str = "first") -> str:
        """A new visit in the current language; ``visit_kind`` is the
        welcome screen's choice, "first" or "returning" (a returning patient
        gets the pack's short follow-up path). Nothing of earlier visits is
        looked up: the hub matches the patient."""
        self.visit = Visit(self.pack, self.language, kiosk_id=self.config.kiosk.kiosk_id, visit_kind=visit_kind,
                           staff_language=self.config.kiosk.staff_language)
        self.after_visit = False
        self.touch()
        return "privacy"

    def start_questions(self) -> str:
        if self.visit is None:
            self.begin()
        return "question" if self.visit.start() else "review"

    def answer(self, link_id: str, value) -> str:
        """Records an answer and moves on; stops at once on an emergency."""
        self.visit.answer(link_id, value)
        if self.visit.is_emergency():
            return self.emergency()
        return self._advance()

    def skip(self, link_id: str) -> str:
        self.visit.skip(link_id)
        return self._advance()

    def _advance(self) -> str:
        return "question" if self.visit.advance() else "review"

    def back(self) -> str:
        """Back from a question: the previous one, or the privacy screen."""
        if self.visit is None:
            return "welcome"
        return "privacy" if self.visit.back() is None else "question"

    def back_from_review(self) -> str:
        if self.visit is None:
            return "welcome"
        self.visit.position = self.visit.questions()[-1].link_id
        return "question"

    def edit(self, link_id: str) -> str:
        """From the review screen to one answer, and back there after it."""
        self.visit.go_to(link_id, reviewing=True)
        return "question"

    # -- ending a visit ------------------------------------------------------

    def submit(self, on_saved: Callable[[], None], on_failed: Callable[[], None]) -> bool:
        """Saves the visit durably on the writer thread; ``on_saved`` (the
        thanks screen) or ``on_failed`` come back through ``deliver``.
        False when there is nothing to send or a save is already running (a
        second tap on "send")."""
        if self.pending_writes or self.visit is None:
            return False
        payload = self._payload("complete")

        def saved():
            self._remember(payload)
            self.visit = None
            self.after_visit = True
            on_saved()

        self._write(lambda: self.runtime.store.add("visit", payload, record_id=payload["intake_id"]),
                    then=saved, failed=on_failed)
        return True

    def emergency(self, on_failed: Callable[[], None] | None = None) -> str:
        """Emergency answer: saves what was answered, alerts staff, and
        forgets the visit at once. The alert is sent even when the save
        fails: staff must hear of an emergency whatever the disk does."""
        payload = self._payload("emergency")
        alert = Alert(kind="emergency", kiosk_id=self.config.kiosk.kiosk_id, intake_id=payload["intake_id"])
        self.visit = None  # nothing of it stays in memory

        def write():
            try:
                self.runtime.store.add("visit", payload, record_id=payload["intake_id"])
            finally:
                self.runtime.alerts.send(alert)

        self._write(write, then=lambda: self._remember(payload), failed=on_failed or (lambda: None))
        return "emergency"

    def discard(self) -> str:
        """Forgets the visit whole (idle timeout, back from privacy, staff)."""
        self.visit = None
        self.after_visit = False
        self.language = self.start_language()
        self.touch()
        return "welcome"

    def _payload(self, status: str) -> dict:
        payload = self.visit.payload(status)
        payload["source"] = self.source
        return payload

    def _remember(self, payload: dict) -> None:
        # Only what replay and the self-test report: never the answers.
        self.last_submitted = {"intake_id": payload["intake_id"], "result": payload["result"]}

    # -- the writer thread -----------------------------------------------------

    def run_in_background(self, fn: Callable[[], object], then: Callable[[object], None]) -> None:
        """Runs ``fn`` (disk work) on the writer thread and hands its result
        to ``then`` through ``deliver``; a failure is logged, not raised."""
        def done(fut: Future):
            if fut.exception() is not None:
                log.error("background work failed: %s", type(fut.exception()).__name__)
                return
            self.deliver(lambda: then(fut.result()))

        self.writer.submit(fn).add_done_callback(done)

    def _write(self, fn: Callable[[], None], then: Callable[[], None], failed: Callable[[], None]) -> None:
        self.pending_writes += 1
        future = self.writer.submit(fn)

        def done(fut: Future):
            exc = fut.exception()
            if exc is None:
                self.runtime.records_saved()
            else:
                # The exception's type only: its text may quote the record.
                log.error("could not save a record: %s", type(exc).__name__)

            def on_ui():
                self.pending_writes -= 1
                (then if exc is None else failed)()

            self.deliver(on_ui)

        future.add_done_callback(done)

    def close(self) -> None:
        """Waits for the writes under way, then stops the writer thread."""
        self.writer.shutdown(wait=True)

    # -- idle ------------------------------------------------------------------

    def touch(self) -> None:
        self.idle.touch(self.now())

    def hold_idle(self, on: bool) -> None:
        """A playing video keeps the visit alive; the timeout restarts after."""
        self.idle.hold(on, self.now())

    def idle_state(self, screen: str) -> tuple[str, int]:
        """("active", 0), ("warning", seconds left) or ("expired", 0) for
        the screen showing now. Nothing expires on a staff-only screen, nor
        on a resting screen when no visit is under way."""
        if screen in STAFF_ONLY:
            return ("active", 0)
        if screen in RESTING and not self.after_visit:
            self.touch()
            return ("active", 0)
        return self.idle.state(self.now())
