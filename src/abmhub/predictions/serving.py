"""Predictions for a batch of accounts, as the scoring job refreshes them (set-based, no I/O
per account): one active model per workspace, features as of the run's day, the top factors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, select

from abmhub.db.queries import among, json_text, upsert_rows
from abmhub.db.tables import account_predictions, prediction_models
from abmhub.predictions.features import (
    FEATURES,
    Aggregates,
    SignalStats,
    current_aggregates,
    design_matrix,
    raw_values,
)
from abmhub.predictions.model import Predictor

TOP_FACTORS = 5
PREDICTION_COLUMNS = (
    "account_id", "workspace_id", "model_pk", "as_of_us", "probability", "probability_30d", "band", "factors",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ActiveModel:
    pk: int
    model_id: str
    predictor: Predictor


# A model never changes once stored: parsed once per process, by its id (unique across
# databases, unlike the row's primary key: one process may open several databases).
_parsed: dict[str, Predictor] = {}


def active_model(conn: Connection, workspace_id: int) -> ActiveModel | None:
    row = conn.execute(
        select(prediction_models.c.id, prediction_models.c.model_id).where(
            prediction_models.c.workspace_id == workspace_id, prediction_models.c.active.is_(True)
        )
    ).one_or_none()
    if row is None:
        return None
    predictor = _parsed.get(row.model_id)
    if predictor is None:
        parameters = conn.execute(
            select(prediction_models.c.parameters).where(prediction_models.c.id == row.id)
        ).scalar_one()
        predictor = _parsed.setdefault(row.model_id, Predictor.from_json(parameters))
    return ActiveModel(row.id, row.model_id, predictor)


def factors(contributions: Any, raw: Any) -> list[dict[str, Any]]:
    """The top factors of one account: plain words, the value as read, log-odds contribution."""
    order = np.argsort(-np.abs(contributions), kind="stable")[:TOP_FACTORS]
    return [
        {
            "feature": FEATURES[j].words,
            "name": FEATURES[j].name,
            "value": round(float(raw[j]), 2),
            "contribution": round(float(contributions[j]), 4),
        }
        for j in order
        if contributions[j] != 0
    ]


def predict(predictor: Predictor, agg: Aggregates) -> tuple[Any, Any, list[str], Any, Any]:
    """(probability, probability within 30 days, band, contributions, raw values) per row."""
    x = design_matrix(agg)
    probability = predictor.horizon.probability(x)
    return (
        probability,
        predictor.within_30d.probability(x),
        predictor.band(probability),
        predictor.horizon.contributions(x),
        raw_values(agg),
    )


def prediction_rows(
    conn: Connection,
    workspace_id: int,
    model: ActiveModel,
    batch: Mapping[str, int],
    taken: Mapping[int, bool],
    today: int,
    at_us: int,
    *,
    signal_sums: SignalStats | None = None,
) -> list[tuple[Any, ...]]:
    """`account_predictions` rows for a batch (`batch`: domain → id; `taken`: id → has an open
    or won deal, which gives a null prediction: the account has its opportunity)."""
    ids = [account_id for account_id in batch.values() if not taken.get(account_id, False)]
    rows: list[tuple[Any, ...]] = [
        (account_id, workspace_id, model.pk, at_us, None, None, None, None)
        for account_id in batch.values()
        if taken.get(account_id, False)
    ]
    if not ids:
        return rows
    wanted = {domain: account_id for domain, account_id in batch.items() if not taken.get(account_id, False)}
    agg = current_aggregates(conn, workspace_id, wanted, ids, today, signal_sums=signal_sums)
    probability, within_30d, bands, contributions, raw = predict(model.predictor, agg)
    for i, account_id in enumerate(ids):
        rows.append(
            (
                account_id,
                workspace_id,
                model.pk,
                at_us,
                round(float(probability[i]), 4),
                round(float(within_30d[i]), 4),
                bands[i],
                json_text(factors(contributions[i], raw[i])),
            )
        )
    return rows


def write_predictions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    upsert_rows(conn, account_predictions, PREDICTION_COLUMNS, ("account_id",), rows)


def forget_predictions(conn: Connection, workspace_id: int, keep_model_pk: int | None = None) -> None:
    """Drop the workspace's predictions of models other than `keep_model_pk`."""
    query = delete(account_predictions).where(account_predictions.c.workspace_id == workspace_id)
    if keep_model_pk is not None:
        query = query.where(account_predictions.c.model_pk != keep_model_pk)
    conn.execute(query)


def stored_for(conn: Connection, account_ids: Sequence[int]) -> dict[int, Any]:
    return {
        row.account_id: row
        for row in conn.execute(
            select(account_predictions).where(among(conn, account_predictions.c.account_id, list(account_ids)))
        )
    }
