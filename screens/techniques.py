"""The techniques screen: every treatment the clinic offers, as large cards
with the poster and the title; tapping one opens its video.

The list comes from ``app.catalogue`` (a :class:`kiosk.media.Catalogue`) and
is rebuilt on every activation and when the language changes, so it always
matches the current content and language. Posters load through
``AsyncImage``, off the UI thread.
"""

from __future__ import annotations


from kivy.factory import Factory
from kivy.properties import StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout

from screens.base import KioskScreen, load_kv


class TechniqueCard(ButtonBehavior, BoxLayout):
    """One technique: poster on top, title below; the whole card is the
    touch target."""

    technique_id = StringProperty("")
    title = StringProperty("")
    poster = StringProperty("")


class TechniquesScreen(KioskScreen):
    """Lists the techniques of ``app.catalogue``; a tap calls
    ``app.go("video", technique_id=...)``."""

    def on_activate(self):
        # on_activate may run again without a leave (app.go to the same
        # screen): unbind first so the handler is never bound twice.
        self.app.unbind(language=self._fill)
        self.app.bind(language=self._fill)
        self._fill()

    def on_deactivate(self):
        self.app.unbind(language=self._fill)

    def _fill(self, *args):
        grid = self.ids.grid
        grid.clear_widgets()
        catalogue = getattr(self.app, "catalogue", None)
        if catalogue is None:
            return
        language = self.app.language
        for technique in catalogue:
            card = Factory.TechniqueCard(
                technique_id=technique.id,
                title=technique.text("title", language),
                # The poster's existence is not checked here (no disk I/O on
                # the UI thread): AsyncImage shows nothing if it is missing.
                poster=str(technique.poster),
            )
            card.bind(on_release=self.open)
            grid.add_widget(card)
        self.ids.scroller.scroll_y = 1

    def back(self):
        """Back to the thanks screen when a submitted visit led here."""
        self.app.go("thanks" if self.app.session.after_visit else "welcome")

    def open(self, card):
        """Show the video of the tapped card's technique."""
        self.app.go("video", technique_id=card.technique_id)


load_kv(__file__)
