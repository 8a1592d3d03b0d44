"""The real kiosk UI in a real (headless) window, driven by real touches.

Kivy has one window per process, so every UI test lives in this module and
each test starts and stops its own app in that window.
"""

import json
import sqlite3
import time

import pytest

from kiosk.config import Config
from kiosk.runtime import Runtime
from kiosk.staff import DEMO_PIN, hash_pin
from kiosk.visit import read_visit_file

from kiosk.crypto import open_sealed
from screens.replay import FakeClock

from .conftest import enroll_offline, negative_visit

CLINIC_KEY = {}


#: A staff PIN as a clinic sets one (`clinic-kiosk set-pin`), hashed once.
PIN_HASH = hash_pin(DEMO_PIN)


@pytest.fixture
def cfg(tmp_path):
    c = Config().with_data_dir(tmp_path / "data").replace("kiosk", staff_pin_hash=PIN_HASH)
    CLINIC_KEY[str(c.data_path)] = enroll_offline(c)
    return c


@pytest.fixture
def runtime(cfg):
    rt = Runtime.create(cfg)
    yield rt
    rt.close()


def visit_file(tmp_path, visit, pack):
    path = tmp_path / "visit.json"
    path.write_text(json.dumps(visit))
    return read_visit_file(path, pack)


def records(cfg):
    """The kiosk's records, opened with the clinic's private key (the kiosk
    itself cannot read them)."""
    key = CLINIC_KEY[str(cfg.data_path)]
    con = sqlite3.connect(cfg.database_path)
    try:
        rows = con.execute("select id, kind, body from outbox order by created_at").fetchall()
    finally:
        con.close()
    return [{"id": i, "kind": k, "body": open_sealed(key, b).decode()} for i, k, b in rows]


def all_text(widget):
    out = []
    roots = [widget] if hasattr(widget, "walk") else list(widget.children)
    for root in roots:
        for w in root.walk(restrict=True):
            if hasattr(w, "text") and isinstance(w.text, str):
                out.append(w.text)
    return "\n".join(out)


def test_whole_intake_by_touch_is_saved_in_sqlite(tmp_path, cfg, runtime):
    from screens.replay import replay_visit

    visit = negative_visit(**{"given-name": "Zelda", "family-name": "O'Brien", "dob": "1961-04-02",
                              "phone": "+34600123456", "pain-areas": ["lower-back", "left-leg"],
                              "pain-now": 6, "rf-cancer": True,
                              "peg-pain": 6, "peg-enjoyment": 5, "peg-activity": 5})
    shots = tmp_path / "shots"
    out = replay_visit(cfg, visit_file(tmp_path, visit, runtime.pack), screenshots=str(shots), runtime=runtime)
    assert out["tier"] == "urgent" and out["codes"] == ["rf-cancer"]
    assert out["scores"]["peg"] == 5.3 and out["scores"]["pain-now"] == 6
    assert out["screens"] == len(list(shots.glob("*.png")))
    rows = records(cfg)
    assert [r["kind"] for r in rows] == ["visit"]
    assert rows[0]["id"] == out["intake_id"]
    body = json.loads(rows[0]["body"])
    assert body["answers"]["given-name"] == "Zelda"
    assert body["answers"]["family-name"] == "O'Brien"
    assert body["answers"]["dob"] == "1961-04-02"
    assert body["answers"]["pain-areas"] == ["lower-back", "left-leg"]
    assert body["status"] == "complete"
    assert (shots / "01-welcome.png").stat().st_size > 10_000
    raw = cfg.database_path.read_bytes() + cfg.database_path.with_name("kiosk.db-wal").read_bytes()
    assert b"Zelda" not in raw and b"O'Brien" not in raw and b"1961-04-02" not in raw


