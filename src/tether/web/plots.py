"""Server-rendered plots (SVG drawn by the templates from these coordinates; no script).

:func:`drift_plot` places an identity's daily drift scores (0..100) on a time axis of the
window: one point per day with a finding, joined by a line, with grid lines at the
severity cut-offs' usual steps and the window's first and last day as labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tether.drift.findings import DailyScore

WIDTH = 640
HEIGHT = 180
LEFT = 34  # room for the score labels
BOTTOM = 22  # room for the date labels
TOP = 8
GRID = (0, 25, 50, 75, 100)


@dataclass(frozen=True)
class PlotPoint:
    x: int
    y: int
    day: str
    score: int
    findings: int


@dataclass(frozen=True)
class DriftPlot:
    points: tuple[PlotPoint, ...]
    grid: tuple[tuple[int, int], ...]  # (score, y)
    first_day: str
    last_day: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM

    @property
    def line(self) -> str:
        """The ``points`` attribute of the polyline joining the days."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)


def _y(score: float) -> int:
    span = HEIGHT - BOTTOM - TOP
    return round(HEIGHT - BOTTOM - span * min(max(score, 0.0), 100.0) / 100.0)


def drift_plot(scores: Sequence[DailyScore], *, first: date, last: date) -> DriftPlot:
    days = max(1, (last - first).days)
    span = WIDTH - LEFT - 10

    def x(day: date) -> int:
        return round(LEFT + span * min(max((day - first).days, 0), days) / days)

    points = tuple(
        PlotPoint(x(s.day), _y(s.score), s.day.isoformat(), round(s.score), s.findings)
        for s in scores
        if first <= s.day <= last
    )
    return DriftPlot(
        points=points,
        grid=tuple((g, _y(g)) for g in GRID),
        first_day=first.isoformat(),
        last_day=last.isoformat(),
    )
