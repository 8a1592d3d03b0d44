"""Answer widgets, one per kind of question, all with very large targets.

Each widget gets the item and the current answer, and calls ``commit(value)``
when the patient has answered. Yes/no, single choice and the 0-10 scale
commit on the tap; the keyboard, the number pads and multiple choice wait
for "Next". Names are typed on an on-screen keyboard and dates and phone
numbers on a big number pad: a kiosk has no physical keyboard.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel.dates import format_date
from kivy.app import App
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

Builder.load_file(str(Path(__file__).with_suffix(".kv")))

LETTERS = ["qwertyuiop", "asdfghjklñ", "zxcvbnm", "áéíóúü-'"]


class AnswerWidget(BoxLayout):
    """Base: ``item`` is a kiosk.pack.Item, ``value`` the answer so far."""

    item = ObjectProperty(None)
    value = ObjectProperty(None, allownone=True)
    commit = ObjectProperty(None)  # callable(value)
    ready = BooleanProperty(False)  # whether "Next" may be pressed
    immediate = False

    def __init__(self, item, value, commit, **kw):
        super().__init__(**kw)
        self.item = item
        self.commit = commit
        self.value = value
        self.setup()
        self.ready = self.is_ready()

    def setup(self):
        pass

    def is_ready(self) -> bool:
        return self.value is not None

    def on_value(self, *_):
        self.ready = self.is_ready()

    def t(self, msgid):
        return App.get_running_app().t(msgid)


class YesNo(AnswerWidget):
    immediate = True


class Scale(AnswerWidget):
    immediate = True

    def setup(self):
        lo = int(self.item.min_value if self.item.min_value is not None else 0)
        hi = int(self.item.max_value if self.item.max_value is not None else 10)
        self.ids.row.clear_widgets()
        from .widgets import KButton

        for n in range(lo, hi + 1):
            b = KButton(text=str(n), role="choice", answer_code=n, selected=(self.value == n))
            b.bind(on_release=lambda btn: self.commit(btn.answer_code))
            self.ids.row.add_widget(b)
        self.ids.low.text = self.t("No pain") if self.item.link_id in ("pain-now", "peg-pain") else self.t("Not at all")
        self.ids.high.text = self.t("Worst pain") if self.item.link_id in ("pain-now", "peg-pain") else self.t("Completely")


class Choice(AnswerWidget):
    """Single choice (commits on tap) or multiple choice (toggles, then Next)."""

    def setup(self):
        from .widgets import KButton

        app = App.get_running_app()
        self.immediate = not self.item.repeats
        box = self.ids.options
        box.clear_widgets()
        chosen = self.value if isinstance(self.value, list) else [self.value]
        for opt in self.item.options:
            b = KButton(text=app.item_text(opt.display), role="choice", answer_code=opt.code,
                        selected=opt.code in chosen)
            b.bind(on_release=self._tap)
            box.add_widget(b)

    def _tap(self, btn):
        if not self.item.repeats:
            self.commit(btn.answer_code)
            return
        btn.selected = not btn.selected
        self.value = [b.answer_code for b in reversed(self.ids.options.children) if b.selected]

    def is_ready(self):
        return True if self.item.repeats else self.value is not None


class Keyboard(AnswerWidget):
    """A big on-screen keyboard for names. The first letter of each word is
    a capital; the shift key swaps the case of the next letter."""

    text = StringProperty("")
    shift = BooleanProperty(False)

    def setup(self):
        from .widgets import KButton

        self.text = self.value or ""
        grid = self.ids.keyrows
        grid.clear_widgets()
        self.letter_keys = []
        for row in LETTERS:
            line = BoxLayout(spacing=4)
            for ch in row:
                b = KButton(text=ch, key=ch)
                b.bind(on_release=lambda btn: self.press(btn.key))
                line.add_widget(b)
                self.letter_keys.append(b)
            grid.add_widget(line)
        line = BoxLayout(spacing=4)
        for key, label, ratio in (("shift", self.t("Capital"), 1.5), ("space", self.t("Space"), 4), ("back", self.t("Delete"), 1.5)):
            b = KButton(text=label, key=key, size_hint_x=ratio)
            b.bind(on_release=lambda btn: self.press(btn.key))
            line.add_widget(b)
        grid.add_widget(line)
        self.show_case()

    def show_case(self):
        """Keys show the case the next letter will have."""
        upper = self.at_word_start() != self.shift
        for b in self.letter_keys:
            b.text = b.key.upper() if upper else b.key

    def at_word_start(self) -> bool:
        return not self.text or self.text[-1] in " -'"

    def press(self, key: str):
        if key == "shift":
            self.shift = not self.shift
            self.show_case()
            return
        if key == "back":
            self.text = self.text[:-1]
        elif key == "space":
            if self.text and not self.text.endswith(" "):
                self.text += " "
        else:
            upper = self.at_word_start() != self.shift
            self.text += key.upper() if upper else key
            self.shift = False
        self.value = self.text.strip() or None
        self.show_case()

    def needs_shift(self, ch: str) -> bool:
        """For the replay driver: whether typing ``ch`` next needs shift."""
        return ch.isalpha() and (ch.isupper() != self.at_word_start())


class NumberPad(AnswerWidget):
    digits = StringProperty("")
    display_text = StringProperty("")
    extra_keys = ListProperty([])

    def initial_digits(self) -> str:
        return str(self.value or "")

    def setup(self):
        from .widgets import KButton

        self.digits = self.initial_digits()
        grid = self.ids.pad
        grid.clear_widgets()
        for key in ["1", "2", "3", "4", "5", "6", "7", "8", "9", *(self.extra_keys[:1] or [""]), "0", "back"]:
            if not key:
                grid.add_widget(BoxLayout())
                continue
            b = KButton(text=self.t("Delete") if key == "back" else key, key=key)
            b.bind(on_release=lambda btn: self.press(btn.key))
            grid.add_widget(b)
        self.value = self.parse()

    def press(self, key: str):
        if key == "back":
            self.digits = self.digits[:-1]
        elif len(self.digits) < self.max_len:
            self.digits += key
        self.value = self.parse()

    max_len = 20

    def parse(self):
        self.display_text = self.digits
        return self.digits or None


class DatePad(NumberPad):
    """Date of birth: day, month and year typed in that order (8 digits);
    the date is shown back in words so a mix-up is easy to spot."""

    max_len = 8
    hint = StringProperty("")

    def initial_digits(self) -> str:
        if not self.value:
            return ""
        d = dt.date.fromisoformat(self.value)
        return f"{d.day:02d}{d.month:02d}{d.year:04d}"

    def parse(self):
        d = self.digits.ljust(8, "_")
        self.display_text = f"{d[0:2]} / {d[2:4]} / {d[4:8]}"
        if len(self.digits) < 8:
            self.hint = self.t("Type the day, the month and the year, for example 02 04 1961")
            return None
        try:
            date = dt.date(int(self.digits[4:8]), int(self.digits[2:4]), int(self.digits[0:2]))
        except ValueError:
            self.hint = self.t("That date does not exist. Please check it.")
            return None
        today = dt.date.today()
        if date > today or today.year - date.year > 120:
            self.hint = self.t("Please check the year.")
            return None
        app = App.get_running_app()
        self.hint = format_date(date, format="long", locale=app.language)
        return date.isoformat()


class PhonePad(NumberPad):
    max_len = 16
    extra_keys = ListProperty(["+"])


#: The answer widget of each kind of item (``item.widget``).
def _widget_classes():
    from .bodymap import BodyMap

    return {
        "yesno": YesNo,
        "scale": Scale,
        "choice": Choice,
        "multichoice": Choice,
        "bodymap": BodyMap,
        "keyboard": Keyboard,
        "date": DatePad,
        "phone": PhonePad,
        "number": PhonePad,
    }


def widget_for(item, value, commit) -> AnswerWidget:
    """The answer widget for ``item`` showing ``value``, calling
    ``commit(value)`` when the patient has answered. The question screen
    shows whatever this returns and leaves it in place when it is the same
    instance as before."""
    return _widget_classes()[item.widget](item, value, commit)
