"""Answer widgets, one per kind of question, all with very large targets.

Each widget shows one item and its current answer, and calls
``commit(value)`` when the patient has answered. Yes/no, single choice and
the 0-10 scale commit on the tap; keyboards, number pads and multiple choice
wait for "Next". Names and free text are typed on an on-screen keyboard, and
numbers, dates and times on a big number pad: a kiosk has no physical
keyboard.

:func:`widget_for` gives the widget for an item. Widgets are built once per
app and updated for each question (the keys of a pad stay, the buttons of a
choice list are reused), so moving to the next question does not rebuild
the screen::

    widget = widget_for(item, visit.answers.get(item.link_id), commit)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel.dates import format_date, format_datetime
from kivy.app import App
from kivy.lang import Builder
from kivy.metrics import mm
from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from .answer_base import WIDGETS, AnswerWidget, forget_widgets, widget_for  # noqa: F401  (the question screen's API)

Builder.load_file(str(Path(__file__).with_suffix(".kv")))

LETTERS = ["qwertyuiop", "asdfghjklñ", "zxcvbnm", "áéíóúü-'"]
#: Free text ("text" items) also needs digits and punctuation.
TEXT_ROWS = [*LETTERS[:3], "áéíóúü-'.,?", "1234567890"]
#: A short code (the return code printed on a visit summary): digits and
#: plain letters only, typed and shown in capitals.
CODE_ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm-"]


def _fmt(number: float) -> str:
    return f"{number:g}"


class YesNo(AnswerWidget):
    immediate = True


class Display(AnswerWidget):
    """Text to read (the question label shows it); "Next" goes on."""

    def is_ready(self):
        return True


class Scale(AnswerWidget):
    immediate = True

    def setup(self):
        lo = int(self.item.min_value if self.item.min_value is not None else 0)
        hi = int(self.item.max_value if self.item.max_value is not None else 10)
        self.sync_buttons(self.ids.row, [(str(n), n, self.value == n) for n in range(lo, hi + 1)],
                          lambda btn: self.commit(btn.answer_code))
        app = App.get_running_app()
        pack = app.visit.pack if app.visit is not None else app.session.pack
        pain = pack.plays(self.item.link_id, "pain_scale")
        self.ids.low.text = self.t("No pain") if pain else self.t("Not at all")
        self.ids.high.text = self.t("Worst pain") if pain else self.t("Completely")


def option_text(app, opt) -> str:
    """What an option's button says: its display, else its value."""
    return app.item_text(opt.display) if opt.display else str(opt.code)


def answer_text(app, item, value) -> str:
    """How an answer reads back to the patient on the review screen (never
    a score)."""
    if value is None or value == []:
        return app.t("Not answered")
    if isinstance(value, list):
        return ", ".join(answer_text(app, item, v) for v in value)
    opt = item.option(value) if item.options and not isinstance(value, dict) else None
    if opt is not None:
        return option_text(app, opt)
    if item.type == "boolean":
        return app.t("Yes") if value else app.t("No")
    if item.type == "date" and len(value) == 10:
        return format_date(dt.date.fromisoformat(value), format="long", locale=app.language)
    if item.type == "dateTime" and "T" in value:
        return format_datetime(dt.datetime.fromisoformat(value), format="medium", locale=app.language)
    if item.type == "quantity":
        number = value.get("value") if isinstance(value, dict) else value
        code = value.get("unit") if isinstance(value, dict) else (item.units[0].code if item.units else "")
        unit = next((u.display for u in item.units if u.code == code), code or "")
        return f"{_fmt(number)} {unit}".strip()
    if isinstance(value, float):
        return _fmt(value)
    return str(value)


