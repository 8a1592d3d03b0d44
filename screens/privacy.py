"""Privacy notice: what we ask, who sees it, and how it is protected."""

from .base import KioskScreen


class PrivacyScreen(KioskScreen):
    pass
