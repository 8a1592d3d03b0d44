"""The techniques list, the video screen and the attract loop, as real
widgets in a real Kivy window (headless SDL2 on software GL is fine).

Frames are advanced with ``EventLoop.idle()`` in bounded loops and taps are
``UnitTestTouch`` presses, as in Kivy's own tests. Video decoding runs in
real time on ffpyplayer's threads, so waits are bounded by a deadline.

Only one Kivy window exists per process: every Kivy test of the media
screens lives in this module. Set ``MEDIA_SHOTS_DIR`` to keep screenshots.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

import pytest  # noqa: E402

from kiosk import media_gen  # noqa: E402
from kiosk.media import load_catalogue  # noqa: E402

CLIP_SECONDS = 2.0
VTT_EN = ("WEBVTT\n\n00:00.000 --> 00:01.000\nHands glide along the back.\n\n"
          "00:01.000 --> 00:02.000\nThe pressure is gentle.\n")
VTT_ES = ("WEBVTT\n\n00:00.000 --> 00:01.000\nLas manos se deslizan por la espalda.\n\n"
          "00:01.000 --> 00:02.000\nLa presión es suave.\n")


def _entry(tid, title_en, title_es, video, poster):
    return {
        "id": tid,
        "title": {"en": title_en, "es": title_es},
        "summary": {"en": f"{title_en}: what it is.", "es": f"{title_es}: qué es."},
        "expect": {"en": "Slow, calm movements.", "es": "Movimientos lentos y tranquilos."},
        "not_suitable": {"en": "Not over wounds or fractures.", "es": "No sobre heridas o fracturas."},
        "video": video,
        "poster": poster,
        "captions": {"en": "demo.en.vtt", "es": "demo.es.vtt"},
    }


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    """Two-second clip, posters, captions, a corrupt file, and a manifest
    with a good, a corrupt and a missing video."""
    import json

    folder = tmp_path_factory.mktemp("video-screen")
    media_gen.render_clip("swedish", folder / "demo.mp4", seconds=CLIP_SECONDS)
    media_gen.render_poster("swedish", folder / "demo.png")
    media_gen.render_poster("percussion", folder / "broken.png")
    media_gen.render_poster("stretching", folder / "missing.png")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    (folder / "demo.en.vtt").write_text(VTT_EN, encoding="utf-8")
    (folder / "demo.es.vtt").write_text(VTT_ES, encoding="utf-8")
    manifest = {"version": 1, "languages": ["en", "es"], "techniques": [
        _entry("demo", "Swedish massage", "Masaje sueco", "demo.mp4", "demo.png"),
        _entry("broken", "Percussion device", "Aparato de percusión", "broken.mp4", "broken.png"),
        _entry("missing", "Stretching", "Estiramientos", "nowhere.mp4", "missing.png"),
    ]}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def window():
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    win = EventLoop.window
    win.size = (1280, 800)
    return win


@pytest.fixture(scope="module")
def stub_app_class():
    from kivy.app import App
    from kivy.properties import BooleanProperty, StringProperty

    class StubApp(App):
        """What the media screens need of the real app, and a record of calls."""

        language = StringProperty("en")
        large_text = BooleanProperty(False)

        def __init__(self, catalogue, **kwargs):
            super().__init__(**kwargs)
            self.catalogue = catalogue
            self.holds: list[bool] = []
            self.went: list[tuple[str, dict]] = []
            # no visit submitted: Back from the media screens leads to welcome
            self.session = SimpleNamespace(after_visit=False)

        def t(self, msgid, *_):
            return msgid

        def go(self, name, **kwargs):
            self.went.append((name, kwargs))

        def hold_idle(self, hold):
            self.holds.append(hold)

    return StubApp


@pytest.fixture
def app(window, media_dir, stub_app_class):
    from kivy.app import App

    previous = App._running_app
    stub = stub_app_class(load_catalogue(media_dir / "manifest.json"))
    App._running_app = stub
    try:
        yield stub
    finally:
        stub.dispatch("on_stop")  # kv's `app` proxy forgets the stub
        App._running_app = previous


@pytest.fixture
def manager(window, app):
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

    sm = ScreenManager(transition=NoTransition())
    sm.add_widget(Screen(name="blank"))
    window.add_widget(sm)
    try:
        yield sm
    finally:
        leave(sm)
        window.remove_widget(sm)


def advance(condition, seconds=8.0):
    """Run frames until ``condition()`` is true or ``seconds`` pass."""
    from kivy.base import EventLoop

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        EventLoop.idle()
        if condition():
            return True
    return condition()


def tap(widget):
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()
    advance(lambda: False, seconds=0.05)


def shot(window, name):
    folder = os.environ.get("MEDIA_SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return window.screenshot(name=str(Path(folder) / name))
    return None


def leave(manager):
    """Switch to the blank screen and let the transition finish."""
    manager.current = "blank"
    advance(lambda: False, seconds=0.1)


def window_rect(widget):
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, widget.width, widget.height


def show_video(manager, technique_id):
    from screens.video import VideoScreen

    if not manager.has_screen("video"):
        manager.add_widget(VideoScreen(name="video"))
    screen = manager.get_screen("video")
    screen.technique_id = technique_id
    manager.current = "video"
    return screen


# -- the techniques list -----------------------------------------------------


def test_techniques_list_opens_a_video(window, app, manager):
    from kivy.metrics import mm
    from screens.techniques import TechniquesScreen

    manager.add_widget(TechniquesScreen(name="techniques"))
    manager.current = "techniques"
    screen = manager.get_screen("techniques")
    cards = list(reversed(screen.ids.grid.children))
    assert [c.title for c in cards] == ["Swedish massage", "Percussion device", "Stretching"]
    advance(lambda: cards[0].height > mm(15) and cards[0].width > mm(15), seconds=2)
    advance(lambda: False, seconds=0.5)  # let AsyncImage load the posters
    shot(window, "techniques.png")
    for card in cards:
        assert card.width >= mm(15) and card.height >= mm(15)

    tap(cards[1])
    assert app.went == [("video", {"technique_id": "broken"})]

    app.language = "es"
    advance(lambda: False, seconds=0.05)
    titles = [c.title for c in reversed(screen.ids.grid.children)]
    assert titles[0] == "Masaje sueco"
    tap(screen.ids.back_button)
    assert app.went[-1] == ("welcome", {})


# -- the video screen ----------------------------------------------------------------


def test_playing_video_has_captions_is_muted_and_holds_the_visit(window, app, manager):
    screen = show_video(manager, "demo")
    video = screen.ids.video
    assert advance(lambda: screen.has_frame and screen.caption, seconds=10), "no first frame"
    # Sound is off by default; captions are on and drawn over the picture.
    assert screen.muted and video.volume == 0
    assert screen.ids.sound_button.text == "Turn sound on"
    caption = screen.ids.caption_label
    assert caption.text == "Hands glide along the back."
    assert caption.opacity == 1

    def caption_inside_the_picture():
        cx, cy, cw, ch = window_rect(caption)
        vx, vy, vw, vh = window_rect(video)
        return vx <= cx and cx + cw <= vx + vw and vy <= cy and cy + ch <= vy + vh

    # On a busy machine the first frame can come before the screen's
    # transition and layout are done: frames until they are (bounded).
    advance(caption_inside_the_picture, seconds=5)
    cx, cy, cw, ch = window_rect(caption)
    vx, vy, vw, vh = window_rect(video)
    assert vx <= cx and cx + cw <= vx + vw and vy <= cy and cy + ch <= vy + vh
    assert screen.ids.poster.opacity == 0  # the video, not the poster, is showing
    assert video.texture is not None and tuple(video.texture.size) == (640, 360)
    assert app.holds == [True]
    assert screen.title == "Swedish massage" and "what it is" in screen.summary
    shot(window, "video_playing.png")

    tap(screen.ids.sound_button)
    assert not screen.muted and video.volume == 1
    tap(screen.ids.sound_button)
    assert screen.muted and video.volume == 0

    tap(screen.ids.captions_button)
    assert caption.opacity == 0
    tap(screen.ids.captions_button)
    assert caption.opacity == 1

    # Pause releases the hold; play takes it again.
    tap(screen.ids.play_button)
    assert not screen.playing and video.state == "pause"
    assert app.holds == [True, False]
    tap(screen.ids.play_button)
    assert screen.playing and app.holds == [True, False, True]

    # The end releases it, and the second caption has been shown on the way.
    seen = set()
    assert advance(lambda: seen.add(screen.caption) or not screen.playing, seconds=10)
    assert "The pressure is gentle." in seen
    assert app.holds[-1] is False and screen.progress == 1.0

    # Replay starts from the beginning and holds the visit again.
    tap(screen.ids.replay_button)
    assert app.holds[-1] is True
    assert advance(lambda: video.position > 0.2, seconds=10)
    leave(manager)
    assert app.holds[-1] is False
    assert video.source == "" and not screen.playing


def test_caption_language_follows_the_app(window, app, manager):
    app.language = "es"
    screen = show_video(manager, "demo")
    assert screen.title == "Masaje sueco"
    assert advance(lambda: screen.caption == "Las manos se deslizan por la espalda.", seconds=10)
    app.language = "en"
    assert screen.title == "Swedish massage"
    leave(manager)


@pytest.mark.parametrize("technique_id", ["broken", "missing"])
def test_bad_video_shows_poster_and_text(window, app, manager, media_dir, technique_id):
    screen = show_video(manager, technique_id)
    assert advance(lambda: screen.fallback, seconds=5)
    advance(lambda: screen.ids.poster.texture is not None, seconds=3)
    assert screen.ids.poster.source == str(media_dir / f"{technique_id}.png")
    assert screen.ids.poster.opacity == 1 and screen.ids.poster.texture is not None
    assert screen.ids.fallback_label.opacity == 1
    assert screen.summary and screen.expect and screen.not_suitable
    assert True not in app.holds  # nothing played, so nothing held the visit
    tap(screen.ids.play_button)  # disabled: no crash, no hold
    assert True not in app.holds
    if technique_id == "broken":
        shot(window, "video_fallback.png")
    leave(manager)


def test_unknown_technique_does_not_crash(window, app, manager):
    screen = show_video(manager, "no-such-thing")
    assert screen.fallback and screen.title == ""
    leave(manager)


def test_screen_left_before_the_probe_answers(window, app, manager):
    screen = show_video(manager, "demo")
    leave(manager)  # leave at once: the late probe must not start playback
    advance(lambda: False, seconds=1.0)
    assert screen.ids.video.source == "" and app.holds in ([], [True, False])


def test_player_gives_up_on_a_trusted_clip_that_shows_no_picture(window, app, media_dir):
    """The first-frame watchdog, which both screens rely on: a clip taken as
    checked (as the welcome loop takes its clips) that never shows a picture
    is released and reported, so the screen can show its poster."""
    from screens.player import KioskPlayer

    player = KioskPlayer(first_frame_timeout=0.5, volume=0)
    failures = []
    on_failure = lambda _player, reason: failures.append(reason)  # noqa: E731  (kept: bind holds it weakly)
    player.bind(on_failure=on_failure)
    window.add_widget(player)
    try:
        player.open(str(media_dir / "broken.mp4"), checked=True)
        assert player.source.endswith("broken.mp4") and player.state == "play"
        assert advance(lambda: failures, seconds=5)
        assert failures == [f"{media_dir / 'broken.mp4'}: no picture after 0.5 s"]
        assert player.source == "" and not player.has_frame and player.state == "stop"
    finally:
        player.release()
        window.remove_widget(player)


# -- the attract loop ------------------------------------------------------------------


def test_attract_loop_cycles_and_starts_a_visit(window, app, media_dir):
    from screens.attract import AttractLoop

    loop = AttractLoop(poster_seconds=0.6)
    window.add_widget(loop)
    started = []
    tap(loop)  # nothing bound yet: the touch passes through, no error
    on_start = lambda *a: started.append(True)  # noqa: E731  (kept: bind holds it weakly)
    loop.bind(on_start_visit=on_start)
    try:
        loop.start()
        assert loop.ids.start_label.text == "Touch the screen to start"
        assert advance(lambda: loop.showing_video and loop.has_frame and loop.caption, seconds=10)
        assert loop.ids.video.volume == 0
        assert loop.caption == "Hands glide along the back."
        shot(window, "attract.png")
        # After the clip, the broken and the missing clip come up as posters.
        assert advance(lambda: loop.index == 1, seconds=10)
        assert not loop.showing_video and loop.ids.poster.opacity == 1
        assert advance(lambda: loop.index == 2, seconds=3)
        assert advance(lambda: loop.index == 0, seconds=3)
        assert app.holds == []  # the waiting-room loop never keeps a visit alive

        tap(loop)
        assert started == [True]
    finally:
        loop.stop()
        window.remove_widget(loop)
    assert loop.ids.video.source == ""


def test_activating_twice_restarts_cleanly(window, app, manager):
    screen = show_video(manager, "demo")
    assert advance(lambda: screen.has_frame, seconds=10)
    screen.on_activate()  # what app.go("video", ...) does when already there
    assert not screen.has_frame and not app.holds[-1]
    assert advance(lambda: screen.has_frame, seconds=10)
    assert app.holds[-1] is True
    leave(manager)
    assert app.holds[-1] is False
    # Balanced: never two holds in a row.
    assert all(a != b for a, b in zip(app.holds, app.holds[1:]))
