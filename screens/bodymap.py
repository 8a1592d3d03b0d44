"""The body map: a drawn figure seen from behind, where the patient taps
every region that hurts. Each region can also be chosen from the list of
named buttons beside the figure, for anyone who finds the drawing hard.

Seen from behind, the patient's left side is on the left of the picture.
"""

from __future__ import annotations


from kivy.app import App
from kivy.graphics import Color, Ellipse, Line, RoundedRectangle
from kivy.properties import ListProperty
from kivy.uix.widget import Widget

from .answer_base import WIDGETS, AnswerWidget
from .base import load_kv
from .widgets import PALETTE, KButton


#: region code -> (x, y, w, h) as fractions of the figure's box.
REGIONS = {
    "neck": (0.41, 0.79, 0.18, 0.06),
    "upper-back": (0.29, 0.60, 0.42, 0.19),
    "lower-back": (0.31, 0.47, 0.38, 0.13),
    "buttocks": (0.29, 0.36, 0.42, 0.11),
    "left-leg": (0.29, 0.02, 0.20, 0.34),
    "right-leg": (0.51, 0.02, 0.20, 0.34),
}
SKIN = (0.80, 0.74, 0.68, 1)
OUTLINE = (0.35, 0.30, 0.27, 1)


class BodyFigure(Widget):
    """Draws the figure and the selected regions; taps toggle a region."""

    selected = ListProperty([])

    def __init__(self, on_toggle, **kw):
        super().__init__(**kw)
        self.on_toggle = on_toggle
        self.bind(pos=self.redraw, size=self.redraw, selected=self.redraw)

    def box(self):
        h = self.height
        w = min(self.width, h * 0.55)
        return self.center_x - w / 2, self.y, w, h

    def region_rect(self, code):
        bx, by, bw, bh = self.box()
        x, y, w, h = REGIONS[code]
        return bx + x * bw, by + y * bh, w * bw, h * bh

    def redraw(self, *_):
        bx, by, bw, bh = self.box()
        self.canvas.clear()
        with self.canvas:
            Color(*SKIN)
            Ellipse(pos=(bx + 0.40 * bw, by + 0.85 * bh), size=(0.20 * bw, 0.14 * bh))  # head
            RoundedRectangle(pos=(bx + 0.29 * bw, by + 0.36 * bh), size=(0.42 * bw, 0.50 * bh), radius=[bw * 0.06])
            RoundedRectangle(pos=(bx + 0.15 * bw, by + 0.42 * bh), size=(0.12 * bw, 0.40 * bh), radius=[bw * 0.05])
            RoundedRectangle(pos=(bx + 0.73 * bw, by + 0.42 * bh), size=(0.12 * bw, 0.40 * bh), radius=[bw * 0.05])
            for code in ("left-leg", "right-leg", "neck"):
                RoundedRectangle(pos=self.region_rect(code)[:2], size=self.region_rect(code)[2:], radius=[bw * 0.04])
            for code in REGIONS:
                x, y, w, h = self.region_rect(code)
                if code in self.selected:
                    Color(*PALETTE["selected"][:3], 0.85)
                    RoundedRectangle(pos=(x, y), size=(w, h), radius=[bw * 0.03])
                Color(*OUTLINE)
                Line(rounded_rectangle=(x, y, w, h, bw * 0.03), width=1.2)
            Color(*OUTLINE)
            Line(points=[bx + 0.5 * bw, by + 0.47 * bh, bx + 0.5 * bw, by + 0.79 * bh], width=1.5)  # spine

    def on_touch_down(self, touch):
        if not self.collide_point(*touch.pos):
            return False
        for code in ("neck", "upper-back", "lower-back", "buttocks", "left-leg", "right-leg"):
            x, y, w, h = self.region_rect(code)
            if x <= touch.x <= x + w and y <= touch.y <= y + h:
                self.on_toggle(code)
                return True
        return False


class BodyMap(AnswerWidget):
    """Multiple choice over the regions of ``pain-areas``."""

    def setup(self):
        app = App.get_running_app()
        self.value = list(self.value or [])
        self.figure = BodyFigure(self.toggle)
        self.ids.figure_holder.clear_widgets()
        self.ids.figure_holder.add_widget(self.figure)
        self.ids.names.clear_widgets()
        self.buttons = {}
        for opt in self.item.options:
            b = KButton(text=app.item_text(opt.display), role="choice", answer_code=opt.code)
            b.bind(on_release=lambda btn: self.toggle(btn.answer_code))
            self.ids.names.add_widget(b)
            self.buttons[opt.code] = b
        self.refresh()

    def toggle(self, code):
        chosen = list(self.value or [])
        if code in chosen:
            chosen.remove(code)
        else:
            chosen.append(code)
        order = [o.code for o in self.item.options]
        self.value = sorted(chosen, key=order.index)
        self.refresh()

    def refresh(self):
        self.figure.selected = list(self.value)
        for code, b in self.buttons.items():
            b.selected = code in self.value

    def is_ready(self):
        return True


WIDGETS["bodymap"] = BodyMap
load_kv(__file__)
