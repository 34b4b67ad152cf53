"""The scoring model's knobs, with defaults; a workspace may override any of them.

Every number here is explained, with worked examples, in docs/scoring.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

SOURCES = ("website", "g2", "bombora", "linkedin_ads")
SIGNAL_TYPES = {
    # high_intent_page and engaged_time come from abmhub's own visit collection (§9).
    "website": ("page_view", "high_intent_page", "engaged_time"),
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
            # A view of a pricing page (rule weight 5) counts 5 page views; each engaged minute half of one.
            "website": SourceModel(
                points={"page_view": 1.0, "high_intent_page": 1.0, "engaged_time": 0.5},
                half_life_days=14,
                saturation=15,
            ),
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
    scalars: dict[str, Any] = {
        k: v
        for k, v in overrides.items()
        if k not in ("sources", "engagement", "weights") and hasattr(base, k) and isinstance(v, int | float)
    }
    return replace(base, sources=sources, engagement=engagement, weights=weights, **scalars)


class InvalidSettings(ValueError):
    """Overrides that `settings_from` would not apply as meant; `problems` name each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _model_problems(where: str, given: Any, model: SourceModel | EngagementModel) -> list[str]:
    if not isinstance(given, dict):
        return [f"{where} must be an object"]
    problems = []
    for key, value in given.items():
        if key == "points":
            if not isinstance(value, dict):
                problems.append(f"{where}.points must be an object")
                continue
            problems += [
                f"{where}.points.{kind} is not one of: {', '.join(model.points)}"
                for kind in value
                if kind not in model.points
            ]
            problems += [f"{where}.points.{k} must be a number >= 0" for k, v in value.items() if not _non_negative(v)]
        elif not hasattr(model, key):
            problems.append(f"{where}.{key} is not a setting")
        elif key in ("half_life_days", "saturation", "horizon_days") and not _positive(value):
            problems.append(f"{where}.{key} must be a number > 0")
        elif not _non_negative(value):
            problems.append(f"{where}.{key} must be a number >= 0")
    return problems


def check_overrides(overrides: Any) -> ScoringSettings:
    """The settings these overrides give, or InvalidSettings naming every key that is unknown,
    of the wrong type or out of range (weights must add up to 1 once merged with the defaults)."""
    if not isinstance(overrides, dict):
        raise InvalidSettings(["the settings must be a JSON object"])
    base = DEFAULT_SETTINGS
    problems = []
    for key, value in overrides.items():
        if key == "sources":
            if not isinstance(value, dict):
                problems.append("sources must be an object")
                continue
            for name, given in value.items():
                if name not in base.sources:
                    problems.append(f"sources.{name} is not one of: {', '.join(SOURCES)}")
                else:
                    problems += _model_problems(f"sources.{name}", given, base.sources[name])
        elif key == "engagement":
            problems += _model_problems("engagement", value, base.engagement)
        elif key == "weights":
            if not isinstance(value, dict):
                problems.append("weights must be an object")
                continue
            problems += [
                f"weights.{k} is not one of: {', '.join(base.weights)}" for k in value if k not in base.weights
            ]
            problems += [f"weights.{k} must be a number >= 0" for k, v in value.items() if not _non_negative(v)]
        elif key in ("won_deal_score", "open_deal_score", "aware_threshold", "consideration_threshold",
                     "consideration_engagement"):  # fmt: skip
            if not _non_negative(value) or value > 100:
                problems.append(f"{key} must be a number from 0 to 100")
        else:
            problems.append(f"{key} is not a setting")
    if problems:
        raise InvalidSettings(problems)
    settings = settings_from(overrides)
    total = sum(settings.weights.values())
    if abs(total - 1.0) > 1e-6:
        raise InvalidSettings([f"weights must add up to 1 (they add up to {total:g})"])
    return settings
