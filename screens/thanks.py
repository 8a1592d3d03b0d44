"""Thanks: the answers are saved; a therapist will go through them. The
patient never sees a score, a tier or a diagnosis here."""

from kivy.clock import Clock

from .base import KioskScreen, load_kv

#: Seconds before the thanks screen returns to the welcome screen by itself.
RETURN_AFTER_S = 30


class ThanksScreen(KioskScreen):
    offers_staff_call = True

    def on_activate(self):
        self._event = Clock.schedule_once(lambda _dt: self.app.discard_visit(), RETURN_AFTER_S)

    def on_deactivate(self):
        if getattr(self, "_event", None):
            self._event.cancel()


load_kv(__file__)
