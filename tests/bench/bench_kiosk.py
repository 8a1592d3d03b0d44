"""Kiosk figures: start-up and memory against a bare Kivy app measured in
the same run, screen switch time and durable submit time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BARE = r"""
import os, sys, time, resource
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
from kivy.config import Config
Config.set("graphics", "width", "1280"); Config.set("graphics", "height", "800")
from kivy.app import App
from kivy.uix.label import Label
from kivy.clock import Clock
from kivy.core.window import Window
class Bare(App):
    def build(self):
        Window.bind(on_flip=self.flip)
        return Label(text="Hello")
    def flip(self, *a):
        if not FIRST:
            FIRST.append(time.time())
            Clock.schedule_once(lambda dt: self.stop(), 0.5)
FIRST = []
Bare().run()
print(repr(FIRST[0]), flush=True)
"""

KIOSK = r"""
import os, sys, time
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
from kiosk.config import Config
from kiosk.runtime import Runtime
from screens.app import KioskApp, configure_kivy
configure_kivy(False)
from kivy.clock import Clock
from kivy.core.window import Window
cfg = Config().with_data_dir(sys.argv[1])
first = []
def flip(*a):
    if not first and App.get_running_app() and App.get_running_app().sm.current == "welcome":
        first.append(time.time())
        Clock.schedule_once(lambda dt: App.get_running_app().stop(), 0.5)
from kivy.app import App
Window.bind(on_flip=flip)
from kiosk.crypto import SealedBoxSealer, generate_keypair
KioskApp(Runtime.create(cfg, sealer=SealedBoxSealer(generate_keypair()[1]))).run()
print(repr(first[0]), flush=True)
"""


def _script(code: str) -> str:
    """Kivy's App looks for its source file, so snippets run from a file."""
    fd, path = tempfile.mkstemp(suffix=".py", prefix="bench_")
    with os.fdopen(fd, "w") as fh:
        fh.write(code)
    return path


def _startup_s(code: str, *args) -> float:
    """Seconds from process start to the first frame the script reports."""
    env = dict(os.environ, KIVY_NO_ARGS="1", GPIOZERO_PIN_FACTORY="mock")
    t0 = time.time()
    out = subprocess.run([sys.executable, _script(code), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1]) - t0


