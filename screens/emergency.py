"""The calm staff screen shown the moment an emergency answer is given.

It asks the patient to speak to staff now, says staff have been told, and
advises emergency care today without driving themselves. It names no
condition. It stays until staff dismiss it with their PIN."""

from .base import KioskScreen, load_kv


class EmergencyScreen(KioskScreen):
    pass


load_kv(__file__)
