"""The base class of every kiosk screen.

A screen is a view: it reads the visit and the app's services when it is
shown (:meth:`KioskScreen.on_activate`) and tells the app what the patient
did. It never opens the database, the network or another screen directly.

Each screen lives in ``screens/<name>.py`` with its layout in
``screens/<name>.kv``; the app loads both the first time the screen is needed.
"""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen


class KioskScreen(Screen):
    """A screen with an ``on_activate`` hook that pulls fresh state.

    ``on_activate`` runs every time the screen is shown, before the
    transition, so a screen never shows the previous patient's data.
    """

    #: Whether the on-screen "call staff" button is offered on this screen.
    offers_staff_call = True

    @property
    def app(self):
        return App.get_running_app()

    def on_pre_enter(self, *args):
        self.on_activate()

    def on_activate(self):
        """Refresh the screen from the app's current visit and services."""

    def on_leave(self, *args):
        self.on_deactivate()

    def on_deactivate(self):
        """Release anything the screen holds (players, timers)."""

    def wipe(self):
        """Forget everything the screen shows of the current visit."""
