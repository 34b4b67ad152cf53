"""The learned model as plain numbers, and how it predicts and explains (no I/O).

A fitted model is a standardisation (mean, scale per feature), an L2-regularised logistic
regression on the standardised features, and a Platt recalibration of its log-odds
(`a · logit + b`) fitted on a later slice of time than the coefficients. So the calibrated
log-odds of an account are exactly

    b + a · (β₀ + Σⱼ βⱼ · zⱼ),   zⱼ = (xⱼ − meanⱼ) / scaleⱼ,

and `a · βⱼ · zⱼ` is feature j's contribution against the average snapshot: additive and
exact, which is what the factors show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from abmhub.predictions.features import FEATURE_NAMES, Floats, Ints

BANDS = ("A", "B", "C", "D")
# Bands by rank in the population when the model was trained: A the top 10 %, B the next 20 %,
# C the next 30 %, D the rest. The cut-points are probabilities, kept with the model.
BAND_SHARES = (0.10, 0.20, 0.30)
REGULARISATION_C = 1.0
# Rows a logistic fit uses at most (`_case_control`).
FIT_ROWS_AT_MOST = 300_000
# Rows standardised at a time.
BLOCK_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class Head:
    """One fitted predictor: standardisation, coefficients, calibration."""

    mean: Floats
    scale: Floats
    coef: Floats
    intercept: float
    platt: tuple[float, float]  # (a, b)

    def logit(self, x: Floats) -> Floats:
        a, b = self.platt
        result: Floats = np.empty(len(x))
        for start in range(0, len(x), BLOCK_ROWS):  # in blocks: no standardised copy of a large x
            z = (x[start : start + BLOCK_ROWS] - self.mean) / self.scale
            result[start : start + BLOCK_ROWS] = b + a * (self.intercept + z @ self.coef)
        return result

    def probability(self, x: Floats) -> Floats:
        return _sigmoid(self.logit(x))

    def contributions(self, x: Floats) -> Floats:
        """Each feature's share of the calibrated log-odds, against the training average."""
        result: Floats = self.platt[0] * self.coef * (x - self.mean) / self.scale
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "platt": list(self.platt),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Head:
        return Head(
            np.array(data["mean"], dtype=np.float64),
            np.array(data["scale"], dtype=np.float64),
            np.array(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            (float(data["platt"][0]), float(data["platt"][1])),
        )


@dataclass(frozen=True, slots=True)
class Predictor:
    """What the scoring job runs: the horizon's head, the 30-day head, the band cut-points."""

    features: tuple[str, ...]
    horizon: Head
    within_30d: Head
    band_cuts: tuple[float, float, float]  # the lowest probability of A, of B, of C

    def band(self, probability: Floats) -> list[str]:
        a, b, c = self.band_cuts
        return ["A" if p >= a else "B" if p >= b else "C" if p >= c else "D" for p in probability.tolist()]

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "horizon": self.horizon.to_json(),
            "within30d": self.within_30d.to_json(),
            "bandCuts": list(self.band_cuts),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Predictor:
        if tuple(data["features"]) != FEATURE_NAMES:
            raise ValueError("the model was trained on other features; train it again")
        cuts = data["bandCuts"]
        return Predictor(
            tuple(data["features"]),
            Head.from_json(data["horizon"]),
            Head.from_json(data["within30d"]),
            (float(cuts[0]), float(cuts[1]), float(cuts[2])),
        )


def _sigmoid(x: Floats) -> Floats:
    result: Floats = 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))
    return result


def fit_head(x: Floats, y: Floats, days: Ints, among: Ints | None = None) -> Head:
    """Coefficients from all rows (or the rows `among`), the calibration from the latest day's.

    The calibration is learned out of time: a head fitted on the rows before the latest
    snapshot predicts the latest one, and a logistic fit of the outcomes on those log-odds
    gives (a, b) — Platt scaling, which needs two numbers where isotonic regression overfits
    a few thousand rows. Those (a, b) then recalibrate the head fitted on all rows.
    Rows are picked by index, never copied whole (`x` may be a million rows).
    """
    rows = np.arange(len(y)) if among is None else among
    on = days[rows]
    latest, earlier_rows = (rows[on == on.max()], rows[on != on.max()]) if len(rows) else (rows, rows)
    platt = (1.0, 0.0)
    if len(latest) and len(earlier_rows) and _both_classes(y[latest]) and _both_classes(y[earlier_rows]):
        earlier = _fit_raw(x, y, earlier_rows)
        platt = _platt(earlier.logit(x[latest]), y[latest])
    raw = _fit_raw(x, y, rows)
    return Head(raw.mean, raw.scale, raw.coef, raw.intercept, platt)