def test_review_lists_every_answer_and_a_tap_on_any_row_goes_back_to_it(tmp_path, cfg, runtime):
    from kivy.metrics import mm

    from screens.replay import Harness, answer_questions

    vf = visit_file(tmp_path, negative_visit(**{"given-name": "Zelda", "pain-areas": ["lower-back"]}), runtime.pack)
    h = Harness(runtime).start()
    try:
        app = h.app
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        answer_questions(h, vf)
        assert app.sm.current == "review"
        asked = [q.link_id for q in app.visit.questions() if q.asked]
        rows = h.screen.ids.scroller
        assert [row["answer_code"] for row in rows.data] == asked
        assert "Zelda" in rows.data[0]["text"] and "Lower back" in rows.data[asked.index("pain-areas")]["text"]
        shown = [w for w in h.screen.ids.rows.children if w.answer_code]
        assert 3 <= len(shown) < len(asked)  # only the rows in sight are built
        assert all(w.height >= w.texture_size[1] + 20 and w.height >= mm(16) - 1 for w in shown)
        h.tap(next(w for w in shown if w.answer_code == "given-name"))
        assert app.sm.current == "question" and app.visit.current().link_id == "given-name"
        app.go("review")  # as "Next" does after an edit
        h.frames(2)
        h.screen.ids.scroller.scroll_y = 0  # the end of the list
        h.frames(3)
        last = next(w for w in h.screen.ids.rows.children if w.answer_code == asked[-1])
        h.tap(last)
        assert app.sm.current == "question" and app.visit.current().link_id == asked[-1]
        app.go("review")
        h.frames(2)
        before = {r["answer_code"]: r["height"] for r in h.screen.ids.scroller.data}
        h.tap(app.root.ids.large_text)
        h.frames(2)
        after = {r["answer_code"]: r["height"] for r in h.screen.ids.scroller.data}
        assert all(after[code] > before[code] for code in asked if before[code] > mm(16))
        for w in h.screen.ids.rows.children:
            assert w.height >= w.texture_size[1] + 20, (w.answer_code, w.height, w.texture_size)
    finally:
        h.stop()


def test_a_database_that_cannot_be_opened_puts_the_kiosk_out_of_order_just_after_the_first_frame(cfg, caplog):
    # The database opens on the writer thread once the welcome screen is up;
    # a corrupt one must still stop the kiosk before any patient can start.
    from screens.replay import Harness

    cfg.database_path.write_bytes(b"this is not a database, " * 200)
    runtime = Runtime.create(cfg)  # does not open it
    h = Harness(runtime).start()
    try:
        for _ in range(400):
            if h.app.out_of_order:
                break
            h.frames(1)
            time.sleep(0.005)
        assert len(h.app.out_of_order) == 1
        assert h.app.out_of_order[0].startswith(f"{cfg.source}:kiosk.data_dir: cannot open the database")
        h.frames(2)
        shown = all_text(h.window)
        assert "Sorry, this kiosk is out of order." in shown and "Start" not in shown
        assert any("out of order: " in r.getMessage() and "cannot open the database" in r.getMessage()
                   for r in caplog.records)
    finally:
        h.stop()
        runtime.close()


