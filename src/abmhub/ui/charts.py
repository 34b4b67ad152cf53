"""Geometry of the dashboard's small SVG charts (pure functions; templates draw them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from abmhub.deals.schemas import JOURNEY_STAGES


@dataclass(frozen=True, slots=True)
class FunnelBar:
    stage: str
    count: int
    share: float  # of all accounts in the funnel, 0-100
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Funnel:
    bars: list[FunnelBar]
    width: int
    height: int
    label_width: int
    bar_area: int


def funnel(
    counts: Mapping[str, int],
    stages: Sequence[str] = JOURNEY_STAGES,
    *,
    width: int = 640,
    label_width: int = 130,
    count_width: int = 110,
    bar_height: int = 34,
    gap: int = 12,
) -> Funnel:
    """One horizontal bar per journey stage, in funnel order, scaled to the largest stage.

    A stage with accounts always gets a visible sliver, so that no stage looks empty that is not.
    """
    bar_area = width - label_width - count_width
    total = sum(counts.get(stage, 0) for stage in stages)
    largest = max((counts.get(stage, 0) for stage in stages), default=0)
    bars = []
    for index, stage in enumerate(stages):
        count = counts.get(stage, 0)
        length = bar_area * count / largest if largest else 0.0
        if count and length < 3:
            length = 3.0
        bars.append(
            FunnelBar(
                stage=stage,
                count=count,
                share=100 * count / total if total else 0.0,
                x=label_width,
                y=index * (bar_height + gap),
                width=round(length, 1),
                height=bar_height,
            )
        )
    height = len(stages) * (bar_height + gap) - gap
    return Funnel(bars=bars, width=width, height=height, label_width=label_width, bar_area=bar_area)


def compact_funnel(counts: Mapping[str, int]) -> Funnel:
    """The funnel drawn for a phone's width, where the wide one's text would be too small."""
    return funnel(counts, width=340, label_width=114, count_width=70, bar_height=24, gap=10)


@dataclass(frozen=True, slots=True)
class Sparkline:
    points: str  # an SVG polyline's `points`
    width: int
    height: int
    first: int
    last: int
    end_x: float
    end_y: float


def sparkline(values: Sequence[int], *, width: int = 96, height: int = 24, top: int = 100) -> Sparkline | None:
    """A score's days as a polyline on a fixed 0-`top` scale (so rows compare at a glance).

    None for fewer than two days: a single point is no trend.
    """
    if len(values) < 2:
        return None
    pad = 2.0
    step = (width - 2 * pad) / (len(values) - 1)

    def y(value: int) -> float:
        clamped = min(max(value, 0), top)
        return round(height - pad - (height - 2 * pad) * clamped / top, 1)

    coordinates = [(round(pad + i * step, 1), y(value)) for i, value in enumerate(values)]
    return Sparkline(
        points=" ".join(f"{x},{yy}" for x, yy in coordinates),
        width=width,
        height=height,
        first=values[0],
        last=values[-1],
        end_x=coordinates[-1][0],
        end_y=coordinates[-1][1],
    )


@dataclass(frozen=True, slots=True)
class ChartPoint:
    x: float
    y: float
    date: str
    score: int
    stage: str


@dataclass(frozen=True, slots=True)
class StageMark:
    x: float
    label: str  # "Aware → Consideration"
    date: str
    progressed: bool


@dataclass(frozen=True, slots=True)
class ScoreChart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    line: str  # the overall score's polyline `points`
    points: list[ChartPoint]
    marks: list[StageMark]
    gridlines: list[tuple[float, int]]  # (y, score) of the horizontal guides
    first_date: str
    last_date: str


def score_chart(
    days: Sequence[tuple[str, int, str]],
    moves: Sequence[tuple[str, str, str]],
    *,
    width: int = 720,
    height: int = 220,
    stages: Sequence[str] = JOURNEY_STAGES,
) -> ScoreChart | None:
    """The overall score per day (`(date, score, stage)`, oldest first) on a 0-100 scale, with a
    mark on each day a stage changed (`(date, from, to)`; a first stage gets no mark).

    None when there is no day to draw.
    """
    if not days:
        return None
    left, right, top, bottom = 34.0, width - 8.0, 10.0, height - 24.0
    step = (right - left) / max(len(days) - 1, 1)

    def x_of(index: int) -> float:
        return round(left + index * step, 1) if len(days) > 1 else round((left + right) / 2, 1)

    def y_of(score: int) -> float:
        return round(bottom - (bottom - top) * min(max(score, 0), 100) / 100, 1)

    index_of = {date: index for index, (date, _, _) in enumerate(days)}
    points = [ChartPoint(x_of(i), y_of(score), date, score, stage) for i, (date, score, stage) in enumerate(days)]
    rank = {stage: position for position, stage in enumerate(stages)}
    marks = [
        StageMark(
            x=x_of(index_of[date]),
            label=f"{old} → {new}",
            date=date,
            progressed=rank.get(new, 0) > rank.get(old, 0),
        )
        for date, old, new in moves
        if old and date in index_of
    ]
    return ScoreChart(
        width=width,
        height=height,
        plot_left=left,
        plot_right=right,
        plot_top=top,
        plot_bottom=bottom,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        points=points,
        marks=marks,
        gridlines=[(y_of(score), score) for score in (0, 25, 50, 75, 100)],
        first_date=days[0][0],
        last_date=days[-1][0],
    )
