"""Predictions (§10): point-in-time features, training and backtest on a planted truth, serving.

The main workspace is the planted sandbox (`abmhub seed --planted`): opportunities follow a
hidden rule whose true probabilities are known, so the model can be held to them. It is seeded
once per database for the module (~20 s) and trained once; the tests read it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.db.tables import account_predictions, accounts, prediction_models, signals, workspaces
from abmhub.predictions import service, serving
from abmhub.predictions.features import FEATURE_NAMES, current_aggregates
from abmhub.predictions.history import History, load_history
from abmhub.predictions.train import build_rows, snapshot_days
from abmhub.sandbox.planted import PlantedTruth
from abmhub.sandbox.seed import seed_workspace
from abmhub.scoring import engine
from abmhub.scoring.model import US_PER_DAY, day_of
from abmhub.scoring.settings import DEFAULT_SETTINGS
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import format_day
from tests.conftest import BACKENDS

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
AS_OF_US = int(AS_OF.timestamp() * 1_000_000)
HORIZON = 90


@dataclass
class Planted:
    db: Database
    workspace_id: int
    truth: PlantedTruth
    record: service.ModelRecord
    history: History
    domains: dict[int, str]  # accounts.id → domain


@pytest.fixture(scope="module", params=BACKENDS)
def planted(request: pytest.FixtureRequest, new_database_url: Callable[[str], str]) -> Iterator[Planted]:
    db = Database(new_database_url(request.param))
    upgrade(db)
    report = seed_workspace(db, workspace="planted", accounts=3000, seed=1, as_of=AS_OF, planted=True)
    assert report.truth is not None
    with db.read() as conn:
        workspace_id = conn.execute(select(workspaces.c.id).where(workspaces.c.name == "planted")).scalar_one()
        domains = dict(conn.execute(select(accounts.c.id, accounts.c.domain)).all())
    record, _ = service.train_model(db, workspace_id=workspace_id, horizon_days=HORIZON, as_of_us=AS_OF_US)
    with db.read() as conn:
        history = load_history(conn, workspace_id, until_day=day_of(AS_OF_US), settings=DEFAULT_SETTINGS)
    yield Planted(db, workspace_id, report.truth, record, history, domains)
    db.dispose()


def test_the_model_beats_the_hand_set_score_and_comes_close_to_the_planted_truth(planted: Planted):
    backtest = planted.record.report["backtest"]
    assert planted.record.active, "a model that beats the hand-set score is activated"
    assert backtest["rocAuc"] >= backtest["handSetRocAuc"] + 0.05, backtest
    assert backtest["topDecileLift"] >= 2.5, backtest

    # The truth's own ROC-AUC on the very rows of the backtest (the test origins' populations).
    history = planted.history
    rows = build_rows(history, snapshot_days(history, as_of_day=day_of(AS_OF_US), horizon_days=HORIZON), HORIZON)
    origins = {origin["asOf"] for origin in backtest["origins"]}
    tested = np.array([format_day(int(day)) in origins for day in rows.day])
    assert tested.sum() == backtest["rows"], "the report's rows are the origins' populations"
    true_probability = [
        planted.truth.true_probability(planted.domains[int(history.ids[a])], int(day), HORIZON)
        for a, day in zip(rows.account[tested], rows.day[tested], strict=True)
    ]
    truth_auc = roc_auc_score(rows.y[tested], true_probability)
    assert backtest["rocAuc"] >= truth_auc - 0.03, f"model {backtest['rocAuc']:.3f} against the truth {truth_auc:.3f}"


def test_the_model_recovers_the_planted_direction_of_every_source(planted: Planted):
    learned = {item["source"]: item["direction"] for item in planted.record.report["explanation"]["sources"]}
    planted_directions = {
        source: "raises" if sign > 0 else "lowers" for source, sign in planted.truth.directions.items()
    }
    assert learned == planted_directions


def test_predicted_and_observed_rates_agree_per_band(planted: Planted):
    for band in planted.record.report["backtest"]["bands"]:
        assert band["accounts"] > 0, band
        gap = abs(band["predictedRate"] - band["conversionRate"])
        assert gap <= 0.05, (
            f"band {band['band']}: predicted {band['predictedRate']:.3f}, observed {band['conversionRate']:.3f}"
        )


def test_the_report_carries_intervals_drift_and_the_fingerprint(planted: Planted):
    report = planted.record.report
    low, high = report["backtest"]["intervals"]["rocAuc"]
    assert low <= report["backtest"]["rocAuc"] <= high
    assert report["backtest"]["intervals"]["rocAucGain"][0] > 0, "the gain over the hand-set score is not noise"
    assert "baseRateBySnapshot" in report["drift"] and len(report["drift"]["features"]) == 5
    assert len(planted.record.fingerprint) == 64
    again, _ = service.train_model(
        planted.db, workspace_id=planted.workspace_id, horizon_days=HORIZON, as_of_us=AS_OF_US, activate=False
    )
    assert again.fingerprint == planted.record.fingerprint, "same data, same fingerprint"
    assert (
        not again.active
        and service.get_model(planted.db, workspace_id=planted.workspace_id, model_id=planted.record.model_id).active
    )


def test_serving_features_are_the_training_features(planted: Planted):
    """The SQL of the scoring job and the arrays of training give the same numbers as of a day."""
    day = day_of(AS_OF_US)
    history = planted.history
    expected = history.aggregates(day)
    with planted.db.read() as conn:
        rows = conn.execute(
            select(accounts.c.id, accounts.c.domain).where(accounts.c.workspace_id == planted.workspace_id)
        ).all()
        batch = {row.domain: row.id for row in rows}
        ids = [row.id for row in rows]
        served = current_aggregates(conn, planted.workspace_id, batch, ids, day)
        sums: dict[str, Any] = {}
        engine.inputs_for(conn, planted.workspace_id, batch, DEFAULT_SETTINGS, day, features=sums)
        via_scoring = current_aggregates(conn, planted.workspace_id, batch, ids, day, signal_sums=sums)
    position = {account_id: i for i, account_id in enumerate(history.ids.tolist())}
    order = [position[i] for i in ids]
    np.testing.assert_allclose(served.stats, expected.stats[order], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(served.contacts, expected.contacts[order])
    np.testing.assert_allclose(via_scoring.stats, served.stats, rtol=1e-9, atol=1e-9)
    assert expected.stats[:, :, 0].sum() > 0, "the day has recent records to compare"


def test_the_hand_set_score_as_of_a_day_is_the_scoring_jobs(planted: Planted):
    """The backtest's baseline is the score the scoring job gives (it scored the seed today)."""
    today = day_of(int(datetime.now(UTC).timestamp() * 1_000_000))
    with planted.db.read() as conn:
        history = load_history(conn, planted.workspace_id, until_day=today, settings=DEFAULT_SETTINGS)
        stored = dict(
            conn.execute(
                select(accounts.c.id, accounts.c.account_score).where(accounts.c.workspace_id == planted.workspace_id)
            ).all()
        )
    members = history.population(today)
    computed = history.hand_set_scores(today)
    compared = [(stored[int(history.ids[i])], computed[i]) for i in np.flatnonzero(members)]
    assert len(compared) > 1000
    assert all(a == b for a, b in compared), [pair for pair in compared if pair[0] != pair[1]][:5]


