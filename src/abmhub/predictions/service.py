"""Models of a workspace: train, store, list, activate (roll back), and predictions per account.

A model is stored with its backtest report whatever the report says; it becomes the active one
only when its backtest ROC-AUC beats the hand-set score's on the same rows (§10). Activating a
model — a new one, or an earlier one to roll back — replaces the workspace's predictions at
once (every account, in batches); from then on every scoring run refreshes the predictions of
the accounts it scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select, update

from abmhub.accounts.service import AccountNotFound
from abmhub.db.engine import Database
from abmhub.db.tables import account_predictions, accounts, prediction_models
from abmhub.errors import InvalidInput, NotFound
from abmhub.ids import is_object_id, new_object_id
from abmhub.predictions import serving
from abmhub.predictions.history import load_history
from abmhub.predictions.train import Trained, TrainingRefused, train
from abmhub.scoring import engine as scoring_engine
from abmhub.scoring.model import day_of
from abmhub.scoring.service import workspace_settings
from abmhub.timefmt import now_us

__all__ = ["TrainingRefused", "activate_model", "list_models", "prediction_for", "train_model"]

Progress = Callable[[str, int, int], None]  # (step, done, total)


class NoActiveModel(NotFound):
    def __init__(self) -> None:
        super().__init__("No active model for this workspace")


class ModelNotFound(NotFound):
    def __init__(self, model_id: str) -> None:
        super().__init__(f"Model '{model_id}' not found")


class ModelDoesNotBeatHandSet(InvalidInput):
    def __init__(self, model_id: str, auc: float, hand_set: float) -> None:
        super().__init__(
            f"Model '{model_id}' did not beat the hand-set score in its backtest (ROC-AUC {auc:.3f} against "
            f"{hand_set:.3f}); it cannot be activated"
        )


@dataclass(frozen=True, slots=True)
class ModelRecord:
    pk: int
    model_id: str
    created_us: int
    active: bool
    horizon_days: int
    as_of_us: int
    beats_hand_set: bool
    fingerprint: str
    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prediction:
    rtp_aid: str
    model_id: str
    as_of_us: int
    probability: float | None
    probability_30d: float | None
    band: str | None
    factors: list[dict[str, Any]]


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        row.id,
        row.model_id,
        row.created_us,
        bool(row.active),
        row.horizon_days,
        row.as_of_us,
        bool(row.beats_hand_set),
        row.fingerprint,
        row.report,
    )


_MODEL_COLUMNS = (
    prediction_models.c.id,
    prediction_models.c.model_id,
    prediction_models.c.created_us,
    prediction_models.c.active,
    prediction_models.c.horizon_days,
    prediction_models.c.as_of_us,
    prediction_models.c.beats_hand_set,
    prediction_models.c.fingerprint,
    prediction_models.c.report,
)


def train_model(
    db: Database,
    *,
    workspace_id: int,
    horizon_days: int = 90,
    as_of_us: int | None = None,
    activate: bool = True,
    progress: Progress | None = None,
) -> tuple[ModelRecord, Trained]:
    """Train on the workspace's history up to `as_of_us` (default now), store the model, and
    activate it if it beats the hand-set score. Raises `TrainingRefused` saying what is missing."""
    if not 7 <= horizon_days <= 365:
        raise TrainingRefused("--horizon-days must be between 7 and 365")
    cut_us = now_us() if as_of_us is None else as_of_us
    cut_day = day_of(cut_us)
    _, settings = workspace_settings(db, workspace_id)
    step = progress or (lambda *_: None)
    step("reading the history", 0, 3)
    with db.read() as conn:
        history = load_history(conn, workspace_id, until_day=cut_day, settings=settings)
    step("fitting and backtesting", 1, 3)
    trained = train(history, as_of_day=cut_day, horizon_days=horizon_days)
    step("storing the model", 2, 3)
    model_id = new_object_id()
    with db.write(workspace_id) as tx:
        pk = tx.conn.execute(
            prediction_models.insert()
            .values(
                workspace_id=workspace_id,
                model_id=model_id,
                created_us=tx.now_us,
                active=False,
                horizon_days=horizon_days,
                as_of_us=cut_us,
                beats_hand_set=trained.beats_hand_set,
                fingerprint=trained.fingerprint,
                parameters=trained.predictor.to_json(),
                report=trained.report,
            )
            .returning(prediction_models.c.id)
        ).scalar_one()
    step("stored", 3, 3)
    if activate and trained.beats_hand_set:
        activate_model(db, workspace_id=workspace_id, model_id=model_id, progress=progress)
    with db.read() as conn:
        row = conn.execute(select(*_MODEL_COLUMNS).where(prediction_models.c.id == pk)).one()
    return _record(row), trained


def list_models(db: Database, *, workspace_id: int) -> list[ModelRecord]:
    """The workspace's models, newest first."""
    with db.read() as conn:
        rows = conn.execute(
            select(*_MODEL_COLUMNS)
            .where(prediction_models.c.workspace_id == workspace_id)
            .order_by(prediction_models.c.id.desc())
        ).all()
    return [_record(row) for row in rows]


