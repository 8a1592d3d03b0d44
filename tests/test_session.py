"""The intake flow on the Kivy-free session core: navigation, saving on the
writer thread, the emergency path (alert even when saving fails), the idle
wipe and the languages offered. No window: what comes back from the writer
thread is run by the test, as the app runs it on the Kivy clock."""

import json
import logging
import queue
import sqlite3

import pytest

from kiosk.alerts import Alert
from kiosk.config import Config
from kiosk.crypto import open_sealed
from kiosk.questionnaire import load_pack
from kiosk.runtime import Runtime
from kiosk.session import IntakeSession

from .conftest import edit_json, enroll_offline


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Recorder:
    """An alert channel that keeps what it was sent (staff's pager, say)."""

    def __init__(self):
        self.alerts: list[Alert] = []

    def send(self, alert):
        self.alerts.append(alert)


@pytest.fixture
def cfg(tmp_path):
    return Config().with_data_dir(tmp_path / "data")


@pytest.fixture
def clinic_key(cfg):
    return enroll_offline(cfg)


@pytest.fixture
def runtime(cfg, clinic_key):
    rt = Runtime.create(cfg)
    rt.pager = Recorder()
    rt.alerts.add(rt.pager)
    yield rt
    rt.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def session(runtime, clock):
    s = Session(runtime, clock)
    yield s
    s.close()


class Session(IntakeSession):
    """The session as the app uses it; ``settle()`` stands in for the Kivy
    clock running what the writer thread handed back."""

    def __init__(self, runtime, clock):
        self.handed_back: queue.Queue = queue.Queue()
        super().__init__(runtime, deliver=self.handed_back.put, now=clock)

    def settle(self):
        self.writer.submit(lambda: None).result(timeout=30)  # writes before it are done
        while not self.handed_back.empty():
            self.handed_back.get()()


def records(cfg, key):
    con = sqlite3.connect(cfg.database_path)
    try:
        rows = con.execute("select id, kind, body from outbox order by created_at").fetchall()
    finally:
        con.close()
    return [(i, k, json.loads(open_sealed(key, b))) for i, k, b in rows]


def answer_all_no(session):
    """Answers every question the simplest way until the review screen."""
    steps = []
    while (item := session.visit.current()) is not None:
        if item.link_id == "given-name":
            value = "Ana"
        elif item.type == "date":
            value = "1961-04-02"
        elif item.type == "boolean":
            value = False
        elif item.required and item.options:
            value = item.options[0].code if not item.repeats else [item.options[0].code]
        elif item.required:
            value = 4
        else:
            steps.append(session.skip(item.link_id))
            continue
        steps.append(session.answer(item.link_id, value))
    return steps


def test_a_visit_runs_from_privacy_through_questions_to_review(session):
    assert session.begin() == "privacy"
    assert session.start_questions() == "question"
    assert session.visit.current().link_id == "given-name"
    steps = answer_all_no(session)
    assert steps[-1] == "review" and set(steps[:-1]) == {"question"}
    assert session.visit.answers["given-name"] == "Ana"


def test_back_walks_the_questions_shown_then_leaves_to_privacy(session):
    session.begin()
    session.start_questions()
    session.answer("given-name", "Ana")
    second = session.visit.current().link_id
    session.skip(second)
    assert session.back() == "question" and session.visit.current().link_id == second
    assert session.back() == "question" and session.visit.current().link_id == "given-name"
    assert session.back() == "privacy"


def test_an_answer_changed_from_review_returns_to_review(session):
    session.begin()
    session.start_questions()
    answer_all_no(session)
    last = session.visit.questions()[-1].link_id
    assert session.back_from_review() == "question" and session.visit.current().link_id == last
    assert session.edit("given-name") == "question"
    assert session.answer("given-name", "Anna") == "review"
    assert session.visit.answers["given-name"] == "Anna"


def test_submit_saves_on_the_writer_thread_then_forgets_the_visit(session, cfg, clinic_key):
    session.begin()
    session.start_questions()
    answer_all_no(session)
    intake_id = session.visit.intake_id
    outcome = []
    assert session.submit(on_saved=lambda: outcome.append("thanks"), on_failed=lambda: outcome.append("failed"))
    assert session.pending_writes == 1
    # a second tap on "send" while the first is saving does nothing
    assert not session.submit(on_saved=lambda: outcome.append("twice"), on_failed=lambda: None)
    session.settle()
    assert outcome == ["thanks"] and session.pending_writes == 0
    assert session.visit is None and session.after_visit
    assert session.last_submitted == {"intake_id": intake_id, "result": session.last_submitted["result"]}
    [(record_id, kind, body)] = records(cfg, clinic_key)
    assert (record_id, kind, body["status"], body["source"]) == (intake_id, "visit", "complete", "kiosk")
    assert body["answers"]["given-name"] == "Ana"