def test_a_feature_known_only_after_the_opportunity_never_reaches_the_training_rows(planted: Planted):
    """Leakage guard: LinkedIn clicks planted on the days after each opportunity opened (as a
    CRM would log a won account's ad engagement) change no row whose outcome they could reveal."""
    history = planted.history
    day = day_of(AS_OF_US)
    days = snapshot_days(history, as_of_day=day, horizon_days=HORIZON)
    before = build_rows(history, days, HORIZON)
    opened = {}
    for account, opened_day in zip(history.deal_account.tolist(), history.deal_opened.tolist(), strict=True):
        opened[account] = min(opened_day, opened.get(account, opened_day))
    leak = [
        {
            "workspace_id": planted.workspace_id,
            "source": "linkedin_ads",
            "type": "click",
            "domain": planted.domains[int(history.ids[account])],
            "occurred_us": (opened_day + offset) * US_PER_DAY + 12 * 3600 * 1_000_000,
            "occurred_day": opened_day + offset,
            "count": 25,
            "weight": 1.0,
            "created_us": AS_OF_US,
        }
        for account, opened_day in opened.items()
        for offset in range(0, 20, 2)
        if opened_day + offset <= day
    ]
    assert len(leak) > 1000
    workspace_copy = _copy_of_history_with(planted, leak)
    after = build_rows(workspace_copy, days, HORIZON)
    # Every row labelled by an opportunity that had not opened yet: the clicks after it are unseen.
    # (A row after an account's first opportunity, labelled by a second one, sees the clicks of
    # the first: they are in its past, not leaked.)
    first_opening = np.array([opened.get(int(a), np.iinfo(np.int64).max) for a in before.account])
    positive = (before.y == 1) & (before.day < first_opening)
    assert positive.sum() >= 30
    linkedin = [j for j, name in enumerate(FEATURE_NAMES) if name.startswith("linkedin_ads_")]
    np.testing.assert_allclose(after.x[positive][:, linkedin], before.x[positive][:, linkedin], rtol=0, atol=1e-12)
    assert not np.array_equal(after.x, before.x), "the planted clicks do reach the rows after the openings"


