"""Review: every answer in a list; tap one to change it, then submit.

The list is a RecycleView: only the rows in sight exist as widgets. Each row
is a button with its own rendered text, and a software renderer keeps memory
for everything drawn (about 20 MB more for a whole visit's 42 rows).
"""

from __future__ import annotations

from kivy.app import App
from kivy.core.text.markup import MarkupLabel
from kivy.metrics import dp, mm
from kivy.properties import NumericProperty, StringProperty

from .answers import answer_text
from .base import KioskScreen, load_kv
from .widgets import KButton

#: Room around a row's text (its height is the text's plus this).
ROW_PADDING = 24
#: A row's text size, sp at normal text: a button's, as the list showed it.
ROW_FONT_SP = 26


class ReviewRow(KButton):
    """One answer on the review list; tapping it goes back to that question."""

    font_sp = NumericProperty(ROW_FONT_SP)

    def on_release(self):
        if self.answer_code:
            App.get_running_app().edit_answer(self.answer_code)


class ReviewScreen(KioskScreen):
    error_text = StringProperty("")

    def on_activate(self):
        self.error_text = ""
        self._rows = []
        app = self.app
        if app.visit is not None:
            for item in app.visit.questions():
                if not item.asked:
                    continue  # display text: nothing to check
                value = app.visit.answers.get(item.link_id)
                self._rows.append((item.link_id, f"{app.item_text(item.text)}\n[b]{answer_text(app, item, value)}[/b]"))
        app.bind(font_scale=self._fill)
        self.ids.scroller.bind(width=self._fill)
        self._fill()
        self.ids.scroller.scroll_y = 1

    def on_deactivate(self):
        self.app.unbind(font_scale=self._fill)
        self.ids.scroller.unbind(width=self._fill)

    def _fill(self, *args):
        """The rows' data, each with the height its text needs at this width
        and text size (measured without rendering it)."""
        scroller = self.ids.scroller
        width = scroller.width - dp(16)  # a KButton's text width
        font_size = self.app.fs(ROW_FONT_SP)
        minimum = mm(16)
        data = []
        for code, text in self._rows:
            label = MarkupLabel(text=text, markup=True, font_size=font_size, text_size=(width, None), halign="left")
            label.resolve_font_name()
            height = label.render()[1]
            data.append({"text": text, "answer_code": code, "height": max(height + ROW_PADDING, minimum)})
        scroller.data = data

    def back(self):
        """Back to the last question."""
        self.app.go(self.app.session.back_from_review())

    def show_error(self, text: str):
        self.error_text = text

    def wipe(self):
        self._rows = []
        self.ids.scroller.data = []
        self.error_text = ""


load_kv(__file__)