def test_emergency_answer_stops_at_once_saves_and_alerts(session, cfg, clinic_key, runtime):
    session.begin()
    session.start_questions()
    session.answer("given-name", "Yusuf")
    intake_id = session.visit.intake_id
    assert session.answer("rf-bladder", True) == "emergency"
    assert session.visit is None  # nothing of it stays in memory, even before the write
    session.settle()
    kinds = {kind: body for _, kind, body in records(cfg, clinic_key)}
    assert kinds["visit"]["status"] == "emergency" and kinds["visit"]["answers"]["rf-bladder"] is True
    assert kinds["alert"]["kind"] == "emergency" and kinds["alert"]["intake_id"] == intake_id
    assert [a.intake_id for a in runtime.pager.alerts] == [intake_id]
    assert session.last_submitted["result"]["tier"] == "emergency"


def test_the_emergency_alert_goes_out_even_when_saving_the_visit_fails(session, runtime, caplog):
    session.begin()
    session.start_questions()
    session.answer("given-name", "Yusuf")
    intake_id = session.visit.intake_id
    runtime.store.close()  # the disk is gone
    failed = []
    with caplog.at_level(logging.ERROR):
        assert session.emergency(on_failed=lambda: failed.append(True)) == "emergency"
        session.settle()
    assert failed == [True]
    assert [(a.kind, a.intake_id) for a in runtime.pager.alerts] == [("emergency", intake_id)]
    assert "could not save a record" in caplog.text and "Yusuf" not in caplog.text


def test_a_failed_submit_keeps_the_visit_for_another_try(session, runtime):
    session.begin()
    session.start_questions()
    answer_all_no(session)
    runtime.store.close()
    outcome = []
    session.submit(on_saved=lambda: outcome.append("thanks"), on_failed=lambda: outcome.append("failed"))
    session.settle()
    assert outcome == ["failed"] and session.visit is not None and session.pending_writes == 0


def test_idle_asks_then_expires_but_never_on_staff_screens_or_while_a_video_plays(session, clock):
    session.begin()
    clock.t += 89
    assert session.idle_state("question") == ("active", 0)
    clock.t += 11
    assert session.idle_state("question") == ("warning", 20)
    assert session.idle_state("emergency") == ("active", 0)
    clock.t += 30
    assert session.idle_state("question") == ("expired", 0)
    assert session.discard() == "welcome" and session.visit is None
    session.begin()
    session.hold_idle(True)
    clock.t += 10_000
    assert session.idle_state("video") == ("active", 0) and session.idle_state("question") == ("active", 0)
    session.hold_idle(False)
    clock.t += 121
    assert session.idle_state("question") == ("expired", 0)


def test_resting_screens_do_not_expire_unless_a_visit_led_there(session, clock):
    clock.t += 500
    assert session.idle_state("welcome") == ("active", 0)
    session.after_visit = True
    clock.t += 500
    assert session.idle_state("techniques") == ("expired", 0)


def test_languages_offered_are_the_clinics_that_the_pack_covers(runtime, clock, pack_copy, cfg):
    clinic = cfg.replace("clinic", languages=["es", "fr", "en"], default_language="es")
    runtime.config = clinic
    s = Session(runtime, clock)
    try:
        assert s.languages() == ["es", "en"]  # the default pack has no French
        assert s.language == "es"
        assert not s.set_language("fr") and s.language == "es"
        s.begin()
        assert s.set_language("en") and s.visit.language == "en"
        assert s.discard() == "welcome" and s.language == "es"
    finally:
        s.close()


def test_a_visit_starts_in_a_language_the_pack_covers(runtime, clock, cfg):
    # A questionnaire from another tool may lack the clinic's default language.
    runtime.config = cfg.replace("clinic", languages=["fr", "es", "en"], default_language="fr")
    s = Session(runtime, clock)
    try:
        assert s.language == "es"  # the first language offered
        s.begin()
        assert s.visit.language == "es"
        assert s.discard() == "welcome" and s.language == "es"
    finally:
        s.close()


def add_language(pack_dir, code, prefix):
    """A third language as data only: the pack lists it and every text has
    a translation (here the English text marked with ``prefix``)."""
    edit_json(pack_dir / "pack.json", lambda d: d["languages"].append(code))

    def translate(node):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if key.startswith("_") and isinstance(value, dict) and isinstance(node.get(key[1:]), str):
                    for ext in value.get("extension", []):
                        if ext.get("url", "").endswith("/translation"):
                            value["extension"].append({"url": ext["url"], "extension": [
                                {"url": "lang", "valueCode": code},
                                {"url": "content", "valueString": f"{prefix}{node[key[1:]]}"}]})
                            break
                translate(value)
        elif isinstance(node, list):
            for child in node:
                translate(child)

    edit_json(pack_dir / "questionnaire.json", translate)


def test_a_third_language_is_data_only(pack_copy):
    add_language(pack_copy, "fr", "[fr] ")
    pack = load_pack(pack_copy)
    assert pack.languages[-1] == "fr"
    assert pack.item("given-name").text["fr"] == "[fr] What is your first name?"
