"""The PDF export: one A4 page per intake for printing or attaching to the
clinic's record system, made with fpdf2.

Each page has the patient's name and date of birth, the triage tier, the
clinician summary (every code with its reason, the PEG and STarT Back
scores with the risk group, and the paraphrase notices of the
instruments), a body map with the painful areas marked, and then every
answer: with the question texts of the kiosk's QuestionnaireResponse when
the visit carries one, else by linkId. Answers that do not fit on the page
continue on the next.

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
# Body-map areas of shared/clinical/screening.md, as polygons in a back
# view 60 mm wide (x from the left edge, y from the top of the head). The
# patient's left is on the reader's left, as when standing behind them.
BODY_AREAS: dict[str, list[tuple[float, float]]] = {
    "neck": [(26, 17), (34, 17), (35, 23), (25, 23)],
    "upper-back": [(12, 23), (48, 23), (46, 46), (14, 46)],
    "lower-back": [(14, 46), (46, 46), (45, 62), (15, 62)],
    "buttocks": [(15, 62), (45, 62), (46, 77), (14, 77)],
    "left-leg": [(14, 77), (29.5, 77), (28, 128), (18, 128)],
    "right-leg": [(30.5, 77), (46, 77), (42, 128), (32, 128)],
}
ARMS = [
    [(12, 23), (6, 26), (2, 70), (7, 71), (13, 36)],
    [(48, 23), (54, 26), (58, 70), (53, 71), (47, 36)],
]
MARKED = (215, 50, 50)
UNMARKED = (232, 232, 232)
OUTLINE = (120, 120, 120)
# Control characters (other than tab and newline) cannot be printed; a
# surrogate that slipped into a stored string cannot be encoded.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
MAX_TEXT = 2000
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


def printable(value: Any, depth: int = 0) -> str:
    """Any stored value as one line of printable text, cut at a length a
    page can hold (and at a depth of nesting no answer has)."""
    if depth > 3:
        return "…"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    elif isinstance(value, list):
        text = ", ".join(printable(v, depth + 1) for v in value)
    elif isinstance(value, dict):
        if "display" in value or "code" in value:
            text = printable(value.get("display") or value.get("code"), depth + 1)
        elif "value" in value:
            text = f"{printable(value.get('value'), depth + 1)} {printable(value.get('unit'), depth + 1)}".strip()
        else:
            text = ", ".join(f"{printable(k)}: {printable(v, depth + 1)}" for k, v in value.items())
    else:
        text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "…"
    return _UNPRINTABLE.sub("\ufffd", text)


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


def answer_rows(visit: StoredVisit) -> list[Row]:
    """(depth, label, answer, linkId) of every answer, in questionnaire
    order with the question texts when the visit carries a
    QuestionnaireResponse, else by linkId; the answer is None for a group's
    heading."""
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
        answers = as_dict(visit.answers)
        result = as_dict(visit.result)
        name = " ".join(printable(answers.get(k)) for k in ("given-name", "family-name") if answers.get(k))
        self.text_line(0, 8, name or "(no name given)", "B", 16)
        details = [f"Date of birth: {printable(answers.get('dob')) or '-'}",
                   f"Submitted: {when(visit.submitted_at)}",
                   f"Language: {printable(visit.language)}", f"Kiosk: {printable(kiosk_id)}"]
        self.text_line(0, 5, "    ".join(details), size=8.5)
        self.text_line(0, 4, f"Intake {printable(visit.intake_id)}", size=7)
        top = self.get_y() + 2

        # Right: the body map, drawn first so it stays on the intake's first
        # page however long the summary on the left runs.
        areas = as_list(answers.get("pain-areas"))
        self.body_map(143, top, {a for a in areas if isinstance(a, str)})
        self.wrapped(136, 62, 4, "Painful areas: " + (printable(areas) or "none marked"), size=8, max_lines=3)
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
        scores = as_dict(result.get("scores"))
        startback = as_dict(scores.get("startback"))

        def score(value: Any) -> str:
            return "not computed" if value is None or value == "" else printable(value)

        self.text_line(118, 5, f"Pain now: {score(scores.get('pain-now'))} / 10", size=9)
        self.text_line(118, 5, f"PEG: {score(scores.get('peg'))} / 10", size=9)
        self.text_line(118, 5, f"STarT Back: total {score(startback.get('total'))} / 9, psychosocial "
                               f"{score(startback.get('psychosocial'))} / 5, risk group "
                               f"{score(startback.get('risk'))}", size=9)
        for notice in as_list(visit.notices):
            self.wrapped(12, 118, 3.8, printable(notice), "I", 7.5, max_lines=2)
        below = max(self.get_y(), map_bottom) if self.page == first_page else self.get_y()
        self.answers(answer_rows(visit), below + 4)

    def body_map(self, x: float, y: float, marked: set[str], scale: float = 0.8) -> None:
        """The back-view figure at (x, y), ``marked`` areas filled red;
        leaves the cursor under it."""
        def at(points):
            return [(x + px * scale, y + py * scale) for px, py in points]

        self.set_font("DejaVu", "B", 9)
        self.set_xy(x - 9, y)
        self.cell(66, 5, "Where it hurts (back view)", align="C")
        y += 6
        self.set_draw_color(*OUTLINE)
        self.set_line_width(0.3)
        self.set_fill_color(*UNMARKED)
        self.ellipse(x + 23 * scale, y, 14 * scale, 17 * scale, style="DF")
        for arm in ARMS:
            self.polygon(at(arm), style="DF")
        for area, points in BODY_AREAS.items():
            self.set_fill_color(*(MARKED if area in marked else UNMARKED))
            self.polygon(at(points), style="DF")
        self.set_font("DejaVu", "B", 8)
        for label, centre in (("L", 23), ("R", 37)):
            self.set_xy(x + centre * scale - 3, y + 129 * scale)
            self.cell(6, 4, label, align="C")
        self.set_xy(x - 9, y + 129 * scale + 6)

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
