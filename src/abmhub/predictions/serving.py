"""Predictions for a batch of accounts, as the scoring job refreshes them (set-based, no I/O
per account): one active model per workspace, features as of the run's day, the top factors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, select

from abmhub.db.queries import among, upsert_rows
from abmhub.db.tables import account_predictions, prediction_models
from abmhub.predictions.features import (
    FEATURE_NAMES,
    FEATURES,
    Aggregates,
    Floats,
    SignalStats,
    current_aggregates,
    design_matrix,
    raw_values,
)
from abmhub.predictions.model import Predictor
from abmhub.scoring.model import US_PER_DAY

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


def top_factors(contributions: Floats, raw: Floats) -> list[str]:
    """Each row's top factors by |contribution| (ties: feature order), as stored: the JSON of
    `[[feature name, value as read, contribution in log-odds], ...]`; a zero one is left out.

    Set-based: one sort of the whole batch, then one short list per row (the scoring job
    writes a million of them on a full run).
    """
    top = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :TOP_FACTORS]
    shares = np.round(np.take_along_axis(contributions, top, axis=1), 4).tolist()
    values = np.round(np.take_along_axis(raw, top, axis=1), 2).tolist()
    names = FEATURE_NAMES
    dumps = orjson.dumps
    return [
        dumps([[names[j], value, share] for j, value, share in zip(js, vs, cs, strict=True) if share]).decode()
        for js, vs, cs in zip(top.tolist(), values, shares, strict=True)
    ]


def factors(stored: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Stored factors as the API gives them: the feature in plain words, its name, the value
    as read, the contribution in log-odds."""
    return [
        {"feature": WORDS.get(name, name), "name": name, "value": value, "contribution": share}
        for name, value, share in stored or ()
    ]


WORDS = {feature.name: feature.words for feature in FEATURES}


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
    rows.extend(
        zip(
            ids,
            repeat(workspace_id),
            repeat(model.pk),
            repeat(at_us),
            np.round(probability, 4).tolist(),
            np.round(within_30d, 4).tolist(),
            bands,
            top_factors(contributions, raw),
            strict=False,
        )
    )
    return rows


def changed_only(conn: Connection, rows: list[tuple[Any, ...]], today: int) -> list[tuple[Any, ...]]:
    """The rows whose prediction differs from the one stored today by the same model: a rerun
    on the same day (an hourly run, a second full run) rewrites only what moved. A new day
    rewrites every row (its as-of day moves on)."""
    if not rows:
        return rows
    stored = {
        account_id: (model_pk, as_of_us // US_PER_DAY, probability, probability_30d, band)
        for account_id, model_pk, as_of_us, probability, probability_30d, band in conn.execute(
            select(
                account_predictions.c.account_id,
                account_predictions.c.model_pk,
                account_predictions.c.as_of_us,
                account_predictions.c.probability,
                account_predictions.c.probability_30d,
                account_predictions.c.band,
            ).where(among(conn, account_predictions.c.account_id, [row[0] for row in rows]))
        )
    }
    return [row for row in rows if stored.get(row[0]) != (row[2], today, row[4], row[5], row[6])]


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