class ChoiceBase(AnswerWidget):
    """Single choice (commits on tap) or multiple choice (toggles, then Next)."""

    def setup(self):
        app = App.get_running_app()
        self.immediate = not self.item.repeats
        chosen = self.value if isinstance(self.value, list) else [self.value]
        specs = [(option_text(app, o), o.code, o.code in chosen) for o in self.item.options]
        self.sync_buttons(self.ids.options, specs, self._tap)

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
    rows = LETTERS

    def build(self):
        from .widgets import KButton

        grid = self.ids.keyrows
        self.letter_keys = []
        for row in self.rows:
            line = BoxLayout(spacing=4)
            for ch in row:
                b = KButton(text=ch, key=ch)
                b.bind(on_release=lambda btn: self.press(btn.key))
                line.add_widget(b)
                if ch.isalpha():
                    self.letter_keys.append(b)
            grid.add_widget(line)
        line = BoxLayout(spacing=4)
        self.control_keys = {}
        for key, ratio in (("shift", 1.5), ("space", 4), ("back", 1.5)):
            b = KButton(key=key, size_hint_x=ratio)
            b.bind(on_release=lambda btn: self.press(btn.key))
            line.add_widget(b)
            self.control_keys[key] = b
        grid.add_widget(line)

    def setup(self):
        for key, label in (("shift", self.t("Capital")), ("space", self.t("Space")), ("back", self.t("Delete"))):
            self.control_keys[key].text = label
        self.text = self.value or ""
        self.shift = False
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
        full = self.item.max_length is not None and len(self.text) >= self.item.max_length
        if key == "back":
            self.text = self.text[:-1]
        elif full:
            pass
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


class TextArea(Keyboard):
    """Longer free text ("text" items): more room to read it back, and
    digits and punctuation."""

    rows = TEXT_ROWS

    def at_word_start(self) -> bool:
        # sentences, not names: a capital only at the start of a sentence
        stripped = self.text.rstrip()
        return not stripped or stripped[-1] in ".?!"


class CodeKeyboard(Keyboard):
    """Digits and capital letters for a short code ("code" items): no
    shift to think about, every letter comes out as a capital, as the code
    is printed."""

    rows = CODE_ROWS

    def build(self):
        super().build()
        for key in ("shift", "space"):  # a code has neither
            button = self.control_keys[key]
            button.parent.remove_widget(button)

    def at_word_start(self) -> bool:
        return True  # every key shows, and types, a capital

    def needs_shift(self, ch: str) -> bool:
        return False


class NumberPad(AnswerWidget):
    """A big pad for numbers; subclasses say how the digits read."""

    digits = StringProperty("")
    display_text = StringProperty("")
    hint = StringProperty("")
    extra_keys = ListProperty([])
    max_len = 20

    def initial_digits(self) -> str:
        return str(self.value or "")

    def build(self):
        from .widgets import KButton

        grid = self.ids.pad
        self.delete_key = None
        for key in ["1", "2", "3", "4", "5", "6", "7", "8", "9", *(self.extra_keys[:1] or [""]), "0", "back"]:
            if not key:
                grid.add_widget(BoxLayout())
                continue
            b = KButton(text=key, key=key)
            b.bind(on_release=lambda btn: self.press(btn.key))
            grid.add_widget(b)
            if key == "back":
                self.delete_key = b

    def setup(self):
        self.delete_key.text = self.t("Delete")
        self.hint = ""
        self.digits = self.initial_digits()
        self.value = self.parse()

    def press(self, key: str):
        if key == "back":
            self.digits = self.digits[:-1]
        elif len(self.digits) < self.max_len:
            self.digits += key
        self.value = self.parse()

    def parse(self):
        self.display_text = self.digits or (self.item.entry_format if self.item else "")
        return self.digits or None


class PhonePad(NumberPad):
    max_len = 16
    extra_keys = ListProperty(["+"])