def get_model(db: Database, *, workspace_id: int, model_id: str) -> ModelRecord:
    with db.read() as conn:
        row = conn.execute(
            select(*_MODEL_COLUMNS).where(
                prediction_models.c.workspace_id == workspace_id, prediction_models.c.model_id == model_id
            )
        ).one_or_none()
    if row is None:
        raise ModelNotFound(model_id)
    return _record(row)


def activate_model(db: Database, *, workspace_id: int, model_id: str, progress: Progress | None = None) -> int:
    """Make `model_id` the active model and predict every account with it; the count predicted.

    Refuses a model whose backtest did not beat the hand-set score.
    """
    record = get_model(db, workspace_id=workspace_id, model_id=model_id)
    if not record.beats_hand_set:
        backtest = record.report["backtest"]
        raise ModelDoesNotBeatHandSet(model_id, backtest["rocAuc"], backtest["handSetRocAuc"])
    with db.write(workspace_id) as tx:
        tx.conn.execute(
            update(prediction_models)
            .where(prediction_models.c.workspace_id == workspace_id, prediction_models.c.active.is_(True))
            .values(active=False)
        )
        tx.conn.execute(update(prediction_models).where(prediction_models.c.id == record.pk).values(active=True))
        serving.forget_predictions(tx.conn, workspace_id, keep_model_pk=record.pk)
    return refresh_all(db, workspace_id=workspace_id, progress=progress)


def refresh_all(db: Database, *, workspace_id: int, progress: Progress | None = None) -> int:
    """Predict every account of the workspace with the active model (batches of the scoring job's size)."""
    moment = now_us()
    with db.read() as conn:
        model = serving.active_model(conn, workspace_id)
        total = int(conn.execute(select(func.count()).where(accounts.c.workspace_id == workspace_id)).scalar_one())
    if model is None:
        return 0
    done, after = 0, ""
    while True:
        with db.write(workspace_id) as tx:
            rows = tx.conn.execute(
                select(accounts.c.id, accounts.c.domain)
                .where(accounts.c.workspace_id == workspace_id, accounts.c.domain > after)
                .order_by(accounts.c.domain)
                .limit(scoring_engine.BATCH_SIZE)
            ).all()
            if not rows:
                break
            batch = {row.domain: row.id for row in rows}
            flags = scoring_engine.deal_flags(tx.conn, list(batch.values()))
            taken = {account_id: won or open_ for account_id, (won, open_) in flags.items()}
            serving.write_predictions(
                tx.conn,
                serving.prediction_rows(tx.conn, workspace_id, model, batch, taken, day_of(moment), moment),
            )
        done += len(rows)
        after = rows[-1].domain
        if progress is not None:
            progress("predicting accounts", done, total)
    return done


def prediction_for(db: Database, *, workspace_id: int, rtp_aid: str) -> Prediction:
    """The account's prediction by the active model: stored by the last scoring run, or — for an
    account that run has not reached yet — computed now the same way."""
    if not is_object_id(rtp_aid):
        raise AccountNotFound(rtp_aid)
    with db.read() as conn:
        account = conn.execute(
            select(accounts.c.id, accounts.c.domain).where(
                accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid == rtp_aid
            )
        ).one_or_none()
        if account is None:
            raise AccountNotFound(rtp_aid)
        model = serving.active_model(conn, workspace_id)
        if model is None:
            raise NoActiveModel()
        stored = conn.execute(
            select(account_predictions).where(
                account_predictions.c.account_id == account.id, account_predictions.c.model_pk == model.pk
            )
        ).one_or_none()
        if stored is None:
            moment = now_us()
            flags = scoring_engine.deal_flags(conn, [account.id])
            won, open_ = flags.get(account.id, (False, False))
            row = serving.prediction_rows(
                conn,
                workspace_id,
                model,
                {account.domain: account.id},
                {account.id: won or open_},
                day_of(moment),
                moment,
            )[0]
            fresh = dict(zip(serving.PREDICTION_COLUMNS, row, strict=True))
            fresh["factors"] = None if row[7] is None else orjson.loads(row[7])
            return _prediction(rtp_aid, model.model_id, fresh)
    return _prediction(rtp_aid, model.model_id, stored._mapping)


def _prediction(rtp_aid: str, model_id: str, row: Any) -> Prediction:
    return Prediction(
        rtp_aid=rtp_aid,
        model_id=model_id,
        as_of_us=row["as_of_us"],
        probability=row["probability"],
        probability_30d=row["probability_30d"],
        band=row["band"],
        factors=serving.factors(row["factors"]),
    )
