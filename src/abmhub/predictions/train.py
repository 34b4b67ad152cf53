"""Training and backtest: monthly snapshots, a time split, and the report that says whether the
model predicts better than the hand-set score on the workspace's own data (§10).

Snapshots are taken every 30 days going back from `as_of − horizon` (the latest day whose
outcome is fully known at `as_of`). Each row is an account in the population on that day, its
features as of that day, whether it opened an opportunity within the horizon (and within 30
days), and the hand-set score it had then.

The backtest replays what would have happened: for each test origin (the latest snapshots),
a model is fitted on the snapshots at least one horizon before it — their outcomes were known
by then — and predicts the origin's accounts. The pooled predictions are compared with the
hand-set score on the same rows; intervals come from resampling accounts (not rows: the
snapshots of one account are not independent).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from abmhub.predictions.features import CHANNELS, FEATURE_NAMES, FEATURES, Floats, Ints, design_matrix
from abmhub.predictions.history import History
from abmhub.predictions.model import BANDS, Head, Predictor, band_cuts, fit_head
from abmhub.timefmt import format_day

SNAPSHOT_EVERY_DAYS = 30
MAX_SNAPSHOTS = 18
MIN_FEATURE_DAYS = 30  # a snapshot needs this much history before it
MIN_POSITIVES = 30
BACKTEST_ORIGINS = 3
BOOTSTRAP_ROUNDS = 100
PSI_DRIFTING = 0.25  # population stability index above which a feature has shifted materially


class TrainingRefused(Exception):
    """`model train` exits 1 with this message: what is missing."""


@dataclass(slots=True)
class Rows:
    x: Floats
    y: Floats  # opened within the horizon (0/1)
    y30: Floats  # opened within 30 days
    day: Ints
    account: Ints  # index into the history's accounts
    hand_set: Floats

    def take(self, mask: Any) -> Rows:
        return Rows(self.x[mask], self.y[mask], self.y30[mask], self.day[mask], self.account[mask], self.hand_set[mask])


@dataclass(slots=True)
class Trained:
    predictor: Predictor
    report: dict[str, Any]
    fingerprint: str
    beats_hand_set: bool


def snapshot_days(history: History, *, as_of_day: int, horizon_days: int) -> list[int]:
    latest = as_of_day - horizon_days
    days = [latest - k * SNAPSHOT_EVERY_DAYS for k in range(MAX_SNAPSHOTS)]
    return sorted(day for day in days if day >= history.first_day + MIN_FEATURE_DAYS)


def build_rows(history: History, days: list[int], horizon_days: int) -> Rows:
    """One row per account in each snapshot's population: its features as of that day, its
    outcomes, the hand-set score then. Written into arrays sized once (a large workspace's
    rows are hundreds of MB: no second copy while they are put together)."""
    members = [np.flatnonzero(history.population(day)) for day in days]
    total = sum(len(m) for m in members)
    rows = Rows(
        np.empty((total, len(FEATURES))),
        np.empty(total),
        np.empty(total),
        np.empty(total, dtype=np.int64),
        np.empty(total, dtype=np.int64),
        np.empty(total),
    )
    at = 0
    for day, chosen in zip(days, members, strict=True):
        end = at + len(chosen)
        rows.x[at:end] = design_matrix(history.aggregates(day))[chosen]
        rows.y[at:end] = history.opens_within(day, horizon_days)[chosen]
        rows.y30[at:end] = history.opens_within(day, 30)[chosen]
        rows.day[at:end] = day
        rows.account[at:end] = chosen
        rows.hand_set[at:end] = history.hand_set_scores(day)[chosen]
        at = end
    return rows


def train(history: History, *, as_of_day: int, horizon_days: int, seed: int = 0) -> Trained:
    """Fit, backtest and report; raises `TrainingRefused` saying what is missing."""
    days = snapshot_days(history, as_of_day=as_of_day, horizon_days=horizon_days)
    span = as_of_day - history.first_day
    needed = horizon_days + MIN_FEATURE_DAYS + horizon_days + SNAPSHOT_EVERY_DAYS
    if len(days) < 2:
        raise TrainingRefused(
            f"Too little history: the records span {span} days up to the training date; a {horizon_days}-day "
            f"horizon needs at least {needed} days (features, a horizon to learn from and one to test on)."
        )
    rows = build_rows(history, days, horizon_days)
    positives = int(rows.y.sum())
    converted = len(np.unique(rows.account[rows.y == 1]))
    if converted < MIN_POSITIVES:
        raise TrainingRefused(
            f"Too few positive examples: {converted} accounts opened an opportunity within {horizon_days} days of a "
            f"monthly snapshot ({positives} account snapshots); at least {MIN_POSITIVES} are needed. Push more deal "
            "history (deals with their stage history or startDate), or use a longer --horizon-days."
        )
    origins = [day for day in reversed(days) if _trainable(rows, rows.day <= day - horizon_days)][:BACKTEST_ORIGINS]
    if not origins:
        raise TrainingRefused(
            f"Too little history for a backtest: no snapshot has {horizon_days} days of earlier snapshots with both "
            f"outcomes to learn from; the records span {span} days, at least {needed} are needed."
        )
    tests = []
    for origin in origins:
        past = np.flatnonzero(rows.day <= origin - horizon_days)
        head = fit_head(rows.x, rows.y, rows.day, past)
        cuts = band_cuts(head.probability(rows.x[past[rows.day[past] == rows.day[past].max()]]))
        test = rows.take(rows.day == origin)
        tests.append((origin, test, head.probability(test.x), cuts))
    backtest = _backtest_report(tests, seed=seed)

    final = fit_head(rows.x, rows.y, rows.day)
    within_30d = fit_head(rows.x, rows.y30, rows.day)
    current = design_matrix(history.aggregates(as_of_day))[np.flatnonzero(history.population(as_of_day))]
    predictor = Predictor(FEATURE_NAMES, final, within_30d, band_cuts(final.probability(current)))
    beats = backtest["rocAuc"] > backtest["handSetRocAuc"]
    report = {
        "trainedOn": {
            "snapshots": len(days),
            "positives": positives,
            "accounts": len(np.unique(rows.account)),
            "rows": len(rows.y),
            "firstSnapshot": format_day(days[0]),
            "lastSnapshot": format_day(days[-1]),
        },
        "backtest": backtest,
        "explanation": _explanation(final, rows),
        "drift": _drift(rows, current),
    }
    return Trained(predictor, report, _fingerprint(rows), beats)


def _trainable(rows: Rows, among: Any) -> bool:
    y = rows.y[among]
    return len(y) > 0 and 0 < y.sum() < len(y)


class _Ranking:
    """One score's order, worked out once for the point estimate and every bootstrap round:
    its tie groups (for ROC-AUC) and an order with ties broken at random (for the lift)."""

    def __init__(self, score: Floats, rng: np.random.Generator) -> None:
        _, self.groups = np.unique(score, return_inverse=True)  # ascending score, ties share a group
        self.size = int(self.groups.max()) + 1 if len(score) else 0
        self.order = np.lexsort((rng.random(len(score)), -score))  # highest first

    def roc_auc(self, y: Floats, weight: Floats) -> float:
        """The weighted Mann-Whitney statistic (a tie counts half): the area under the ROC
        curve as `sklearn.metrics.roc_auc_score(y, score, sample_weight=weight)` computes it,
        in one pass over the tie groups."""
        positive = np.bincount(self.groups, weights=weight * y, minlength=self.size)
        negative = np.bincount(self.groups, weights=weight * (1 - y), minlength=self.size)
        below = np.cumsum(negative) - negative
        return float((positive * (below + 0.5 * negative)).sum() / (positive.sum() * negative.sum()))

    def top_decile_lift(self, y: Floats, weight: Floats) -> float:
        """Positive rate among the top 10 % by score over the overall rate."""
        order = self.order
        cumulative = np.cumsum(weight[order])
        top = order[: int(np.searchsorted(cumulative, 0.1 * cumulative[-1])) + 1]
        overall = np.average(y, weights=weight)
        if overall == 0:
            return 0.0
        return float(np.average(y[top], weights=weight[top]) / overall)


def _metrics(y: Floats, model: _Ranking, hand: _Ranking, weight: Floats) -> dict[str, float]:
    return {
        "rocAuc": model.roc_auc(y, weight),
        "handSetRocAuc": hand.roc_auc(y, weight),
        "topDecileLift": model.top_decile_lift(y, weight),
        "handSetTopDecileLift": hand.top_decile_lift(y, weight),
    }


def _backtest_report(tests: list[tuple[int, Rows, Floats, tuple[float, float, float]]], *, seed: int) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, brier_score_loss

    rng = np.random.default_rng(seed)
    y = np.concatenate([t.y for _, t, _, _ in tests])
    p = np.concatenate([prob for _, _, prob, _ in tests])
    hand = np.concatenate([t.hand_set for _, t, _, _ in tests])
    account = np.concatenate([t.account for _, t, _, _ in tests])
    bands = np.concatenate([_bands(prob, cuts) for _, _, prob, cuts in tests])
    if not 0 < y.sum() < len(y):
        raise TrainingRefused(
            "The backtest's test snapshots have only one outcome (no account, or every account, opened an "
            "opportunity): there is nothing to measure the model against yet."
        )
    model_ranking, hand_ranking = _Ranking(p, rng), _Ranking(hand, rng)
    point = _metrics(y, model_ranking, hand_ranking, np.ones(len(y)))
    # Intervals: resample accounts with replacement; an account's rows come along together.
    accounts, inverse = np.unique(account, return_inverse=True)
    draws: dict[str, list[float]] = {name: [] for name in (*point, "rocAucGain")}
    for _ in range(BOOTSTRAP_ROUNDS):
        times = np.bincount(rng.integers(0, len(accounts), len(accounts)), minlength=len(accounts))
        weight = times[inverse].astype(np.float64)
        if not 0 < (y * weight).sum() < weight.sum():
            continue
        m = _metrics(y, model_ranking, hand_ranking, weight)
        for name, value in m.items():
            draws[name].append(value)
        draws["rocAucGain"].append(m["rocAuc"] - m["handSetRocAuc"])
    intervals = {name: _interval(values) for name, values in draws.items()}
    return {
        **{name: round(value, 4) for name, value in point.items()},
        "prAuc": round(float(average_precision_score(y, p)), 4),
        "handSetPrAuc": round(float(average_precision_score(y, hand)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "rows": len(y),
        "positives": int(y.sum()),
        "baseRate": round(float(y.mean()), 4),
        "bands": [
            {
                "band": band,
                "accounts": int((bands == band).sum()),
                "conversionRate": round(float(y[bands == band].mean()), 4) if (bands == band).any() else None,
                "predictedRate": round(float(p[bands == band].mean()), 4) if (bands == band).any() else None,
            }
            for band in BANDS
        ],
        "intervals": intervals,
        "confidence": 0.95,
        "origins": [
            {
                "asOf": format_day(origin),
                "accounts": len(test.y),
                "positives": int(test.y.sum()),
                "rocAuc": _safe_auc(test.y, prob),
                "handSetRocAuc": _safe_auc(test.y, test.hand_set),
            }
            for origin, test, prob, _ in tests
        ],
    }


def _bands(probability: Floats, cuts: tuple[float, float, float]) -> Any:
    a, b, c = cuts
    return np.where(probability >= a, "A", np.where(probability >= b, "B", np.where(probability >= c, "C", "D")))


def _safe_auc(y: Floats, score: Floats) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, score)), 4) if 0 < y.sum() < len(y) else None


def _interval(values: list[float]) -> list[float] | None:
    if len(values) < 10:
        return None
    low, high = np.quantile(values, [0.025, 0.975])
    return [round(float(low), 4), round(float(high), 4)]


def _explanation(head: Head, rows: Rows) -> dict[str, Any]:
    """The coefficients in words, and each channel's direction as the model predicts it: the
    mean log-odds of the snapshots with records of that channel in the 30 days before, against
    those without. The coefficients alone cannot say it: a channel has eight correlated features
    whose signs split the work between them (more this week, less than usual this year)."""
    logit = head.logit(rows.x)
    sources = []
    for channel in CHANNELS:
        recent = rows.x[:, FEATURE_NAMES.index(f"{channel}_30d")] > 0  # log1p(count) > 0
        effect = float(logit[recent].mean() - logit[~recent].mean()) if recent.any() and (~recent).any() else 0.0
        sources.append(
            {
                "source": channel,
                "direction": "raises" if effect > 0 else "lowers" if effect < 0 else "none",
                "effect": round(effect, 4),
                "snapshotsWithIt": round(float(recent.mean()), 4),
            }
        )
    scaled = [round(float(head.platt[0] * b), 4) for b in head.coef]
    coefficients = [
        {"feature": FEATURES[j].name, "words": FEATURES[j].words, "coefficient": scaled[j]}
        for j in sorted(range(len(FEATURES)), key=lambda j: -abs(scaled[j]))
    ]
    return {"sources": sources, "coefficients": coefficients}


def _psi(expected: Floats, actual: Floats) -> float:
    """Population stability index of one feature over the training rows' deciles."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, 11)))
    if len(edges) < 3:
        edges = np.array([-np.inf, float(expected.min()) + 1e-9, np.inf])
    else:
        edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / max(len(expected), 1) + 1e-4
    a = np.histogram(actual, edges)[0] / max(len(actual), 1) + 1e-4
    return float(np.sum((a - e) * np.log(a / e)))


