"""The "out of order, staff have been told" screen.

When the configuration, the content pack or the media cannot be used, or
the data folder cannot be written, ``clinic-kiosk run`` shows this instead of
the intake (and the kiosk app itself switches to it when its database will
not open, just after start) and keeps running: it logs the problem once as a
``path:location: message`` line (in the journal, for staff), tells systemd
it is ready and keeps feeding the watchdog, so systemd does not restart it
every few seconds. A patient sees only a calm note in the clinic's
languages; the problem itself is never on screen.
"""

from __future__ import annotations

import logging

from kivy.app import App
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout

from . import widgets  # noqa: F401  (KLabel, used in outoforder.kv)
from .base import load_kv
from .i18n import Translator
from .lifecycle import ServiceApp
from .window import configure_kivy

log = logging.getLogger(__name__)

class OutOfOrderView(FloatLayout):
    message = StringProperty("")


class OutOfOrderApp(ServiceApp, App):
    """A tiny app that shows :class:`OutOfOrderView` and nothing else."""

    language = StringProperty("en")
    font_scale = NumericProperty(1.0)

    def __init__(self, problems: list[str], languages=("en", "es"), **kwargs):
        super().__init__(**kwargs)
        self.problems = list(problems)
        self.languages = list(languages) or ["en"]
        self.translator = Translator()

    def t(self, msgid: str, *_depends) -> str:
        return self.translator.get(msgid, self.language)

    def fs(self, size: float, *_depends) -> float:
        from kivy.metrics import sp

        return sp(size) * self.font_scale

    def message_in(self, lang: str) -> str:
        """What the screen says in one of the clinic's languages."""
        return message_in(self.translator, lang)

    def build(self):
        self.title = "Clinic kiosk"
        return view_for(self.translator, self.languages)

    def on_start(self):
        from kivy.core.window import Window

        Window.bind(on_request_close=lambda *a, **k: True)
        Window.bind(on_keyboard=lambda _w, key, *a: key == 27)  # Escape must not quit
        for line in self.problems:
            log.error("out of order: %s", line)
        self.start_service_notify()
        self.after_first_frame(lambda: self.notifier.status("out of order: " + self.problems[0]) if self.problems else None)

    def on_stop(self):
        self.stop_service_notify()


def message_in(translator: Translator, lang: str) -> str:
    """What the out-of-order screen says in one language."""
    def t(msgid):
        return translator.get(msgid, lang)

    return t("Sorry, this kiosk is out of order.") + "\n" + t("Staff have been told. Please ask at the front desk.")


def view_for(translator: Translator, languages) -> OutOfOrderView:
    """The out-of-order screen in each of ``languages``."""
    view = OutOfOrderView()
    view.message = "\n\n".join(message_in(translator, lang) for lang in dict.fromkeys(languages))
    return view


def run_out_of_order(problems: list[str], languages=("en", "es"), windowed: bool = False, display=None) -> None:
    """``clinic-kiosk run`` with a problem it cannot start past."""
    configure_kivy(not windowed, display)
    OutOfOrderApp(problems, languages).run()


load_kv(__file__)
