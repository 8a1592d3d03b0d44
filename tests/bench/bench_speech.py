"""Read-aloud figures: how soon a screen is heard, and that reading aloud
leaves a tap as fast as it was.

``speech_start_ms_p95``: from the frame that shows the next question
(drawn and finished, as bench_kiosk times a switch) to espeak-ng's first
audio sample reaching the sink. The sink is a :class:`kiosk.speech.FileSink`
that takes as long as a sound card would (``realtime``), so speech is still
playing when the next tap cuts it, as with a patient who answers quickly.

``screen_switch_read_aloud_ms_p95`` and ``screen_switch_read_aloud_ratio``:
the question switch of bench_kiosk's ``screen_switch_ms_p95``, timed the
same way with read-aloud off and then on, in the same run; the ratio is on
over off (1.00x: unchanged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SWITCH = r"""
import json, os, sys, time
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
from kiosk.config import Config
from kiosk.runtime import Runtime
from kiosk.speech import EspeakSpeaker, FileSink
from screens.replay import Harness
from kivy.tests.common import UnitTestTouch
from kivy.base import EventLoop
from kivy.graphics.opengl import glFinish
from kiosk.crypto import SealedBoxSealer, generate_keypair
read_aloud = sys.argv[2] == "on"
cfg = Config().with_data_dir(sys.argv[1]).replace("audio", read_aloud=read_aloud)
runtime = Runtime.create(cfg, sealer=SealedBoxSealer(generate_keypair()[1]))
speaker = runtime.speaker = EspeakSpeaker(FileSink(sys.argv[1] + "/speech", transcript=False, realtime=True))
heard = []
speaker.on_audio = heard.append
h = Harness(runtime).start()
app = h.app
deadline = time.monotonic() + 30
while read_aloud and not app.speech_available and time.monotonic() < deadline:
    EventLoop.idle(); time.sleep(0.01)
if read_aloud and not app.speech_available:
    raise SystemExit("read-aloud is not available: " + json.dumps(speaker.health()))
app.begin_visit(); app.start_questions()
while app.visit.current().widget != "yesno":
    app.visit.advance()
app.go("question"); h.frames(3)
switch, start = [], []
while app.sm.current == "question" and app.visit.current().widget == "yesno":
    item = app.visit.current().link_id
    btn = h.button(code=False, root=h.screen.answer_widget)
    x, y = btn.to_window(*btn.center)
    t = UnitTestTouch(x, y)
    t.touch_down(); EventLoop.idle(); glFinish()  # the pressed button is on screen
    count = len(heard)  # what the screen left says before this tap cut it
    t0 = time.perf_counter()
    t.touch_up()
    while app.sm.current == "question" and app.visit.current() is not None and app.visit.current().link_id == item:
        EventLoop.idle()
    EventLoop.idle()  # the frame that draws the next question
    glFinish()  # ... and the renderer has finished drawing it
    shown = time.monotonic()
    switch.append((time.perf_counter() - t0) * 1000)
    if read_aloud and app.sm.current == "question":
        # The kiosk keeps drawing frames while it waits for the audio.
        deadline = shown + 5
        while len(heard) == count and time.monotonic() < deadline:
            EventLoop.idle()
        if len(heard) > count:
            # Speech starts after the frame is flipped; glFinish may return
            # a little after that: such a start counts as at once.
            start.append(max(0.0, heard[count] - shown) * 1000)
h.stop()
runtime.close()
print(json.dumps({"switch": switch, "start": start}))
"""


def _measure(tmp: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SWITCH, f"{tmp}/{mode}", mode], capture_output=True, text=True,
                         cwd=REPO, timeout=600, env=dict(os.environ, KIVY_NO_ARGS="1", GPIOZERO_PIN_FACTORY="mock"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(rounds: int = 2):
    """Off and on in turn, ``rounds`` times: each figure is its least
    disturbed round (the machine's other work comes and goes)."""
    switch = {"off": [], "on": []}
    starts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            for mode in ("off", "on"):
                got = _measure(f"{tmp}/{n}", mode)
                switch[mode].append(_pct(got["switch"], 95))
                if mode == "on":
                    if not got["start"]:
                        raise RuntimeError("no speech was heard")
                    starts.append(_pct(got["start"], 95))
    off_p95, on_p95 = min(switch["off"]), min(switch["on"])
    return [
        ("speech_start_ms_p95", min(starts), "ms"),
        ("screen_switch_read_aloud_ms_p95", on_p95, "ms"),
        ("screen_switch_read_aloud_ratio", on_p95 / off_p95, "x"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:.2f}x" if unit == "x" else f"{name}: {value:.1f} {unit}")
