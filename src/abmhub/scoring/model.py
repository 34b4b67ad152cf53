"""The scoring model as pure functions: no I/O, deterministic for a given day.

The engine computes the decayed sums in SQL (scoring/engine.py) with exactly the formulas
below; `signal_points` is the reference they are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from abmhub.scoring.settings import SOURCES, ScoringSettings, SourceModel

JOURNEY_STAGES = ("Unaware", "Aware", "Consideration", "Opportunity", "Customer")
US_PER_DAY = 86_400_000_000


def day_of(us: int) -> int:
    """The UTC day (days since 1970-01-01) of a time in µs: decay counts whole days."""
    return us // US_PER_DAY


def decay(age_days: int, half_life_days: float) -> float:
    """The share of a signal's worth left after `age_days` whole days (future dates count as today)."""
    return float(0.5 ** (max(age_days, 0) / half_life_days))  # a positive base: never complex


def saturate(total: float, saturation: float) -> int:
    """0–100: `100 × (1 − e^(−total / saturation))`, rounded half up. Many weak signals
    approach 100 but never pass it, and the first signals count the most."""
    if total <= 0:
        return 0
    return math.floor(100 * (1 - math.exp(-total / saturation)) + 0.5)


def base_points(model: SourceModel, signal_type: str, *, weight: float, count: int, score: int | None) -> float:
    """A signal's worth before decay."""
    per = model.points.get(signal_type, 0.0)
    if signal_type == "surge":  # Bombora: points per surge-score point above the baseline
        return per * max(0.0, (score or 0) - model.surge_baseline) * weight
    return per * weight * count


def signal_points(
    model: SourceModel, signal_type: str, *, weight: float, count: int, score: int | None, age_days: int
) -> float:
    """A signal's decayed worth on a given day (0 beyond the source's horizon)."""
    if age_days > model.horizon_days:
        return 0.0
    return base_points(model, signal_type, weight=weight, count=count, score=score) * decay(
        age_days, model.half_life_days
    )


@dataclass(frozen=True, slots=True)
class AccountInputs:
    """What the engine aggregated for one account."""

    source_points: Mapping[str, float]  # decayed sums per source
    engagement_points: float
    has_won_deal: bool
    has_open_deal: bool


@dataclass(frozen=True, slots=True)
class AccountScores:
    overall: int
    sources: dict[str, int]
    engagement: int
    deals: int
    journey_stage: str


def deal_score(settings: ScoringSettings, *, won: bool, open_: bool) -> int:
    if won:
        return settings.won_deal_score
    return settings.open_deal_score if open_ else 0


def overall_score(settings: ScoringSettings, sources: Mapping[str, int], engagement: int, deals: int) -> int:
    """The weighted sum of the components, 0–100."""
    weights = settings.weights
    total = sum(weights.get(name, 0.0) * sources.get(name, 0) for name in SOURCES)
    total += weights.get("engagement", 0.0) * engagement + weights.get("deals", 0.0) * deals
    return max(0, min(100, math.floor(total + 0.5)))


def journey_stage_for(
    settings: ScoringSettings, *, overall: int, engagement: int, any_source: bool, won: bool, open_: bool
) -> str:
    """Evaluated from the most advanced stage down; the first rule that holds wins."""
    if won:
        return "Customer"
    if open_:
        return "Opportunity"
    if overall >= settings.consideration_threshold or engagement >= settings.consideration_engagement:
        return "Consideration"
    if overall >= settings.aware_threshold or engagement > 0 or any_source:
        return "Aware"
    return "Unaware"


def score_account(settings: ScoringSettings, inputs: AccountInputs) -> AccountScores:
    points = inputs.source_points
    sources = {name: saturate(points.get(name, 0.0), model.saturation) for name, model in settings.sources.items()}
    engagement = saturate(inputs.engagement_points, settings.engagement.saturation)
    won, open_ = inputs.has_won_deal, inputs.has_open_deal
    deals = deal_score(settings, won=won, open_=open_)
    overall = overall_score(settings, sources, engagement, deals)
    stage = journey_stage_for(
        settings, overall=overall, engagement=engagement, any_source=any(sources.values()), won=won, open_=open_
    )
    return AccountScores(overall, sources, engagement, deals, stage)
