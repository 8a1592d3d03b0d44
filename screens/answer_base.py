"""What every answer widget is, and which widget answers which item.

Answer widgets register under the item's widget name (``Item.widget``) in
:data:`WIDGETS`: screens/answers.py the ordinary ones, screens/bodymap.py
the body map. Neither imports the other; the question screen imports both.

:func:`widget_for` gives the widget for an item. Widgets are built once per
app and updated for each question (the keys of a pad stay, the buttons of a
choice list are reused), so moving to the next question does not rebuild
the screen::

    widget = widget_for(item, visit.answers.get(item.link_id), commit)
"""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, ObjectProperty
from kivy.uix.boxlayout import BoxLayout

#: Item widget name (``kiosk.questionnaire`` Item.widget) -> widget class.
WIDGETS: dict[str, type] = {}


class AnswerWidget(BoxLayout):
    """Base: ``item`` is a kiosk.questionnaire.Item, ``value`` the answer so far.

    A subclass builds what never changes in :meth:`build` (once) and shows
    the current item in :meth:`setup` (for every question)."""

    item = ObjectProperty(None)
    value = ObjectProperty(None, allownone=True)
    commit = ObjectProperty(None)  # callable(value)
    ready = BooleanProperty(False)  # whether "Next" may be pressed
    immediate = False

    def __init__(self, item=None, value=None, commit=None, **kw):
        super().__init__(**kw)
        self._built = False
        if item is not None:
            self.show(item, value, commit)

    def show(self, item, value, commit) -> "AnswerWidget":
        """Re-binds the widget to ``item`` and its answer ``value``."""
        self.item = item
        self.commit = commit
        self.value = value
        if not self._built:
            self.build()
            self._built = True
        self.setup()
        self.ready = self.is_ready()
        return self

    def build(self):
        pass

    def setup(self):
        pass

    def is_ready(self) -> bool:
        return self.value is not None

    def on_value(self, *_):
        if self.item is not None:
            self.ready = self.is_ready()

    def t(self, msgid):
        return App.get_running_app().t(msgid)

    def sync_buttons(self, box, specs, on_tap):
        """Makes ``box`` hold one KButton per ``(text, code, selected)`` in
        ``specs``, reusing the buttons it already has."""
        from .widgets import KButton

        buttons = list(reversed(box.children))
        for n, (text, code, selected) in enumerate(specs):
            if n < len(buttons):
                b = buttons[n]
            else:
                b = KButton(role="choice")
                b.bind(on_release=lambda btn: btn.parent is not None and btn.tap_handler(btn))
                box.add_widget(b)
            b.tap_handler = on_tap
            b.text, b.answer_code, b.selected = text, code, selected
        for b in buttons[len(specs):]:
            box.remove_widget(b)


def widget_class(item) -> type:
    return WIDGETS[item.widget]


def forget_widgets() -> None:
    """Drops the cached answer widgets, and with them the last answers they
    showed: called when a visit is wiped, so nothing of one patient stays in
    memory for the next."""
    app = App.get_running_app()
    if app is not None:
        app.__dict__.pop("_answer_widgets", None)


def widget_for(item, value, commit) -> AnswerWidget:
    """The answer widget for ``item``, showing ``value``; calls
    ``commit(value)`` when answered. One instance per widget class and app,
    re-bound for each question."""
    app = App.get_running_app()
    cache = app.__dict__.setdefault("_answer_widgets", {})
    cls = widget_class(item)
    widget = cache.get(cls)
    if widget is None:
        widget = cache[cls] = cls()
    return widget.show(item, value, commit)
