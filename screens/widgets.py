"""Widgets shared by the screens: large buttons and labels in the house
colours (:mod:`screens.palette`), sized by the app's one large-text scale."""

from __future__ import annotations

from kivy.properties import BooleanProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.label import Label

from .base import load_kv
from .palette import CONTRAST_PAIRS, PALETTE  # noqa: F401  (the widgets' colours)

class FreshTexture:
    """Renders changed text into a new texture instead of the old one.

    With software GL (a Pi's screen under Mesa, this project's tests) the
    previous frame is often still being drawn when the next question's text
    is rendered; writing into a texture that frame uses makes the UI thread
    wait for it (most of a screen switch's time in the profile), while a new
    texture costs nothing. Text that does not change is not rendered again.
    """

    def texture_update(self, *largs):
        self._label.texture = None
        super().texture_update(*largs)


class KLabel(FreshTexture, Label):
    """Body text that wraps to its width and grows to its height."""

    role = OptionProperty("body", options=["body", "title", "question", "small", "huge"])


class KButton(FreshTexture, Button):
    """A large flat button. ``answer_code`` ties it to an answer so the
    replay driver and the tests can find it."""

    role = OptionProperty("secondary", options=["primary", "secondary", "choice", "quiet"])
    selected = BooleanProperty(False)
    answer_code = ObjectProperty(None, allownone=True)
    key = StringProperty("")


load_kv(__file__)
