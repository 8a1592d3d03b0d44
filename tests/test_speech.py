"""Read-aloud: what the kiosk says is what the screen shows, in the visit's
language, and a tap silences it at once.

Speech goes to a :class:`kiosk.speech.FileSink` instead of a sound card:
each utterance is a WAV file with espeak-ng's own phoneme transcript of what
it rendered beside it. A test compares that transcript with espeak-ng's
reading (``espeak-ng -q -x``) of the words the test finds on the screen
itself, and measures the audio with sox. The UI tests drive the real kiosk
in the real (headless) window, as tests/test_ui.py does.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import subprocess
import time
from pathlib import Path

import pytest

from kiosk import speech
from kiosk.config import Config, ConfigError, parse
from kiosk.runtime import Runtime
from kiosk.speech import AplaySink, EspeakSpeaker, FileSink, audio_device_problem

from .conftest import enroll_offline, negative_visit
from .tools import require_tool


@pytest.fixture(scope="module")
def espeak():
    require_tool("espeak-ng", "espeak-ng")
    return "espeak-ng"


@functools.lru_cache(maxsize=None)
def phonemes(text: str, language: str) -> str:
    """espeak-ng's own reading of ``text`` in ``language``, as phonemes."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", language, "--stdin"], input=text.encode(),
                         capture_output=True, check=True)
    return normal(out.stdout.decode())


def normal(pho: str) -> str:
    return " ".join(pho.split())


def heard(sink: FileSink) -> list[tuple[str, str]]:
    """(language, phonemes) of every utterance the sink received, in order."""
    return [(wav.stem.split("-", 1)[1], normal(wav.with_suffix(".pho").read_text())) for wav in sink.utterances()]


def sox_stat(wav: Path) -> dict[str, float]:
    require_tool("sox", "sox")
    out = subprocess.run(["sox", str(wav), "-n", "stat"], capture_output=True, text=True, check=True).stderr
    stats = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        try:
            stats[name.strip()] = float(value)
        except ValueError:
            pass
    return stats


def wait_idle(speaker, frames=None, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if frames is not None:
            frames(1)
        if speaker.idle() and (frames is None or not speaker._queue.unfinished_tasks):
            if frames is not None:
                frames(2)  # a screen spoken on the next frame has been queued by now
            if speaker.idle():
                return
        time.sleep(0.01)
    raise AssertionError("speech did not finish in time")


# -- the engine, without a screen ---------------------------------------------


def test_spoken_words_are_the_words_given_in_their_own_language(tmp_path, espeak):
    sink = FileSink(tmp_path / "out")
    speaker = EspeakSpeaker(sink)
    assert speaker.check()["ok"], speaker.health()
    english = "Do you have any new numbness around your bottom?"
    spanish = "¿Tiene algún entumecimiento nuevo alrededor de las nalgas?"
    speaker.speak(english, "en")
    speaker.speak(spanish, "es")
    wait_idle(speaker)
    speaker.close()
    assert heard(sink) == [("en", phonemes(english, "en")), ("es", phonemes(spanish, "es"))]
    assert phonemes(spanish, "es") != phonemes(spanish, "en")  # a Spanish voice, not English letters
    for wav in sink.utterances():
        stats = sox_stat(wav)
        assert stats["Length (seconds)"] > 1.5  # a sentence, not a click
        assert 0.02 < stats["RMS     amplitude"] and stats["Maximum amplitude"] < 1.0  # heard, not clipped


def test_volume_sets_the_loudness(tmp_path, espeak):
    levels = {}
    for volume in (30, 100):
        sink = FileSink(tmp_path / str(volume))
        speaker = EspeakSpeaker(sink, volume=volume)
        speaker.check()
        speaker.speak("Please take a seat.", "en")
        wait_idle(speaker)
        speaker.close()
        levels[volume] = sox_stat(sink.utterances()[0])["RMS     amplitude"]
    assert levels[100] > 2.5 * levels[30]


def test_stop_silences_at_once_and_drops_what_was_queued(tmp_path, espeak):
    sink = FileSink(tmp_path / "out", realtime=True)
    speaker = EspeakSpeaker(sink)
    speaker.check()
    started = []
    speaker.on_audio = started.append
    speaker.speak("This question is long enough to be cut short by a tap on one of its answers. " * 3, "en")
    speaker.speak("Yes", "en")
    speaker.speak("No", "en")
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.005)
    assert started, "speech never started"
    speaker.stop()
    speaker.speak("Thank you", "en")
    wait_idle(speaker)
    speaker.close()
    # The cut utterance and the answers after it were never heard whole.
    assert heard(sink) == [("en", phonemes("Thank you", "en"))]


