"""What staff read of a stored visit, from its payload alone.

The kiosk words every visit for the hub (the payload's ``display`` block,
see :mod:`kiosk.display`): the patient's name and age, the body map figure
and its marks, the scores with the pack's labels, and every answer in the
visit's language and in the clinic's staff language. The hub never loads a
content pack and knows no linkId: a visit asked with a clinic's own
questionnaire shows the same way as one of the built-in pack.

Visits stored before the kiosk sent ``display`` get a generic view: every
stored answer by linkId with its value, the scores by id, no figure::

    >>> view = visit_view({"answers": {"pain-now": 6}, "result": {"scores": {"peg": 5.3}}})
    >>> view.questionnaires[0].rows[0].text, view.questionnaires[0].rows[0].answer
    ('pain-now', '6')
    >>> view.scores[0].label, view.scores[0].value
    ('peg', '5.3')

Everything here tolerates a payload of the wrong shape: a value that is not
what it should be is left out, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 2000


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def plain(value: Any, depth: int = 0) -> str:
    """A stored value as one line of text (lists joined, objects as
    ``key: value``, booleans as yes/no), cut at :data:`MAX_TEXT`; the
    intake page and the PDF (:func:`kiosk.hub.export.pdf.printable`) both
    word values with it.

    >>> plain(4.0), plain(1234567.8), plain([True, {"value": 3, "unit": "wk"}])
    ('4', '1234567.8', 'yes, 3 wk')
    """
    if depth > 3:
        return "…"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    elif isinstance(value, float):
        # 4.0 as "4"; any other number in full (never cut to six digits)
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, list):
        text = ", ".join(plain(v, depth + 1) for v in value)
    elif isinstance(value, dict):
        if "display" in value or "code" in value:
            text = plain(value.get("display") or value.get("code"), depth + 1)
        elif "value" in value:
            text = f"{plain(value.get('value'), depth + 1)} {plain(value.get('unit'), depth + 1)}".strip()
        else:
            text = ", ".join(f"{plain(k)}: {plain(v, depth + 1)}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


@dataclass
class Row:
    """One answer (or a group's heading, ``answer`` None): the question and
    answer in the visit's language, and in the staff language when it
    differs (``""`` when it does not)."""

    link_id: str
    level: int
    text: str
    answer: str | None
    staff_text: str = ""
    staff_answer: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row]
    staff_title: str = ""


@dataclass
class ScoreLine:
    label: str
    value: str  # "" when it could not be computed
    fields: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    notice: bool = False  # the pack's wording of it has a notice (paraphrase, licence)

    @property
    def computed(self) -> bool:
        return self.value != "" or any(v != "" for _, v in self.fields)

    @property
    def parts(self) -> list[tuple[str, str]]:
        """(label, value) to show: the value (label ``""``), then each field
        that has one."""
        head = [("", self.value)] if self.value != "" else []
        return head + [(label, value) for label, value in self.fields if value != ""]


@dataclass
class Region:
    code: str
    label: str
    x: float
    y: float
    w: float
    h: float
    marked: bool


@dataclass
class Figure:
    """The body map in SVG user units: ``width`` x 100, y downwards."""

    view: str
    width: float
    shapes: list[dict]  # {"shape": ellipse|rect|line, "x", "y", "w", "h", "r"}
    regions: list[Region]

    @property
    def marked(self) -> list[Region]:
        return [r for r in self.regions if r.marked]


@dataclass
class VisitView:
    language: str
    staff_language: str
    name: str
    birth_date: str
    age: str
    figure: Figure | None
    marked: list[str]  # labels (staff language) of the marked regions
    scores: list[ScoreLine]
    questionnaires: list[Section]
    generic: bool  # an old visit without ``display``: by linkId only


def _pick(texts: Any, lang: str, default: str = "") -> str:
    texts = _d(texts)
    value = texts.get(lang)
    if not isinstance(value, str) or not value:
        value = next((v for v in texts.values() if isinstance(v, str) and v), default)
    return plain(value)


def _number(value: Any) -> str:
    return "" if value is None or value == "" else plain(value)


def _box(value: Any) -> tuple[float, float, float, float] | None:
    box = _l(value)
    if len(box) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return tuple(float(v) for v in box)
    return None


def _figure(spec: dict, staff: str) -> Figure | None:
    aspect = spec.get("aspect", 0.55)
    aspect = float(aspect) if isinstance(aspect, (int, float)) and 0.1 < aspect <= 2 else 0.55
    marked = {m for m in _l(spec.get("marked")) if isinstance(m, str)}
    shapes = []
    for s in _l(spec.get("outline")):
        s = _d(s)
        box = _box(s.get("box"))
        if box is None or s.get("shape") not in ("ellipse", "rect", "line"):
            continue
        x, y, w, h = box
        r = s.get("radius", 0)
        shapes.append({"shape": s["shape"], "x": x * aspect, "y": y, "w": w * aspect, "h": h,
                       "r": float(r) * aspect if isinstance(r, (int, float)) else 0})
    regions = []
    for r in _l(spec.get("regions")):
        r = _d(r)
        box = _box(r.get("box"))
        code = r.get("code")
        if box is None or not isinstance(code, str):
            continue
        x, y, w, h = box
        regions.append(Region(code, _pick(r.get("label"), staff, code), x * aspect, y, w * aspect, h,
                              code in marked))
    if not regions:
        return None
    return Figure(plain(spec.get("view") or "back"), 100 * aspect, shapes, regions)


def _rows(items: Any, lang: str, staff: str) -> list[Row]:
    rows = []
    for item in _l(items):
        item = _d(item)
        link_id = plain(item.get("linkId"))
        level = item.get("level") if isinstance(item.get("level"), int) else 0
        text = _pick(item.get("text"), lang, link_id)
        answer = item.get("answer")
        said = None if answer is None else _pick(answer, lang)
        row = Row(link_id, max(0, min(level, 8)), text, said)
        if staff != lang:
            staff_text = _pick(item.get("text"), staff, text)
            row.staff_text = "" if staff_text == text else staff_text
            if said is not None:
                staff_said = _pick(answer, staff, said)
                row.staff_answer = "" if staff_said == said else staff_said
        rows.append(row)
    return rows


def _generic_rows(payload: dict) -> list[Row]:
    answers = {**_d(payload.get("computed")), **_d(payload.get("answers"))}
    return [Row(plain(k), 0, plain(k), plain(v)) for k, v in sorted(answers.items(), key=lambda kv: str(kv[0]))]


def _generic_scores(payload: dict) -> list[ScoreLine]:
    out = []
    for sid, value in _d(_d(payload.get("result")).get("scores")).items():
        if isinstance(value, dict):
            out.append(ScoreLine(plain(sid), _number(value.get("total")),
                                 [(plain(k), _number(v)) for k, v in value.items() if k != "total"]))
        else:
            out.append(ScoreLine(plain(sid), _number(value)))
    return out


def visit_view(payload: Any) -> VisitView:
    """The view of one stored visit payload (see the module docstring)."""
    payload = _d(payload)
    display = _d(payload.get("display"))
    langs = [x for x in _l(display.get("languages")) if isinstance(x, str)]
    lang = langs[0] if langs else plain(payload.get("language")) or "en"
    staff = langs[1] if len(langs) > 1 else lang
    if not display:
        return VisitView(lang, staff, "", "", "", None, [], _generic_scores(payload),
                         [Section("Answers", _generic_rows(payload))], generic=True)
    patient = _d(display.get("patient"))
    name = plain(patient.get("name"))[:200] if isinstance(patient.get("name"), str) else ""
    birth = plain(patient.get("birth_date")) if isinstance(patient.get("birth_date"), str) else ""
    age = patient.get("age")
    figure = _figure(_d(display.get("body_map")), staff) if display.get("body_map") else None
    scores = []
    for s in _l(display.get("scores")):
        s = _d(s)
        sid = plain(s.get("id"))
        fields = [(_pick(_d(f).get("label"), staff, plain(_d(f).get("id"))), _number(_d(f).get("value")))
                  for f in _l(s.get("fields"))]
        scores.append(ScoreLine(_pick(s.get("label"), staff, sid), _number(s.get("value")), fields,
                                notice=bool(s.get("notice"))))
    sections = []
    for q in _l(display.get("questionnaires")):
        q = _d(q)
        title = _pick(q.get("title"), lang, plain(q.get("url")) or "Questionnaire")
        staff_title = _pick(q.get("title"), staff, title)
        sections.append(Section(title, _rows(q.get("items"), lang, staff),
                                "" if staff_title == title else staff_title))
    return VisitView(lang, staff, name, birth, str(age) if isinstance(age, int) else "", figure,
                     [r.label for r in figure.marked] if figure else [], scores, sections, generic=False)


def patient_name(payload: Any) -> str:
    """The patient's name as the kiosk wrote it (``""`` when the visit has
    none, or predates ``display``)."""
    patient = _d(_d(_d(payload).get("display")).get("patient"))
    name = patient.get("name")
    return plain(name)[:80] if isinstance(name, str) else ""
