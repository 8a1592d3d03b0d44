"""Widgets shared by the screens: large buttons and labels in the house
colours (:mod:`screens.palette`), sized by the app's one large-text scale."""

from __future__ import annotations

from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label

from .base import load_kv
from .palette import CONTRAST_PAIRS, PALETTE  # noqa: F401  (the widgets' colours)


class KLabel(Label):
    """Body text that wraps to its width and grows to its height."""

    role = OptionProperty("body", options=["body", "title", "question", "small", "huge"])
    #: Render changed text into a new texture rather than the old one. For
    #: labels whose text changes on every screen but keeps its size ("Question
    #: 3 of 42" -> "Question 4 of 42"): Kivy would rewrite the old texture,
    #: and with software GL (a Pi under Mesa, the tests) the frame still
    #: drawing it makes the UI thread wait, most of a question switch in the
    #: profile. Only for small labels: Kivy's old textures sit in reference
    #: cycles until Python's cycle collector runs, so fresh textures for the
    #: big question label cost ~230 MB over one visit (measured).
    fresh_texture = BooleanProperty(False)
    _rendered_text = None

    def texture_update(self, *largs):
        # Only for a new text: a re-layout of the same text keeps its texture.
        if self.fresh_texture and self.text != self._rendered_text and self._label.texture is not None:
            self._label.texture = None
        self._rendered_text = self.text
        super().texture_update(*largs)


class KButton(ButtonBehavior, Label):
    """A large flat button. ``answer_code`` ties it to an answer so the
    replay driver and the tests can find it.

    A Label with button behaviour rather than Kivy's Button: Button draws its
    own background image under ours, invisible here but still filled pixel
    by pixel by a software renderer (about a tenth of a question's frame)."""

    role = OptionProperty("secondary", options=["primary", "secondary", "choice", "quiet"])
    selected = BooleanProperty(False)
    #: Text size in sp at normal text; the app's large-text scale applies on top.
    font_sp = NumericProperty(26)
    answer_code = ObjectProperty(None, allownone=True)
    key = StringProperty("")


load_kv(__file__)