def test_a_missing_device_or_voice_is_reported_never_raised(tmp_path, espeak):
    assert audio_device_problem("plughw:CARD=Headphones", cards={0: "Headphones", 1: "vc4hdmi0"}) is None
    assert audio_device_problem("plughw:1", cards={0: "Headphones", 1: "vc4hdmi0"}) is None
    assert audio_device_problem("", cards={0: "Headphones"}) is None
    missing = audio_device_problem("plughw:CARD=Device", cards={0: "Headphones"})
    assert missing == "audio device 'plughw:CARD=Device' not found (sound cards here: Headphones)"
    assert audio_device_problem("", cards={}) == "no sound card found"
    no_such = EspeakSpeaker(AplaySink("plughw:CARD=Device", aplay="no-such-aplay"))
    health = no_such.check()
    assert health == {"device": "plughw:CARD=Device", "ok": False, "message": "aplay not found (install alsa-utils)"}
    no_such.speak("Hello", "en")  # says nothing and raises nothing
    no_such.close()
    klingon = EspeakSpeaker(FileSink(tmp_path), languages=("en", "tlh"))
    assert klingon.check() == {"device": f"file:{tmp_path}", "ok": True,
                               "message": "espeak-ng has no voice for 'tlh'"}
    klingon.close()


def test_the_audio_settings_are_checked_like_every_other(tmp_path):
    cfg = parse({"audio": {"read_aloud": True, "device": "plughw:CARD=Headphones", "volume": 65}}, "k.toml")
    assert (cfg.audio.read_aloud, cfg.audio.device, cfg.audio.volume) == (True, "plughw:CARD=Headphones", 65)
    assert Config().audio.read_aloud is False and Config().audio.device == "" and Config().audio.volume == 80
    with pytest.raises(ConfigError) as bad:
        parse({"audio": {"volume": 130}}, "k.toml")
    assert bad.value.problems == ["k.toml:audio.volume: 130 is not a volume from 0 to 100"]
    with pytest.raises(ConfigError) as wrong:
        parse({"audio": {"read_aloud": "yes", "voice": "en"}}, "k.toml")
    assert wrong.value.problems[0] == "k.toml:audio.read_aloud: expected true or false, got 'yes'"
    assert wrong.value.problems[1].startswith("k.toml:audio.voice: unknown key")


def test_status_reports_the_audio_device_and_its_health(tmp_path, espeak):
    import sys

    conf = tmp_path / "kiosk.toml"
    conf.write_text('[audio]\ndevice = "plughw:CARD=NoSuchCard"\nread_aloud = true\n')
    r = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(conf), "--data", str(tmp_path / "data"),
                        "status"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    audio = json.loads(r.stdout)["audio"]
    assert audio["device"] == "plughw:CARD=NoSuchCard" and audio["ok"] is False and audio["read_aloud"] is True
    assert "NoSuchCard" in audio["message"] or "no sound card" in audio["message"]


# -- the kiosk's screens ----------------------------------------------------------


@pytest.fixture
def cfg(tmp_path):
    from kiosk.staff import DEMO_PIN, hash_pin

    c = Config().with_data_dir(tmp_path / "data").replace("kiosk", staff_pin_hash=hash_pin(DEMO_PIN))
    enroll_offline(c)
    return c


