"""The kiosk's one video player, used by the welcome loop
(:mod:`screens.attract`) and the technique player (:mod:`screens.video`).

:class:`MediaPlayer` is what both screens ask of a player;
:class:`KioskPlayer` is the one they use: a :class:`~kivy.uix.video.Video`
(ffpyplayer) that checks the file it is asked to play and watches for its
first frame. Kivy's ffpyplayer provider never
reports a bad file (the picture just stays black), so:

* :meth:`KioskPlayer.open` checks the file with :func:`kiosk.media.playable`
  (a child process, from a worker thread: no disk I/O on the UI thread)
  while the decoder opens it, so the check costs the patient no waiting;
* a watchdog covers a file that passes the check but still shows no picture
  within :attr:`KioskPlayer.first_frame_timeout` seconds of playing.

Either way the player releases the file and dispatches ``on_failure`` with
a one-line reason; the screen then shows the poster (and the captions or the
text) instead, never a black screen. A screen places it in its kv file and
listens::

    KioskPlayer:
        id: video
        on_first_frame: root.video_started()
        on_failure: root.video_failed(args[1])

    # in the screen
    self.ids.video.open(str(technique.video))
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Callable, Protocol

from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.video import Video

from kiosk.media import playable


def in_background(work: Callable[[], object], then: Callable[[object], None], name: str = "media-check") -> None:
    """Runs ``work()`` on a worker thread (file checks, never on the UI
    thread) and ``then(result)`` on the UI thread, through the Kivy clock."""

    def run():
        result = work()
        Clock.schedule_once(lambda _dt: then(result))

    threading.Thread(target=run, name=name, daemon=True).start()


def check_videos(videos: list[str], then: Callable[[dict[str, str | None]], None]) -> None:
    """Checks ``videos`` off the UI thread (:func:`kiosk.media.playable`);
    ``then({path: None or the reason it does not play})`` on the UI thread.
    The welcome loop checks all its clips this way, once."""
    in_background(lambda: playable(videos), then, name="video-check")


class MediaPlayer(Protocol):
    """What the welcome loop and the technique player ask of a video player,
    whichever decoder is behind it: play a file it has checked, say when the
    first picture comes (``on_first_frame``) and when the file cannot be
    shown (``on_failure(reason)``), so the screen can show the poster
    instead. Kivy's playback properties (``state``, ``volume``,
    ``position``, ``eos``) do the rest."""

    first_frame_timeout: float
    has_frame: bool

    def open(self, video: str, *, checked: bool = False) -> None:
        """Plays ``video`` from the start, checking it unless ``checked``."""

    def release(self) -> None:
        """Stops playback and frees the decoder and the last frame."""


class KioskPlayer(Video):
    """A video that is checked before it is trusted (see the module).

    Events: ``on_first_frame`` once the first picture is decoded, and
    ``on_failure(reason)`` when the file is missing, fails the check, or
    shows no picture in time (the player has released it by then).
    Playback is Kivy's own: ``state``, ``volume``, ``position``, ``eos``,
    ``seek``.
    """

    #: Seconds of playing without a picture before the video counts as broken.
    first_frame_timeout = NumericProperty(10.0)
    #: True from the first decoded frame until :meth:`release`.
    has_frame = BooleanProperty(False)

    __events__ = ("on_first_frame", "on_failure")

    def __init__(self, **kwargs):
        self._token = 0  # bumps on every open and release: late checks are ignored
        self._watchdog = None
        super().__init__(**kwargs)
        self.fbind("state", self._state_changed)
        self.fbind("texture", self._texture_changed)

    def texture_update(self, *largs):
        # Kivy's Image base would load the source as a still picture, on the
        # UI thread, and log an error for every video: the screens show the
        # poster themselves.
        pass

    # -- control ---------------------------------------------------------------

    def open(self, video: str, *, checked: bool = False) -> None:
        """Plays ``video`` from the start. Unless ``checked`` (the caller has
        already checked it with :func:`check_videos`), the file is checked
        meanwhile: a missing one is never opened, a corrupt one is released
        again before it shows anything useful."""
        self.release()
        token = self._token
        if checked:
            self._start(token, video)
            return

        def check():
            if not Path(video).is_file():
                return f"{video}: file not found"
            Clock.schedule_once(lambda _dt: self._start(token, video))
            return playable([video])[video]

        in_background(check, partial(self._checked, token), name="video-check")

    def release(self) -> None:
        """Stops playback and frees the decoder and the last frame."""
        self._token += 1
        self._cancel_watchdog()
        self.state = "stop"
        self.unload()
        self.source = ""
        self.texture = None
        self.has_frame = False

    # -- internals ---------------------------------------------------------------

    def _start(self, token: int, video: str) -> None:
        if token == self._token:
            self.source = video
            self.state = "play"

    def _checked(self, token: int, problem: str | None) -> None:
        if problem is not None and token == self._token:
            self._fail(problem)

    def _fail(self, reason: str) -> None:
        self.release()
        self.dispatch("on_failure", reason)

    def _state_changed(self, _player, state) -> None:
        # The watchdog counts only while playing: a video paused before its
        # first frame is not broken.
        if state == "play" and not self.has_frame:
            if self._watchdog is None:
                self._watchdog = Clock.schedule_once(self._check_started, self.first_frame_timeout)
        else:
            self._cancel_watchdog()

    def _texture_changed(self, _player, texture) -> None:
        if texture is not None and self.source and not self.has_frame:
            self.has_frame = True
            self._cancel_watchdog()
            self.dispatch("on_first_frame")

    def _check_started(self, _dt) -> None:
        self._watchdog = None
        if not self.has_frame and self.state == "play":
            self._fail(f"{self.source}: no picture after {self.first_frame_timeout:g} s")

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def on_first_frame(self):
        """The first picture is on its way to the screen."""

    def on_failure(self, reason: str):
        """The video cannot be shown; ``reason`` names the file and why."""
