"""The dashboard's reads of predictions (§10): an account's prediction with what moves it, and
the accounts likeliest to open an opportunity. Workspace-scoped reads, returned as dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from abmhub.db.engine import Database
from abmhub.db.tables import account_predictions, accounts, prediction_models
from abmhub.predictions import service
from abmhub.predictions.features import NO_RECORD_AGE
from abmhub.predictions.model import BAND_SHARES, BANDS

# What a band means, from the shares the model's cut-points were set at (A: the top 10 %, …).
BAND_MEANINGS = dict(
    zip(
        BANDS,
        (
            f"the {BAND_SHARES[0]:.0%} of accounts likeliest to open an opportunity",
            f"the next {BAND_SHARES[1]:.0%} of accounts",
            f"the next {BAND_SHARES[2]:.0%} of accounts",
            f"the other {1 - sum(BAND_SHARES):.0%} of accounts",
        ),
        strict=True,
    )
)


@dataclass(frozen=True, slots=True)
class ActiveModel:
    model_id: str
    horizon_days: int
    created_us: int


@dataclass(frozen=True, slots=True)
class Factor:
    """One reason for an account's prediction: a feature in plain words, its value, and how many
    log-odds it adds to (or takes from) the prediction against an average account."""

    words: str
    name: str
    value: float
    contribution: float

    @property
    def raises(self) -> bool:
        return self.contribution > 0

    @property
    def shown_value(self) -> str:
        """The value as a person reads it: days, a ratio, a count."""
        if self.name.endswith("_days_since"):
            if self.value >= NO_RECORD_AGE:
                return "none in 90 days"
            return {0: "today", 1: "yesterday"}.get(int(self.value), f"{self.value:.0f} days ago")
        if self.name.endswith("_momentum"):
            return f"×{self.value:.1f}"
        return f"{self.value:.0f}" if float(self.value).is_integer() else f"{self.value:.1f}"


@dataclass(frozen=True, slots=True)
class AccountPrediction:
    model: ActiveModel
    as_of_us: int
    probability: float | None  # None: the account has an open or won deal
    probability_30d: float | None
    band: str | None
    factors: list[Factor]

    @property
    def has_opportunity(self) -> bool:
        return self.probability is None

    @property
    def band_meaning(self) -> str:
        return BAND_MEANINGS.get(self.band or "", "")


@dataclass(frozen=True, slots=True)
class LikelyAccount:
    rtp_aid: str
    name: str
    domain: str
    journey_stage: str | None
    probability: float
    probability_30d: float | None
    band: str | None


@dataclass(frozen=True, slots=True)
class LikelyAccounts:
    model: ActiveModel
    accounts: list[LikelyAccount]


def active_model(db: Database, *, workspace_id: int) -> ActiveModel | None:
    """The workspace's active model, if it has one."""
    with db.read() as conn:
        row = conn.execute(
            select(
                prediction_models.c.model_id, prediction_models.c.horizon_days, prediction_models.c.created_us
            ).where(prediction_models.c.workspace_id == workspace_id, prediction_models.c.active.is_(True))
        ).one_or_none()
    return ActiveModel(*row) if row is not None else None


def account_prediction(db: Database, *, workspace_id: int, rtp_aid: str) -> AccountPrediction | None:
    """The active model's prediction of the account (None: the workspace has no active model)."""
    model = active_model(db, workspace_id=workspace_id)
    if model is None:
        return None
    try:
        found = service.prediction_for(db, workspace_id=workspace_id, rtp_aid=rtp_aid)
    except service.NoActiveModel:  # deactivated in between
        return None
    if found.model_id != model.model_id:  # another model activated in between: ask again
        return account_prediction(db, workspace_id=workspace_id, rtp_aid=rtp_aid)
    return AccountPrediction(
        model=model,
        as_of_us=found.as_of_us,
        probability=found.probability,
        probability_30d=found.probability_30d,
        band=found.band,
        factors=[_factor(item) for item in found.factors],
    )


def _factor(item: dict[str, Any]) -> Factor:
    return Factor(
        words=str(item.get("feature", "")),
        name=str(item.get("name", "")),
        value=float(item.get("value", 0.0)),
        contribution=float(item.get("contribution", 0.0)),
    )


def likely_to_open(db: Database, *, workspace_id: int, limit: int = 10) -> LikelyAccounts | None:
    """The accounts with the highest probability of opening an opportunity within the model's
    horizon (accounts with an open or won deal have none), by the active model; None without one."""
    model = active_model(db, workspace_id=workspace_id)
    if model is None:
        return None
    with db.read() as conn:
        rows = conn.execute(
            select(
                accounts.c.rtp_aid,
                accounts.c.name,
                accounts.c.domain,
                accounts.c.journey_stage,
                account_predictions.c.probability,
                account_predictions.c.probability_30d,
                account_predictions.c.band,
            )
            .join(accounts, accounts.c.id == account_predictions.c.account_id)
            .where(
                account_predictions.c.workspace_id == workspace_id,
                account_predictions.c.probability.is_not(None),
            )
            # ix_account_predictions_workspace_probability, read backwards.
            .order_by(account_predictions.c.probability.desc(), account_predictions.c.account_id)
            .limit(limit)
        ).all()
    return LikelyAccounts(model, [LikelyAccount(*row) for row in rows])
