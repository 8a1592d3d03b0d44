"""Read-aloud: every screen spoken in the visit's language, from the very
strings it shows.

The words come off the screen itself (:func:`spoken_lines`): its labels top
to bottom, then its answers and its main button, so what is heard is what
is shown, in any language the pack and the catalogues carry. The speech
itself is a :class:`kiosk.speech.Speaker` (espeak-ng on a worker thread):
this module only hands it text, and only after the new screen is drawn, so
a tap is never slower with read-aloud on. Any touch stops the speech at
once; the next screen is then spoken from its start.

    reader = ReadAloud(app, speaker)
    reader.screen_shown()      # after every app.go(), on the next frame
    reader.interrupted()       # on every touch
"""

from __future__ import annotations

import re

from kivy.clock import Clock
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label

#: Screens that are not read: the staff PIN pad is not for patients.
SILENT_SCREENS = frozenset({"staff"})
#: Screens read slower and lower: the patient may be frightened.
CALM_SCREENS = frozenset({"emergency"})
#: What a screen shows but does not read, by screen and id: captions follow
#: their video as they always have (the welcome screen's waiting-room loop,
#: the explainer video).
UNSPOKEN_IDS = {"welcome": ("attract_holder",), "video": ("caption_label",)}
#: Buttons read out, besides the answers: a screen's main action.
SPOKEN_ROLES = ("primary", "choice")

_MARKUP = re.compile(r"\[/?(?:b|i|u|s|sub|sup|color|size|font|ref|anchor)(?:=[^\]]*)?\]")


def plain(text: str) -> str:
    """Label text without Kivy markup, as it reads on screen.

    >>> plain("Pain now\\n[b]6[/b] &amp; more")
    'Pain now\\n6 & more'
    """
    text = _MARKUP.sub("", text)
    return text.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")


def is_recycleview(w) -> bool:
    # By shape, not class: kv's Factory can load kivy.uix.recycleview a
    # second time (as ``kivy.uix.recycleview.__init__``), a class of its own.
    return hasattr(w, "viewclass") and isinstance(getattr(w, "data", None), list)


def spoken_lines(root, skip=(), languages: dict[str, str] | None = None, language: str = "en") -> list[tuple[str, str]]:
    """``(text, language)`` of every line ``root`` shows that is read out,
    in reading order (kv order: top to bottom, left to right): visible
    labels, and the buttons that are answers or the screen's main action
    (not Back, not keyboard keys). A RecycleView reads all its rows, not just
    those in sight. A button naming a language (``languages``: code -> name)
    is read in that language, so "Español" sounds Spanish."""
    out: list[tuple[str, str]] = []
    skip = {id(getattr(w, "__self__", w)) for w in skip}  # screen.ids holds proxies
    languages = languages or {}

    def visit(w):
        if w.opacity == 0 or id(w) in skip:
            return
        if is_recycleview(w):
            rows = (plain(str(d.get("text", ""))) for d in w.data)
            out.extend((text, language) for text in rows if any(ch.isalnum() for ch in text))
            return
        if isinstance(w, Label):
            lang = language
            if isinstance(w, ButtonBehavior):
                code = getattr(w, "answer_code", None)
                if w.disabled or getattr(w, "key", "") or not (
                        code is not None or getattr(w, "role", "") in SPOKEN_ROLES):
                    return
                if isinstance(code, str) and languages.get(code) == w.text:
                    lang = code
            text = plain(w.text) if w.markup else w.text
            if any(ch.isalnum() for ch in text):  # not a bare cursor or an arrow
                out.append((text, lang))
        for child in reversed(w.children):
            visit(child)

    visit(root)
    return out


class ReadAloud:
    """Speaks the app's current screen when read-aloud is on (``app.read_aloud``)."""

    #: Seconds to wait for the frame of a new screen before reading it
    #: anyway (a window that draws nothing new flips no frame).
    FRAME_WAIT_S = 0.25

    def __init__(self, app, speaker):
        from kivy.core.window import Window

        self.app = app
        self.speaker = speaker
        self._pending = False
        # One trigger: two screens in one frame speak only the last.
        self._trigger = Clock.create_trigger(self._speak_screen, 0)
        self._fallback = Clock.create_trigger(self._speak_screen, self.FRAME_WAIT_S)
        Window.bind(on_flip=self._flipped)
        app.bind(language=lambda *_: self.screen_shown(), staff_called=self._staff_called)

    def close(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_flip=self._flipped)
        self.interrupted()

    @property
    def on(self) -> bool:
        return bool(self.app.read_aloud and self.app.speech_available)

    def screen_shown(self) -> None:
        """Reads the screen now showing once its frame is on the display:
        the new screen is drawn first, then its text handed to the speaker
        (a tap is no slower with read-aloud on)."""
        if self.on:
            self._pending = True
            self._fallback()

    @property
    def waiting(self) -> bool:
        """Whether a screen waits for its frame to be read."""
        return self._pending

    def _flipped(self, *_):
        if self._pending:
            self._pending = False
            self._fallback.cancel()
            self._trigger()

    def interrupted(self) -> None:
        """A touch: silence now."""
        self._pending = False
        self._trigger.cancel()
        self._fallback.cancel()
        self.speaker.stop()

    def switched(self) -> None:
        """The Read aloud button: on reads the screen from the start, off stops."""
        self.speaker.stop()
        self.screen_shown()

    def say(self, widget, calm: bool = True) -> None:
        """Reads a dialog or banner over the screen (after what is queued)."""
        if not self.on:
            return
        for text, language in spoken_lines(widget, language=self.app.language):
            self.speaker.speak(text, language, calm=calm)

    def lines(self, screen) -> list[tuple[str, str]]:
        """What :meth:`screen_shown` reads of ``screen``."""
        if screen is None or screen.name in SILENT_SCREENS:
            return []
        skip = [screen.ids[i] for i in UNSPOKEN_IDS.get(screen.name, ()) if i in screen.ids]
        return spoken_lines(screen, skip=skip, languages=dict(self.app.languages), language=self.app.language)

    def _speak_screen(self, _dt=None) -> None:
        self._pending = False
        if not self.on:
            return
        screen = self.app.sm.current_screen
        self.speaker.stop()
        calm = screen is not None and screen.name in CALM_SCREENS
        for text, language in self.lines(screen):
            self.speaker.speak(text, language, calm=calm)
        upcoming = self._next_question_text()
        if upcoming:
            self.speaker.prepare(upcoming, self.app.language)

    def _next_question_text(self) -> str:
        """The question the patient will most likely see next (the next one
        asked as the answers stand), rendered ahead so it starts sooner."""
        visit = self.app.visit
        if visit is None or self.app.sm.current not in ("privacy", "question"):
            return ""
        questions = visit.questions()
        current = visit.current() if self.app.sm.current == "question" else None
        try:
            following = questions[questions.index(current) + 1] if current is not None else questions[0]
        except (ValueError, IndexError):
            return ""
        return self.app.item_text(following.text)

    def _staff_called(self, app, called: bool) -> None:
        """Staff were called: the top bar's message is read, calmly, after
        the banner shows it (unless the emergency screen, which says it
        itself, came up meanwhile)."""
        if not (called and self.on):
            return

        def say(_dt):
            banner = app.root.ids.get("called_banner") if app.root is not None else None
            if banner is not None and app.sm.current != "emergency" and not self._pending:
                self.say(banner)

        Clock.schedule_once(say, 0)