def _both_classes(y: Floats) -> bool:
    return bool(0 < y.sum() < len(y))


def _fit_raw(x: Floats, y: Floats, rows: Ints) -> Head:
    """The L2 logistic regression of y on the standardised x, over `rows`."""
    mean, scale = _moments(x, rows)
    learn = y[rows]
    if not _both_classes(learn):  # nothing to learn: the base rate, no coefficients
        rate = float(np.clip(learn.mean(), 1e-6, 1 - 1e-6))
        return Head(mean, scale, np.zeros(x.shape[1]), float(np.log(rate / (1 - rate))), (1.0, 0.0))
    keep, weight = _case_control(learn)
    if keep is not None:
        rows, learn = rows[keep], learn[keep]
    z = (x[rows] - mean) / scale
    from sklearn.linear_model import LogisticRegression  # training only: a server never loads it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread: 4x faster on these sizes than two fighting for the cores
        fitted = LogisticRegression(C=REGULARISATION_C, max_iter=300).fit(z, learn, sample_weight=weight)
    return Head(mean, scale, fitted.coef_[0].astype(np.float64), float(fitted.intercept_[0]), (1.0, 0.0))


def _moments(x: Floats, rows: Ints) -> tuple[Floats, Floats]:
    """Mean and standard deviation per feature over `rows` (scale 1 where a feature is
    constant), summed in blocks: no copy of a large x."""
    total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, len(rows), BLOCK_ROWS):
        block = x[rows[start : start + BLOCK_ROWS]]
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    n = max(len(rows), 1)
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return mean, np.where(std > 1e-9, std, 1.0)


def _case_control(y: Floats) -> tuple[Ints | None, Floats | None]:
    """Past FIT_ROWS_AT_MOST rows: every positive and a random sample of the negatives, each
    sampled negative weighted by the inverse of its sampling rate (case-control sampling).

    The weighted fit estimates the same coefficients and intercept as the fit on every row
    (the weighted log-likelihood is an unbiased estimate of the full one, and the weights sum
    to the same total, so the L2 penalty keeps its strength); what it loses is a little
    precision, negligible with hundreds of thousands of rows. It saves time and memory in
    proportion: 1,000,000 snapshot rows are fitted on 300,000. Deterministic for the same rows.
    """
    if len(y) <= FIT_ROWS_AT_MOST:
        return None, None
    positive = np.flatnonzero(y == 1)
    negative = np.flatnonzero(y != 1)
    room = max(FIT_ROWS_AT_MOST - len(positive), FIT_ROWS_AT_MOST // 2)
    if room >= len(negative):
        return None, None
    rng = np.random.default_rng(len(y))
    sampled = np.sort(rng.choice(negative, size=room, replace=False))
    keep = np.concatenate([positive, sampled])
    weight = np.ones(len(keep))
    weight[len(positive) :] = len(negative) / room
    return keep, weight


def _platt(logit: Floats, y: Floats) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=200).fit(logit[:, None], y)
    a = float(fitted.coef_[0][0])
    if a <= 0:  # the earlier head ranked the latest day backwards: keep its own log-odds
        return 1.0, 0.0
    return a, float(fitted.intercept_[0])


def band_cuts(probability: Floats) -> tuple[float, float, float]:
    """The probabilities above which an account is in A, B, C (the top 10 %, 30 %, 60 %)."""
    if len(probability) == 0:
        return 1.0, 1.0, 1.0
    top = np.cumsum(BAND_SHARES)
    a, b, c = (float(np.quantile(probability, 1 - share)) for share in top)
    return a, b, c
