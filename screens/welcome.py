"""The welcome screen: the clinic's name, the language choice, and the two
ways in: "First visit" and "I have been here before". The choice is the
answer of the pack's hidden visit-kind item, so a returning patient gets
the pack's short follow-up path; the kiosk looks nothing up (the hub
matches a returning patient by name and date of birth).

The language buttons are the languages of ``[clinic] languages`` that the
content pack covers (``app.languages``), each named in its own language:
a clinic adds a language with data only (the pack's translations and a
catalogue in ``screens/locale``).

While nobody is using the kiosk it shows the waiting-room loop (silent
explainer clips with captions) beside a clear "touch to start". The loop
plays only while this screen shows: it stops when the patient moves on (no
video decodes off screen) and starts again on return."""

from __future__ import annotations

import logging

from .base import KioskScreen, load_kv

log = logging.getLogger(__name__)


class WelcomeScreen(KioskScreen):
    def on_kv_post(self, base_widget):
        from .widgets import KButton

        app = self.app
        for code, name in app.languages:
            button = KButton(text=name, role="choice", answer_code=code, selected=app.language == code)
            button.bind(on_release=lambda b: app.set_language(b.answer_code))
            self.ids.languages.add_widget(button)
        app.bind(language=self._show_language)

    def _show_language(self, app, language):
        for button in self.ids.languages.children:
            button.selected = button.answer_code == language

    def on_activate(self):
        # The loop is built and started just after this screen's first frame,
        # so the start buttons are on screen without waiting for a video to open.
        self.app.after_first_frame(self.start_loop)

    def start_loop(self):
        if self.manager is None or self.manager.current != self.name:
            return  # the patient already moved on
        holder = self.ids.attract_holder
        if not holder.children and self.app.catalogue is not None:
            from .attract import AttractLoop

            # A touch on the clips starts nothing: a visit begins with the
            # patient's own choice, first visit or returning (a returning
            # patient taken for a new one would be a stranger on the hub).
            loop = AttractLoop(start_hint="")
            holder.add_widget(loop)
        for child in holder.children:
            if hasattr(child, "start"):
                child.start()

    def on_deactivate(self):
        for child in self.ids.attract_holder.children:
            if hasattr(child, "stop"):
                child.stop()


load_kv(__file__)
