"""Staff PIN: stored as an scrypt hash, with a lockout after repeated failures.

The PIN pad is opened by a hidden long-press in a corner of any screen. Five
wrong PINs lock the pad for five minutes, so a patient cannot guess it.

>>> h = hash_pin("2468")
>>> verify_pin("2468", h), verify_pin("1357", h)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

DEMO_PIN = "2468"
_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_pin(pin: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(candidate, digest)


@dataclass
class PinGuard:
    """Checks PINs and locks out after ``max_failures`` wrong ones (pure:
    the caller passes the time).

    An empty or blank ``stored_hash`` is no PIN at all: nothing opens the
    pad. It never stands for the demo PIN, which the README publishes;
    ``make run`` writes a real hash of it into its own configuration.

    >>> PinGuard.from_config("  ").check(DEMO_PIN, now=0.0)
    False
    """

    stored_hash: str
    max_failures: int = 5
    lockout_s: float = 300.0
    failures: int = 0
    locked_until: float = 0.0

    @classmethod
    def from_config(cls, pin_hash: str) -> "PinGuard":
        return cls((pin_hash or "").strip())

    @property
    def configured(self) -> bool:
        """Whether a PIN is set at all (the staff pad says so when not)."""
        return bool(self.stored_hash)

    def locked(self, now: float) -> bool:
        return now < self.locked_until

    def check(self, pin: str, now: float) -> bool:
        if self.locked(now) or not self.stored_hash:
            return False
        if verify_pin(pin, self.stored_hash):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= self.max_failures:
            self.failures = 0
            self.locked_until = now + self.lockout_s
        return False
