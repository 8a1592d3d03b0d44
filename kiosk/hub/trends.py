"""Trends and outcomes of returning patients (issue 19), as pure functions:
a measure's change from the first visit of an episode, whether it reaches the
clinically important difference (MCID) the content pack declares, and the
clinic's episodes improved per month. No database, clock or page here:
:mod:`kiosk.hub.db.patients` keeps the visits' measures, :mod:`kiosk.hub.routers.patients`
draws them.

>>> Change(6.7, 3.3, {"points": 2, "percent": 30}, "lower").improved
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence


class Visit(Protocol):
    """What a trend reads of a visit (a :class:`kiosk.hub.db.patients.VisitLink`)."""

    submitted_at: str | None
    measures: list[dict]


@dataclass
class _Visit:
    submitted_at: str | None
    measures: list[dict]


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def label_text(label: dict, lang: str = "en") -> str:
    return label.get(lang) or next(iter(label.values()), "")


@dataclass(frozen=True)
class Change:
    """A measure's change from the first visit of an episode to its latest."""

    first: float
    latest: float
    mcid: dict | None
    better: str | None

    @property
    def delta(self) -> float:
        return round(self.latest - self.first, 2)

    @property
    def improvement(self) -> float | None:
        """Points in the better direction (negative: worse); None without a direction."""
        if self.better == "lower":
            return round(self.first - self.latest, 2)
        if self.better == "higher":
            return round(self.latest - self.first, 2)
        return None

    @property
    def improved(self) -> bool | None:
        """Whether the change reaches the clinically important difference.

        Every threshold the pack declares must be reached: ``points`` (an
        absolute change) and ``percent`` (of the first value). None when
        the pack declares no MCID or direction for the measure.

        >>> Change(6.0, 3.7, {"points": 2, "percent": 30}, "lower").improved
        True
        >>> Change(3.0, 1.5, {"points": 2, "percent": 30}, "lower").improved   # 50 %, but 1.5 points
        False
        >>> Change(6.0, 6.0, None, "lower").improved is None
        True
        """
        gain = self.improvement
        if gain is None or not self.mcid:
            return None
        if "points" in self.mcid and gain < self.mcid["points"] - 1e-9:
            return False
        if "percent" in self.mcid:
            if self.first == 0:
                return False
            if gain / abs(self.first) * 100 < self.mcid["percent"] - 1e-9:
                return False
        return gain > 0

    @property
    def target(self) -> float | None:
        """The value a later visit must reach to pass the MCID."""
        if not self.mcid or self.better not in ("lower", "higher"):
            return None
        need = max(self.mcid.get("points", 0.0), abs(self.first) * self.mcid.get("percent", 0.0) / 100)
        return round(self.first - need if self.better == "lower" else self.first + need, 2)


def mcid_text(mcid: dict | None, better: str | None) -> str:
    """The rule in words: ``"2 points and 30 % lower"``."""
    if not mcid or better not in ("lower", "higher"):
        return "no clinically important difference declared"
    parts = []
    if "points" in mcid:
        parts.append(f"{mcid['points']:g} points")
    if "percent" in mcid:
        parts.append(f"{mcid['percent']:g} %")
    return " and ".join(parts) + f" {better} than the first visit"


@dataclass
class Trend:
    """One measure over one episode's visits."""

    id: str
    label: str
    points: list[tuple[str, float]]  # (submitted_at, value)
    mcid: dict | None
    better: str | None

    @property
    def change(self) -> Change | None:
        if len(self.points) < 1:
            return None
        return Change(self.points[0][1], self.points[-1][1], self.mcid, self.better)


def trends(visits: Sequence[Visit], lang: str = "en") -> list[Trend]:
    """Each measure of an episode's visits, in the order they first appear;
    the MCID and direction are the latest visit's that declares them."""
    out: dict[str, Trend] = {}
    for visit in visits:
        for m in visit.measures:
            if not isinstance(m, dict) or not isinstance(m.get("id"), str) or number(m.get("value")) is None:
                continue
            t = out.get(m["id"])
            if t is None:
                t = out[m["id"]] = Trend(m["id"], label_text(m.get("label") or {}, lang) or m["id"], [], None, None)
            t.points.append((visit.submitted_at or "", float(m["value"])))
            if m.get("mcid") and m.get("better") in ("lower", "higher"):
                t.mcid, t.better = m["mcid"], m["better"]
                t.label = label_text(m.get("label") or {}, lang) or t.label
    return list(out.values())


@dataclass
class MonthRow:
    month: str
    followed_up: int = 0
    improved: dict[str, int] = field(default_factory=dict)  # measure id -> episodes improved
    assessed: dict[str, int] = field(default_factory=dict)  # measure id -> episodes with that measure twice


def outcomes(rows: Iterator[tuple[str, str | None, list[dict]]], lang: str = "en"
             ) -> tuple[list[MonthRow], dict[str, tuple[str, str]]]:
    """Per month of an episode's latest visit, the episodes followed up
    (two visits or more) and, per measure with an MCID, how many of them
    improved by it from their first visit. ``rows`` come grouped by episode
    in time order (:meth:`PatientRepository.all_episode_measures`). Returns
    (months, newest first; {measure id: (label, MCID rule in words)})."""
    months: dict[str, MonthRow] = {}
    measures: dict[str, tuple[str, str]] = {}

    def close(episode: list[_Visit]) -> None:
        if len(episode) < 2 or not episode[-1].submitted_at:
            return
        row = months.setdefault(episode[-1].submitted_at[:7], MonthRow(episode[-1].submitted_at[:7]))
        row.followed_up += 1
        for t in trends(episode, lang):
            change = t.change
            if len(t.points) < 2 or change is None or change.improved is None:
                continue
            measures.setdefault(t.id, (t.label, mcid_text(t.mcid, t.better)))
            row.assessed[t.id] = row.assessed.get(t.id, 0) + 1
            row.improved[t.id] = row.improved.get(t.id, 0) + (1 if change.improved else 0)

    current, episode = None, []
    for ep, at, ms in rows:
        if ep != current:
            close(episode)
            current, episode = ep, []
        episode.append(_Visit(at, ms))
    close(episode)
    return sorted(months.values(), key=lambda r: r.month, reverse=True), measures


