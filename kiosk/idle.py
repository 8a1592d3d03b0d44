"""The idle timer: when to ask "still there?" and when to wipe the visit.

Pure: the caller passes the time, so the UI polls it from the Kivy clock and
tests drive it with any clock they like.

>>> t = IdleTimer(timeout_s=90, countdown_s=30, now=0)
>>> t.state(60), t.state(100)[0], t.state(121)[0]
(('active', 0), 'warning', 'expired')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IdleTimer:
    timeout_s: float
    countdown_s: float
    now: float = 0.0
    holds: int = 0  # e.g. a video playing keeps the visit alive

    def __post_init__(self):
        self.last_touch = self.now

    def touch(self, now: float) -> None:
        self.last_touch = now

    def hold(self, on: bool, now: float) -> None:
        """While held (a video plays) the visit never expires; releasing it
        restarts the full timeout, so the reset still comes after the video."""
        self.holds = self.holds + 1 if on else max(0, self.holds - 1)
        self.last_touch = now

    def state(self, now: float) -> tuple[str, int]:
        """('active', 0), ('warning', seconds left) or ('expired', 0)."""
        if self.holds:
            return ("active", 0)
        idle = now - self.last_touch
        if idle < self.timeout_s:
            return ("active", 0)
        left = self.timeout_s + self.countdown_s - idle
        if left > 0:
            return ("warning", int(left + 0.999))
        return ("expired", 0)