def _replay_rss(tmp: str) -> float:
    visit = {"language": "en", "visit_date": "2026-11-21", "answers": {
        "given-name": "Bench", "dob": "1970-01-01", "pain-now": 5, "pain-areas": ["lower-back"],
        "pain-duration": "over-12-weeks", **{f"sbst-{i}": "disagree" for i in range(1, 9)}, "sbst-9": "slightly"}}
    path = Path(tmp) / "visit.json"
    path.write_text(json.dumps(visit))
    code = "import sys\nfrom kiosk.cli import main\nsys.argv=['clinic-kiosk','--data',sys.argv[1],'replay',sys.argv[2]]\ntry:\n    main()\nexcept SystemExit:\n    pass\n" + PEAK_RSS_KB
    out = subprocess.run([sys.executable, "-c", code, tmp + "/replay", str(path)], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env=dict(os.environ, KIVY_NO_ARGS="1"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return int(out.stdout.strip().splitlines()[-1]) / 1024


#: Prints the process's peak resident memory in kB. VmHWM, not ru_maxrss:
#: Linux carries ru_maxrss over from the forking parent across exec, so a
#: bench run that had grown large before would inflate the figure.
PEAK_RSS_KB = ("print(next(int(line.split()[1]) for line in open('/proc/self/status')"
               " if line.startswith('VmHWM:')), flush=True)")


def _bare_rss() -> float:
    code = BARE + "\n" + PEAK_RSS_KB
    out = subprocess.run([sys.executable, _script(code)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, KIVY_NO_ARGS="1"))
    return int(out.stdout.strip().splitlines()[-1]) / 1024


#: Switch time is from the finger lifting to the next question being on
#: screen: before the lift the pressed button has been drawn (a finger rests
#: far longer than a frame), and the time stops when the renderer has
#: finished the new frame (glFinish), not when its commands were queued. With
#: Mesa's software renderer the drawing runs on threads of its own: timed
#: without these two waits the bare app's frames were never counted, while
#: the kiosk's first texture upload waited for the pressed-button frame, so
#: both figures measured the renderer's queue rather than a tap.
SWITCH = r"""
import json, os, sys, time
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
from kiosk.config import Config
from kiosk.runtime import Runtime
from screens.replay import Harness
from kivy.tests.common import UnitTestTouch
from kivy.base import EventLoop
from kivy.graphics.opengl import glFinish
from kiosk.crypto import SealedBoxSealer, generate_keypair
h = Harness(Runtime.create(Config().with_data_dir(sys.argv[1]), sealer=SealedBoxSealer(generate_keypair()[1]))).start()
app = h.app
app.begin_visit(); app.start_questions()
while app.visit.current().widget != "yesno":
    app.visit.advance()
app.go("question"); h.frames(3)
times = []
while app.sm.current == "question" and app.visit.current().widget == "yesno":
    item = app.visit.current().link_id
    btn = h.button(code=False, root=h.screen.answer_widget)
    x, y = btn.to_window(*btn.center)
    t = UnitTestTouch(x, y)
    t.touch_down(); EventLoop.idle(); glFinish()  # the pressed button is on screen
    t0 = time.perf_counter()
    t.touch_up()
    while app.sm.current == "question" and app.visit.current() is not None and app.visit.current().link_id == item:
        EventLoop.idle()
    EventLoop.idle()  # the frame that draws the next question
    glFinish()  # ... and the renderer has finished drawing it
    times.append((time.perf_counter() - t0) * 1000)
h.stop()
print(json.dumps(times))
"""


#: The baseline of screen_switch_ratio: a bare Kivy app switching between two
#: screens that each hold a question label and two buttons, tapped and
#: timed exactly as SWITCH times the kiosk (touch up to the next frame drawn).
#: Each tap shows the next question's text, as any questionnaire must: with
#: two fixed texts the baseline never rendered or uploaded a label, which no
#: questionnaire can avoid, so the ratio charged the kiosk for asking.
BARE_SWITCH = r"""
import json, os, sys, time
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
from kivy.config import Config
Config.set("graphics", "width", "1280"); Config.set("graphics", "height", "800")
from kivy.base import EventLoop, runTouchApp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager
from kivy.tests.common import UnitTestTouch
from kivy.graphics.opengl import glFinish
QUESTIONS = ["have you had a fever with your back pain?", "have you lost weight without trying?",
             "do you have numbness around your bottom or genitals?", "is the pain worse at night?",
             "have you ever had cancer?", "did the pain start after a fall or an accident?"]
sm = ScreenManager(transition=NoTransition())
labels = []
asked = [1]
def answer(n):
    # the other screen shows the next question, then comes on
    labels[1 - n].text = f"Question {asked[0] + 1}: {QUESTIONS[asked[0] % len(QUESTIONS)]}"
    asked[0] += 1
    sm.current = str(1 - n)
for n in range(2):
    screen = Screen(name=str(n))
    box = BoxLayout(orientation="vertical", padding=40, spacing=20)
    labels.append(Label(text=f"Question {n + 1}: {QUESTIONS[n]}", font_size=32))
    box.add_widget(labels[-1])
    row = BoxLayout(spacing=20)
    for text in ("Yes", "No"):
        b = Button(text=text, font_size=34)
        b.bind(on_release=lambda _b, n=n: answer(n))
        row.add_widget(b)
    box.add_widget(row)
    screen.add_widget(box)
    sm.add_widget(screen)
runTouchApp(sm, embedded=True)
for _ in range(5):
    EventLoop.idle()
times = []
for _ in range(23):
    btn = sm.current_screen.children[0].children[0].children[0]
    x, y = btn.to_window(*btn.center)
    t = UnitTestTouch(x, y)
    t.touch_down(); EventLoop.idle(); glFinish()
    t0 = time.perf_counter()
    t.touch_up()
    EventLoop.idle()  # the frame that draws the other screen
    glFinish()
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps(times))
"""


def _bare_switch_ms() -> list[float]:
    out = subprocess.run([sys.executable, "-c", BARE_SWITCH], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env=dict(os.environ, KIVY_NO_ARGS="1"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _switch_ms(tmp: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", SWITCH, tmp + "/switch"], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env=dict(os.environ, KIVY_NO_ARGS="1"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _submit_ms(tmp: str, n: int = 300) -> list[float]:
    from kiosk.config import Config
    from kiosk.store import Store

    cfg = Config().with_data_dir(tmp + "/submit")
    store = Store.open(cfg.database_path, _bench_sealer(cfg))
    payload = {"answers": {f"q{i}": i for i in range(50)}, "result": {"tier": "none"}, "intake_id": "x"}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        store.add("visit", payload)
        out.append((time.perf_counter() - t0) * 1000)
    store.close()
    return out


def _bench_sealer(cfg):
    """The real sealer (sealed box to a clinic key), as a submit pays it."""
    from kiosk.crypto import SealedBoxSealer, generate_keypair

    return SealedBoxSealer(generate_keypair()[1])


def _wall_s(argv: list[str], runs: int = 7) -> float:
    """The fastest of ``runs`` wall-clock times of a command (the least
    disturbed by other work on the machine)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
        best = min(best, time.perf_counter() - t0)
    return best


def _cli_help_ratio() -> tuple[float, float]:
    """``clinic-kiosk --help`` (the installed console script) and
    ``python -c "import click"``, in seconds."""
    script = Path(sys.executable).with_name("clinic-kiosk")
    return _wall_s([str(script), "--help"]), _wall_s([sys.executable, "-c", "import click"])


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run():
    with tempfile.TemporaryDirectory() as tmp:
        bare = min(_startup_s(BARE) for _ in range(3))
        kiosk = min(_startup_s(KIOSK, tmp + "/start") for _ in range(3))
        bare_rss = _bare_rss()
        replay_rss = _replay_rss(tmp)
        switch = _switch_ms(tmp)
        bare_switch = _bare_switch_ms()
        submit = _submit_ms(tmp)
    cli_help, bare_click = _cli_help_ratio()
    return [
        ("startup_bare_s", bare, "s"),
        ("startup_kiosk_s", kiosk, "s"),
        ("startup_ratio", kiosk / bare, "x"),
        ("rss_bare_mb", bare_rss, "MB"),
        ("rss_replay_mb", replay_rss, "MB"),
        ("rss_ratio", replay_rss / bare_rss, "x"),
        ("screen_switch_ms_p95", _pct(switch, 95), "ms"),
        ("screen_switch_bare_ms_p95", _pct(bare_switch, 95), "ms"),
        ("screen_switch_ratio", _pct(switch, 95) / _pct(bare_switch, 95), "x"),
        ("submit_ms_p99", _pct(submit, 99), "ms"),
        ("cli_help_s", cli_help, "s"),
        ("cli_help_ratio", cli_help / bare_click, "x"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:.2f}{'x' if unit == 'x' else ' ' + unit}")
