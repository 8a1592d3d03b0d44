"""Drives the real kiosk UI headless: the self-test clinics run after
deployment (``clinic-kiosk replay``) and the way the tests use the app.

:class:`Harness` starts the app without a main loop and steps frames itself,
as Kivy's own graphic tests do; :meth:`Harness.tap` sends a real touch
(:func:`finger`, a motion event like Kivy's ``UnitTestTouch``) at the centre
of a widget. :func:`replay_visit` taps through a visit file the way a patient
would, saving a PNG per screen.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import time
from pathlib import Path

from kiosk.runtime import Runtime
from kiosk.visit import VisitFile

#: Frames to step after a tap so the next screen is laid out and drawn.
SETTLE_FRAMES = 2


def finger(x: float, y: float):
    """A finger on the screen at window position ``x, y``: a real touch
    through Kivy's input dispatch, as Kivy's ``UnitTestTouch`` makes one,
    with ``touch_down()`` and ``touch_up()``.

    Not imported from ``kivy.tests.common``, which loads pytest, pygments and
    unittest: about 10 MB in every replay, and ``replay`` is the self-test a
    deployed kiosk runs.
    """
    return _finger_class()(x, y)


@functools.cache
def _finger_class():
    from kivy.base import EventLoop
    from kivy.input.motionevent import MotionEvent

    class Finger(MotionEvent):
        def __init__(self, x, y):
            window = EventLoop.window
            super().__init__("Finger", 99, {"x": x / (window.width - 1.0), "y": y / (window.height - 1.0)},
                             is_touch=True, type_id="touch")
            self.profile = ["pos"]

        def depack(self, args):
            self.sx, self.sy = args["x"], args["y"]  # fractions of the window
            super().depack(args)

        def touch_down(self):
            EventLoop.post_dispatch_input("begin", self)

        def touch_up(self):
            EventLoop.post_dispatch_input("end", self)

    return Finger


class FakeClock:
    """A monotonic clock the tests move by hand (for the idle timer)."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Harness:
    """The real app in the real window, stepped frame by frame."""

    def __init__(self, runtime: Runtime | None, now=time.monotonic, size=(1280, 800), app=None):
        """``app`` replaces the kiosk app (e.g. the out-of-order app, which
        has no runtime)."""
        from .window import configure_kivy

        configure_kivy(fullscreen=False)
        from kivy.core.window import Window

        from .app import KioskApp

        Window.size = size
        self.window = Window
        self.app = app if app is not None else KioskApp(runtime, now=now)
        self.runtime = runtime

    def start(self) -> "Harness":
        from kivy.base import runTouchApp
        from kivy.clock import Clock

        # Frames are stepped by hand, so the clock must not also hold each
        # one to the screen's 60 per second (about 10 ms of sleep a frame,
        # a fifth of a replay). Kivy's own test fixtures do the same.
        self._max_fps, Clock._max_fps = Clock._max_fps, 0
        self.app._run_prepare()
        runTouchApp(embedded=True)
        self.frames(5)
        return self

    def stop(self) -> None:
        from kivy.base import stopTouchApp
        from kivy.clock import Clock

        self.wait_writes()
        self.app.dispatch("on_stop")
        stopTouchApp()
        Clock._max_fps = getattr(self, "_max_fps", Clock._max_fps)
        for child in list(self.window.children):
            self.window.remove_widget(child)
        from kivy.app import App

        App._running_app = None

    def frames(self, n: int = 1) -> None:
        from kivy.base import EventLoop

        for _ in range(n):
            EventLoop.idle()

    def wait_writes(self, timeout: float = 30.0) -> None:
        """Steps frames until the app's disk writes have come back."""
        if not hasattr(self.app, "pending_writes"):
            return
        deadline = time.monotonic() + timeout
        while self.app.pending_writes and time.monotonic() < deadline:
            time.sleep(0.005)
            self.frames(1)
        if self.app.pending_writes:
            raise RuntimeError("a write did not finish in time")
        self.frames(SETTLE_FRAMES)

    @property
    def screen(self):
        return self.app.sm.current_screen

    def tap(self, widget) -> None:
        """A real touch down and up at the centre of ``widget``."""
        if widget.disabled:
            raise RuntimeError(f"cannot tap a disabled {type(widget).__name__}")
        x, y = widget.to_window(*widget.center)
        touch = finger(x, y)
        touch.touch_down()
        self.frames(1)
        touch.touch_up()
        self.frames(SETTLE_FRAMES)

    def find(self, predicate, root=None):
        root = root or self.app.root
        for w in root.walk(restrict=True):
            if predicate(w):
                return w
        return None

    def button(self, code=None, key=None, root=None):
        from .widgets import KButton

        root = root or self.screen
        found = self.find(
            lambda w: isinstance(w, KButton) and ((code is not None and w.answer_code == code and type(w.answer_code) is type(code)) or (key is not None and w.key == key)),
            root,
        )
        if found is None:
            raise RuntimeError(f"no button for {code if key is None else key!r} on the {self.app.sm.current} screen")
        return found

    def screenshot(self, folder: str | Path, label: str) -> Path:
        """A PNG of the window as drawn now, ``folder/label.png``.

        Read with ``glReadPixels`` and written by Pillow with light
        compression: SDL's own PNG writer took most of a replay's time.
        """
        from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels
        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.frames(1)
        width, height = self.window.size
        pixels = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
        target = folder / f"{shot_name(label)}.png"
        image = Image.frombytes("RGB", (width, height), pixels).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        image.save(target, compress_level=1)
        return target