def _copy_of_history_with(planted: Planted, extra: list[dict[str, Any]]) -> History:
    """The history as it would load with `extra` signal rows stored (in a rolled-back transaction)."""
    with planted.db.engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(signals.insert(), extra)
            return load_history(conn, planted.workspace_id, until_day=day_of(AS_OF_US), settings=DEFAULT_SETTINGS)
        finally:
            transaction.rollback()


def test_a_scoring_run_refreshes_the_predictions_with_the_same_numbers(planted: Planted):
    day = day_of(AS_OF_US)
    with planted.db.read() as conn:
        model = serving.active_model(conn, planted.workspace_id)
        assert model is not None
        rows = engine.next_batch(conn, planted.workspace_id, after="", only_dirty=False)
        scored = engine.compute_batch(
            conn, planted.workspace_id, rows, DEFAULT_SETTINGS, day, at_us=AS_OF_US, model=model
        )
        batch = {row.domain: row.id for row in rows}
        flags = engine.deal_flags(conn, list(batch.values()))
        taken = {i: won or open_ for i, (won, open_) in flags.items()}
        standalone = serving.prediction_rows(conn, planted.workspace_id, model, batch, taken, day, AS_OF_US)
    assert sorted(scored.predictions) == sorted(standalone)
    with_deal = [row for row in scored.predictions if taken.get(row[0])]
    assert with_deal and all(row[4] is None and row[6] is None for row in with_deal), (
        "an open or won deal: no prediction"
    )
    predicted = [row for row in scored.predictions if row[4] is not None]
    assert {row[6] for row in predicted} == {"A", "B", "C", "D"}


def test_the_prediction_endpoint_and_the_models_list(planted: Planted):
    key = tenancy.create_key(planted.db, workspace="planted", user_email="ml@example.com")
    app = create_app(Settings(database_url=planted.db.url), planted.db)
    with TestClient(app, headers={"X-Api-Key": key}) as client:
        models = client.get("/api/v1/models").json()["data"]
        assert models[0]["modelId"] == planted.record.model_id or any(m["active"] for m in models)
        active = next(m for m in models if m["active"])
        assert active["horizonDays"] == HORIZON and active["trainedOn"]["positives"] >= 30
        assert {"rocAuc", "prAuc", "brier", "topDecileLift", "handSetRocAuc", "handSetTopDecileLift", "bands"} <= set(
            active["backtest"]
        )
        with planted.db.read() as conn:
            top = conn.execute(
                select(accounts.c.rtp_aid, account_predictions.c.probability)
                .join(account_predictions, account_predictions.c.account_id == accounts.c.id)
                .where(accounts.c.workspace_id == planted.workspace_id, account_predictions.c.probability.is_not(None))
                .order_by(account_predictions.c.probability.desc())
                .limit(1)
            ).one()
        body = client.get(f"/api/v1/accounts/{top.rtp_aid}/prediction").json()["data"]
        assert body["modelId"] == active["modelId"] and body["band"] == "A"
        assert 0 <= body["probability30d"] <= 1 and body["probability"] == top.probability
        assert 1 <= len(body["factors"]) <= 5
        sizes = [abs(f["contribution"]) for f in body["factors"]]
        assert sizes == sorted(sizes, reverse=True), "the top factors, largest first"
        assert all(set(f) >= {"feature", "value", "contribution"} and " " in f["feature"] for f in body["factors"])
        missing = client.get("/api/v1/accounts/000000000000000000000000/prediction")
        assert missing.status_code == 404
    tenancy.create_workspace(planted.db, name="stranger")
    stranger = tenancy.create_key(planted.db, workspace="stranger", user_email="s@example.com")
    with TestClient(app, headers={"X-Api-Key": stranger}) as client:
        assert client.get("/api/v1/models").json()["data"] == [], "another workspace sees no model"
        foreign = client.get(f"/api/v1/accounts/{top.rtp_aid}/prediction")
        assert foreign.status_code == 404, f"another workspace's account is not found: {foreign.text}"


