"""The Kivy front end of the kiosk: one screen class and one .kv file per screen."""

import os

# Kivy must not read the kiosk's own command line, and must not keep log
# files of its own: the kiosk logs to the journal.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