class IntegerPad(NumberPad):
    """A whole number, within the item's minValue and maxValue."""

    max_len = 9
    extra_keys = ListProperty(["-"])

    def initial_digits(self) -> str:
        return "" if self.value is None else str(self.value)

    def number(self):
        try:
            return int(self.digits)
        except ValueError:
            return None

    def parse(self):
        self.display_text = self.digits or self.item.entry_format
        if self.digits and self.item.units and self.item.type != "quantity":  # questionnaire-unit
            self.display_text = f"{self.digits} {self.item.units[0].display}"
        self.hint = ""
        n = self.number()
        if n is None:
            return None
        return self.in_range(n)

    def in_range(self, n):
        item = self.item
        if item.min_value is not None and n < item.min_value:
            self.hint = self.t("Please enter at least {n}.").format(n=_fmt(item.min_value))
            return None
        if item.max_value is not None and n > item.max_value:
            self.hint = self.t("Please enter at most {n}.").format(n=_fmt(item.max_value))
            return None
        return n

    def press(self, key: str):
        if key == "-" and self.digits:
            return  # a minus sign only at the start
        if key == "." and "." in self.digits:
            return
        super().press(key)


class DecimalPad(IntegerPad):
    """A number with a decimal key."""

    max_len = 12
    extra_keys = ListProperty(["."])

    def initial_digits(self) -> str:
        return "" if self.value is None else _fmt(self.number_of(self.value))

    def number_of(self, value):
        return value

    def number(self):
        try:
            n = float(self.digits)
        except ValueError:
            return None
        return int(n) if n.is_integer() and "." not in self.digits else n


class QuantityPad(DecimalPad):
    """A number and its unit (from questionnaire-unit or -unitOption): one
    unit is shown after the number, several are buttons to choose from."""

    unit = StringProperty("")

    def number_of(self, value):
        return value.get("value") if isinstance(value, dict) else value

    def setup(self):
        units = self.item.units
        given = self.value.get("unit") if isinstance(self.value, dict) else None
        self.unit = given or (units[0].code if len(units) == 1 else "")
        box = self.ids.units
        self.sync_buttons(box, [(u.display, u.code, u.code == self.unit) for u in units] if len(units) > 1 else [],
                          self._choose)
        box.height, box.opacity = (mm(18), 1) if len(units) > 1 else (0, 0)
        super().setup()

    def _choose(self, btn):
        self.unit = btn.answer_code
        for b in self.ids.units.children:
            b.selected = b.answer_code == self.unit
        self.value = self.parse()

    def parse(self):
        n = super().parse()
        unit = next((u for u in self.item.units if u.code == self.unit), None)
        if unit is not None and self.digits:
            self.display_text = f"{self.digits} {unit.display}"
        if n is None:
            return None
        if len(self.item.units) > 1 and not self.unit:
            self.hint = self.t("Please choose a unit.")
            return None
        return {"value": n, "unit": self.unit} if self.unit else n


class MaskedPad(NumberPad):
    """Digits typed into a fixed pattern (a date, a time), shown as they
    fill it. Subclasses read the digits and say what to ask for."""

    mask = ""  # "#" for each digit

    def shown(self) -> str:
        digits = iter(self.digits)
        return "".join(next(digits, "_") if ch == "#" else ch for ch in self.mask)

    def parse(self):
        self.display_text = self.shown()
        if len(self.digits) < self.max_len:
            self.hint = self.incomplete_hint()
            return None
        try:
            return self.accept(self.read(self.digits))
        except ValueError:
            self.hint = self.invalid_hint()
            return None


class DatePad(MaskedPad):
    """Date of birth: day, month and year typed in that order (8 digits);
    the date is shown back in words so a mix-up is easy to spot."""

    max_len = 8
    mask = "## / ## / ####"

    def initial_digits(self) -> str:
        return dt.date.fromisoformat(self.value).strftime("%d%m%Y") if self.value else ""

    def incomplete_hint(self):
        return self.t("Type the day, the month and the year, for example 02 04 1961")

    def invalid_hint(self):
        return self.t("That date does not exist. Please check it.")

    def read(self, d):
        return dt.date(int(d[4:8]), int(d[2:4]), int(d[0:2]))

    def accept(self, date):
        today = dt.date.today()
        if date > today or today.year - date.year > 120:
            self.hint = self.t("Please check the year.")
            return None
        self.hint = format_date(date, format="long", locale=App.get_running_app().language)
        return date.isoformat()


