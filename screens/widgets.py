"""Widgets shared by the screens: large buttons and labels in the house
colours (:mod:`screens.palette`), sized by the app's one large-text scale."""

from __future__ import annotations

from kivy.properties import BooleanProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.label import Label

from .base import load_kv
from .palette import CONTRAST_PAIRS, PALETTE  # noqa: F401  (the widgets' colours)

class KLabel(Label):
    """Body text that wraps to its width and grows to its height."""

    role = OptionProperty("body", options=["body", "title", "question", "small", "huge"])


class KButton(Button):
    """A large flat button. ``answer_code`` ties it to an answer so the
    replay driver and the tests can find it."""

    role = OptionProperty("secondary", options=["primary", "secondary", "choice", "quiet"])
    selected = BooleanProperty(False)
    answer_code = ObjectProperty(None, allownone=True)
    key = StringProperty("")


load_kv(__file__)