def _drift(rows: Rows, current: Floats) -> dict[str, Any]:
    """How today's population differs from the training rows, and the base rate over time."""
    psi = [round(_psi(rows.x[:, j], current[:, j]), 4) if len(current) else 0.0 for j in range(len(FEATURES))]
    shifts = [
        {"feature": FEATURES[j].name, "words": FEATURES[j].words, "psi": psi[j]}
        for j in sorted(range(len(FEATURES)), key=lambda j: -psi[j])
    ]
    by_day = [
        {
            "asOf": format_day(int(day)),
            "accounts": int((rows.day == day).sum()),
            "rate": round(float(rows.y[rows.day == day].mean()), 4),
        }
        for day in np.unique(rows.day)
    ]
    rates = [float(rows.y[rows.day == day].mean()) for day in np.unique(rows.day)]
    shifted = max(psi, default=0.0) > PSI_DRIFTING
    return {
        "drifting": shifted or (len(rates) > 2 and max(rates) > 3 * max(min(rates), 1e-3)),
        "features": shifts[:5],
        "baseRateBySnapshot": by_day,
        "psiThreshold": PSI_DRIFTING,
    }


def _fingerprint(rows: Rows) -> str:
    digest = hashlib.sha256()
    for array in (rows.x, rows.y, rows.y30, rows.day):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
