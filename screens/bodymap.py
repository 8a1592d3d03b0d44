"""The body map: the pack's figure (``body_map`` in pack.json, the one the
hub draws too), where the patient taps every region that hurts. Each region
can also be chosen from the list of named buttons beside the figure, for
anyone who finds the drawing hard.

The default pack's figure is seen from behind: the patient's left side is on
the left of the picture.
"""

from __future__ import annotations


from kivy.app import App
from kivy.graphics import Color, Ellipse, Line, RoundedRectangle
from kivy.properties import ListProperty
from kivy.uix.widget import Widget

from .answer_base import WIDGETS, AnswerWidget
from .base import load_kv
from .widgets import PALETTE, KButton


SKIN = (0.80, 0.74, 0.68, 1)
OUTLINE = (0.35, 0.30, 0.27, 1)


class BodyFigure(Widget):
    """Draws the pack's figure (``Pack.body_map``: outline shapes and
    regions in a 100 x 100 box, y downwards) and the selected regions; taps
    toggle a region. With no figure it draws nothing and the named buttons
    do the work."""

    selected = ListProperty([])

    def __init__(self, on_toggle, spec: dict | None, **kw):
        super().__init__(**kw)
        self.on_toggle = on_toggle
        self.spec = spec or {"outline": [], "regions": []}
        self.bind(pos=self.redraw, size=self.redraw, selected=self.redraw)

    def box(self):
        h = self.height
        w = min(self.width, h * self.spec.get("aspect", 0.55))
        return self.center_x - w / 2, self.y, w, h

    def rect(self, box):
        """A pack box (x, y, w, h in a 100 x 100 box, y downwards) in window
        coordinates (y upwards)."""
        bx, by, bw, bh = self.box()
        x, y, w, h = box
        return bx + x / 100 * bw, by + (1 - (y + h) / 100) * bh, w / 100 * bw, h / 100 * bh

    def region_rect(self, code):
        region = next(r for r in self.spec["regions"] if r["code"] == code)
        return self.rect(region["box"])

    def redraw(self, *_):
        bw = self.box()[2]
        self.canvas.clear()
        shapes = self.spec["outline"]
        with self.canvas:
            Color(*SKIN)
            for s in shapes:
                x, y, w, h = self.rect(s["box"])
                if s["shape"] == "ellipse":
                    Ellipse(pos=(x, y), size=(w, h))
                elif s["shape"] == "rect":
                    RoundedRectangle(pos=(x, y), size=(w, h), radius=[bw * s.get("radius", 0) / 100])
            for region in self.spec["regions"]:
                x, y, w, h = self.rect(region["box"])
                if region["code"] in self.selected:
                    Color(*PALETTE["selected"][:3], 0.85)
                    RoundedRectangle(pos=(x, y), size=(w, h), radius=[bw * 0.03])
                Color(*OUTLINE)
                Line(rounded_rectangle=(x, y, w, h, bw * 0.03), width=1.2)
            Color(*OUTLINE)
            for s in shapes:
                if s["shape"] == "line":  # from the box's top left to its bottom right
                    x, y, w, h = self.rect(s["box"])
                    Line(points=[x, y + h, x + w, y], width=1.5)

    def on_touch_down(self, touch):
        if not self.collide_point(*touch.pos):
            return False
        for region in self.spec["regions"]:
            x, y, w, h = self.rect(region["box"])
            if x <= touch.x <= x + w and y <= touch.y <= y + h:
                self.on_toggle(region["code"])
                return True
        return False


class BodyMap(AnswerWidget):
    """Multiple choice over the regions of the pack's body map (the item
    playing the ``body_map`` role, or any item with the bodymap widget)."""

    def setup(self):
        app = App.get_running_app()
        self.value = list(self.value or [])
        pack = app.visit.pack if app.visit is not None else app.session.pack
        self.figure = BodyFigure(self.toggle, pack.body_map)
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
