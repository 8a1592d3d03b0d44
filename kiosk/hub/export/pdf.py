"""The PDF export: one A4 page per intake for printing or attaching to the
clinic's record system, made with fpdf2.

Each page has the patient's name and date of birth, the triage tier, the
clinician summary (every code with its reason, the pack's scores under the
pack's labels, and the paraphrase notices of the instruments), the body map
with the painful areas marked, and then every answer. All of it comes from
what the kiosk wrote into the visit (its ``display`` block, see
:mod:`kiosk.hub.view`), never from a content pack: a clinic's own
questionnaire prints like the built-in one. A visit from an older kiosk,
without that block, prints its answers with the question texts of its
QuestionnaireResponse when it carries one, else by linkId. Answers that do
not fit on the page continue on the next.

Text is set in DejaVu Sans (Debian's ``fonts-dejavu-core``), found at run
time, so accents and names like "Zoë Łukasiewicz" print as written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from typing import Any, Callable, Iterator

import msgspec
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from ..view import Figure, VisitView, plain, visit_view
from .common import ExportError, Report, StoredVisit, all_answers, as_dict, as_list, counted, read_visits

FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/local/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
)
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}

TIER_COLOURS = {
    "emergency": (200, 30, 30),
    "urgent": (230, 110, 20),
    "caution": (205, 160, 0),
    "none": (60, 140, 70),
}
# The body map: the figure the kiosk sent with the visit (its display
# block), drawn MAP_HEIGHT mm high at MAP_X mm from the page's left edge.
MAP_X = 143
MAP_HEIGHT = 100
MARKED = (215, 50, 50)
UNMARKED = (232, 232, 232)
OUTLINE = (120, 120, 120)
# Control characters (other than tab and newline) cannot be printed; a
# surrogate that slipped into a stored string cannot be encoded.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# Deeper than any questionnaire nests; a stored response nested deeper is cut.
MAX_DEPTH = 12


def font_paths() -> dict[str, str]:
    """The DejaVu Sans files; raises :class:`ExportError` naming the Debian
    package when they are not installed."""
    for folder in FONT_DIRS:
        paths = {style: os.path.join(folder, name) for style, name in FONT_FILES.items()}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths
    raise ExportError("the PDF export needs the DejaVu Sans font (DejaVuSans.ttf), not found in "
                      f"{', '.join(FONT_DIRS)}: install the Debian package fonts-dejavu-core")


def check_font() -> None:
    font_paths()


def printable(value: Any) -> str:
    """Any stored value as one line of text the page can print: worded as on
    the intake page (:func:`kiosk.hub.view.plain`, cut at a length a page
    holds), control characters and lone surrogates replaced."""
    return _UNPRINTABLE.sub("\ufffd", plain(value))


def when(value: Any) -> str:
    """A stored ISO time as staff read it, e.g. "2026-11-21 09:05 UTC"."""
    try:
        at = dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
    except (TypeError, ValueError):
        return printable(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _answer_text(answer: dict) -> str:
    for key, value in answer.items():
        if key.startswith("value"):
            if key == "valueCoding":
                coding = as_dict(value)
                return printable(coding.get("display") or coding.get("code"))
            if key == "valueQuantity":
                q = as_dict(value)
                return printable(f"{printable(q.get('value'))} {printable(q.get('unit') or q.get('code'))}".strip())
            return printable(value)
    return ""


Row = tuple[int, str, "str | None", str]


def view_rows(view: VisitView) -> list[Row]:
    """(depth, label, answer, linkId) of every answer the kiosk worded: the
    question in the staff language, the answer in it too, followed by the
    patient's own wording when that differs; a heading per questionnaire
    when the visit asked more than one."""
    rows: list[Row] = []
    many = len(view.questionnaires) > 1
    for section in view.questionnaires:
        if many:
            rows.append((0, printable(section.staff_title or section.title), None, ""))
        for r in section.rows:
            label = printable(r.staff_text or r.text)
            depth = r.level + many
            if r.answer is None:
                rows.append((depth, label, None, printable(r.link_id)))
                continue
            answer = printable(r.staff_answer or r.answer)
            if r.staff_answer:
                answer += f" ({printable(r.answer)})"
            rows.append((depth, label, answer, printable(r.link_id)))
    return rows


def answer_rows(visit: StoredVisit) -> list[Row]:
    """(depth, label, answer, linkId) of every answer of a visit from an
    older kiosk (no ``display``), in questionnaire order with the question
    texts when the visit carries a QuestionnaireResponse, else by linkId;
    the answer is None for a group's heading."""
    rows: list[Row] = []

    def walk(items: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            rows.append((depth, "…", "(nested too deeply to print)", ""))
            return
        for item in as_list(items):
            item = as_dict(item)
            link_id = printable(item.get("linkId"))
            label = printable(item.get("text")) or link_id or "?"
            answers = [as_dict(a) for a in as_list(item.get("answer"))]
            if answers or not item.get("item"):
                rows.append((depth, label, ", ".join(t for t in map(_answer_text, answers) if t), link_id))
            else:
                rows.append((depth, label, None, link_id))  # a group: a heading
            for a in answers:
                walk(a.get("item"), depth + 1)
            walk(item.get("item"), depth + 1)

    response = as_dict(visit.questionnaire_response)
    if as_list(response.get("item")):
        walk(response["item"], 0)
    else:
        rows = [(0, printable(k), printable(v), "") for k, v in all_answers(visit).items()]
    return rows


class IntakePages(FPDF):
    """An fpdf2 document that lays out intakes, one :meth:`add_intake` each."""

    BOTTOM = 285

    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        for style, path in font_paths().items():
            self.add_font("DejaVu", style, path)
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(False)
        self.set_title("Intake summaries")
        self.set_creator("clinic-hub export")

    # -- small helpers ------------------------------------------------------

    def text_line(self, w: float, h: float, text: str, style: str = "", size: float = 9, **kw) -> None:
        self.set_font("DejaVu", style, size)
        self.cell(w, h, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT, **kw)

    def wrapped(self, x: float, w: float, h: float, text: str, style: str = "", size: float = 9,
                max_lines: int = 6) -> None:
        """``text`` wrapped into ``w`` mm at ``x``, at most ``max_lines``."""
        self.set_font("DejaVu", style, size)
        lines = self.multi_cell(w, h, text, dry_run=True, output="LINES") or [""]
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1].rstrip()[:-1] + "…"
        for line in lines:
            self.set_x(x)
            self.cell(w, h, line, new_x=XPos.LEFT, new_y=YPos.NEXT)

    def room_for(self, mm: float, heading: str = "") -> None:
        """A new page (with ``heading``) unless ``mm`` are left on this one."""
        if self.get_y() + mm > self.BOTTOM:
            self.add_page()
            if heading:
                self.text_line(118, 6, heading, "B", 11)

    def fit(self, text: str, w: float) -> str:
        """``text`` cut with an ellipsis to ``w`` mm."""
        if self.get_string_width(text) <= w:
            return text
        text = text[: int(w)]  # no glyph is narrower than 1 mm at these sizes
        while text and self.get_string_width(text + "…") > w:
            text = text[:-1]
        return text + "…"

    # -- one intake ---------------------------------------------------------

    def add_intake(self, visit: StoredVisit, kiosk_id: str) -> None:
        self.add_page()
        result = as_dict(visit.result)
        view = visit_view({"display": visit.display, "answers": visit.answers, "computed": visit.computed,
                           "result": visit.result, "language": visit.language})
        self.text_line(0, 8, printable(view.name) or "(no name given)", "B", 16)
        born = printable(view.birth_date) or "-"
        if view.age:
            born += f" ({view.age} years)"
        details = [f"Date of birth: {born}", f"Submitted: {when(visit.submitted_at)}",
                   f"Language: {printable(visit.language)}", f"Kiosk: {printable(kiosk_id)}"]
        self.text_line(0, 5, "    ".join(details), size=8.5)
        self.text_line(0, 4, f"Intake {printable(visit.intake_id)}", size=7)
        top = self.get_y() + 2

        # Right: the body map, drawn first so it stays on the intake's first
        # page however long the summary on the left runs.
        if view.figure is not None:
            self.body_map(MAP_X, top, view.figure)
            marked = ", ".join(printable(label) for label in view.marked)
            self.wrapped(136, 62, 4, "Painful areas: " + (marked or "none marked"), size=8, max_lines=3)
        else:
            self.set_xy(136, top)
            self.wrapped(136, 62, 4, "No body map in this visit's record.", "I", 8, max_lines=2)
        first_page, map_bottom = self.page, self.get_y()

        # Left: tier and clinician summary.
        tier = printable(result.get("tier")) or "unknown"
        colour = TIER_COLOURS.get(tier, (110, 110, 110))
        self.set_fill_color(*colour)
        self.set_text_color(255, 255, 255)
        self.set_xy(12, top)
        label = "Tier: " + ("none (no red flag)" if tier == "none" else tier.upper())
        self.set_font("DejaVu", "B", 12)
        self.cell(118, 9, "  " + self.fit(label, 114), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        if visit.status == "emergency":
            self.set_text_color(*TIER_COLOURS["emergency"])
            self.text_line(118, 6, "The intake was stopped early for an emergency answer.", "B", 9)
            self.set_text_color(0, 0, 0)
        self.ln(2)
        self.text_line(118, 6, "Clinician summary", "B", 11)
        findings = [as_dict(f) for f in as_list(visit.summary)]
        if not findings:
            self.text_line(118, 5, "No rule fired.", size=9)
        for f in findings:
            self.room_for(20, "Clinician summary (continued)")
            self.set_x(12)
            head = f"{printable(f.get('code'))}  ({printable(f.get('tier'))})"
            self.text_line(118, 5, self.fit(head, 118), "B", 9)
            self.wrapped(16, 114, 4.3, printable(f.get("reason")), size=8.5, max_lines=3)
        self.ln(1.5)
        self.room_for(30)
        self.text_line(118, 6, "Scores", "B", 11)
        if not view.scores:
            self.text_line(118, 5, "No scores in this visit.", size=9)
        for s in view.scores:
            self.room_for(10, "Scores (continued)")
            parts = ", ".join(f"{label} {value}" if label else value for label, value in s.parts)
            self.wrapped(12, 118, 4.6, f"{s.label}: {parts or 'not computed'}", size=9, max_lines=2)
        for notice in as_list(visit.notices):
            self.wrapped(12, 118, 3.8, printable(notice), "I", 7.5, max_lines=2)
        below = max(self.get_y(), map_bottom) if self.page == first_page else self.get_y()
        self.answers(answer_rows(visit) if view.generic else view_rows(view), below + 4)

    def body_map(self, x: float, y: float, figure: Figure) -> None:
        """The visit's figure at (x, y), :data:`MAP_HEIGHT` mm high, the
        marked regions filled red; leaves the cursor under it."""
        scale = MAP_HEIGHT / 100  # the figure's units (its width is already scaled by its aspect)

        def box(shape_or_region) -> tuple[float, float, float, float]:
            s = shape_or_region
            get = s.get if isinstance(s, dict) else lambda k: getattr(s, k)
            return x + get("x") * scale, y + get("y") * scale, get("w") * scale, get("h") * scale

        self.set_font("DejaVu", "B", 9)
        self.set_xy(x - 9, y)
        self.cell(figure.width * scale + 18, 5, self.fit(f"Where it hurts ({figure.view} view)", 70), align="C")
        y += 6
        self.set_draw_color(*OUTLINE)
        self.set_line_width(0.3)
        self.set_fill_color(*UNMARKED)
        for shape in figure.shapes:
            bx, by, bw, bh = box(shape)
            if shape["shape"] == "ellipse":
                self.ellipse(bx, by, bw, bh, style="DF")
            elif shape["shape"] == "rect":
                self.rect(bx, by, bw, bh, style="DF", round_corners=shape["r"] > 0,
                          corner_radius=min(shape["r"] * scale, bw / 2, bh / 2))
        for region in figure.regions:
            self.set_fill_color(*(MARKED if region.marked else UNMARKED))
            self.rect(*box(region), style="DF")
        for shape in figure.shapes:
            if shape["shape"] == "line":
                bx, by, bw, bh = box(shape)
                self.line(bx, by, bx + bw, by + bh)
        self.set_xy(x - 9, y + MAP_HEIGHT + 2)

    def answers(self, rows: list[Row], top: float) -> None:
        """Every answer in two columns, continuing on new pages."""
        self.set_xy(12, top)
        self.text_line(0, 6, "Answers", "B", 11)
        col_w, label_w, h = 91, 52, 3.7
        columns = (12, 107)
        col, y0 = 0, self.get_y()
        y = y0
        for depth, label, value, link_id in rows:
            self.set_font("DejaVu", "", 7.5)
            lines = [] if value is None else self.multi_cell(
                col_w - label_w, h, value or "-", dry_run=True, output="LINES")[:4]
            need = h * max(1, len(lines))
            if y + need > self.BOTTOM:
                col += 1
                if col == len(columns):
                    self.add_page()
                    self.set_xy(12, 12)
                    self.text_line(0, 6, "Answers (continued)", "B", 11)
                    col, y0 = 0, self.get_y()
                y = y0
            x = columns[col]
            indent = min(depth, 4) * 3
            self.set_xy(x + indent, y)
            self.set_font("DejaVu", "B" if value is None else "", 7.5)
            shown = self.fit(label, label_w - indent - 1)
            if shown != label and link_id and link_id != label:
                # A question cut short is named by its linkId, the code the
                # clinician summary uses, so it stays unambiguous.
                shown = self.fit(f"{link_id}: {label}", label_w - indent - 1)
            self.cell(label_w - indent, h, shown)
            self.set_font("DejaVu", "", 7.5)
            for line in lines:
                self.set_xy(x + label_w, y)
                self.cell(col_w - label_w, h, line)
                y += h
            if not lines:
                y += h


def stream(records, since: str | None, before: str | None, report: Report,
           progress: Callable[[int], None] | None) -> Iterator[bytes]:
    doc = IntakePages()
    decoder = msgspec.json.Decoder(StoredVisit)
    for record_id, kiosk_id, visit in counted(read_visits(records, since, before, decoder, report), report, progress):
        try:
            doc.add_intake(visit, kiosk_id)
        except Exception as exc:  # noqa: BLE001 - one odd record must not sink the printout
            report.note(f"a page could not be laid out ({type(exc).__name__}) and is incomplete")
    if report.exported == 0:
        doc.add_page()
        doc.text_line(0, 10, "No intakes in this date range.", "B", 14)
    doc.set_creation_date(dt.datetime.now(dt.timezone.utc))
    glyphs = _MissingGlyphs(report)
    logger = logging.getLogger("fpdf.output")
    logger.addFilter(glyphs)
    try:
        data = bytes(doc.output())
    finally:
        logger.removeFilter(glyphs)
    yield data


class _MissingGlyphs(logging.Filter):
    """fpdf2 logs the characters a font lacks, which would put patient
    names in the hub's log; count them in the report instead."""

    def __init__(self, report: Report):
        super().__init__()
        self.report = report

    def filter(self, record: logging.LogRecord) -> bool:
        if "missing the following glyphs" in str(record.msg):
            self.report.note("some characters have no glyph in DejaVu Sans and print blank")
            return False
        return True
