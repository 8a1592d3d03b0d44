"""The base class of every kiosk screen.

A screen is a view: it reads the visit and the app's services when it is
shown (:meth:`KioskScreen.on_activate`) and tells the app what the patient
did. It never opens the database, the network or another screen directly.

Each screen lives in ``screens/<name>.py`` with its layout in
``screens/<name>.kv``; importing the module loads both (:func:`load_kv`),
and the app imports a screen the first time it is needed.
"""

from __future__ import annotations

from pathlib import Path

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen


def load_kv(module_file: str) -> None:
    """Loads the ``.kv`` file beside a ``screens`` module, once.

    Every module of ``screens`` calls ``load_kv(__file__)`` at import, so
    importing a screen or a widget is all it takes to use it (the one way
    the app loads layouts)::

        load_kv(__file__)   # at the end of screens/welcome.py
    """
    kv = Path(module_file).with_suffix(".kv")
    if kv.exists() and str(kv) not in Builder.files:
        Builder.load_file(str(kv))


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

    _active = False

    def on_pre_enter(self, *args):
        self.activate()

    def on_leave(self, *args):
        # A transition cut short by the next one (two taps in one frame)
        # reports its leave late, or never: the app deactivates the screen
        # itself when it moves on, and a late leave of the screen showing
        # again is ignored.
        if self.manager is None or self.manager.current != self.name:
            self.deactivate()

    def activate(self):
        self._active = True
        self.on_activate()

    def deactivate(self):
        """Runs :meth:`on_deactivate` once per activation."""
        if self._active:
            self._active = False
            self.on_deactivate()

    def on_activate(self):
        """Refresh the screen from the app's current visit and services."""

    def on_deactivate(self):
        """Release anything the screen holds (players, timers)."""

    def back(self):
        """Where this screen's Back button leads (the welcome screen unless
        the screen says otherwise)."""
        self.app.go("welcome")

    def wipe(self):
        """Forget everything the screen shows of the current visit."""
