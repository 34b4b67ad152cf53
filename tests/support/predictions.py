"""An active prediction model without training data: hand-set coefficients, stored as a trained
model is, then every account of the workspace predicted with it (`service.refresh_all`).

For tests of what reads predictions (segment rules, the dashboard): the numbers are chosen, not
learned, so a test can say which account must come out on top.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy import select, update

from abmhub.db.engine import Database
from abmhub.db.tables import prediction_models, workspaces
from abmhub.ids import new_object_id
from abmhub.predictions import service, serving
from abmhub.predictions.features import FEATURE_NAMES, Aggregates, design_matrix
from abmhub.predictions.model import Head, Predictor
from abmhub.timefmt import now_us

# An account with more Bombora surges and G2 research in the last 30 days is likelier to open an
# opportunity; one whose last website visit is long ago a little less.
DEFAULT_COEFFICIENTS = {"bombora_30d": 1.2, "g2_30d": 0.8, "website_days_since": -0.3}


def _head(coefficients: Mapping[str, float], intercept: float) -> Head:
    unknown = set(coefficients) - set(FEATURE_NAMES)
    if unknown:
        raise ValueError(f"no such features: {sorted(unknown)}")
    coef = np.array([coefficients.get(name, 0.0) for name in FEATURE_NAMES], dtype=np.float64)
    # Contributions are measured against an account with no records at all.
    mean = design_matrix(Aggregates.empty(1))[0]
    return Head(mean, np.ones(len(FEATURE_NAMES)), coef, intercept, (1.0, 0.0))


def report(*, horizon_days: int = 90, roc_auc: float = 0.8, hand_set_roc_auc: float = 0.7) -> dict[str, object]:
    """A report shaped like `train.train`'s, with made-up numbers."""
    return {
        "trainedOn": {
            "snapshots": 12,
            "positives": 40,
            "accounts": 200,
            "rows": 2400,
            "firstSnapshot": "2025-01-01",
            "lastSnapshot": "2025-12-01",
        },
        "backtest": {
            "rocAuc": roc_auc,
            "handSetRocAuc": hand_set_roc_auc,
            "topDecileLift": 3.0,
            "handSetTopDecileLift": 2.0,
            "prAuc": 0.3,
            "handSetPrAuc": 0.2,
            "brier": 0.08,
            "rows": 800,
            "positives": 40,
            "baseRate": 0.05,
            "bands": [
                {"band": band, "accounts": 200, "conversionRate": rate, "predictedRate": rate}
                for band, rate in zip("ABCD", (0.2, 0.08, 0.03, 0.01), strict=True)
            ],
            "intervals": {},
            "confidence": 0.95,
            "origins": [],
        },
        "explanation": None,
        "drift": None,
    }


def install_model(
    db: Database,
    *,
    workspace: str,
    coefficients: Mapping[str, float] | None = None,
    intercept: float = -3.0,
    intercept_30d: float = -4.0,
    band_cuts: tuple[float, float, float] = (0.5, 0.2, 0.08),
    horizon_days: int = 90,
    predict: bool = True,
) -> str:
    """Store a hand-set model as the workspace's active one and (with `predict`) predict every
    account with it; returns its model id. A model active before it is deactivated and its
    predictions dropped, as `service.activate_model` does."""
    chosen = DEFAULT_COEFFICIENTS if coefficients is None else coefficients
    predictor = Predictor(FEATURE_NAMES, _head(chosen, intercept), _head(chosen, intercept_30d), band_cuts)
    model_id = new_object_id()
    with db.read() as conn:
        workspace_id = conn.execute(select(workspaces.c.id).where(workspaces.c.name == workspace)).scalar_one()
    with db.write(workspace_id) as tx:
        tx.conn.execute(
            update(prediction_models)
            .where(prediction_models.c.workspace_id == workspace_id, prediction_models.c.active.is_(True))
            .values(active=False)
        )
        tx.conn.execute(
            prediction_models.insert().values(
                workspace_id=workspace_id,
                model_id=model_id,
                created_us=tx.now_us,
                active=False,
                horizon_days=horizon_days,
                as_of_us=now_us(),
                beats_hand_set=True,
                fingerprint="0" * 64,
                parameters=predictor.to_json(),
                report=report(horizon_days=horizon_days),
            )
        )
    # serving caches parsed models by model id (unique across databases); cleared all the same,
    # so that a test never depends on what an earlier one parsed.
    serving._parsed.clear()
    # Activation as the service does it: the flag, the other models' predictions dropped, all predicted.
    if predict:
        service.activate_model(db, workspace_id=workspace_id, model_id=model_id)
    else:
        with db.write(workspace_id) as tx:
            tx.conn.execute(
                update(prediction_models).where(prediction_models.c.model_id == model_id).values(active=True)
            )
    return model_id
