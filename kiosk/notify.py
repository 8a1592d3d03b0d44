"""The systemd notify protocol (``Type=notify`` with a watchdog).

systemd hands the service a datagram socket in ``NOTIFY_SOCKET``; the kiosk
sends ``READY=1`` once its first screen is drawn and ``WATCHDOG=1`` every
half of ``WATCHDOG_USEC``. The kiosk sends the pings from its UI loop, so a
frozen screen stops them and systemd restarts the service. Outside systemd
(no ``NOTIFY_SOCKET``) every call does nothing.

>>> n = Notifier(env={})
>>> n.enabled, n.watchdog_interval_s()
(False, None)
>>> n.ready()
False
>>> Notifier(env={"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "4000000"}).watchdog_interval_s()
2.0
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state lines to systemd's notify socket (see ``sd_notify(3)``)."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: a leading NUL byte on the wire.
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.enabled = bool(path)
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._sock: socket.socket | None = None
        self._warned = False

    def watchdog_interval_s(self) -> float | None:
        """Seconds between pings (half of ``WATCHDOG_USEC``), or None when
        systemd does not watch this process."""
        if not self.enabled or not self._watchdog_usec.isdigit() or int(self._watchdog_usec) == 0:
            return None
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None  # the watchdog is meant for another process of the unit
        return int(self._watchdog_usec) / 2 / 1_000_000

    def notify(self, state: str) -> bool:
        """Sends one state line; True when it went out. Never raises: a
        watchdog that cannot be reached must not stop the kiosk."""
        if not self.enabled:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(state.encode("utf-8"), self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a ping every few seconds must not flood the journal
                log.warning("%s: cannot notify systemd: %s", self.address.lstrip("\0"), exc.strerror or exc)
                self._warned = True
            return False

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