def _type_text(h: Harness, widget, item, text: str) -> None:
    for ch in text:
        if ch == " ":
            h.tap(h.button(key="space", root=widget))
            continue
        lower = ch.lower()
        if not any(lower in row for row in widget.rows):
            raise RuntimeError(f"{item.link_id}: {ch!r} cannot be typed on the on-screen keyboard")
        if widget.needs_shift(ch):
            h.tap(h.button(key="shift", root=widget))
        h.tap(h.button(key=lower, root=widget))


def _pad_keys(item, value) -> str:
    """The keys to press on a number pad for ``value``."""
    kind = item.widget
    if kind == "date":
        y, m, d = value.split("-")
        return d + m + y
    if kind == "datetime":
        moment = dt.datetime.fromisoformat(value)
        return moment.strftime("%d%m%Y%H%M")
    if kind == "time":
        return value.replace(":", "")[:4]
    if kind in ("integer", "decimal", "quantity"):
        number = value.get("value") if isinstance(value, dict) else value
        return f"{number:g}" if isinstance(number, float) else str(number)
    return "".join(ch for ch in str(value) if ch not in " -()")


def type_answer(h: Harness, item, value) -> None:
    """Answers the current question with ``value`` by tapping the UI."""
    widget = h.screen.answer_widget
    kind = item.widget
    if kind in ("yesno", "scale", "choice"):
        h.tap(h.button(code=value, root=widget))
        return
    if kind == "openchoice":
        values = value if isinstance(value, list) else [value]
        codes = [o.code for o in item.options]
        for v in values:
            if v in codes:
                h.tap(h.button(code=v, root=widget))
                if not item.repeats:
                    return
            else:
                h.tap(widget.ids.other)
                _type_text(h, widget.keyboard, item, v)
    elif kind in ("multichoice", "bodymap"):
        for code in value:
            h.tap(h.button(code=code, root=widget))
    elif kind in ("keyboard", "text", "code"):
        _type_text(h, widget, item, value)
    elif kind == "display":
        pass
    else:
        if kind == "quantity" and isinstance(value, dict) and len(item.units) > 1:
            h.tap(h.button(code=value["unit"], root=widget))
        for ch in _pad_keys(item, value):
            h.tap(h.button(key=ch, root=widget))
    h.tap(h.screen.ids.next)


def shot_name(label: str) -> str:
    """A file name for a screenshot label that may hold any characters of a
    linkId (``/``, spaces, dots...): unsafe characters become ``_`` and a
    short hash keeps two such labels apart."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", label).strip("._") or "screen"
    if safe != label:
        safe = f"{safe[:80]}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"
    return safe


def answer_questions(h: Harness, vf: VisitFile, shot=lambda label: None) -> None:
    """From the first question, answers (or skips) each question as ``vf``
    says, by touch, until another screen shows (review or emergency)."""
    app = h.app
    app.visit.visit_date = vf.visit_date
    guard = 0
    while app.sm.current == "question":
        guard += 1
        if guard > 500:
            raise RuntimeError("the questionnaire did not end")
        item = app.visit.current()
        shot(f"question-{item.link_id}")
        value = vf.answers.get(item.link_id)
        if item.type == "display":
            type_answer(h, item, None)
        elif value is None:
            if item.required:
                raise RuntimeError(f"{item.link_id}: required answer is missing")
            h.tap(h.screen.ids.skip)
        else:
            type_answer(h, item, value)


def replay_visit(config, vf: VisitFile, screenshots: str | None = None, runtime: Runtime | None = None,
                 size=(1280, 800), on_screen=None) -> dict:
    """Taps through ``vf`` in the real UI and submits it like a patient
    (on the welcome screen "I have been here before" when its visit-kind
    answer is "returning", else "First visit").

    Returns the result JSON plus ``intake_id`` and ``screens`` (the number
    of screens shown). An emergency visit ends on the staff screen.
    ``size`` is the window's; ``on_screen(harness, label)`` is called on
    every screen as it shows (the tests check layouts with it).
    """
    own_runtime = runtime is None
    runtime = runtime or Runtime.create(config)
    h = Harness(runtime, size=size)
    h.app.source = "replay"
    h.app.use_gpio = False
    h.app.use_speech = False
    h.start()
    shots = 0

    def shot(label):
        nonlocal shots
        if on_screen is not None:
            on_screen(h, label)
        if screenshots:
            shots += 1
            h.screenshot(screenshots, f"{shots:02d}-{label}")

    try:
        app = h.app
        app.set_language(vf.language)
        h.frames(2)
        shot("welcome")
        kind = app.session.pack.role("visit_kind")
        returning = kind is not None and vf.answers.get(kind) == "returning"
        h.tap(h.screen.ids.returning if returning else h.screen.ids.start)
        shot("privacy")
        h.tap(h.screen.ids.continue_)
        answer_questions(h, vf, shot)
        if app.sm.current == "review":
            shot("review")
            h.tap(h.screen.ids.submit)
            h.wait_writes()
        elif app.sm.current == "emergency":
            h.wait_writes()
        else:
            raise RuntimeError(f"ended on the {app.sm.current} screen")
        shot(app.sm.current)
        if app.last_submitted is None:
            raise RuntimeError("the visit was not saved")
        out = dict(app.last_submitted["result"])
        out["intake_id"] = app.last_submitted["intake_id"]
        out["screens"] = app.screens_shown
        return out
    finally:
        h.stop()
        if own_runtime:
            runtime.close()