def test_emergency_answer_stops_the_intake_alerts_staff_and_waits_for_the_pin(tmp_path, cfg, runtime):
    from screens.replay import Harness

    # The emergency flow end to end is replayed by test_cli; here the screen
    # and the records of a patient who answers yes to a red flag.
    clock = FakeClock()
    h = Harness(runtime, now=clock).start()
    try:
        app = h.app
        app.begin_visit()
        app.start_questions()
        app.answer("given-name", "Yusuf")
        while app.visit.current().link_id != "rf-bladder":
            app.visit.advance()
        h.app.go("question")
        h.frames(2)
        h.tap(h.button(code=True, root=h.screen.answer_widget))
        h.wait_writes()
        out = dict(app.last_submitted["result"], intake_id=app.last_submitted["intake_id"])
        assert out["tier"] == "emergency" and out["codes"] == ["rf-bladder"]
        rows = records(cfg)
        kinds = {r["kind"]: json.loads(r["body"]) for r in rows}
        assert kinds["visit"]["status"] == "emergency"
        assert kinds["visit"]["answers"]["rf-bladder"] is True
        assert "rf-cancer" not in kinds["visit"]["answers"]  # nothing asked after the emergency
        assert kinds["alert"]["kind"] == "emergency"
        assert kinds["alert"]["intake_id"] == out["intake_id"]
        assert "Yusuf" not in json.dumps(kinds["alert"])

        # The screen itself: calm, no diagnosis, and it stays until staff use their PIN.
        assert app.sm.current == "emergency"
        text = all_text(h.screen)
        assert "do not drive" in text and "emergency department" in text
        for word in ("cauda", "equina", "cancer", "tier", "emergency:", "score"):
            assert word not in text.lower()
        h.screenshot(tmp_path, "emergency")
        clock.advance(3600)  # an hour later, still there: no idle wipe
        h.frames(3)
        app._idle_tick()
        assert app.sm.current == "emergency"
        # Staff: long press on the hidden corner, then the PIN.
        from kivy.tests.common import UnitTestTouch

        corner = app.root.ids.staff_corner
        x, y = corner.to_window(*corner.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        deadline = time.monotonic() + 10
        while app.sm.current != "staff" and time.monotonic() < deadline:
            h.frames(1)
            time.sleep(0.02)
        touch.touch_up()
        assert app.sm.current == "staff"
        for key in "1111":
            h.tap(h.button(key=key))
        h.tap(h.button(key="ok"))
        assert not h.screen.unlocked and "not right" in h.screen.message
        for key in "2468":
            h.tap(h.button(key=key))
        h.tap(h.button(key="ok"))
        assert h.screen.unlocked
        deadline = time.monotonic() + 10  # the queue depth comes from the writer thread
        while "Records waiting" not in h.screen.status_text and time.monotonic() < deadline:
            h.frames(1)
        assert f"Records waiting to sync: {len(records(cfg))}" in h.screen.status_text
        h.tap(h.screen.ids.dismiss)
        assert app.sm.current == "welcome" and app.visit is None
    finally:
        h.stop()


def test_the_body_map_is_drawn_from_the_pack_and_a_tap_on_the_figure_marks_its_region(tmp_path, cfg, pack_copy):
    from kiosk.questionnaire import load_pack
    from screens.replay import Harness, finger

    from .conftest import edit_json

    def swap(manifest):  # this clinic's figure has the neck where the default has the lower back
        regions = {r["code"]: r for r in manifest["body_map"]["regions"]}
        regions["neck"]["box"], regions["lower-back"]["box"] = regions["lower-back"]["box"], regions["neck"]["box"]

    edit_json(pack_copy / "pack.json", swap)
    runtime = Runtime.create(cfg, pack=load_pack(pack_copy))
    h = Harness(runtime).start()
    try:
        app = h.app
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        app.edit_answer("pain-areas")
        h.frames(2)
        widget = h.screen.answer_widget
        x, y, w, hh = widget.figure.rect(next(r["box"] for r in runtime.pack.body_map["regions"]
                                              if r["code"] == "neck"))
        touch = finger(*widget.figure.to_window(x + w / 2, y + hh / 2))
        touch.touch_down()
        h.frames(1)
        touch.touch_up()
        h.frames(2)
        assert widget.value == ["neck"]
        assert h.button(code="neck", root=widget).selected and not h.button(code="lower-back", root=widget).selected
        h.screenshot(tmp_path / "shots", "body-map-from-pack")
    finally:
        h.stop()
        runtime.close()


def test_a_scale_is_worded_as_pain_only_when_the_pack_says_it_measures_pain(cfg, pack_copy):
    from kiosk.questionnaire import load_pack
    from screens.replay import Harness

    from .conftest import edit_json

    def only_peg(manifest):  # "pain now" is no pain scale in this clinic's pack
        manifest["roles"]["pain_scale"] = ["peg-pain"]

    edit_json(pack_copy / "pack.json", only_peg)
    runtime = Runtime.create(cfg, pack=load_pack(pack_copy))
    h = Harness(runtime).start()
    try:
        app = h.app
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        ends = {}
        for link_id in ("pain-now", "peg-pain"):
            app.edit_answer(link_id)
            h.frames(2)
            scale = h.screen.answer_widget
            ends[link_id] = (scale.ids.low.text, scale.ids.high.text)
        assert ends == {"pain-now": ("Not at all", "Completely"), "peg-pain": ("No pain", "Worst pain")}
    finally:
        h.stop()
        runtime.close()


def test_idle_timeout_asks_then_wipes_everything(tmp_path, cfg, runtime):
    from screens.replay import Harness

    clock = FakeClock()
    h = Harness(runtime, now=clock).start()
    try:
        app = h.app
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        kb = h.screen.answer_widget
        for ch in "xavi":
            h.tap(h.button(key=ch, root=kb))
        assert "Xavi" in all_text(h.window)
        # A patient reading slowly: a touch keeps the visit.
        clock.advance(80)
        h.frames(1)
        app._idle_tick()
        assert app._idle_dialog is None
        clock.advance(15)  # 95 s without a touch: the "still there?" countdown
        app._idle_tick()
        h.frames(2)
        assert app._idle_dialog is not None
        assert "still there" in all_text(app._idle_dialog)
        h.tap(app._idle_dialog.ids.still_here)  # a tap extends the time
        app._idle_tick()
        assert app._idle_dialog is None and app.sm.current == "question"
        clock.advance(90 + 31)
        app._idle_tick()
        h.frames(3)
        assert app.sm.current == "welcome"
        assert app.visit is None
        assert "Xavi" not in all_text(h.window)
        for screen in app.sm.screens:
            assert "Xavi" not in all_text(screen)
        # Back from the welcome screen cannot reach the old visit.
        h.tap(h.screen.ids.start)
        assert app.visit.answers == {"visit-kind": "first"}  # only the button just tapped
        h.tap(h.screen.ids.continue_)
        assert h.screen.answer_widget.text == ""
    finally:
        h.stop()


def test_playing_video_holds_the_visit_and_reset_follows_the_end(cfg, runtime):
    from screens.replay import Harness

    clock = FakeClock()
    h = Harness(runtime, now=clock).start()
    try:
        app = h.app
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        app.hold_idle(True)
        clock.advance(1000)
        app._idle_tick()
        assert app.visit is not None and app._idle_dialog is None
        app.hold_idle(False)
        clock.advance(121)
        app._idle_tick()
        assert app.visit is None and app.sm.current == "welcome"
    finally:
        h.stop()


def overlapping_controls(h):
    """Pairs of things on screen that a patient reads or taps and that lie on
    top of each other (by more than a pixel), named by their text."""
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    from screens.widgets import KButton

    def visible(w):
        """Not hidden, and not in a scrolling list (which clips what it holds)."""
        while w is not None and w is not h.window:
            if w.opacity == 0 or isinstance(w.parent, ScrollView):
                return False
            w = w.parent
        return True

    shown = [w for w in h.app.root.walk(restrict=True)
             if isinstance(w, Label) and w.text.strip() and w.get_root_window() is not None and visible(w)]
    boxes = []
    for w in shown:
        (x0, y0), (x1, y1) = w.to_window(w.x, w.y), w.to_window(w.right, w.top)
        if isinstance(w, KButton):  # a button: all of it
            boxes.append((w.text, x0, y0, x1, y1))
        else:  # a label: the lines of text it holds, centred in its height
            tw, th = w.texture_size
            cy = (y0 + y1) / 2
            boxes.append((w.text, x0, cy - th / 2, x0 + min(tw, x1 - x0), cy + th / 2))
    return [(a[0][:30], b[0][:30]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if min(a[3], b[3]) - max(a[1], b[1]) > 1 and min(a[4], b[4]) - max(a[2], b[2]) > 1]


def test_spanish_every_screen_and_question_on_a_1024x600_monitor(tmp_path, cfg, runtime):
    # Spanish runs longest, and 1024x600 is the smallest monitor deploy/README
    # lists: nothing a patient reads or taps may lie on top of another.
    from screens.i18n import Translator, used_msgids
    from screens.replay import replay_visit

    missing = Translator().missing(set(used_msgids()), "es")
    assert missing == []
    visit = negative_visit(**{"given-name": "Lucía", "ci-pregnant": True})
    visit["language"] = "es"
    shots = tmp_path / "es"
    crowded = {}

    def check(h, label):
        found = overlapping_controls(h)
        if found:
            crowded[label] = found

    out = replay_visit(cfg, visit_file(tmp_path, visit, runtime.pack), screenshots=str(shots), runtime=runtime,
                       size=(1024, 600), on_screen=check)
    assert crowded == {}
    assert out["tier"] == "caution"
    names = sorted(p.name for p in shots.glob("*.png"))
    assert any("rf-saddle" in n for n in names) and names[-1].endswith("thanks.png")


def test_escape_and_window_close_do_not_quit(cfg, runtime):
    from screens.replay import Harness

    h = Harness(runtime).start()
    try:
        assert h.window.dispatch("on_request_close") is True
        assert h.app._on_keyboard(h.window, 27) is True
        h.frames(2)
        assert h.app.sm.current == "welcome"
        from kivy.config import Config as KivyConfig

        assert KivyConfig.get("input", "mouse") == "mouse,disable_multitouch"
    finally:
        h.stop()


def test_large_text_toggle_and_touch_targets(cfg, runtime):
    from kivy.metrics import mm

    from screens.replay import Harness
    from screens.widgets import KButton

    h = Harness(runtime).start()
    try:
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        for _ in range(9):  # to the first yes/no question
            h.tap(h.screen.ids.skip) if not h.screen.item.required else None
            if h.screen.item.widget == "yesno":
                break
            if h.screen.item.required:
                h.app.answer(h.screen.item.link_id, "Ana" if h.screen.item.type == "string" else "1960-01-01")
                h.frames(2)
        q = h.screen.ids.question
        before = q.font_size
        h.tap(h.app.root.ids.large_text)
        h.frames(2)
        assert q.font_size > before * 1.3
        for w in h.app.root.walk(restrict=True):
            if isinstance(w, KButton) and w.opacity and not w.disabled and w.get_root_window():
                assert w.height >= mm(15) - 1 and w.width >= mm(15) - 1, (w.text, w.size)
    finally:
        h.stop()


def test_call_button_on_gpio_and_on_screen(cfg, runtime):
    from gpiozero import Device

    from screens.replay import Harness

    h = Harness(runtime).start()
    try:
        app = h.app
        assert app.call_panel.health()["ok"]
        pin = Device.pin_factory.pin(cfg.gpio.call_button_pin)
        pin.drive_low()
        time.sleep(0.1)
        pin.drive_high()
        deadline = time.monotonic() + 5
        while not app.staff_called and time.monotonic() < deadline:
            h.frames(1)
            time.sleep(0.02)
        assert app.staff_called
        assert "Staff are coming" in app.root.ids.call_staff.text
        led = Device.pin_factory.pin(cfg.gpio.call_led_pin)
        assert led.state
        # a second press while the call is open does not make a second call
        h.tap(app.root.ids.call_staff)
        # Both presses have gone through the alert bus and its writes are on
        # disk: whatever they wrote is there now, with no time to guess.
        assert app.call_panel.flush_alerts(timeout=10)
        h.wait_writes()
        calls = [json.loads(r["body"]) for r in records(cfg) if r["kind"] == "staff-call"]
        assert len(calls) == 1 and calls[0]["kind"] == "staff-call" and calls[0]["intake_id"] is None
    finally:
        h.stop()


def test_kiosk_runs_when_the_pin_factory_fails(cfg, runtime, monkeypatch):
    from gpiozero import Device

    from screens.replay import Harness

    saved = Device.pin_factory
    Device.pin_factory = None
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    try:
        h = Harness(runtime).start()
        try:
            app = h.app
            health = app.call_panel.health()
            assert not health["ok"] and health["mode"] == "unavailable"
            h.tap(app.root.ids.call_staff)
            h.frames(3)
            assert app.staff_called
            from kiosk.status import collect

            assert collect(cfg)["gpio"]["mode"] == "unavailable"
        finally:
            h.stop()
    finally:
        Device.pin_factory = saved


def test_welcome_offers_the_clinics_languages_that_the_pack_covers_and_a_third_is_data_only(tmp_path, pack_copy):
    from screens.replay import Harness

    from .test_session import add_language

    add_language(pack_copy, "fr", "[fr] ")
    c = Config().with_data_dir(tmp_path / "data3")
    c = c.replace("kiosk", content_pack=str(pack_copy)).replace("clinic", languages=["en", "fr", "es", "de"])
    enroll_offline(c)
    rt = Runtime.create(c)
    h = Harness(rt).start()
    try:
        buttons = list(reversed(h.screen.ids.languages.children))
        assert [(b.answer_code, b.text) for b in buttons] == [("en", "English"), ("fr", "Français"), ("es", "Español")]
        assert buttons[0].selected and not buttons[1].selected
        h.tap(buttons[1])
        assert h.app.language == "fr" and buttons[1].selected and not buttons[0].selected
        h.screenshot(tmp_path, "welcome-fr")
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        assert h.screen.ids.question.text == "[fr] What is your first name?"
    finally:
        h.stop()
        rt.close()


def test_published_content_is_used_from_the_next_visit_never_in_the_middle_of_one(tmp_path, cfg, runtime, pack_copy):
    from kiosk.questionnaire import load_pack
    from screens.replay import Harness

    from .conftest import edit_json

    edit_json(pack_copy / "pack.json", lambda m: m.update(version="9.0.0-new"))
    q = (pack_copy / "questionnaire.json").read_text()
    (pack_copy / "questionnaire.json").write_text(q.replace('"What is your first name?"', '"NEW: your first name?"', 1))
    new = load_pack(pack_copy)
    h = Harness(runtime).start()
    try:
        h.tap(h.screen.ids.start)  # a patient has begun
        h.app.content_arrived(new)
        h.frames(3)
        h.tap(h.screen.ids.continue_)
        assert h.screen.ids.question.text == "What is your first name?"
        assert h.app.visit.pack.content_version != "default@9.0.0-new"
        h.app.discard_visit()
        h.frames(2)
        assert runtime.pack.content_version == "default@9.0.0-new"
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        assert h.screen.ids.question.text == "NEW: your first name?"
    finally:
        h.stop()


def test_display_settings_reach_kivy_before_the_window(tmp_path):
    from kivy.config import Config as KivyConfig

    from kiosk.config import DisplaySection, parse
    from screens.app import configure_kivy

    saved = {(s, k): KivyConfig.get(s, k) for s, k in (("graphics", "rotation"), ("graphics", "width"), ("graphics", "height"))}
    try:
        display = parse({"display": {"rotation": 180, "width": 800, "height": 480, "touch_invert_x": True}}).display
        configure_kivy(True, display)
        assert KivyConfig.get("graphics", "rotation") == "180"
        assert (KivyConfig.get("graphics", "width"), KivyConfig.get("graphics", "height")) == ("800", "480")
        assert KivyConfig.get("graphics", "fullscreen") == "1"
        assert KivyConfig.get("input", "kiosk_touch") == "probesysfs,provider=hidinput,param=rotation=0,param=invert_x=1"
    finally:
        KivyConfig.remove_option("input", "kiosk_touch")
        configure_kivy(False, DisplaySection())
        for (s, k), v in saved.items():
            KivyConfig.set(s, k, v)


def test_the_attract_loop_decodes_only_while_the_welcome_screen_shows(tmp_path):
    import threading

    from screens.replay import Harness

    from .bench.bench_video import _make_media

    c = Config().with_data_dir(tmp_path / "data-attract")
    c = c.replace("kiosk", media_manifest=str(_make_media(tmp_path)))
    enroll_offline(c)
    rt = Runtime.create(c)
    h = Harness(rt).start()

    def decoding():
        return any(t.name == "Next frame" and t.is_alive() for t in threading.enumerate())

    def frames_until(predicate, seconds=30.0):
        deadline = time.monotonic() + seconds
        while not predicate() and time.monotonic() < deadline:
            h.frames(1)
        return predicate()

    try:
        app = h.app
        loop = app.sm.get_screen("welcome").ids.attract_holder.children[0]
        assert frames_until(lambda: loop.has_frame and decoding())
        # A touch on the clips starts nothing: a visit begins with the
        # patient's choice of first visit or returning (issue 19).
        assert loop.ids.start_label.opacity == 0  # no "touch to start" that would start nothing
        h.tap(loop)
        h.frames(2)
        assert app.sm.current == "welcome" and app.visit is None
        # Two steps within one frame (a quick patient, or replay): the
        # transition to privacy is cut short, yet the loop must stop.
        app.begin_visit()
        app.start_questions()
        h.frames(3)
        assert app.sm.current == "question"
        assert not loop.running and loop.ids.video.state == "stop"
        assert frames_until(lambda: not decoding(), seconds=5)
        # Back on the welcome screen, it plays again.
        app.discard_visit()
        assert frames_until(lambda: loop.has_frame and decoding())
    finally:
        h.stop()
        rt.close()


def test_a_kiosk_without_a_staff_pin_never_opens_the_staff_pad_with_the_demo_pin(tmp_path):
    from screens.replay import Harness

    c = Config().with_data_dir(tmp_path / "data-nopin").replace("kiosk", staff_pin_hash="  ")
    enroll_offline(c)
    rt = Runtime.create(c)
    h = Harness(rt).start()
    try:
        h.app.open_staff()
        h.frames(3)
        assert h.app.sm.current == "staff"
        for key in DEMO_PIN:
            h.tap(h.button(key=key))
        h.tap(h.button(key="ok"))
        assert not h.screen.unlocked
        assert "No staff PIN is set" in h.screen.message
    finally:
        h.stop()
        rt.close()


# -- returning patients (issue 19) ------------------------------------------------

#: One vignette patient: a woman of 65 with chronic low back pain and leg
#: pain, seen three times.
PATIENT = {"given-name": "Ana", "family-name": "López", "dob": "1961-04-02"}
PEG = lambda pain, enjoyment, activity: {"peg-pain": pain, "peg-enjoyment": enjoyment, "peg-activity": activity}


@pytest.mark.parametrize("lang,first,returning", [("en", "First visit", "I have been here before"),
                                                  ("es", "Primera visita", "Ya he venido antes")])
def test_the_welcome_screen_asks_first_visit_or_returning_by_touch(tmp_path, cfg, runtime, lang, first, returning):
    from screens.replay import Harness

    h = Harness(runtime, size=(1024, 600)).start()  # the smallest monitor deploy/README lists
    try:
        app = h.app
        h.tap(h.button(code=lang, root=h.screen.ids.languages))
        h.frames(2)
        welcome = h.screen
        assert (welcome.ids.start.text, welcome.ids.returning.text) == (first, returning)
        assert welcome.ids.start.height == welcome.ids.returning.height  # alike: neither is the "right" one
        assert overlapping_controls(h) == []
        h.screenshot(tmp_path, f"welcome-{lang}")
        h.tap(welcome.ids.returning)
        assert app.sm.current == "privacy"
        assert app.visit.answers == {"visit-kind": "returning"}  # nothing of an earlier visit is kept here
        h.tap(h.screen.ids.continue_)
        asked = [q.link_id for q in app.visit.questions()]
        assert asked[:4] == ["given-name", "family-name", "dob", "return-code"] and asked[-1] == "groc"
        assert "phone" not in asked and "sbst-1" not in asked and "rf-saddle" in asked
        for key in "ana":
            h.tap(h.button(key=key, root=h.screen.answer_widget))
        h.tap(h.screen.ids.next)
        h.tap(h.screen.ids.back)
        h.tap(h.screen.ids.back)  # to the privacy notice, then Back again forgets the visit
        h.tap(h.screen.ids.back)
        assert app.sm.current == "welcome" and app.visit is None
        h.tap(h.button(code=lang, root=h.screen.ids.languages))
        h.tap(h.screen.ids.start)
        assert app.visit.answers == {"visit-kind": "first"}  # the next patient finds nothing of this one
        h.tap(h.screen.ids.continue_)
        assert h.screen.answer_widget.text == ""
        assert "phone" in [q.link_id for q in app.visit.questions()]
        name = {"en": "What is your first name?", "es": "¿Cuál es su nombre?"}[lang]
        assert h.screen.ids.question.text == name
    finally:
        h.stop()


def test_a_returning_visit_takes_far_fewer_screens_than_a_first(tmp_path, cfg, runtime):
    from screens.replay import replay_visit

    first = negative_visit(**PATIENT, **PEG(7, 6, 7), **{
        "phone": "600123456", "pain-areas": ["lower-back", "left-leg"], "pain-now": 7,
        **{f"sbst-{n}": "agree" for n in range(1, 9)}, "sbst-9": "very-much"})
    follow_up = negative_visit(**PATIENT, **PEG(5, 4, 4), **{"visit-kind": "returning", "return-code": "k7qf",
                                                            "pain-now": 5, "groc": "better"})
    shots = tmp_path / "returning"
    out_first = replay_visit(cfg, visit_file(tmp_path, first, runtime.pack), runtime=runtime)
    out_again = replay_visit(cfg, visit_file(tmp_path, follow_up, runtime.pack), screenshots=str(shots),
                             runtime=runtime)
    # welcome, privacy, the questions, review, thanks
    assert out_first["screens"] == 4 + 42 and out_again["screens"] == 4 + 33
    assert out_again["screens"] == len(list(shots.glob("*.png")))
    assert out_first["scores"] == {"pain-now": 7, "peg": 6.7,
                                   "startback": {"total": 9, "psychosocial": 5, "risk": "high"}}
    assert out_again["scores"] == {"pain-now": 5, "peg": 4.3, "startback": None}
    bodies = {r["id"]: json.loads(r["body"]) for r in records(cfg)}
    assert bodies[out_first["intake_id"]]["visit_kind"] == "first"
    again = bodies[out_again["intake_id"]]
    assert again["visit_kind"] == "returning" and again["return_code"] == "K7QF"  # typed as printed: capitals
    assert again["answers"]["groc"] == "better" and "phone" not in again["answers"]


def test_a_returning_patients_emergency_answer_still_stops_the_visit_and_alerts(tmp_path, cfg, runtime):
    from screens.replay import replay_visit

    visit = negative_visit(**PATIENT, **{"visit-kind": "returning", "pain-now": 6, "rf-bowel": True})
    shots = tmp_path / "shots"
    out = replay_visit(cfg, visit_file(tmp_path, visit, runtime.pack), screenshots=str(shots), runtime=runtime)
    assert out["tier"] == "emergency" and out["codes"] == ["rf-bowel"]
    names = sorted(p.name for p in shots.glob("*.png"))
    assert names[-1].endswith("emergency.png") and not any("peg" in n or "groc" in n for n in names)
    kinds = {r["kind"]: json.loads(r["body"]) for r in records(cfg)}
    assert kinds["visit"]["status"] == "emergency" and kinds["visit"]["visit_kind"] == "returning"
    assert kinds["alert"]["kind"] == "emergency" and kinds["alert"]["intake_id"] == out["intake_id"]


def test_three_visits_of_one_patient_reach_a_real_hub_with_their_visit_kind(tmp_path):
    """First visit, then two follow-ups of the same patient, through the real
    kiosk UI and a real `clinic-hub serve` on 127.0.0.1 (matching them to one
    patient is the hub's side: tests/hub)."""
    from kiosk.sync import SyncWorker
    from screens.replay import replay_visit

    from .hub.conftest import Hub, enroll_kiosk

    hub = Hub(tmp_path / "hub-data", f"sqlite:///{tmp_path / 'hub-data' / 'hub.db'}")
    hub.start()
    try:
        c = enroll_kiosk(hub, tmp_path / "kiosk").replace("kiosk", staff_pin_hash=PIN_HASH)
        visits = [
            ("2026-11-02", negative_visit(**PATIENT, **PEG(7, 6, 7), **{
                "phone": "600123456", "pain-areas": ["lower-back"], "pain-now": 7,
                **{f"sbst-{n}": "disagree" for n in range(1, 10)}, "sbst-9": "moderately"})),
            ("2026-11-16", negative_visit(**PATIENT, **PEG(5, 4, 5), **{
                "visit-kind": "returning", "return-code": "K7QF", "pain-now": 5, "groc": "better"})),
            ("2026-11-30", negative_visit(**PATIENT, **PEG(3, 2, 2), **{
                "visit-kind": "returning", "pain-now": 3, "groc": "much-better"})),
        ]
        rt = Runtime.create(c)
        try:
            intake_ids = []
            for day, visit in visits:
                visit["visit_date"] = day
                intake_ids.append(replay_visit(c, visit_file(tmp_path, visit, rt.pack), runtime=rt)["intake_id"])
        finally:
            rt.close()
        assert SyncWorker(c).drain().remaining == 0
        with hub.repo() as repo:
            received = [next(r.payload for r in repo.intake_records(i) if r.kind == "visit") for i in intake_ids]
        assert [p["visit_kind"] for p in received] == ["first", "returning", "returning"]
        assert [p["return_code"] for p in received] == [None, "K7QF", None]
        assert [p["visit_date"] for p in received] == [day for day, _ in visits]
        assert [(p["answers"]["given-name"], p["answers"]["family-name"], p["answers"]["dob"]) for p in received] \
            == [("Ana", "López", "1961-04-02")] * 3
        assert [p["result"]["scores"]["peg"] for p in received] == [6.7, 4.7, 2.3]
        assert [p["answers"].get("groc") for p in received] == [None, "better", "much-better"]
        assert "sbst-1" in received[0]["answers"] and "sbst-1" not in received[1]["answers"]
        assert all(p["status"] == "complete" and p["result"]["tier"] == "none" for p in received)
    finally:
        hub.kill()