class DateTimePad(MaskedPad):
    """A date and a time: day, month, year, hours and minutes (12 digits),
    shown back in words."""

    max_len = 12
    mask = "## / ## / ####   ##:##"

    def initial_digits(self) -> str:
        return dt.datetime.fromisoformat(self.value).strftime("%d%m%Y%H%M") if self.value else ""

    def incomplete_hint(self):
        return self.t("Type the day, the month, the year, then the time, for example 02 04 2026 14 30")

    def invalid_hint(self):
        return self.t("That date or time does not exist. Please check it.")

    def read(self, d):
        return dt.datetime(int(d[4:8]), int(d[2:4]), int(d[0:2]), int(d[8:10]), int(d[10:12]))

    def accept(self, moment):
        self.hint = format_datetime(moment, format="medium", locale=App.get_running_app().language)
        return moment.isoformat(timespec="minutes")


class TimePad(MaskedPad):
    """A time of day as hours and minutes (4 digits, 24-hour clock)."""

    max_len = 4
    mask = "##:##"

    def initial_digits(self) -> str:
        return self.value.replace(":", "")[:4] if self.value else ""

    def incomplete_hint(self):
        return self.t("Type the hours and the minutes, for example 14 30")

    def invalid_hint(self):
        return self.t("That time does not exist. Please check it.")

    def read(self, d):
        return dt.time(int(d[0:2]), int(d[2:4]))

    def accept(self, moment):
        self.hint = ""
        return moment.strftime("%H:%M")


class Choice(ChoiceBase):
    pass


class OpenChoice(ChoiceBase):
    """Choice with an "Other" button that opens a keyboard to type an
    answer that is not on the list."""

    typing = BooleanProperty(False)

    def build(self):
        self.keyboard = Keyboard()
        self.keyboard.bind(value=self._typed)

    def setup(self):
        known = [o.code for o in self.item.options]
        values = self.value if isinstance(self.value, list) else ([self.value] if self.value is not None else [])
        free = next((v for v in values if v not in known), None)
        self.typing = False
        self.keyboard.show(self.item, free, None)
        self.ids.other.text = self.t("Other (type it)")
        self.ids.other.selected = free is not None
        super().setup()
        self.immediate = False
        self._layout()

    def _layout(self):
        for w in (self.keyboard, self.ids.scroller):
            if w.parent is not None:
                w.parent.remove_widget(w)
        self.ids.holder.add_widget(self.keyboard if self.typing else self.ids.scroller)

    def open_other(self):
        self.typing = not self.typing
        self.ids.other.text = self.t("Back to the list") if self.typing else self.t("Other (type it)")
        self._layout()

    def _typed(self, *_):
        if self.keyboard.item is not self.item:
            return
        text = self.keyboard.value
        self.ids.other.selected = bool(text)
        if self.item.repeats:
            chosen = [b.answer_code for b in reversed(self.ids.options.children) if b.selected]
            self.value = chosen + ([text] if text else [])
        else:
            for b in self.ids.options.children:
                b.selected = False
            self.value = text

    def _tap(self, btn):
        if not self.item.repeats:
            btn.selected = True
            self.commit(btn.answer_code)
            return
        super()._tap(btn)
        if self.keyboard.value:
            self.value = self.value + [self.keyboard.value]

    def is_ready(self):
        return True if self.item.repeats else self.value is not None


WIDGETS.update({
    "yesno": YesNo,
    "scale": Scale,
    "choice": Choice,
    "multichoice": Choice,
    "openchoice": OpenChoice,
    "keyboard": Keyboard,
    "text": TextArea,
    "code": CodeKeyboard,
    "date": DatePad,
    "datetime": DateTimePad,
    "time": TimePad,
    "phone": PhonePad,
    "number": PhonePad,
    "integer": IntegerPad,
    "decimal": DecimalPad,
    "quantity": QuantityPad,
    "display": Display,
})


