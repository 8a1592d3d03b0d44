"""The Kivy kiosk app: one window, a screen manager, and the current visit.

The app owns the services (from :class:`kiosk.runtime.Runtime`) and exactly
one :class:`kiosk.visit.Visit`. Screens are views loaded on first use, as in
Kivy's showcase example; they ask the app to move on (:meth:`KioskApp.go`,
:meth:`KioskApp.answer`) and never touch storage themselves. Disk writes run
on a worker thread; results come back through the Kivy clock.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.alerts import Alert
from kiosk.idle import IdleTimer
from kiosk.runtime import Runtime
from kiosk.staff import PinGuard
from kiosk.visit import Visit

from .i18n import Translator

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

#: Screen name -> class name in screens/<name>.py
SCREEN_CLASSES = {
    "welcome": "WelcomeScreen",
    "privacy": "PrivacyScreen",
    "question": "QuestionScreen",
    "review": "ReviewScreen",
    "thanks": "ThanksScreen",
    "emergency": "EmergencyScreen",
    "staff": "StaffScreen",
    "techniques": "TechniquesScreen",
    "video": "VideoScreen",
}

#: Screens where no visit is under way: the idle timer does not run there.
RESTING = {"welcome", "techniques", "video"}


def configure_kivy(fullscreen: bool) -> None:
    """Kiosk hardening; must run before the window exists."""
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "log_level", os.environ.get("KIOSK_KIVY_LOG", "warning"))
    # no red dots from right-click multitouch emulation
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")


class KioskApp(App):
    """The kiosk. ``runtime`` carries config, pack, store and alerts."""

    language = StringProperty("en")
    large_text = BooleanProperty(False)
    clinic_name = StringProperty("")
    staff_called = BooleanProperty(False)
    idle_seconds_left = NumericProperty(0)
    font_scale = NumericProperty(1.0)
    catalogue = ObjectProperty(None, allownone=True)
    pending_writes = NumericProperty(0)

    #: Where visits come from: "kiosk", or "replay" for the self-test, so
    #: staff can tell a self-test from a patient.
    source = "kiosk"
    #: Whether this app owns the GPIO pins. The self-test (replay) does not:
    #: the running kiosk service holds them.
    use_gpio = True
    #: True from a submitted visit's thanks screen until the kiosk resets:
    #: the videos then lead back to "thanks", and the idle timer runs.
    _after_visit = False

    def __init__(self, runtime: Runtime, now=time.monotonic, **kwargs):
        super().__init__(**kwargs)
        self.runtime = runtime
        self.config_ = runtime.config
        self.now = now
        self.translator = Translator()
        self.visit: Visit | None = None
        self.idle = IdleTimer(self.config_.kiosk.idle_timeout_s, self.config_.kiosk.idle_countdown_s, now=now())
        self.pin_guard = PinGuard.from_config(self.config_.kiosk.staff_pin_hash)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-writer")
        self.screens_shown = 0
        self.last_submitted: dict | None = None
        self.clinic_name = self.config_.clinic.name
        self.language = self.config_.clinic.default_language
        self.large_text = self.config_.kiosk.large_text
        self.catalogue = runtime.catalogue
        self._idle_dialog = None
        self.call_panel = None

    # -- set-up ------------------------------------------------------------

    def build(self):
        self.title = "Clinic kiosk"
        if str(HERE / "app.kv") not in Builder.files:
            Builder.load_file(str(HERE / "app.kv"))
        self.sm = ScreenManager(transition=NoTransition())
        from .chrome import KioskRoot

        root = KioskRoot()
        root.ids.holder.add_widget(self.sm)
        self.go("welcome")
        return root

    def on_start(self):
        from kivy.core.window import Window

        Window.bind(on_request_close=lambda *a, **k: True)  # staff exit is not a window close
        Window.bind(on_keyboard=self._on_keyboard)
        Window.bind(on_key_down=self._on_key_down, on_key_up=self._on_key_up)
        Window.bind(on_touch_down=self._on_any_touch)
        Window.clearcolor = (0.97, 0.96, 0.94, 1)
        if not self.config_.kiosk.fullscreen:
            Window.show_cursor = True
        self._idle_event = Clock.schedule_interval(self._idle_tick, 0.5)
        # the welcome screen should not wait for GPIO
        self.after_first_frame(self.start_call_panel)

    _first_frame_done = False

    def after_first_frame(self, callback):
        """Runs ``callback`` on the clock once the first frame is on screen
        (at once, on the next tick, when it already is)."""
        from kivy.core.window import Window

        if self._first_frame_done:
            Clock.schedule_once(lambda _dt: callback(), 0)
            return

        def flipped(*_):
            Window.unbind(on_flip=flipped)
            self._first_frame_done = True
            Clock.schedule_once(lambda _dt: callback(), 0)

        Window.bind(on_flip=flipped)

    def start_call_panel(self):
        """The GPIO call button and lights. Its callbacks come on gpiozero's
        thread, so they only schedule work on the Kivy clock."""
        import dataclasses

        from kiosk.hardware import CallPanel

        cfg = self.config_
        self.call_panel = CallPanel(
            cfg.gpio if self.use_gpio else dataclasses.replace(cfg.gpio, enabled=False),
            on_call=lambda: Clock.schedule_once(lambda _dt: self._staff_call_changed(True)),
            on_ack=lambda: Clock.schedule_once(lambda _dt: self._staff_call_changed(False)),
            alert_bus=self.runtime.alerts,
            kiosk_id=cfg.kiosk.kiosk_id,
        )
        health = self.call_panel.health()
        if not health.get("ok"):
            log.warning("call button not available (%s): the on-screen button still works", health.get("message"))
        if self.use_gpio:
            self.writer.submit(self.runtime.store.set_state, "gpio", json.dumps(health))
        self._panel_event = Clock.schedule_interval(lambda _dt: self.call_panel.tick(), 0.1)

    def _staff_call_changed(self, called: bool):
        self.staff_called = called or self.sm.current == "emergency"

    def on_stop(self):
        # Clock events outlive the app; nothing of this one may fire later.
        for event in (getattr(self, "_idle_event", None), getattr(self, "_panel_event", None)):
            if event is not None:
                event.cancel()
        if self.sm.current_screen is not None:
            self.sm.current_screen.on_deactivate()
        if self.call_panel is not None:
            self.call_panel.close()
        self.writer.shutdown(wait=True)

    def on_large_text(self, *_):
        self.font_scale = 1.35 if self.large_text else 1.0

    def _on_keyboard(self, window, key, *args):
        # Escape (27) must not quit a kiosk; swallow it.
        return key == 27

    def _on_key_down(self, window, key, scancode, codepoint, modifiers):
        if self.call_panel is not None and self._is_demo_key(key):
            self.call_panel.demo_key_down()
            return True
        return False

    def _on_key_up(self, window, key, *args):
        if self.call_panel is not None and self._is_demo_key(key):
            self.call_panel.demo_key_up()
            return True
        return False

    def _is_demo_key(self, key: int) -> bool:
        from kivy.core.window import Keyboard

        return Keyboard.keycodes.get(self.config_.gpio.demo_key.lower()) == key

    def _on_any_touch(self, *_):
        self.idle.touch(self.now())
        return False

    # -- strings -----------------------------------------------------------

    def t(self, msgid: str, *_depends) -> str:
        """The UI string in the current language. In kv, pass
        ``app.language`` as a second argument so the text follows it."""
        return self.translator.get(msgid, self.language)

    def item_text(self, texts: dict) -> str:
        return texts.get(self.language) or texts.get("en") or next(iter(texts.values()), "")

    def fs(self, size: float, *_depends) -> float:
        """A font size scaled for the large-text setting."""
        from kivy.metrics import sp

        return sp(size) * self.font_scale

    # -- screens -----------------------------------------------------------

    def load_screen(self, name: str):
        if self.sm.has_screen(name):
            return self.sm.get_screen(name)
        module = importlib.import_module(f"screens.{name}")
        kv = HERE / f"{name}.kv"
        if kv.exists() and str(kv) not in Builder.files:
            Builder.load_file(str(kv))
        screen = getattr(module, SCREEN_CLASSES[name])(name=name)
        self.sm.add_widget(screen)
        return screen

    def go(self, name: str, **props):
        screen = self.load_screen(name)
        for key, value in props.items():
            setattr(screen, key, value)
        self.screens_shown += 1
        if self.sm.current == name:
            screen.on_activate()
        else:
            self.sm.current = name
        self.idle.touch(self.now())
        return screen

    @property
    def current_screen(self):
        return self.sm.current_screen

    def back(self):
        """The back button of the current screen."""
        if self.sm.current == "question" and self.visit:
            item = self.visit.back()
            if item is None:
                self.go("privacy")
            else:
                self.go("question")
        elif self.sm.current == "video":
            self.go("techniques")
        elif self.sm.current == "techniques":
            self.go("thanks" if self._after_visit else "welcome")
        elif self.sm.current == "privacy":
            self.discard_visit()
        elif self.sm.current == "review" and self.visit:
            self.visit.position = self.visit.questions()[-1].link_id
            self.go("question")
        else:
            self.go("welcome")

    # -- the visit ---------------------------------------------------------

    def set_language(self, code: str):
        if code in self.runtime.pack.languages:
            self.language = code
            if self.visit:
                self.visit.language = code

    def toggle_large_text(self):
        self.large_text = not self.large_text

    def begin_visit(self):
        self.visit = Visit(self.runtime.pack, self.language, kiosk_id=self.config_.kiosk.kiosk_id)
        self._after_visit = False
        self.go("privacy")

    def start_questions(self):
        if self.visit is None:
            self.begin_visit()
        item = self.visit.start()
        self.go("question" if item else "review")

    def answer(self, link_id: str, value):
        """Records an answer and moves on; stops at once on an emergency."""
        self.visit.answer(link_id, value)
        if self.visit.is_emergency():
            self.raise_emergency()
            return
        self.next_question()

    def skip(self, link_id: str):
        self.visit.skip(link_id)
        self.next_question()

    def next_question(self):
        item = self.visit.advance()
        self.go("question" if item else "review")

    def edit_answer(self, link_id: str):
        self.visit.go_to(link_id, reviewing=True)
        self.go("question")

    def submit(self):
        """Saves the visit durably, then shows the thanks screen."""
        if self.pending_writes or self.visit is None:
            return  # a second tap on "send" while saving
        payload = self.visit.payload("complete")
        payload["source"] = self.source
        self._save(payload, then=lambda: self._finish("thanks"))

    def raise_emergency(self):
        """Emergency answer: save what we have, alert staff, show the calm screen."""
        payload = self.visit.payload("emergency")
        payload["source"] = self.source
        alert = Alert(kind="emergency", kiosk_id=self.config_.kiosk.kiosk_id, intake_id=payload["intake_id"])
        self.staff_called = True  # the alert went out: the top bar says staff are coming
        self.go("emergency")
        self.visit = None  # nothing of it stays in memory
        if self.call_panel is not None:
            self.call_panel.set_emergency(True)

        def write():
            self.runtime.store.add("visit", payload, record_id=payload["intake_id"])
            self.runtime.alerts.send(alert)

        self._run_write(write, then=lambda: self._remember(payload))

    def _save(self, payload: dict, then):
        def write():
            self.runtime.store.add("visit", payload, record_id=payload["intake_id"])

        self._run_write(write, then=lambda: (self._remember(payload), then()))

    def _remember(self, payload: dict):
        # Only what replay and the self-test report: never the answers.
        self.last_submitted = {
            "intake_id": payload["intake_id"],
            "result": payload["result"],
        }

    def _run_write(self, fn, then):
        self.pending_writes += 1
        future = self.writer.submit(fn)

        def done(fut):
            def on_main(_dt):
                self.pending_writes -= 1
                exc = fut.exception()
                if exc is not None:
                    log.error("could not save a record: %s", type(exc).__name__)
                    self.go("emergency" if self.sm.current == "emergency" else "review")
                    if self.sm.current == "review":
                        self.current_screen.show_error(self.t("Sorry, your answers could not be saved. Please tell a member of staff."))
                    return
                then()

            Clock.schedule_once(on_main, 0)
            if fut.exception() is None:
                self.runtime.records_saved()

        future.add_done_callback(done)

    def _finish(self, screen: str):
        self.visit = None
        self._after_visit = True
        self.wipe_screens()
        self.go(screen)

    def discard_visit(self):
        """Forgets the visit whole and returns to the welcome screen."""
        self.visit = None
        self._after_visit = False
        self.staff_called = bool(self.call_panel and self.call_panel.state.call_active)
        self.wipe_screens()
        self.language = self.config_.clinic.default_language
        self.large_text = self.config_.kiosk.large_text
        self.dismiss_idle_dialog()
        self.go("welcome")

    def wipe_screens(self):
        for screen in self.sm.screens:
            screen.wipe()

    # -- idle --------------------------------------------------------------

    def hold_idle(self, on: bool):
        """A playing video keeps the visit alive; the timeout restarts after."""
        self.idle.hold(on, self.now())

    def _idle_tick(self, _dt=None):
        if self.sm.current == "emergency" or self.sm.current == "staff":
            return  # stays until staff act
        if self.sm.current in RESTING and not self._after_visit:
            self.idle.touch(self.now())
            return
        state, left = self.idle.state(self.now())
        if state == "active":
            self.dismiss_idle_dialog()
        elif state == "warning":
            self.idle_seconds_left = left
            self._show_idle_dialog()
        else:
            self.discard_visit()

    def _show_idle_dialog(self):
        if self._idle_dialog is None:
            from .chrome import IdleDialog

            self._idle_dialog = IdleDialog()
            self._idle_dialog.open(animation=False)

    def dismiss_idle_dialog(self):
        if self._idle_dialog is not None:
            self._idle_dialog.dismiss(animation=False)
            self._idle_dialog = None

    def still_here(self):
        self.idle.touch(self.now())
        self.dismiss_idle_dialog()

    # -- staff -------------------------------------------------------------

    def call_staff(self):
        """The on-screen call button (the GPIO button takes the same path)."""
        self.call_panel.request_call()

    def acknowledge_call(self):
        self.call_panel.acknowledge()

    def open_staff(self):
        self._staff_return = self.sm.current
        self.go("staff")

    def close_staff(self, dismiss_emergency: bool = False):
        if dismiss_emergency or getattr(self, "_staff_return", "welcome") == "emergency":
            if self.call_panel is not None:
                self.call_panel.set_emergency(False)
            self.discard_visit()
        else:
            self.go(getattr(self, "_staff_return", "welcome"))


def run_kiosk(runtime: Runtime, windowed: bool = False) -> None:
    """``clinic-kiosk run``: the app, with the sync worker in the background."""
    from kiosk.sync import SyncWorker

    config = runtime.config
    configure_kivy(config.kiosk.fullscreen and not windowed)
    runtime.sync = SyncWorker(config)
    runtime.sync.start()
    try:
        KioskApp(runtime).run()
    finally:
        runtime.close()
