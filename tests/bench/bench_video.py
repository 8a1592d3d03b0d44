"""Video screen figures for ``make bench``.

* ``video_first_frame_ms``: from the patient's tap (the switch to the video
  screen) to the first decoded frame drawn on screen;
* ``video_rss_mb``: resident memory of the kiosk process while it plays;
* ``video_first_frame_ratio``: the screen's first-frame time over the same
  clip in a bare Kivy ``Video`` widget (the cost of the probe and layout).

Each measurement runs in a fresh process (``python -m
tests.bench.bench_video --measure screen|bare DIR``) so every run opens a
fresh window and a cold player; the median of a few runs is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
CLIP_SECONDS = 4.0
TIMEOUT = 20.0


def _make_media(folder: Path) -> Path:
    """A demo clip, poster, captions and manifest in ``folder``."""
    from kiosk import media_gen

    media_gen.render_clip("swedish", folder / "bench.mp4", seconds=CLIP_SECONDS)
    media_gen.render_poster("swedish", folder / "bench.png")
    vtt = "WEBVTT\n\n00:00.000 --> 00:04.000\nHands glide along the back.\n"
    for lang in ("en", "es"):
        (folder / f"bench.{lang}.vtt").write_text(vtt, encoding="utf-8")
    text = {"en": "Bench", "es": "Banco"}
    manifest = {"version": 1, "languages": ["en", "es"], "techniques": [{
        "id": "bench", "title": text, "summary": text, "expect": text, "not_suitable": text,
        "video": "bench.mp4", "poster": "bench.png",
        "captions": {"en": "bench.en.vtt", "es": "bench.es.vtt"}}]}
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _idle_until(condition, seconds=TIMEOUT) -> bool:
    from kivy.base import EventLoop

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        EventLoop.idle()
        if condition():
            return True
    return False


def _measure(kind: str, folder: Path) -> dict:
    """Runs inside the fresh process: one first-frame time (and RSS)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    window = EventLoop.window
    _idle_until(lambda: False, 0.2)  # settle the window before timing
    clip = str(folder / "bench.mp4")

    if kind == "bare":
        from kivy.uix.video import Video

        start = time.perf_counter()
        video = Video(source=clip, state="play", volume=0)
        window.add_widget(video)
        ok = _idle_until(lambda: video.texture is not None and video.loaded)
        EventLoop.idle()  # the frame that draws it
        first = time.perf_counter() - start
        video.unload()
        return {"first_ms": first * 1000 if ok else None}

    from kivy.app import App
    from kivy.properties import BooleanProperty, StringProperty
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

    from kiosk.media import load_catalogue

    class BenchApp(App):
        language = StringProperty("en")
        large_text = BooleanProperty(False)
        catalogue = load_catalogue(folder / "manifest.json")

        def t(self, msgid, *_):
            return msgid

        def hold_idle(self, hold):
            pass

        def back(self):
            pass

        def go(self, name, **kwargs):
            pass

    App._running_app = BenchApp()
    from screens.video import VideoScreen

    manager = ScreenManager(transition=NoTransition())
    manager.add_widget(Screen(name="blank"))
    screen = VideoScreen(name="video")
    manager.add_widget(screen)
    window.add_widget(manager)
    _idle_until(lambda: False, 0.2)
    start = time.perf_counter()  # the tap: the app switches to the screen
    screen.technique_id = "bench"
    manager.current = "video"
    ok = _idle_until(lambda: screen.has_frame)
    EventLoop.idle()
    first = time.perf_counter() - start
    _idle_until(lambda: False, 1.5)  # play on for a while, then measure memory
    rss = _rss_mb()
    manager.current = "blank"
    _idle_until(lambda: False, 0.1)
    return {"first_ms": first * 1000 if ok else None, "rss_mb": rss}


def _run_fresh(kind: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_video", "--measure", kind, str(folder)],
        capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2])
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{kind} measurement failed:\n{out.stderr[-2000:]}")


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        folder = Path(tmp)
        _make_media(folder)
        screen, bare, rss = [], [], []
        for _ in range(RUNS):
            result = _run_fresh("screen", folder)
            if result["first_ms"] is None:
                raise RuntimeError("the video screen showed no frame")
            screen.append(result["first_ms"])
            rss.append(result["rss_mb"])
            result = _run_fresh("bare", folder)
            if result["first_ms"] is None:
                raise RuntimeError("the bare Video widget showed no frame")
            bare.append(result["first_ms"])
    first = statistics.median(screen)
    return [
        ("video_first_frame_ms", first, "ms"),
        ("video_rss_mb", statistics.median(rss), "MB"),
        ("video_first_frame_ratio", first / statistics.median(bare), "x"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure", choices=("screen", "bare"))
    parser.add_argument("folder", nargs="?", type=Path)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure, args.folder)), flush=True)
        return 0
    for name, value, unit in run():
        print(f"{name}: {value:.2f}x" if unit == "x" else f"{name}: {value:.1f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
