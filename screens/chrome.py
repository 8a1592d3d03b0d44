"""The frame around every screen: the top bar with large text and "call
staff", the hidden staff corner, and the "still there?" dialog."""

from __future__ import annotations

from kivy.clock import Clock
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.modalview import ModalView
from kivy.uix.widget import Widget

from .base import load_kv


#: Seconds a finger must rest on the staff corner to open the PIN pad.
STAFF_HOLD_S = 2.0


class KioskRoot(FloatLayout):
    pass


class StaffCorner(Widget):
    """An invisible square in the top-left corner: a long press opens the
    staff PIN pad. Patients never see it."""

    def on_touch_down(self, touch):
        if self.collide_point(*touch.pos):
            touch.grab(self)
            self._event = Clock.schedule_once(self._open, STAFF_HOLD_S)
            return True
        return False

    def on_touch_up(self, touch):
        if touch.grab_current is self:
            touch.ungrab(self)
            if getattr(self, "_event", None):
                self._event.cancel()
            return True
        return False

    def _open(self, _dt):
        from kivy.app import App

        App.get_running_app().open_staff()


class IdleDialog(ModalView):
    pass


load_kv(__file__)
