"""What every kiosk app does for systemd and for its first frame.

:class:`ServiceApp` is mixed into the kiosk app and the out-of-order app:

* ``READY=1`` goes to systemd once the first frame is on screen;
* ``SIGTERM`` (``systemctl stop``) stops the app cleanly; a window close
  or Escape does not;
* ``WATCHDOG=1`` goes out from a Kivy clock interval, that is from the UI
  loop itself, at half of ``WATCHDOG_USEC``: when the UI loop stalls the
  pings stop and systemd restarts the kiosk (a worker thread pinging would
  keep a frozen screen alive).
"""

from __future__ import annotations

import signal

from kivy.clock import Clock

from kiosk.notify import Notifier


class ServiceApp:
    """A mixin for :class:`kivy.app.App` subclasses."""

    #: Set by tests (a stand-in socket) or left None for the environment's.
    notifier: Notifier | None = None
    _first_frame_done = False
    _watchdog_event = None
    _previous_sigterm = None

    def after_first_frame(self, callback):
        """Runs ``callback`` on the clock once the first frame is on screen
        (at once, on the next tick, when it already is)."""
        from kivy.core.window import Window

        if self._first_frame_done:
            Clock.schedule_once(lambda _dt: callback(), 0)
            return

        def flipped(*_):
            Window.unbind(on_flip=flipped)
            self._first_frame_done = True
            Clock.schedule_once(lambda _dt: callback(), 0)

        Window.bind(on_flip=flipped)

    def start_service_notify(self) -> None:
        """Call from ``on_start``: READY after the first frame, then pings."""
        if self.notifier is None:
            self.notifier = Notifier()
        # Python runs the handler on the main thread between frames, so the
        # app stops from its own loop (on_stop runs, writes are waited for).
        self._previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: Clock.schedule_once(lambda _dt: self.stop()))
        self.after_first_frame(self.notifier.ready)
        interval = self.notifier.watchdog_interval_s()
        if interval:
            self._watchdog_event = Clock.schedule_interval(lambda _dt: self.notifier.watchdog(), interval)

    def stop_service_notify(self) -> None:
        """Call from ``on_stop``: no ping may fire after the app is gone."""
        if self._watchdog_event is not None:
            self._watchdog_event.cancel()
            self._watchdog_event = None
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self.notifier is not None:
            self.notifier.notify("STOPPING=1")
            self.notifier.close()
