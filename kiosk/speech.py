"""Read-aloud: the kiosk speaks what a screen shows, offline, in the visit's language.

The UI talks to a :class:`Speaker`: ``speak`` queues an utterance and
returns at once, ``stop`` drops everything queued and cuts the one playing
(a tap never waits for speech), ``health`` says whether speech can be heard.
:class:`EspeakSpeaker` is the one the kiosk uses: Debian's ``espeak-ng``
renders each utterance on a worker thread and its audio goes to a
:class:`Sink`, ALSA's ``aplay`` on the configured device (:class:`AplaySink`)
or WAV files in a folder (:class:`FileSink`, for tests and the bench).
Nothing is fetched at run time; a better engine only has to be another
``Speaker``::

    speaker = speaker_for(config.audio)
    speaker.speak("Do you have pain now?", "en")
    speaker.speak("Yes", "en")
    speaker.stop()          # the patient tapped an answer

The text goes to espeak-ng on its standard input, never on its command line
(where ``ps`` would show it), and no utterance is ever written to a log:
what the kiosk says can include the patient's answers.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

log = logging.getLogger(__name__)

#: Words per minute: a little slower than espeak-ng's 175, for patients in
#: pain, often older, some listening in a second language.
RATE_WPM = 155
#: The emergency and staff-call screens are spoken slower and lower.
CALM_RATE_WPM = 135
CALM_PITCH = 40
#: espeak-ng's amplitude (0..200) at volume 100: above about 120 its peaks
#: clip (measured with ``sox stat``), so 100 is as loud as it goes clean.
MAX_AMPLITUDE = 120
#: Audio ALSA may hold ahead of the speaker: short, so speech starts soon
#: after its first sample and a stop is heard at once.
APLAY_BUFFER_US = 200_000
#: Rendered utterances kept for playing again without espeak-ng (the
#: prepared next screen, the chrome's fixed sentences).
CACHE_SIZE = 32
CHUNK = 4096


class Speaker(Protocol):
    """What the UI needs of a speech engine."""

    def speak(self, text: str, language: str, *, calm: bool = False) -> None:
        """Queues ``text`` to be spoken after what is already queued; returns at once."""

    def prepare(self, text: str, language: str, *, calm: bool = False) -> None:
        """Renders ``text`` ahead, in the background, so speaking it later starts sooner."""

    def stop(self) -> None:
        """Silence now: drops what is queued and cuts what is playing; returns at once."""

    def forget(self) -> None:
        """Drops everything rendered ahead (called when a visit ends)."""

    @property
    def ready(self) -> bool:
        """Whether speech can be heard (the engine, its voices and the device are there)."""

    def health(self) -> dict:
        """``{"device", "ok", "message"}`` for ``clinic-kiosk status`` and the hub."""

    def close(self) -> None:
        """Stops the worker; the speaker is not used again."""


# -- sinks ----------------------------------------------------------------------


class Playback(Protocol):
    def write(self, data: bytes) -> None: ...
    def finish(self, phonemes: str | None = None) -> None: ...
    def cancel(self) -> None: ...


class Sink(Protocol):
    """Where rendered audio goes: a WAV stream, header first."""

    #: The device name reported by ``health``.
    device: str
    #: Whether the sink keeps espeak-ng's phoneme transcript of each utterance.
    transcript: bool

    def problem(self) -> str | None:
        """Why nothing would be heard, or None."""

    def start(self, language: str) -> Playback: ...


class AplaySink:
    """Plays on an ALSA device through ``aplay -D DEVICE`` (alsa-utils);
    ``device=""`` is the system default."""

    transcript = False

    def __init__(self, device: str = "", aplay: str = "aplay"):
        self.device = device
        self.aplay = aplay

    def problem(self) -> str | None:
        return audio_device_problem(self.device, self.aplay)

    def start(self, language: str) -> "_AplayPlayback":
        cmd = [self.aplay, "-q", "--buffer-time", str(APLAY_BUFFER_US)]
        if self.device:
            cmd += ["-D", self.device]
        proc = subprocess.Popen(cmd + ["-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        return _AplayPlayback(proc)


class _AplayPlayback:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.cancelled = False

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)

    def finish(self, phonemes: str | None = None) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        err = self.proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
        code = self.proc.wait()
        self.proc.stderr.close()
        if code != 0 and not self.cancelled:
            # aplay's own last line names the device, never what was said.
            raise SinkError(err[-1][:200] if err else f"aplay exited {code}")

    def cancel(self) -> None:
        self.cancelled = True
        if self.proc.poll() is None:
            self.proc.kill()


class FileSink:
    """Writes each utterance as ``NNNN-LANG.wav`` in ``folder`` (and, with
    ``transcript``, espeak-ng's phonemes of it as ``NNNN-LANG.pho``): a sound
    card for tests and the bench. Only for those: the files hold what was
    said, which may be a patient's answers."""

    def __init__(self, folder: str | os.PathLike, transcript: bool = True, realtime: bool = False):
        """``realtime`` takes as long over each utterance as a sound card
        would, so a stop can land in the middle of one."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.transcript = transcript
        self.realtime = realtime
        self.device = f"file:{self.folder}"
        self._n = 0
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        return None

    def start(self, language: str) -> "_FilePlayback":
        with self._lock:
            self._n += 1
            n = self._n
        return _FilePlayback(self.folder / f"{n:04d}-{language}", self.realtime)

    def utterances(self) -> list[Path]:
        """The WAV files written so far, in the order spoken."""
        return sorted(self.folder.glob("*.wav"))


class _FilePlayback:
    #: Bytes per second of espeak-ng's audio (22050 Hz, 16-bit mono).
    RATE = 44100

    def __init__(self, stem: Path, realtime: bool = False):
        self.stem = stem
        self.buf = bytearray()
        self.cancelled = False
        self.realtime = realtime
        self.started = time.monotonic()

    def write(self, data: bytes) -> None:
        if self.cancelled:
            raise BrokenPipeError("playback cut")
        self.buf += data
        if self.realtime:
            # As a sound card takes it: no faster than it is heard.
            due = self.started + len(self.buf) / self.RATE
            while not self.cancelled and time.monotonic() < due:
                time.sleep(0.01)

    def finish(self, phonemes: str | None = None) -> None:
        if self.cancelled:
            return
        # espeak-ng's --stdout header has no length (it streams): write a
        # proper one so sox and wave read the file.
        rate, channels, width, pcm = parse_wav(bytes(self.buf))
        with wave.open(str(self.stem.with_suffix(".wav.part")), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(width)
            out.setframerate(rate)
            out.writeframes(pcm)
        if phonemes is not None:
            self.stem.with_suffix(".pho").write_text(phonemes, encoding="utf-8")
        self.stem.with_suffix(".wav.part").rename(self.stem.with_suffix(".wav"))

    def cancel(self) -> None:
        self.cancelled = True


class SinkError(Exception):
    """The audio could not be played (the device went away)."""


def parse_wav(data: bytes) -> tuple[int, int, int, bytes]:
    """(rate, channels, sample width, PCM bytes) of a WAV stream whose
    header may give no length, as espeak-ng's ``--stdout`` writes it."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    pos = 12
    rate = channels = width = 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt ":
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            width = int.from_bytes(data[body + 14:body + 16], "little") // 8
        elif chunk == b"data":
            return rate, channels, width, data[body:body + min(size, len(data) - body)]
        pos = body + size + (size & 1)
    raise ValueError("WAV stream without data")


# -- the device -----------------------------------------------------------------

_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[(\S+)\s*\]")
_CARD_IN_NAME = re.compile(r"CARD=([^,]+)")
_HW_NUMBER = re.compile(r"^(?:plug)?hw:(\d+)")


def sound_cards(path: Path = Path("/proc/asound/cards")) -> dict[int, str]:
    """{number: id} of the ALSA sound cards (``Headphones``, ``vc4hdmi0``...)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return {int(m.group(1)): m.group(2) for m in map(_CARD_LINE.match, text.splitlines()) if m}


def audio_device_problem(device: str, aplay: str = "aplay", cards: dict[int, str] | None = None) -> str | None:
    """Why audio would not be heard on ``device`` (an ALSA name, "" for the
    default), or None. Looks, never opens: the running kiosk may hold it.

    >>> audio_device_problem("plughw:CARD=Headphones", cards={0: "Headphones"}, aplay="sh")
    >>> audio_device_problem("plughw:CARD=vc4hdmi0", cards={0: "Headphones"}, aplay="sh")
    "audio device 'plughw:CARD=vc4hdmi0' not found (sound cards here: Headphones)"
    """
    if shutil.which(aplay) is None:
        return "aplay not found (install alsa-utils)"
    cards = sound_cards() if cards is None else cards
    card = _CARD_IN_NAME.search(device)
    number = _HW_NUMBER.match(device)
    if device and not card and not number and device in _aplay_names(aplay):
        return None  # a device of ALSA's configuration ("null", "pulse", a dmix of the clinic's own)
    if not cards:
        return "no sound card found"
    if not device or device in ("default", "sysdefault"):
        return None
    if card and card.group(1) in cards.values():
        return None
    if number and int(number.group(1)) in cards:
        return None
    return f"audio device '{device}' not found (sound cards here: {', '.join(cards.values())})"


def _aplay_names(aplay: str) -> set[str]:
    try:
        out = subprocess.run([aplay, "-L"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in out.splitlines() if line and not line[0].isspace()}


# -- espeak-ng ------------------------------------------------------------------


def amplitude(volume: int) -> int:
    """espeak-ng's ``-a`` for a volume of 0..100.

    >>> amplitude(100), amplitude(80), amplitude(0)
    (120, 96, 0)
    """
    return round(max(0, min(100, volume)) * MAX_AMPLITUDE / 100)


def voice_problem(language: str, espeak: str = "espeak-ng") -> str | None:
    """Why espeak-ng cannot speak ``language``, or None."""
    try:
        out = subprocess.run([espeak, f"--voices={language}"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "espeak-ng not found (install espeak-ng)"
    voices = out.stdout.splitlines()[1:]
    if not any(line.split()[1:2] and line.split()[1].split("-")[0] == language.split("-")[0] for line in voices):
        return f"espeak-ng has no voice for '{language}'"
    return None


@dataclass(frozen=True)
class Utterance:
    text: str
    language: str
    calm: bool = False
    generation: int = 0


class EspeakSpeaker:
    """Speech through Debian's espeak-ng, one subprocess per utterance, on a
    worker thread. ``on_audio(t)`` (if set) is called on the worker with
    ``time.monotonic()`` when an utterance's first sample reaches the sink
    (the bench's ``speech_start_ms``); ``on_health(dict)`` when the health
    changes (a device that went away, or came back).
    """

    def __init__(self, sink: Sink, *, volume: int = 80, languages: tuple[str, ...] = ("en", "es"),
                 espeak: str = "espeak-ng"):
        self.sink = sink
        self.volume = volume
        self.languages = tuple(languages)
        self.espeak = espeak
        self.on_audio: Callable[[float], None] | None = None
        self.on_health: Callable[[dict], None] | None = None
        self._queue: queue.Queue[Utterance | None] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._current: tuple[subprocess.Popen | None, Playback | None] = (None, None)
        self._thread: threading.Thread | None = None
        self._renderer: ThreadPoolExecutor | None = None
        self._cache: collections.OrderedDict[tuple, tuple[bytes, str | None]] = collections.OrderedDict()
        self._health: dict | None = None
        self._no_voice: set[str] = set()
        self._closed = False

    # -- the UI's side (returns at once) ----------------------------------

    def speak(self, text: str, language: str, *, calm: bool = False) -> None:
        text = " ".join(text.split())
        if not text or self._closed:
            return
        with self._lock:
            self._queue.put(Utterance(text, language, calm, self._generation))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="speech", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._generation += 1
            proc, playback = self._current
        try:
            while True:
                self._queue.get_nowait()
                self._queue.task_done()
        except queue.Empty:
            pass
        if playback is not None:
            playback.cancel()
        if proc is not None and proc.poll() is None:
            proc.kill()

    def prepare(self, text: str, language: str, *, calm: bool = False) -> None:
        text = " ".join(text.split())
        if not text or self._closed or self._key(Utterance(text, language, calm)) in self._cache:
            return
        with self._lock:
            if self._renderer is None:
                self._renderer = ThreadPoolExecutor(1, thread_name_prefix="speech-prepare")
            renderer = self._renderer
        renderer.submit(self._prepare, Utterance(text, language, calm))

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    @property
    def ready(self) -> bool:
        """False until :meth:`check` has run (the app runs it off the UI thread)."""
        return self._health is not None and self._health["ok"]

    def health(self) -> dict:
        if self._health is None:
            self._health = self.check()
        return dict(self._health)

    def check(self) -> dict:
        """Looks again for espeak-ng, its voices and the device (a subprocess
        or two: call it off the UI thread)."""
        blocking = []  # nothing can be heard
        if shutil.which(self.espeak) is None:
            blocking.append("espeak-ng not found (install espeak-ng)")
            self._no_voice = set()
        else:
            self._no_voice = {lang for lang in self.languages if voice_problem(lang, self.espeak)}
        device = self.sink.problem()
        if device:
            blocking.insert(0, device)
        # A language without a voice is not read (never in another
        # language's voice); the others still are.
        voiceless = [f"espeak-ng has no voice for '{lang}'" for lang in sorted(self._no_voice)]
        ok = not blocking and len(self._no_voice) < max(1, len(self.languages))
        problems = blocking + voiceless
        self._health = {"device": self.sink.device or "default", "ok": ok,
                        "message": "; ".join(problems) if problems else "ready"}
        return dict(self._health)

    def close(self) -> None:
        self._closed = True
        self.stop()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._renderer is not None:
            self._renderer.shutdown(wait=False, cancel_futures=True)

    # -- the worker ---------------------------------------------------------

    def _key(self, u: Utterance) -> tuple:
        return (u.text, u.language, u.calm, self.volume)

    def _command(self, u: Utterance, phonemes: Path | None) -> list[str]:
        cmd = [self.espeak, "-v", u.language, "-a", str(amplitude(self.volume)),
               "-s", str(CALM_RATE_WPM if u.calm else RATE_WPM), "--stdout", "--stdin"]
        if u.calm:
            cmd += ["-p", str(CALM_PITCH)]
        if phonemes is not None:
            cmd += ["-x", f"--phonout={phonemes}"]
        return cmd

    def _stale(self, u: Utterance) -> bool:
        return u.generation != self._generation

    def idle(self) -> bool:
        """Whether nothing is queued or being spoken."""
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            u = self._queue.get()
            try:
                if u is None:
                    return
                if self._stale(u) or u.language in self._no_voice or not self.health()["ok"]:
                    continue
                self._say(u)
            except SinkError as exc:
                self._set_health(False, str(exc))
            except Exception as exc:  # speech is a help, never a reason for the kiosk to fail
                # The type only: an exception's text could quote what was said.
                log.error("speech: an utterance could not be spoken (%s)", type(exc).__name__)
            finally:
                self._queue.task_done()

    def _say(self, u: Utterance) -> None:
        key = self._key(u)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            self._play(u, iter([cached[0]]), None, lambda: cached[1])
            return
        phonemes = self._phoneme_path() if self.sink.transcript else None
        try:
            proc = subprocess.Popen(self._command(u, phonemes), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError:
            self._set_health(False, "espeak-ng not found (install espeak-ng)")
            return
        kept = bytearray()
        done = []
        said: list[str | None] = [None]

        try:
            # espeak-ng reads all of --stdin before it speaks; a screen's
            # sentence is far below a pipe's buffer.
            proc.stdin.write(u.text.encode("utf-8"))
            proc.stdin.close()
        except OSError:
            proc.kill()
            proc.wait()
            log.error("speech: espeak-ng stopped before it read the text (exit %s)", proc.returncode)
            return

        def chunks() -> Iterator[bytes]:
            while True:
                data = proc.stdout.read1(CHUNK)
                if not data:
                    done.append(True)
                    return
                kept.extend(data)
                yield data

        def transcript() -> str | None:
            proc.wait()
            if phonemes is not None and phonemes.exists():
                said[0] = phonemes.read_text(encoding="utf-8")
            return said[0]

        try:
            self._play(u, chunks(), proc, transcript)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            if phonemes is not None:
                phonemes.unlink(missing_ok=True)
        if done and proc.returncode == 0 and kept:
            self._remember(u, bytes(kept), said[0])

    def _play(self, u: Utterance, chunks: Iterator[bytes], proc, transcript: Callable[[], str | None]) -> None:
        """Streams ``chunks`` to a new playback, cutting it at a stop."""
        playback = None
        try:
            for data in chunks:
                if self._stale(u):
                    break
                if playback is None:
                    playback = self.sink.start(u.language)
                    with self._lock:
                        self._current = (proc, playback)
                    if self._stale(u):  # a stop came between the check and here
                        break
                    if self.on_audio is not None:
                        self.on_audio(time.monotonic())
                try:
                    playback.write(data)
                except OSError:  # BrokenPipeError from a playback cut by stop()
                    if self._stale(u):
                        break
                    raise
            if playback is not None:
                if self._stale(u):
                    playback.cancel()
                playback.finish(None if self._stale(u) else transcript())
                if not self._stale(u):
                    self._set_health(True, "ready")
        except OSError as exc:
            if playback is not None:
                playback.finish()  # raises SinkError with aplay's own reason
            raise SinkError(f"audio device could not be written ({type(exc).__name__})") from exc
        finally:
            with self._lock:
                self._current = (None, None)

    def _prepare(self, u: Utterance) -> None:
        if self._key(u) in self._cache or self._closed:
            return
        phonemes = self._phoneme_path() if self.sink.transcript else None
        try:
            out = subprocess.run(self._command(u, phonemes), input=u.text.encode("utf-8"), capture_output=True,
                                 timeout=30)
        except (OSError, subprocess.SubprocessError):
            return
        text = None
        if phonemes is not None:
            text = phonemes.read_text(encoding="utf-8") if phonemes.exists() else None
            phonemes.unlink(missing_ok=True)
        if out.returncode == 0 and out.stdout:
            self._remember(u, out.stdout, text)

    def _remember(self, u: Utterance, wav: bytes, phonemes: str | None) -> None:
        with self._lock:
            key = self._key(u)
            if key in self._cache and phonemes is None:
                phonemes = self._cache[key][1]
            self._cache[key] = (wav, phonemes)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _phoneme_path(self) -> Path:
        # Only a FileSink keeps transcripts, next to its WAV files.
        return Path(self.sink.folder) / f".phonemes-{threading.get_ident()}-{time.monotonic_ns()}.txt"

    def _set_health(self, ok: bool, message: str) -> None:
        before = self.health()
        if before["ok"] == ok and (ok or before["message"] == message):
            return
        if not ok:
            log.warning("speech: no audio (%s)", message)
        else:
            log.info("speech: audio is back on %s", self.sink.device or "the default device")
        self._health = {**before, "ok": ok, "message": message}
        if self.on_health is not None:
            try:
                self.on_health(dict(self._health))
            except Exception:
                log.exception("speech: on_health callback failed")


class SilentSpeaker:
    """A speaker that says nothing: read-aloud off in the configuration's
    absence of espeak-ng, the replay self-test (the running kiosk owns the
    sound device), tests of other things."""

    def __init__(self, message: str = "read-aloud not used here"):
        self.message = message

    def speak(self, text: str, language: str, *, calm: bool = False) -> None:
        pass

    def prepare(self, text: str, language: str, *, calm: bool = False) -> None:
        pass

    def stop(self) -> None:
        pass

    def forget(self) -> None:
        pass

    @property
    def ready(self) -> bool:
        return False

    def health(self) -> dict:
        return {"device": "none", "ok": False, "message": self.message}

    def close(self) -> None:
        pass


def speaker_for(audio, languages: tuple[str, ...] = ("en", "es")) -> EspeakSpeaker:
    """The kiosk's speaker for an ``[audio]`` section (kiosk.config.AudioSection)."""
    return EspeakSpeaker(AplaySink(audio.device), volume=audio.volume, languages=languages)


def audio_status(audio, languages: tuple[str, ...] = ("en", "es")) -> dict:
    """``clinic-kiosk status``'s ``audio``: what a look at the machine finds
    now (espeak-ng, its voices, the device), and the read-aloud setting."""
    health = speaker_for(audio, languages).check()
    return {**health, "read_aloud": bool(audio.read_aloud), "volume": audio.volume}
