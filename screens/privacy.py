"""Privacy notice: what we ask, who sees it, and how it is protected."""

from .base import KioskScreen, load_kv


class PrivacyScreen(KioskScreen):
    def back(self):
        """Back before the first question forgets the visit."""
        self.app.discard_visit()


load_kv(__file__)
