"""Review: every answer in a list; tap one to change it, then submit."""

from __future__ import annotations

from kivy.properties import StringProperty

from .answers import answer_text
from .base import KioskScreen, load_kv
from .widgets import KButton


class ReviewScreen(KioskScreen):
    error_text = StringProperty("")

    def on_activate(self):
        self.error_text = ""
        app = self.app
        box = self.ids.rows
        box.clear_widgets()
        if app.visit is None:
            return
        for item in app.visit.questions():
            if not item.asked:
                continue  # display text: nothing to check
            value = app.visit.answers.get(item.link_id)
            b = KButton(
                text=f"{app.item_text(item.text)}\n[b]{answer_text(app, item, value)}[/b]",
                markup=True,
                size_hint_y=None,
                halign="left",
                answer_code=item.link_id,
                font_size=app.fs(20),
            )
            b.bind(texture_size=lambda btn, ts: setattr(btn, "height", max(ts[1] + 24, btn.size_hint_min_y or 0)))
            b.bind(on_release=lambda btn: app.edit_answer(btn.answer_code))
            box.add_widget(b)
        self.ids.scroller.scroll_y = 1

    def back(self):
        """Back to the last question."""
        self.app.go(self.app.session.back_from_review())

    def show_error(self, text: str):
        self.error_text = text

    def wipe(self):
        self.ids.rows.clear_widgets()
        self.error_text = ""


load_kv(__file__)