class Kiosk:
    """The real app speaking into a FileSink."""

    def __init__(self, cfg, tmp_path, realtime=False, speaker=None, size=(1280, 800), now=time.monotonic):
        from screens.replay import Harness

        self.runtime = Runtime.create(cfg)
        self.sink = FileSink(tmp_path / "speech", realtime=realtime)
        self.speaker = speaker or EspeakSpeaker(self.sink)
        self.runtime.speaker = self.speaker
        self.h = Harness(self.runtime, size=size, now=now).start()
        self.app = self.h.app
        self.settle()

    def settle(self):
        """Frames until the speech check came back and the screen is spoken."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.h.frames(1)
            if self.app.speech_health is not None:
                break
            time.sleep(0.01)
        while self.app.reader.waiting and time.monotonic() < deadline:
            self.h.frames(1)
            time.sleep(0.01)
        if hasattr(self.speaker, "idle"):
            wait_idle(self.speaker, self.h.frames)

    def spoken_since(self, n: int) -> list[tuple[str, str]]:
        return heard(self.sink)[n:]

    def close(self):
        self.h.stop()
        self.runtime.close()


def shown_texts(widget) -> list[str]:
    """Every text the widget tree shows (labels and buttons)."""
    return [w.text for w in widget.walk(restrict=True)
            if hasattr(w, "text") and isinstance(w.text, str) and w.text.strip() and w.opacity > 0]


def assert_spoken_as_shown(kiosk: Kiosk, before: int, must: list[str], language: str):
    """What was spoken for the screen showing: every line of ``must`` in
    that order, and nothing that the screen does not show."""
    spoken = kiosk.spoken_since(before)
    assert spoken, f"nothing spoken for {kiosk.app.sm.current}"
    shown = {phonemes(re.sub(r"\[/?b\]", "", t), language) for t in shown_texts(kiosk.app.sm.current_screen)}
    # a language button is read in its own language
    shown |= {phonemes(name, code) for code, name in kiosk.app.languages}
    for lang, pho in spoken:
        assert pho in shown, (kiosk.app.sm.current, lang, pho)
    wanted = [phonemes(t, language) for t in must]
    said = [pho for _lang, pho in spoken]
    positions = [said.index(p) for p in wanted]
    assert positions == sorted(positions), (wanted, said)


def test_every_screen_is_read_aloud_from_the_words_it_shows_and_none_of_it_reaches_a_log(
        tmp_path, cfg, espeak, caplog):
    caplog.set_level(logging.DEBUG)
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path)
    vf = visit_answers(tmp_path, k.runtime.pack)
    try:
        app, h = k.app, k.h
        assert app.speech_available and app.read_aloud
        assert app.root.ids.read_aloud.opacity == 1
        assert_spoken_as_shown(k, 0, [app.t("First visit")], "en")
        screens = 0
        n = len(heard(k.sink))
        h.tap(h.screen.ids.start)
        k.settle()
        assert app.sm.current == "privacy"
        assert_spoken_as_shown(k, n, [app.t("Your privacy"), app.t("I understand, continue")], "en")
        n = len(heard(k.sink))
        h.tap(h.screen.ids.continue_)
        k.settle()
        # through the questions: a yes/no, a scale and a choice at least
        widgets = set()
        while app.sm.current == "question" and screens < 60:
            screens += 1
            item = app.visit.current()
            answers = [b.text for b in h.screen.answer_widget.walk(restrict=True)
                       if getattr(b, "answer_code", None) is not None and b.opacity > 0]
            if item.widget in ("yesno", "scale", "choice"):
                widgets.add(item.widget)
                assert_spoken_as_shown(k, n, [h.screen.ids.question.text, *answers], "en")
            n = len(heard(k.sink))
            answer_one(k, vf)
            k.settle()
        assert {"yesno", "scale", "choice"} <= widgets
        assert app.sm.current == "review"
        rows = [re.sub(r"\[/?b\]", "", r["text"]) for r in h.screen.ids.scroller.data]
        spoken = [pho for _l, pho in k.spoken_since(n)]
        assert [phonemes(r, "en") for r in rows] == [p for p in spoken if p in {phonemes(r, "en") for r in rows}]
        # The review read out the patient's name and answers; no log line holds any of it.
        assert any(phonemes("Zelda", "en") in p for p in spoken)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        for secret in ("Zelda", "Quist", "600123456", "1980-01-01"):
            assert secret not in logged
    finally:
        k.close()


def visit_answers(tmp_path, pack):
    """A whole visit that raises no flag, with a name to listen for."""
    from kiosk.visit import read_visit_file

    path = tmp_path / "visit.json"
    path.write_text(json.dumps(negative_visit(**{"given-name": "Zelda", "family-name": "Quist",
                                                 "phone": "+34600123456", "pain-areas": ["lower-back"]})))
    return read_visit_file(path, pack)


def answer_one(k: Kiosk, vf) -> None:
    """Answers the question showing by touch, as the visit file says."""
    from screens.replay import type_answer

    item = k.app.visit.current()
    k.app.visit.visit_date = vf.visit_date
    value = vf.answers.get(item.link_id)
    if item.type == "display":
        type_answer(k.h, item, None)
    elif value is None:
        k.h.tap(k.h.screen.ids.skip)
    else:
        type_answer(k.h, item, value)


def test_spanish_screens_speak_spanish(tmp_path, cfg, espeak):
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path)
    try:
        app, h = k.app, k.h
        spanish = next(b for b in h.screen.ids.languages.children if b.answer_code == "es")
        n = len(heard(k.sink))
        h.tap(spanish)
        k.settle()
        assert app.language == "es"
        # The welcome screen again, now in Spanish.
        assert_spoken_as_shown(k, n, [app.t("First visit")], "es")
        assert app.t("First visit") == "Primera visita"
        h.tap(h.screen.ids.start)
        k.settle()
        n = len(heard(k.sink))
        h.tap(h.screen.ids.continue_)
        k.settle()
        assert app.sm.current == "question"
        assert_spoken_as_shown(k, n, [h.screen.ids.question.text], "es")
        assert all(lang == "es" for lang, _ in k.spoken_since(n))
        assert app.root.ids.read_aloud.text == "Dejar de leer"
    finally:
        k.close()


def test_a_tap_stops_the_speech_and_the_next_screen_is_read_from_its_start(tmp_path, cfg, espeak):
    # A clinic name long enough to be still speaking when the patient taps.
    name = "The Riverside Back and Neck Pain Clinic of the Northern Health District, " * 4
    k = Kiosk(cfg.replace("clinic", name=name.strip()), tmp_path, realtime=True)
    try:
        app, h = k.app, k.h
        assert not app.read_aloud and k.spoken_since(0) == []  # off unless the clinic or the patient says so
        started = []
        k.speaker.on_audio = started.append
        h.tap(app.root.ids.read_aloud)
        assert app.read_aloud and app.root.ids.read_aloud.selected
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            h.frames(1)
            time.sleep(0.005)
        assert started
        h.tap(h.screen.ids.start)  # in the middle of the clinic's name
        k.settle()
        assert app.sm.current == "privacy"
        said = [pho for _lang, pho in k.spoken_since(0)]
        # The welcome screen was cut short: neither the name nor what follows it ...
        assert phonemes(name.strip(), "en") not in said and phonemes(app.t("First visit"), "en") not in said
        # ... and the next screen read from its start.
        assert said[0] == phonemes(app.t("Your privacy"), "en")
        n = len(said)
        h.tap(app.root.ids.read_aloud)  # off: silence, and nothing more
        assert not app.read_aloud
        h.tap(h.screen.ids.continue_)
        k.settle()
        assert k.spoken_since(n) == []
    finally:
        k.close()


def test_the_emergency_screen_is_spoken_calmly(tmp_path, cfg, espeak):
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path)
    try:
        app, h = k.app, k.h
        vf = visit_answers(tmp_path, k.runtime.pack)
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        k.settle()
        while app.visit.current().section != "safety":
            answer_one(k, vf)
        n = len(heard(k.sink))
        h.tap(h.screen.answer_widget.ids.yes)
        k.settle()
        assert app.sm.current == "emergency"
        title = app.t("Please speak to a member of staff now")
        assert_spoken_as_shown(k, n, [title, app.t("Please do not drive yourself.")], "en")
        wav = next(w for w in k.sink.utterances()[n:]
                   if normal(w.with_suffix(".pho").read_text()) == phonemes(title, "en"))
        ordinary = tmp_path / "ordinary.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", str(speech.RATE_WPM), "-w", str(ordinary), title], check=True)
        assert sox_stat(wav)["Length (seconds)"] > 1.1 * sox_stat(ordinary)["Length (seconds)"]  # slower
    finally:
        k.close()


def test_no_sound_device_hides_the_button_says_so_in_status_and_never_troubles_the_patient(tmp_path, cfg, caplog):
    cfg = cfg.replace("audio", read_aloud=True, device="plughw:CARD=NoSuchCard")
    k = Kiosk(cfg, tmp_path, speaker=EspeakSpeaker(AplaySink("plughw:CARD=NoSuchCard")))
    try:
        app, h = k.app, k.h
        assert not app.speech_available
        button = app.root.ids.read_aloud
        assert button.opacity == 0 and button.disabled and button.width == 0
        assert "sound" not in " ".join(shown_texts(app.root)).lower()
        h.tap(h.screen.ids.start)
        assert app.sm.current == "privacy"  # the visit goes on
        h.wait_writes()
        saved = json.loads(k.runtime.store.get_state("audio"))
        assert saved["ok"] is False and saved["device"] == "plughw:CARD=NoSuchCard" and saved["message"]
    finally:
        k.close()


def test_a_staff_call_is_read_out_calmly(tmp_path, cfg, espeak):
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path)
    try:
        app, h = k.app, k.h
        h.tap(h.screen.ids.start)
        k.settle()
        n = len(heard(k.sink))
        h.tap(app.root.ids.call_staff)
        k.settle()
        message = app.t("A member of staff has been called and is on their way.")
        assert app.staff_called and app.root.ids.called_banner.text == message
        said = k.spoken_since(n)
        assert [pho for _lang, pho in said] == [phonemes(message, "en")]
        wav = k.sink.utterances()[n]
        ordinary = tmp_path / "ordinary.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", str(speech.RATE_WPM), "-w", str(ordinary), message], check=True)
        assert sox_stat(wav)["Length (seconds)"] > 1.1 * sox_stat(ordinary)["Length (seconds)"]  # slower
    finally:
        k.close()


def test_the_top_bar_keeps_its_words_in_sight_on_a_1024x600_monitor_in_spanish(tmp_path, cfg, espeak):
    k = Kiosk(cfg, tmp_path, size=(1024, 600))
    try:
        app, h = k.app, k.h
        app.set_language("es")
        h.tap(h.screen.ids.start)
        h.tap(app.root.ids.call_staff)
        for large in (False, True):
            if app.large_text != large:
                h.tap(app.root.ids.large_text)
            h.frames(3)
            bar = app.root.ids.topbar
            banner = app.root.ids.called_banner
            assert banner.text and banner.texture_size[1] <= bar.height, (large, banner.texture_size)
            button = app.root.ids.read_aloud
            assert button.opacity == 1 and button.texture_size[1] <= button.height
            assert button.texture_size[0] <= button.width
    finally:
        k.close()


def test_speech_plays_through_aplay_and_a_device_that_goes_away_is_reported(tmp_path, espeak):
    require_tool("aplay", "alsa-utils")
    # ALSA's "null" device takes the audio as a sound card would, on any machine.
    speaker = EspeakSpeaker(AplaySink("null"))
    assert speaker.check() == {"device": "null", "ok": True, "message": "ready"}
    speaker.speak("Please take a seat.", "en")
    wait_idle(speaker)
    assert speaker.health()["ok"]
    speaker.close()

    class Unplugged(AplaySink):
        def problem(self):
            return None  # it was there at start-up

    changes = []
    gone = EspeakSpeaker(Unplugged("plughw:CARD=Device"))
    gone.on_health = changes.append
    assert gone.check()["ok"]
    gone.speak("Please take a seat.", "en")
    wait_idle(gone)
    assert not gone.ready and changes and changes[-1]["ok"] is False
    assert "Device" in changes[-1]["message"] or "audio" in changes[-1]["message"]
    assert "seat" not in changes[-1]["message"]
    gone.close()


def test_the_treatments_and_their_texts_are_read_but_not_the_captions(tmp_path, cfg, espeak):
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path)
    try:
        app, h = k.app, k.h
        n = len(heard(k.sink))
        h.tap(h.screen.ids.techniques)
        k.settle()
        assert app.sm.current == "techniques"
        titles = [t.text("title", "en") for t in app.catalogue]
        assert_spoken_as_shown(k, n, [app.t("Treatments we offer"), *titles], "en")
        n = len(heard(k.sink))
        first = next(iter(app.catalogue)).id
        card = next(w for w in h.screen.ids.grid.children if w.technique_id == first)
        h.tap(card)
        k.settle()
        assert app.sm.current == "video"
        screen = h.screen
        texts = [screen.title, screen.summary, app.t("What to expect"), screen.expect,
                 app.t("When it is not suitable"), screen.not_suitable]
        assert_spoken_as_shown(k, n, [t for t in texts if t], "en")
        n = len(heard(k.sink))
        # as the player shows a caption while the video plays
        screen.fallback, screen.captions_on, screen.caption = False, True, "A caption of the video"
        h.frames(2)
        assert screen.ids.caption_label.opacity == 1  # on screen ...
        app.reader.screen_shown()  # ... when the screen is read again
        k.settle()
        said = [pho for _lang, pho in k.spoken_since(n)]
        assert phonemes(screen.summary, "en") in said and phonemes("A caption of the video", "en") not in said
    finally:
        k.close()


def test_are_you_still_there_is_read_out_and_the_wiped_visit_leaves_nothing_rendered(tmp_path, cfg, espeak):
    from screens.replay import FakeClock

    clock = FakeClock()
    k = Kiosk(cfg.replace("audio", read_aloud=True), tmp_path, now=clock)
    try:
        app, h = k.app, k.h
        h.tap(h.screen.ids.start)
        h.tap(h.screen.ids.continue_)
        k.settle()
        n = len(heard(k.sink))
        clock.advance(95)  # no touch for longer than [kiosk] idle_timeout_s
        app._idle_tick()
        k.settle()
        assert app._idle_dialog is not None
        said = [pho for _lang, pho in k.spoken_since(n)]
        assert said[0] == phonemes(app.t("Are you still there?"), "en")
        assert said[-1] == phonemes(app.t("Yes, I am still here"), "en")
        questions = app.visit.questions()
        following = app.item_text(questions[questions.index(app.visit.current()) + 1].text)
        rendered = lambda: {key[0] for key in list(k.speaker._cache)}  # noqa: E731
        deadline = time.monotonic() + 10
        while following not in rendered() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert following in rendered()  # the next question was rendered ahead ...
        clock.advance(60)
        app._idle_tick()
        h.frames(3)
        assert app.sm.current == "welcome" and app.visit is None
        assert following not in rendered()  # ... and forgotten with the visit
    finally:
        k.close()
