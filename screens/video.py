"""The video screen: one technique's explainer video with captions and text.

The app opens it with ``app.go("video", technique_id="swedish")``; the
``technique_id`` property is set before :meth:`VideoScreen.on_activate`.

What a patient gets:

* the video starts by itself, *muted* (a waiting room is shared) with a
  clear sound button, and captions drawn over the picture, on by default;
* play/pause, replay, a progress bar, and the title and plain-language text
  ("what to expect", "when it is not suitable") beside the video;
* when the video is missing, corrupt or cannot be decoded, the poster and the
  text instead (and a log line), never a black screen or a crash.

While the video plays (from its first frame) the visit is kept alive with
``app.hold_idle(True)``; pausing, reaching the end, a failure or leaving the
screen releases it.

The kiosk's one player (:class:`screens.player.KioskPlayer`, shared with the
welcome loop) checks the file while it opens it and watches for the first
frame; the screen shows the poster and text when it reports a failure.
"""

from __future__ import annotations

import time
from functools import partial

from kivy.logger import Logger
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.widget import Widget

from kiosk.media import caption_at
from screens.base import KioskScreen, load_kv
from screens.player import KioskPlayer, in_background  # noqa: F401  (KioskPlayer: used in video.kv)


class VideoProgress(Widget):
    """A thick progress bar, drawn in video.kv; ``value`` runs 0..1."""

    value = NumericProperty(0.0)


class VideoScreen(KioskScreen):
    """Plays the video of the technique named by :attr:`technique_id`."""

    #: Which technique of ``app.catalogue`` to show; set before activation.
    technique_id = StringProperty("")

    title = StringProperty("")
    summary = StringProperty("")
    expect = StringProperty("")
    not_suitable = StringProperty("")
    poster = StringProperty("")
    #: The caption showing now ("" between cues).
    caption = StringProperty("")
    captions_on = BooleanProperty(True)
    muted = BooleanProperty(True)
    playing = BooleanProperty(False)
    #: True once the first frame is on screen (the poster is hidden then).
    has_frame = BooleanProperty(False)
    #: True when the video cannot be shown: poster and text only.
    fallback = BooleanProperty(False)
    #: Playback position, 0..1.
    progress = NumericProperty(0.0)

    #: Seconds to wait for the first frame before showing the fallback.
    first_frame_timeout = 10.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._token = 0  # bumps on every activation so a late poster check is ignored
        self._holding = False
        self._cues = ()
        self._technique = None
        #: perf_counter() of the last play request and of its first frame,
        #: for the benchmark.
        self.play_requested_at = 0.0
        self.first_frame_at = 0.0

    # -- life cycle -------------------------------------------------------

    def on_activate(self):
        self._token += 1
        self._reset_player()
        self.fallback = False
        self.poster = ""  # this technique's, once it is found on disk
        catalogue = getattr(self.app, "catalogue", None)
        self._technique = catalogue.get(self.technique_id) if catalogue is not None else None
        # on_activate may run again without a leave (app.go to the same
        # screen): unbind first so the handler is never bound twice.
        self.app.unbind(language=self._show_texts)
        self.app.bind(language=self._show_texts)
        self._show_texts()
        if self._technique is None:
            self._fall_back(f"unknown technique {self.technique_id!r}")
            return
        video = self.ids.video
        video.first_frame_timeout = self.first_frame_timeout
        video.volume = 0.0 if self.muted else 1.0
        self.play_requested_at = time.perf_counter()
        poster = self._technique.poster
        in_background(lambda: str(poster) if poster.is_file() else "", partial(self._poster_found, self._token),
                      name="poster-check")
        video.open(str(self._technique.video))

    def back(self):
        self.app.go("techniques")

    def on_deactivate(self):
        self._token += 1
        self.app.unbind(language=self._show_texts)
        self._reset_player()

    def wipe(self):
        self._reset_player()
        self.technique_id = ""
        self.muted = True
        self.captions_on = True

    def _reset_player(self):
        self.ids.video.release()
        self.playing = False
        self.has_frame = False
        self.progress = 0.0
        self.caption = ""
        self.first_frame_at = 0.0
        self._hold(False)

    def _show_texts(self, *args):
        technique = self._technique
        language = self.app.language
        if technique is None:
            self.title = self.summary = self.expect = self.not_suitable = self.poster = ""
            self._cues = ()
            return
        self.title = technique.text("title", language)
        self.summary = technique.text("summary", language)
        self.expect = technique.text("expect", language)
        self.not_suitable = technique.text("not_suitable", language)
        self._cues = technique.cues_for(language)
        self._update_caption()

    def _poster_found(self, token, poster):
        if token == self._token:
            self.poster = poster

    def _fall_back(self, reason: str):
        Logger.warning(f"VideoScreen: showing poster and text instead of the video: {reason}")
        self._reset_player()
        self.fallback = True
        if self._technique is not None and not self.poster and self._technique.poster.is_file():
            self.poster = str(self._technique.poster)

    # -- controls -----------------------------------------------------------

    def play(self):
        """Start or resume playback (from the start after the end)."""
        if self.fallback or not self.ids.video.source:
            return
        self.ids.video.state = "play"

    def pause(self):
        if self.ids.video.state == "play":
            self.ids.video.state = "pause"
        self.playing = False
        self._hold(False)

    def toggle_play(self):
        if self.playing:
            self.pause()
        else:
            self.play()

    def replay(self):
        """Back to the start and play."""
        video = self.ids.video
        if self.fallback or not video.source:
            return
        if video.loaded and not video.eos and video.state != "stop":
            video.seek(0)
        self.progress = 0.0
        self.play()

    def toggle_mute(self):
        self.muted = not self.muted

    def toggle_captions(self):
        self.captions_on = not self.captions_on

    def on_muted(self, *args):
        self.ids.video.volume = 0.0 if self.muted else 1.0

    # -- events from the player (bound in video.kv) -------------------------

    def video_state(self, video, state):
        # Playing follows the player: it starts by itself once the file is
        # found, and stops at the end. The visit is held from the first frame.
        self.playing = state == "play"
        self._hold(self.playing and self.has_frame)

    def video_started(self, video):
        self.has_frame = True
        self.first_frame_at = time.perf_counter()
        # Playback has really started: keep the visit alive while it runs.
        self._hold(self.playing)

    def video_failed(self, video, reason):
        self._fall_back(reason)

    def video_position(self, video, position):
        if video.duration and video.duration > 0:
            self.progress = max(0.0, min(1.0, position / video.duration))
        self._update_caption()

    def video_eos(self, video, eos):
        # Kivy sets ``state`` to "stop" before it sets ``eos``, so the end is
        # detected here rather than on the state change.
        if eos:
            # The end: release the visit's idle hold; replay starts again.
            self.playing = False
            self.progress = 1.0
            self.caption = ""
            self._hold(False)

    def _update_caption(self):
        video = self.ids.video
        if not self.playing and not video.eos and video.position <= 0:
            self.caption = caption_at(self._cues, 0.0)
        else:
            self.caption = caption_at(self._cues, max(0.0, video.position))

    def _hold(self, hold: bool):
        # Only report changes, so the app's hold count stays balanced.
        if hold != self._holding:
            self._holding = hold
            self.app.hold_idle(hold)


load_kv(__file__)
