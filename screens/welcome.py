"""The welcome screen: the clinic's name, the language choice and Start.

While nobody is using the kiosk it shows the waiting-room loop (silent
explainer clips with captions) beside a clear "touch to start"."""

from __future__ import annotations

import logging

from .base import KioskScreen

log = logging.getLogger(__name__)


class WelcomeScreen(KioskScreen):
    def on_activate(self):
        # The loop is built and started just after this screen's first frame,
        # so "Start" is on screen without waiting for a video to open.
        self.app.after_first_frame(self.start_loop)

    def start_loop(self):
        if self.manager is None or self.manager.current != self.name:
            return  # the patient already moved on
        holder = self.ids.attract_holder
        if not holder.children and self.app.catalogue is not None:
            from .attract import AttractLoop

            loop = AttractLoop()
            loop.bind(on_start_visit=lambda *_: self.app.begin_visit())
            holder.add_widget(loop)
        for child in holder.children:
            if hasattr(child, "start"):
                child.start()

    def on_deactivate(self):
        for child in self.ids.attract_holder.children:
            if hasattr(child, "stop"):
                child.stop()
