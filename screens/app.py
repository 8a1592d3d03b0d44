"""The Kivy kiosk app: one window, a screen manager, and the wiring.

The visit flow lives in :class:`kiosk.session.IntakeSession` (Kivy-free);
the app shows the screen the session names after each step of the patient,
and owns the window, the clock, GPIO and systemd. Screens are views loaded
on first use, as in Kivy's showcase example; each handles its own Back and
none touches storage: disk writes run on the session's writer thread and
their results come back through the Kivy clock.
"""

from __future__ import annotations

import importlib
import json
import logging
import time

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.runtime import Runtime
from kiosk.session import IntakeSession
from kiosk.staff import PinGuard

from .i18n import Translator, language_name
from .lifecycle import ServiceApp
from .window import configure_kivy  # noqa: F401  (run_kiosk's, and the tests' and bench's)
from .palette import LARGE_TEXT_SCALE

log = logging.getLogger(__name__)

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

class KioskApp(ServiceApp, App):
    """The kiosk. ``runtime`` carries config, pack, store and alerts."""

    language = StringProperty("en")
    large_text = BooleanProperty(False)
    clinic_name = StringProperty("")
    staff_called = BooleanProperty(False)
    #: Whether the screens are read aloud (the top bar's button; ``[audio]
    #: read_aloud`` at the start of each visit), and whether they can be:
    #: the button shows only when espeak-ng and the sound device are there.
    read_aloud = BooleanProperty(False)
    speech_available = BooleanProperty(False)
    idle_seconds_left = NumericProperty(0)
    font_scale = NumericProperty(1.0)
    catalogue = ObjectProperty(None, allownone=True)
    pending_writes = NumericProperty(0)
    #: The problems that put the kiosk out of order after it started (a
    #: database that cannot be opened); empty while it works.
    out_of_order: tuple[str, ...] = ()
    #: (code, name in that language) of every language offered.
    languages = ListProperty([])

    #: Whether this app owns the GPIO pins. The self-test (replay) does not:
    #: the running kiosk service holds them.
    use_gpio = True
    #: Whether this app speaks. The self-test (replay) does not: the running
    #: kiosk service owns the sound device.
    use_speech = True

    def __init__(self, runtime: Runtime, now=time.monotonic, **kwargs):
        super().__init__(**kwargs)
        self.runtime = runtime
        self.config_ = runtime.config
        self.now = now
        self.translator = Translator()
        self.session = IntakeSession(runtime, deliver=self._deliver, now=now)
        self.pin_guard = PinGuard.from_config(self.config_.kiosk.staff_pin_hash)
        self.screens_shown = 0
        self.clinic_name = self.config_.clinic.name
        self.language = self.session.language
        self.large_text = self.config_.kiosk.large_text
        self.read_aloud = self.config_.audio.read_aloud
        self.speaker = None
        self.reader = None
        #: What the last look for espeak-ng and the sound device found (None before it came back).
        self.speech_health = None
        self.catalogue = runtime.catalogue
        self.languages = [(code, language_name(code)) for code in self.session.languages()]
        self._idle_dialog = None
        self.call_panel = None

    def _deliver(self, fn) -> None:
        """Runs what the session's writer thread hands back on the UI thread."""
        def on_ui(_dt):
            fn()
            self.pending_writes = self.session.pending_writes

        Clock.schedule_once(on_ui, 0)

    @property
    def visit(self):
        """The visit under way (read only: the session changes it)."""
        return self.session.visit

    @property
    def last_submitted(self):
        return self.session.last_submitted

    @property
    def source(self) -> str:
        """Where visits come from: "kiosk", or "replay" for the self-test,
        so staff can tell a self-test from a patient."""
        return self.session.source

    @source.setter
    def source(self, value: str) -> None:
        self.session.source = value

    # -- set-up ------------------------------------------------------------

    def build(self):
        self.title = "Clinic kiosk"
        from . import widgets  # noqa: F401  (its import loads the shared widget rules)
        from .chrome import KioskRoot

        self.sm = ScreenManager(transition=NoTransition())
        root = KioskRoot()
        root.ids.holder.add_widget(self.sm)
        self._build_reader()
        self.go("welcome")
        return root

    def on_start(self):
        from kivy.core.window import Window

        Window.bind(on_request_close=lambda *a, **k: True)  # staff exit is not a window close
        Window.bind(on_keyboard=self._on_keyboard)
        Window.bind(on_key_down=self._on_key_down, on_key_up=self._on_key_up)
        Window.bind(on_touch_down=self._on_any_touch)
        from .widgets import PALETTE

        Window.clearcolor = PALETTE["paper"]
        if not self.config_.kiosk.fullscreen:
            Window.show_cursor = True
        self._idle_event = Clock.schedule_interval(self._idle_tick, 0.5)
        self.start_service_notify()
        # the welcome screen waits neither for the database nor for GPIO
        # nor for the first sync with the hub
        self.after_first_frame(self.open_store)
        self.after_first_frame(self.start_call_panel)
        self.after_first_frame(self.start_speech)
        if self.runtime.sync is not None:
            self.after_first_frame(self.runtime.sync.start)

    def open_store(self):
        """Opens the database on the writer thread, ahead of any record it
        will write. One that cannot be opened (a corrupt file, a full disk)
        puts the kiosk out of order, as a broken configuration does."""
        path = self.config_.database_path

        def done(future):
            exc = future.exception()
            if exc is not None:
                # The exception's type and text only: opening fails before
                # any record is read, so no patient data can be in it.
                problem = (f"{self.config_.source}:kiosk.data_dir: cannot open the database {path} "
                           f"({type(exc).__name__}: {exc})")
                self.session.deliver(lambda: self.show_out_of_order([problem]))

        self.session.writer.submit(self.runtime.store.open_now).add_done_callback(done)

    def show_out_of_order(self, problems: list[str]):
        """Replaces everything on screen with the calm out-of-order note, logs
        each problem once and says so in the systemd status line."""
        from kivy.core.window import Window

        from .outoforder import view_for

        for line in problems:
            log.error("out of order: %s", line)
        if self.notifier is not None:
            self.notifier.status("out of order: " + problems[0])
        if self._idle_event is not None:
            self._idle_event.cancel()
        if self.sm.current_screen is not None:
            self.sm.current_screen.deactivate()
        self.out_of_order = tuple(problems)
        Window.remove_widget(self.root)
        Window.add_widget(view_for(self.translator, [code for code, _name in self.languages]))

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
            self.session.run_in_background(lambda: self.runtime.store.set_state("gpio", json.dumps(health)),
                                           then=lambda _result: None)
        self._panel_event = Clock.schedule_interval(lambda _dt: self.call_panel.tick(), 0.1)

    def _build_reader(self) -> None:
        from kiosk.speech import SilentSpeaker, speaker_for

        from .readaloud import ReadAloud

        if not self.use_speech:
            self.speaker = SilentSpeaker("read-aloud is not used by the self-test")
        elif self.runtime.speaker is not None:
            self.speaker = self.runtime.speaker
        else:
            self.speaker = speaker_for(self.config_.audio, tuple(self.session.languages()))
            self.runtime.speaker = self.speaker  # closed with the runtime
        self.reader = ReadAloud(self, self.speaker)

    def start_speech(self):
        """Looks for espeak-ng, its voices and the sound device off the UI
        thread (a few subprocesses); the Read aloud button shows once they
        are there. A missing device is no error to the patient: the button
        stays hidden, and `status` and the hub's kiosks page say why."""
        import threading

        speaker = self.speaker
        speaker.on_health = lambda health: Clock.schedule_once(lambda _dt: self._speech_health(health), 0)

        def check():
            health = speaker.check() if hasattr(speaker, "check") else speaker.health()
            Clock.schedule_once(lambda _dt: self._speech_health(health), 0)

        threading.Thread(target=check, name="speech-check", daemon=True).start()

    def _speech_health(self, health: dict) -> None:
        if self.reader is None or getattr(self.speaker, "on_health", None) is None:
            return  # the app stopped before the check came back
        available = bool(health.get("ok"))
        self.speech_health = health
        if not available and self.speech_available is not available:
            log.warning("read-aloud not available (%s)", health.get("message"))
        self.speech_available = available
        if self.use_speech:
            facts = {**health, "read_aloud": bool(self.config_.audio.read_aloud)}
            self.session.run_in_background(lambda: self.runtime.store.set_state("audio", json.dumps(facts)),
                                           then=lambda _result: None)
        if available:
            self.reader.screen_shown()

    def toggle_read_aloud(self):
        self.read_aloud = not self.read_aloud
        self.reader.switched()

    def staff_acknowledged(self, alert_ids) -> None:
        """Staff acknowledged alerts of this kiosk on the hub's page: the call
        light goes out. Meant for the sync worker's ``on_acknowledged(ids)``
        hook (connected by ``run_kiosk``), which runs on the sync thread; so
        this only schedules work.
        """
        def on_ui(_dt):
            if self.call_panel is not None:
                self.call_panel.acknowledge()
                if self.sm.current != "emergency":
                    self.call_panel.set_emergency(False)

        Clock.schedule_once(on_ui, 0)

    def _staff_call_changed(self, called: bool):
        self.staff_called = called or self.sm.current == "emergency"

    def on_stop(self):
        # Clock events outlive the app; nothing of this one may fire later.
        for event in (getattr(self, "_idle_event", None), getattr(self, "_panel_event", None)):
            if event is not None:
                event.cancel()
        self.stop_service_notify()
        if self.sm.current_screen is not None:
            self.sm.current_screen.deactivate()
        if self.call_panel is not None:
            self.call_panel.close()
        if self.reader is not None:
            self.reader.close()
        if self.speaker is not None and hasattr(self.speaker, "on_health"):
            self.speaker.on_health = None
        self.session.close()

    def on_large_text(self, *_):
        self.font_scale = LARGE_TEXT_SCALE if self.large_text else 1.0

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
        self.session.touch()
        if self.reader is not None:
            self.reader.interrupted()  # a tap stops the speech at once
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
        module = importlib.import_module(f"screens.{name}")  # loads its .kv too
        screen = getattr(module, SCREEN_CLASSES[name])(name=name)
        self.sm.add_widget(screen)
        return screen

    def go(self, name: str, **props):
        screen = self.load_screen(name)
        for key, value in props.items():
            setattr(screen, key, value)
        self.screens_shown += 1
        previous = self.sm.current_screen
        if previous is not None and previous is not screen:
            # Not left to the transition's on_leave, which never comes when
            # the next tap cuts the transition short: a welcome video would
            # then go on decoding behind the questions.
            previous.deactivate()
        if self.sm.current == name:
            screen.activate()
        else:
            self.sm.current = name
        self.session.touch()
        if self.reader is not None:
            self.reader.screen_shown()
        return screen

    @property
    def current_screen(self):
        return self.sm.current_screen

    def back(self):
        """The back button: the screen showing decides where it leads."""
        self.sm.current_screen.back()

    # -- the visit ---------------------------------------------------------

    def set_language(self, code: str):
        if self.session.set_language(code):
            self.language = code

    def toggle_large_text(self):
        self.large_text = not self.large_text

    def begin_visit(self, visit_kind: str = "first"):
        """The welcome screen's "First visit" or "I have been here before"."""
        self.go(self.session.begin(visit_kind))

    def start_questions(self):
        self.go(self.session.start_questions())

    def answer(self, link_id: str, value):
        """Records an answer and moves on; stops at once on an emergency."""
        step = self.session.answer(link_id, value)
        if step == "emergency":
            self._show_emergency()
        else:
            self.go(step)

    def skip(self, link_id: str):
        self.go(self.session.skip(link_id))

    def edit_answer(self, link_id: str):
        self.go(self.session.edit(link_id))

    def submit(self):
        """Saves the visit durably, then shows the thanks screen."""
        self.session.submit(on_saved=self._after_submit, on_failed=self._save_failed)
        self.pending_writes = self.session.pending_writes

    def _show_emergency(self):
        self.pending_writes = self.session.pending_writes
        self.staff_called = True  # the alert went out: the top bar says staff are coming
        self.go("emergency")
        if self.call_panel is not None:
            self.call_panel.set_emergency(True)

    def _after_submit(self):
        self.wipe_screens()
        self.go("thanks")

    def _save_failed(self):
        if self.sm.current == "emergency":
            return  # the calm screen stays; the alert went out regardless
        self.go("review")
        self.current_screen.show_error(self.t("Sorry, your answers could not be saved. Please tell a member of staff."))

    def discard_visit(self):
        """Forgets the visit whole and returns to the welcome screen."""
        self.session.discard()
        self.staff_called = bool(self.call_panel and self.call_panel.state.call_active)
        self.wipe_screens()
        self.language = self.session.language
        self.large_text = self.config_.kiosk.large_text
        self.read_aloud = self.config_.audio.read_aloud
        if self.use_speech and not self.speech_available and self.reader is not None:
            self.start_speech()  # a speaker plugged in since is found for the next patient
        self.dismiss_idle_dialog()
        self.go("welcome")
        self._swap_content()

    def wipe_screens(self):
        for screen in self.sm.screens:
            screen.wipe()
        if self.speaker is not None:
            self.speaker.forget()  # what was rendered ahead may hold this visit's answers

    # -- idle --------------------------------------------------------------

    def hold_idle(self, on: bool):
        """A playing video keeps the visit alive; the timeout restarts after."""
        self.session.hold_idle(on)

    # -- published content -------------------------------------------------

    def content_arrived(self, pack) -> None:
        """A new content version passed its checks (the sync worker's
        ``on_content``, on the sync thread): it is used from the next visit
        on, never in the middle of one (:meth:`IntakeSession.take_offered_pack`)."""
        def on_ui(_dt):
            self.session.offer_pack(pack)
            self._swap_content()

        Clock.schedule_once(on_ui, 0)

    def _swap_content(self) -> None:
        pack = self.session.take_offered_pack(self.sm.current)
        if pack is None:
            return
        self.language = self.session.language
        self.languages = [(code, language_name(code)) for code in self.session.languages()]
        if self.runtime.sync is not None:
            self.runtime.sync.set_content_version(pack.content_version)
        log.info("content: now asking %s", pack.content_version)

    def _idle_tick(self, _dt=None):
        self._swap_content()
        state, left = self.session.idle_state(self.sm.current)
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
            if self.reader is not None:
                self.reader.say(self._idle_dialog, calm=False)

    def dismiss_idle_dialog(self):
        if self._idle_dialog is not None:
            self._idle_dialog.dismiss(animation=False)
            self._idle_dialog = None

    def still_here(self):
        self.session.touch()
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
    """``clinic-kiosk run``: the app, with the sync worker in the background
    (started once the first frame is drawn, like the database and GPIO)."""
    from kiosk.sync import SyncWorker

    config = runtime.config
    configure_kivy(config.kiosk.fullscreen and not windowed, config.display)
    app = KioskApp(runtime)
    # Staff acknowledging an alert on the hub turns the call light off here;
    # the pack is already loaded, so the worker need not load it again.
    runtime.sync = SyncWorker(config, on_acknowledged=app.staff_acknowledged,
                              content_version=runtime.pack.content_version, on_content=app.content_arrived)
    try:
        app.run()
    finally:
        runtime.close()