def test_no_active_model_is_a_404_with_the_contracts_message(database: Database):
    workspace_id = tenancy.create_workspace(database, name="empty")
    key = tenancy.create_key(database, workspace="empty", user_email="x@example.com")
    accounts_service.push_accounts(
        database, workspace_id=workspace_id, items=[AccountItem.model_validate({"name": "Acme", "domain": "acme.com"})]
    )
    app = create_app(Settings(database_url=database.url), database)
    with TestClient(app, headers={"X-Api-Key": key}) as client:
        rtp_aid = client.get("/api/v1/accounts").json()["data"]["data"][0]["rtp_aid"]
        assert client.get("/api/v1/models").json()["data"] == []
        answer = client.get(f"/api/v1/accounts/{rtp_aid}/prediction")
        assert answer.status_code == 404, answer.text
        assert answer.json()["customMessage"] == "No active model for this workspace"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_training_refuses_too_little_history_and_too_few_positives(database: Database, tmp_path):
    tenancy.create_workspace(database, name="young")
    command = [sys.executable, "-m", "abmhub", "model", "train", "--workspace", "young", "--database-url", database.url]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "Too little history" in " ".join(refused.stderr.split()), refused.stderr
    # Enough history, too few opportunities: 40 planted accounts open fewer than 30.
    seed_workspace(database, workspace="small", accounts=40, seed=3, as_of=AS_OF, planted=True)
    command[command.index("young")] = "small"
    refused = subprocess.run([*command, "--as-of", "2026-04-30"], capture_output=True, text=True, timeout=120)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 1 and "Too few positive examples" in said, said
    assert "at least 30 are needed" in said
    with database.read() as conn:
        small = conn.execute(select(workspaces.c.id).where(workspaces.c.name == "small")).scalar_one()
    assert service.list_models(database, workspace_id=small) == [], "nothing stored, nothing activated"


def test_activation_refuses_a_model_that_loses_and_rolls_back_to_an_earlier_one(planted: Planted):
    first = planted.record.model_id
    later, _ = service.train_model(
        planted.db, workspace_id=planted.workspace_id, horizon_days=60, as_of_us=AS_OF_US, activate=True
    )
    assert later.active and not service.get_model(planted.db, workspace_id=planted.workspace_id, model_id=first).active
    service.activate_model(planted.db, workspace_id=planted.workspace_id, model_id=first)
    assert service.get_model(planted.db, workspace_id=planted.workspace_id, model_id=first).active
    with planted.db.read() as conn:
        models = {row.model_pk for row in conn.execute(select(account_predictions.c.model_pk))}
    assert models == {planted.record.pk}, "after a rollback every prediction is the earlier model's"
    with planted.db.write(planted.workspace_id) as tx:  # a model whose backtest lost
        tx.conn.execute(
            prediction_models.update()
            .where(prediction_models.c.model_id == later.model_id)
            .values(beats_hand_set=False)
        )
    with pytest.raises(service.ModelDoesNotBeatHandSet, match="did not beat the hand-set score"):
        service.activate_model(planted.db, workspace_id=planted.workspace_id, model_id=later.model_id)
