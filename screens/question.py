"""One question per screen: the question, a big answer widget, back, skip
(for questions that may be left out) and next."""

from __future__ import annotations

from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty

from . import answers, bodymap  # noqa: F401  (each registers its answer widgets)
from .base import KioskScreen, load_kv


class QuestionScreen(KioskScreen):
    item = ObjectProperty(None, allownone=True)
    question_text = StringProperty("")
    section_text = StringProperty("")
    notice_text = StringProperty("")
    step = NumericProperty(0)
    steps = NumericProperty(1)
    can_skip = BooleanProperty(False)
    needs_next = BooleanProperty(False)
    ready = BooleanProperty(False)
    answer_widget = ObjectProperty(None, allownone=True)

    def on_activate(self):
        visit = self.app.visit
        if visit is None or visit.current() is None:
            return
        item = visit.current()
        self.item = item
        app = self.app
        self.question_text = app.item_text(item.text)
        self.section_text = app.item_text(visit.pack.item(item.section).text) if item.section else ""
        self.notice_text = app.item_text(item.notice) if item.notice else ""
        self.step, self.steps = visit.progress()
        self.can_skip = not item.required and item.type != "display"
        widget = answers.widget_for(item, visit.answers.get(item.link_id), self.commit)
        if widget is not self.answer_widget:
            # A new widget: swap it in. The same one (re-bound to this item)
            # stays where it is, so nothing is laid out or drawn anew.
            if self.answer_widget is not None:
                self.answer_widget.unbind(ready=self._widget_ready)
            holder = self.ids.answer_area
            holder.clear_widgets()
            if widget.parent is not None:
                widget.parent.remove_widget(widget)
            widget.bind(ready=self._widget_ready)
            holder.add_widget(widget)
            self.answer_widget = widget
        self.ready = widget.ready
        self.needs_next = not widget.immediate

    def _widget_ready(self, _widget, ready):
        self.ready = ready

    def commit(self, value):
        self.app.answer(self.item.link_id, value)

    def next(self):
        widget = self.answer_widget
        if widget is None or not widget.ready:
            return
        if widget.value in (None, []) and not self.item.required:
            self.app.skip(self.item.link_id)
        else:
            self.commit(widget.value)

    def back(self):
        """The previous question, or the privacy notice before the first."""
        self.app.go(self.app.session.back())

    def skip(self):
        self.app.skip(self.item.link_id)

    def wipe(self):
        self.ids.answer_area.clear_widgets()
        if self.answer_widget is not None:
            self.answer_widget.unbind(ready=self._widget_ready)
        self.answer_widget = None
        answers.forget_widgets()
        self.item = None
        self.question_text = self.section_text = self.notice_text = ""


load_kv(__file__)
