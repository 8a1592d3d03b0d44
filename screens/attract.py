"""The waiting-room loop for the welcome screen.

:class:`AttractLoop` cycles through the techniques of the catalogue: each
clip plays silently with its captions in the current language (or, in
``mode="posters"``, each poster is shown for ``poster_seconds`` while its
captions run), under a large "Touch the screen to start" label. A clip that
is missing or cannot be decoded is shown as its poster instead: the loop
checks every clip once, off the UI thread, and plays them in the kiosk's one
player (:class:`screens.player.KioskPlayer`), whose first-frame watchdog
reports a clip that checked well but shows no picture.

The welcome screen places it, starts it when shown and stops it when left::

    AttractLoop:
        id: attract
        on_start_visit: app.go("language")

    # welcome.py
    def on_activate(self):  self.ids.attract.start()
    def on_deactivate(self): self.ids.attract.stop()

A touch anywhere on the loop dispatches ``on_start_visit`` and is consumed
when a handler is bound; with none bound, the touch passes through.
It never calls ``app.hold_idle``: it *is* what the kiosk shows when idle.
"""

from __future__ import annotations

import time
from functools import partial

from kivy.app import App
from kivy.clock import Clock
from kivy.logger import Logger
from kivy.properties import (BooleanProperty, NumericProperty, ObjectProperty,
                             OptionProperty, StringProperty)
from kivy.uix.floatlayout import FloatLayout

from kiosk.media import caption_at
from screens.base import load_kv
from screens.player import KioskPlayer, check_videos  # noqa: F401  (KioskPlayer: used in attract.kv)


class AttractLoop(FloatLayout):
    """Silent clips (or posters) with captions, one technique after another."""

    #: The :class:`kiosk.media.Catalogue` to show; ``None`` means ``app.catalogue``.
    catalogue = ObjectProperty(None, allownone=True)
    #: "clips" plays the videos (muted); "posters" shows stills only, which
    #: costs almost no CPU on a busy Pi.
    mode = OptionProperty("clips", options=("clips", "posters"))
    #: How long a poster stays up (the caption cues run over this time).
    poster_seconds = NumericProperty(8.0)
    #: Seconds to wait for a clip's first frame before showing its poster.
    first_frame_timeout = NumericProperty(8.0)
    #: The line under the clips (English; shown in the visit's language);
    #: empty where a touch on the loop starts nothing.
    start_hint = StringProperty("Touch the screen to start")

    index = NumericProperty(-1)
    title = StringProperty("")
    poster = StringProperty("")
    caption = StringProperty("")
    showing_video = BooleanProperty(False)
    has_frame = BooleanProperty(False)
    running = BooleanProperty(False)

    __events__ = ("on_start_visit",)

    def __init__(self, **kwargs):
        self._playable: set[str] | None = None  # None until probed
        self._clip = ""  # the clip playing (or last played)
        self._cues = ()
        self._poster_started = 0.0
        self._events = []
        self._token = 0
        super().__init__(**kwargs)

    # -- control ------------------------------------------------------------

    def start(self):
        """Start cycling from the first technique."""
        if self.running:
            return
        self.running = True
        self._token += 1
        app = App.get_running_app()
        if app is not None:
            app.unbind(language=self._refresh_language)
            app.bind(language=self._refresh_language)
        techniques = self._techniques()
        if self.mode == "clips" and self._playable is None and techniques:
            # Check the clips once, off the UI thread; posters show meanwhile.
            check_videos([str(t.video) for t in techniques], partial(self._probed, self._token))
        self.index = -1
        self.next()

    def stop(self):
        """Stop playback and timers (call it when the welcome screen leaves)."""
        self.running = False
        self._token += 1
        app = App.get_running_app()
        if app is not None:
            app.unbind(language=self._refresh_language)
        self._cancel()
        self._unload()

    def next(self, *args):
        """Move on to the next technique."""
        self._cancel()
        self._unload()
        techniques = self._techniques()
        if not self.running or not techniques:
            return
        self.index = (self.index + 1) % len(techniques)
        technique = techniques[self.index]
        self.poster = str(technique.poster)
        self._refresh_language()
        video = str(technique.video)
        if self.mode == "clips" and self._playable is not None and video in self._playable:
            self.showing_video = True
            player = self.ids.video
            player.volume = 0.0
            player.first_frame_timeout = self.first_frame_timeout
            self._clip = video
            player.open(video, checked=True)
        else:
            self._poster_started = time.monotonic()
            self._events.append(Clock.schedule_interval(self._tick_poster, 0.25))
            self._events.append(Clock.schedule_once(self.next, self.poster_seconds))

    # -- internals ------------------------------------------------------------

    def _techniques(self):
        catalogue = self.catalogue
        if catalogue is None:
            app = App.get_running_app()
            catalogue = getattr(app, "catalogue", None)
        return list(catalogue) if catalogue is not None else []

    def _language(self) -> str:
        app = App.get_running_app()
        return getattr(app, "language", "en") or "en"

    def _refresh_language(self, *args):
        techniques = self._techniques()
        if 0 <= self.index < len(techniques):
            technique = techniques[self.index]
            self.title = technique.text("title", self._language())
            self._cues = technique.cues_for(self._language())
        else:
            self.title, self._cues = "", ()
        self.caption = caption_at(self._cues, 0.0)

    def _probed(self, token, results):
        good = set()
        for video, problem in results.items():
            if problem is None:
                good.add(video)
            else:
                Logger.warning(f"AttractLoop: showing the poster instead: {problem}")
        self._playable = good
        if token == self._token and self.running and not self.showing_video:
            # Switch to clips right away rather than after the first poster.
            self.index -= 1
            self.next()

    def _tick_poster(self, dt):
        elapsed = time.monotonic() - self._poster_started
        self.caption = caption_at(self._cues, elapsed)

    def _cancel(self):
        for event in self._events:
            event.cancel()
        self._events = []

    def _unload(self):
        self.ids.video.release()
        self.showing_video = False
        self.has_frame = False
        self.caption = ""

    # -- events from the player (bound in attract.kv) ----------------------

    def video_started(self, video):
        if self.showing_video:
            self.has_frame = True

    def video_failed(self, video, reason):
        # Checked well, yet no picture: its poster from now on.
        if self.showing_video:
            Logger.warning(f"AttractLoop: {reason}; showing posters")
            if self._playable is not None:
                self._playable.discard(self._clip)
            self.index -= 1
            self.next()

    def video_position(self, video, position):
        if self.showing_video:
            self.caption = caption_at(self._cues, max(0.0, position))

    def video_eos(self, video, eos):
        if self.showing_video and eos:
            # Deferred: the player is still inside its end-of-stream callback.
            self._events.append(Clock.schedule_once(self.next, 0.5))

    def on_touch_down(self, touch):
        # Consume the touch only when someone handles it; otherwise it
        # passes on to whatever sits behind the loop.
        if self.collide_point(*touch.pos) and self.get_property_observers("on_start_visit"):
            self.dispatch("on_start_visit")
            return True
        return super().on_touch_down(touch)

    def on_start_visit(self):
        """A patient touched the loop: the welcome screen starts the visit."""


load_kv(__file__)
