"""The scoring model's knobs, with defaults; a workspace may override any of them.

Every number here is explained, with worked examples, in docs/scoring.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

SOURCES = ("website", "g2", "bombora", "linkedin_ads")
SIGNAL_TYPES = {
    "website": ("page_view",),
    "g2": ("profile_view", "comparison", "pricing_view", "category_view"),
    "bombora": ("surge",),
    "linkedin_ads": ("impression", "click", "engagement"),
}
# The account field each source's sub-score is written to.
SCORE_COLUMNS = {
    "website": "website_score",
    "g2": "g2_score",
    "bombora": "bombora_score",
    "linkedin_ads": "advertising_score",
}


@dataclass(frozen=True, slots=True)
class SourceModel:
    """How one source's signals become its 0–100 sub-score.

    Each signal is worth `points[type] × weight × count` (Bombora: points per surge-score
    point above `surge_baseline`), halved every `half_life_days` of age, and the decayed
    sum `x` saturates: `100 × (1 − e^(−x / saturation))`.
    """

    points: dict[str, float]
    half_life_days: float
    saturation: float
    horizon_days: int = 365
    surge_baseline: float = 50.0  # Bombora only: a score at or below it is ordinary consumption


@dataclass(frozen=True, slots=True)
class EngagementModel:
    """Sales engagement: calls, emails and manual activities logged against the account."""

    points: dict[str, float] = field(default_factory=lambda: {"call": 10.0, "email": 4.0, "manual": 8.0})
    half_life_days: float = 30.0
    saturation: float = 30.0
    horizon_days: int = 365


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    sources: dict[str, SourceModel] = field(
        default_factory=lambda: {
            "website": SourceModel(points={"page_view": 1.0}, half_life_days=14, saturation=15),
            "g2": SourceModel(
                points={"category_view": 7.0, "comparison": 25.0, "profile_view": 40.0, "pricing_view": 50.0},
                half_life_days=30,
                saturation=60,
            ),
            "bombora": SourceModel(points={"surge": 2.0}, half_life_days=7, saturation=60),
            "linkedin_ads": SourceModel(
                points={"impression": 0.05, "click": 2.0, "engagement": 1.0}, half_life_days=14, saturation=25
            ),
        }
    )
    engagement: EngagementModel = field(default_factory=EngagementModel)
    # Shares of the overall score; they add up to 1.
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "website": 0.20,
            "g2": 0.20,
            "bombora": 0.15,
            "linkedin_ads": 0.15,
            "engagement": 0.20,
            "deals": 0.10,
        }
    )
    # The deal component: a won deal, an open deal (lost deals count for nothing).
    won_deal_score: int = 100
    open_deal_score: int = 70
    # Journey thresholds on the overall score (deals decide Opportunity and Customer).
    aware_threshold: int = 5
    consideration_threshold: int = 40
    # Engagement alone also makes an account Considering when its sub-score reaches this.
    consideration_engagement: int = 50

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_SETTINGS = ScoringSettings()


def settings_from(overrides: dict[str, Any] | None) -> ScoringSettings:
    """Defaults with a workspace's overrides applied (unknown keys are ignored)."""
    if not overrides:
        return DEFAULT_SETTINGS
    base = DEFAULT_SETTINGS
    sources = dict(base.sources)
    for name, source_overrides in (overrides.get("sources") or {}).items():
        if name in sources and isinstance(source_overrides, dict):
            current = sources[name]
            known = {k: v for k, v in source_overrides.items() if hasattr(current, k)}
            if "points" in known:
                known["points"] = {**current.points, **known["points"]}
            sources[name] = replace(current, **known)
    engagement = base.engagement
    if isinstance(overrides.get("engagement"), dict):
        known = {k: v for k, v in overrides["engagement"].items() if hasattr(engagement, k)}
        if "points" in known:
            known["points"] = {**engagement.points, **known["points"]}
        engagement = replace(engagement, **known)
    weights = {**base.weights, **(overrides.get("weights") or {})}
    scalars = {
        k: v
        for k, v in overrides.items()
        if k not in ("sources", "engagement", "weights") and hasattr(base, k) and isinstance(v, int | float)
    }
    return replace(base, sources=sources, engagement=engagement, weights=weights, **scalars)
