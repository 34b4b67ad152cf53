"""The scoring model (pure) and the engine (both databases)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, signals
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import DealItem, PipelineDefinition
from abmhub.scoring import model
from abmhub.scoring.explain import explain_account
from abmhub.scoring.service import ScoringBusy, run_scoring, scoring_lock
from abmhub.scoring.settings import DEFAULT_SETTINGS, settings_from
from abmhub.segments import service as segments_service
from abmhub.tenancy import service as tenancy

DAY = model.US_PER_DAY
TODAY = 20_000  # a fixed UTC day: runs are deterministic for a given clock


def clock() -> int:
    return TODAY * DAY + 12 * 3600 * 1_000_000


# --- the pure model ------------------------------------------------------------------------------


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0.1, max_value=1e4))
def test_saturation_stays_within_0_and_100_and_grows_with_the_total(total, k):
    score = model.saturate(total, k)
    assert 0 <= score <= 100
    assert model.saturate(total * 2 + 1, k) >= score


@given(st.integers(min_value=0, max_value=400), st.integers(min_value=1, max_value=300))
def test_an_older_signal_is_never_worth_more(age, later):
    g2 = DEFAULT_SETTINGS.sources["g2"]
    fresh = model.signal_points(g2, "pricing_view", weight=1, count=1, score=None, age_days=age)
    old = model.signal_points(g2, "pricing_view", weight=1, count=1, score=None, age_days=age + later)
    assert old <= fresh


def test_a_signal_loses_half_its_worth_per_half_life():
    website = DEFAULT_SETTINGS.sources["website"]
    fresh = model.signal_points(website, "page_view", weight=1, count=1, score=None, age_days=0)
    aged = model.signal_points(website, "page_view", weight=1, count=1, score=None, age_days=14)
    assert aged == pytest.approx(fresh / 2)


def test_bombora_counts_only_the_surge_above_the_baseline():
    bombora = DEFAULT_SETTINGS.sources["bombora"]
    assert model.base_points(bombora, "surge", weight=1, count=1, score=50) == 0
    assert model.base_points(bombora, "surge", weight=1, count=1, score=80) == 60


def inputs(**kw: Any) -> model.AccountInputs:
    defaults: dict[str, Any] = {
        "source_points": {},
        "engagement_points": 0.0,
        "has_won_deal": False,
        "has_open_deal": False,
    }
    return model.AccountInputs(**{**defaults, **kw})


def test_journey_stages_are_evaluated_from_the_most_advanced_down():
    s = DEFAULT_SETTINGS
    assert model.score_account(s, inputs()).journey_stage == "Unaware"
    assert model.score_account(s, inputs(source_points={"website": 2})).journey_stage == "Aware"
    hot = {"g2": 500, "website": 100, "bombora": 200, "linkedin_ads": 200}
    assert model.score_account(s, inputs(source_points=hot)).journey_stage == "Consideration"
    assert model.score_account(s, inputs(has_open_deal=True)).journey_stage == "Opportunity"
    assert model.score_account(s, inputs(has_open_deal=True, has_won_deal=True)).journey_stage == "Customer"


def test_workspace_overrides_change_only_what_they_name():
    custom = settings_from({"weights": {"g2": 0.5}, "sources": {"g2": {"half_life_days": 7}}, "aware_threshold": 9})
    assert custom.weights["g2"] == 0.5 and custom.weights["website"] == DEFAULT_SETTINGS.weights["website"]
    assert custom.sources["g2"].half_life_days == 7
    assert custom.sources["g2"].points == DEFAULT_SETTINGS.sources["g2"].points
    assert custom.aware_threshold == 9


# --- the engine ----------------------------------------------------------------------------------


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def push_accounts(db: Database, workspace_id: int, *domains: str) -> None:
    accounts_service.push_accounts(
        db, workspace_id=workspace_id, items=[AccountItem.model_validate({"domain": d, "name": d}) for d in domains]
    )


def add_signals(db: Database, workspace_id: int, *rows: dict[str, Any]) -> None:
    """Insert signals and mark their accounts dirty, in one write transaction of the workspace (a push)."""
    full = [
        {
            "workspace_id": workspace_id,
            "weight": 1.0,
            "count": 1,
            "score": None,
            "created_us": clock(),
            "occurred_us": (TODAY - row.get("age", 0)) * DAY,
            "occurred_day": TODAY - row.get("age", 0),
            **{k: v for k, v in row.items() if k != "age"},
        }
        for row in rows
    ]
    with db.write(workspace_id) as tx:
        tx.conn.execute(insert(signals), full)
        tx.conn.execute(
            accounts.update()
            .where(accounts.c.workspace_id == workspace_id, accounts.c.domain.in_([r["domain"] for r in rows]))
            .values(score_dirty=True)
        )


def scores(db: Database) -> dict[str, Any]:
    with db.read() as conn:
        return {row.domain: row for row in conn.execute(select(accounts))}


def test_stronger_and_more_recent_signals_score_higher(database, workspace_id):
    push_accounts(database, workspace_id, "fresh.com", "stale.com", "weak.com", "quiet.com")
    add_signals(
        database,
        workspace_id,
        {"source": "g2", "type": "pricing_view", "domain": "fresh.com"},
        {"source": "g2", "type": "pricing_view", "domain": "stale.com", "age": 60},
        {"source": "g2", "type": "category_view", "domain": "weak.com"},
    )
    run_scoring(database, clock=clock)
    got = scores(database)
    assert got["fresh.com"].g2_score > got["stale.com"].g2_score > 0
    assert got["fresh.com"].g2_score > got["weak.com"].g2_score > 0
    assert got["fresh.com"].account_score > got["stale.com"].account_score
    assert got["fresh.com"].website_score == 0, "a sub-score only for sources with signals"
    assert (got["quiet.com"].account_score, got["quiet.com"].journey_stage) == (0, "Unaware")


def test_a_new_account_reads_zero_and_no_stage_until_scored(database, workspace_id):
    push_accounts(database, workspace_id, "new.com")
    assert (scores(database)["new.com"].account_score, scores(database)["new.com"].journey_stage) == (0, "")


def test_repeated_runs_with_no_new_data_change_nothing(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    add_signals(database, workspace_id, {"source": "website", "type": "page_view", "domain": "a.com"})
    first = run_scoring(database, clock=clock)
    assert first.changed == 2
    before = {d: r.change_us for d, r in scores(database).items()}
    again = run_scoring(database, clock=clock)
    assert again.scored == 0, "an incremental run on the same day scores nothing when nothing changed"
    forced = run_scoring(database, full=True, clock=clock)
    assert forced.scored == 2 and forced.changed == 0
    assert {d: r.change_us for d, r in scores(database).items()} == before, "unchanged scores are not rewritten"


def test_an_incremental_run_rescores_only_accounts_whose_inputs_changed(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com", "c.com")
    run_scoring(database, clock=clock)
    add_signals(database, workspace_id, {"source": "bombora", "type": "surge", "domain": "b.com", "score": 80})
    report = run_scoring(database, clock=clock)
    assert report.scored == 1 and report.changed == 1
    assert scores(database)["b.com"].bombora_score > 0


def test_decay_is_applied_once_per_day(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    add_signals(database, workspace_id, {"source": "website", "type": "page_view", "domain": "a.com"} | {"count": 10})
    run_scoring(database, clock=clock)
    today = scores(database)["a.com"].website_score
    run_scoring(database, clock=lambda: clock() + 30 * DAY)  # a new day: every account, decayed
    assert scores(database)["a.com"].website_score < today


def test_deals_drive_journey_stages(database, workspace_id):
    push_accounts(database, workspace_id, "open.com", "won.com", "lost.com")
    deals_service.create_pipelines(
        database,
        workspace_id=workspace_id,
        definitions=[
            PipelineDefinition.model_validate(
                {
                    "pipelineId": "p",
                    "pipelineLabel": "Sales",
                    "stages": [
                        {"stageId": "demo", "stageLabel": "Demo"},
                        {"stageId": "won", "stageLabel": "Closed Won"},
                        {"stageId": "lost", "stageLabel": "Closed Lost"},
                    ],
                }
            )
        ],
    )
    deals_service.push_deals(
        database,
        workspace_id=workspace_id,
        items=[
            DealItem.model_validate(
                {
                    "externalDealId": d,
                    "name": d,
                    "pipelineId": "p",
                    "stageId": stage,
                    "associatedAccounts": [{"domain": d}],
                }
            )
            for d, stage in (("open.com", "demo"), ("won.com", "won"), ("lost.com", "lost"))
        ],
    )
    run_scoring(database, clock=clock)
    got = scores(database)
    assert got["open.com"].journey_stage == "Opportunity"
    assert got["won.com"].journey_stage == "Customer"
    assert got["lost.com"].journey_stage == "Unaware", "a lost deal counts for nothing"


def test_a_score_change_is_a_change_for_delta_sync(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    before = scores(database)["a.com"].change_us
    add_signals(database, workspace_id, {"source": "g2", "type": "comparison", "domain": "a.com"})
    run_scoring(database, clock=clock)
    assert scores(database)["a.com"].change_us > before


def test_dynamic_segments_follow_their_rule(database, workspace_id):
    push_accounts(database, workspace_id, "hot.com", "cold.com")
    segment = segments_service.create_segment(
        database,
        workspace_id=workspace_id,
        name="Hot",
        type="dynamic",
        status="active",
        rule={"all": [{"field": "rtp_g2_intent_score", "op": "gte", "value": 30}]},
    )
    add_signals(database, workspace_id, {"source": "g2", "type": "pricing_view", "domain": "hot.com"})
    run_scoring(database, clock=clock)
    page, _extras = accounts_service.list_accounts(
        database,
        workspace_id=workspace_id,
        page=accounts_service.PageRequest(limit=10),
        filters=accounts_service.AccountFilter(segment_id=segment.segment_id),
    )
    assert [row.domain for row in page.items] == ["hot.com"]


def members(db: Database, workspace_id: int, segment_id: str) -> list[str]:
    page, _ = accounts_service.list_accounts(
        db,
        workspace_id=workspace_id,
        page=accounts_service.PageRequest(limit=100),
        filters=accounts_service.AccountFilter(segment_id=segment_id),
    )
    return sorted(row.domain for row in page.items)


def test_incremental_runs_keep_dynamic_segments_exact(database, workspace_id):
    """Between daily full runs only changed accounts are re-evaluated; the result must not differ."""
    push_accounts(database, workspace_id, "hot.com", "warm.com", "cold.com")
    add_signals(database, workspace_id, {"source": "g2", "type": "pricing_view", "domain": "hot.com"})
    assert run_scoring(database, clock=clock).workspaces[0].full, "the first run of the day is a full one"

    segment = segments_service.create_segment(
        database, workspace_id=workspace_id, name="Hot", type="dynamic", status="active",
        rule={"all": [{"field": "rtp_g2_intent_score", "op": "gte", "value": 30}]},
    )  # fmt: skip
    report = run_scoring(database, clock=clock)
    assert not report.workspaces[0].full and report.scored == 0, "nothing changed: an incremental run"
    assert members(database, workspace_id, segment.segment_id) == ["hot.com"], (
        "a segment created after the last run is evaluated against every account, changed or not"
    )

    add_signals(database, workspace_id, {"source": "g2", "type": "pricing_view", "domain": "warm.com"})
    run_scoring(database, clock=clock)
    assert members(database, workspace_id, segment.segment_id) == ["hot.com", "warm.com"], (
        "an account whose score rose since the last run joins"
    )

    segments_service.update_segment(
        database, workspace_id=workspace_id, segment_id=segment.segment_id,
        changes={"rule": {"all": [{"field": "rtp_g2_intent_score", "op": "lt", "value": 30}]}},
    )  # fmt: skip
    run_scoring(database, clock=clock)
    assert members(database, workspace_id, segment.segment_id) == ["cold.com"], (
        "an edited rule re-evaluates every account"
    )


def test_only_one_scoring_run_at_a_time(database, workspace_id):
    with scoring_lock(database), pytest.raises(ScoringBusy):
        run_scoring(database, clock=clock)
    run_scoring(database, clock=clock)  # the lock is free again


def test_the_explanation_names_each_sources_share_and_the_top_signals(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    add_signals(
        database,
        workspace_id,
        {"source": "g2", "type": "pricing_view", "domain": "a.com"},
        {"source": "website", "type": "page_view", "domain": "a.com", "age": 3},
    )
    run_scoring(database, clock=clock)
    rtp_aid = scores(database)["a.com"].rtp_aid
    body = explain_account(database, workspace_id=workspace_id, rtp_aid=rtp_aid, clock=clock)
    assert [s["source"] for s in body["sources"]] == ["website", "g2", "bombora", "linkedin_ads"]
    g2 = next(s for s in body["sources"] if s["source"] == "g2")
    assert g2["signals"] == 1 and g2["score"] == scores(database)["a.com"].g2_score
    assert g2["contribution"] == pytest.approx(g2["weight"] * g2["score"])
    assert body["topSignals"][0]["type"] == "pricing_view", "the signal that weighs most comes first"
    assert body["rtp_account_score"] == scores(database)["a.com"].account_score
    assert body["computedAt"] is not None


def test_a_failing_workspace_does_not_stop_the_others(database, workspace_id):
    from abmhub.db.tables import segments as segments_table

    other = tenancy.create_workspace(database, name="globex")
    push_accounts(database, workspace_id, "a.com")
    push_accounts(database, other, "b.com")
    with database.write(workspace_id) as tx:  # a rule the API would refuse, stored behind its back
        tx.conn.execute(
            insert(segments_table).values(
                workspace_id=workspace_id,
                segment_id="f" * 24,
                name="Broken",
                type="dynamic",
                status="active",
                rule={"all": [{"field": "rtp_account_score", "op": "gte", "value": {"x": 1}}]},
                created_us=0,
                change_us=0,
            )
        )
    report = run_scoring(database, clock=clock)
    assert [run.failed for run in report.workspaces] == [True, False]
    assert scores(database)["b.com"].journey_stage == "Unaware", "the next workspace was still scored"


def test_rule_values_must_fit_their_operator():
    from pydantic import ValidationError

    from abmhub.segments.schemas import SegmentRule

    SegmentRule.model_validate({"all": [{"field": "rtp_journey_stage", "op": "in", "value": ["Aware"]}]})
    for bad in (
        {"field": "rtp_account_score", "op": "gte", "value": {"x": 1}},
        {"field": "rtp_account_score", "op": "gte", "value": [1, 2]},
        {"field": "rtp_journey_stage", "op": "in", "value": "Aware"},
        {"field": "rtp_account_score", "op": "contains", "value": 1},
    ):
        with pytest.raises(ValidationError):
            SegmentRule.model_validate({"all": [bad]})


def test_full_runs_read_signals_in_the_databases_collation(postgres_cluster):
    """A full run reads each batch's signals as one domain range; the range must follow the
    database's collation, which need not be Python's string order. Under ICU with punctuation
    ignored, 'ab.com' sorts before 'a-c.com'; in Python it sorts after."""
    with postgres_cluster._admin_connect() as conn:
        try:
            conn.execute(
                "CREATE DATABASE scoring_collation TEMPLATE template0 LOCALE_PROVIDER icu "
                "ICU_LOCALE 'und-u-ka-shifted' LOCALE 'C'"
            )
        except Exception as exc:
            pytest.skip(f"this PostgreSQL cannot create an ICU database: {exc}")
    db = Database(postgres_cluster.url("scoring_collation"))
    try:
        from abmhub.db.migrate import upgrade

        upgrade(db)
        with db.read() as conn:
            order = conn.exec_driver_sql("SELECT 'ab.com' < 'a-c.com'").scalar_one()
        assert order, "the database's collation orders these two domains unlike Python"
        workspace = tenancy.create_workspace(db, name="acme")
        push_accounts(db, workspace, "a-c.com", "ab.com", "b.com")
        add_signals(
            db,
            workspace,
            *({"source": "g2", "type": "pricing_view", "domain": d} for d in ("a-c.com", "ab.com", "b.com")),
        )
        run_scoring(db, full=True, clock=clock)
        g2 = {d: r.g2_score for d, r in scores(db).items()}
        assert g2["a-c.com"] > 0 and len(set(g2.values())) == 1, f"the same signal scores the same: {g2}"
    finally:
        db.dispose()


def test_settings_overrides_are_checked_key_by_key():
    from abmhub.scoring.settings import InvalidSettings, check_overrides

    assert check_overrides({"sources": {"bombora": {"surge_baseline": 60}}}).sources["bombora"].surge_baseline == 60
    with pytest.raises(InvalidSettings) as caught:
        check_overrides(
            {
                "sources": {"g2": {"half_life_days": 0, "points": {"pricing_view": -1, "demo": 3}}, "tiktok": {}},
                "weights": {"g2": 0.5},
                "colour": "blue",
            }
        )
    assert caught.value.problems == [
        "sources.g2.half_life_days must be a number > 0",
        "sources.g2.points.demo is not one of: category_view, comparison, profile_view, pricing_view",
        "sources.g2.points.pricing_view must be a number >= 0",
        "sources.tiktok is not one of: website, g2, bombora, linkedin_ads",
        "colour is not a setting",
    ]
    with pytest.raises(InvalidSettings, match=r"weights must add up to 1 \(they add up to 1.3\)"):
        check_overrides({"weights": {"g2": 0.5}})


def test_new_settings_apply_to_every_account_at_the_next_run(database, workspace_id):
    from abmhub.scoring.service import set_workspace_settings, workspace_settings

    push_accounts(database, workspace_id, "a.com")
    add_signals(database, workspace_id, {"source": "bombora", "type": "surge", "domain": "a.com", "score": 70})
    run_scoring(database, clock=clock)
    before = scores(database)["a.com"].bombora_score
    set_workspace_settings(database, workspace_id, {"sources": {"bombora": {"surge_baseline": 60}}})
    assert workspace_settings(database, workspace_id)[1].sources["bombora"].surge_baseline == 60
    report = run_scoring(database, clock=clock)
    assert report.workspaces[0].full, "new settings make the next run a full one, though no input changed"
    assert 0 < scores(database)["a.com"].bombora_score < before, "only surge points above 60 count now"
    set_workspace_settings(database, workspace_id, None)
    assert workspace_settings(database, workspace_id)[0] is None, "reset: back to the defaults"


@pytest.mark.parametrize("key", ['SAY_"HI"_C', "BACK\\SLASH_C", "PLAIN_C"])
def test_a_rule_on_a_custom_field_whose_key_holds_quotes_or_backslashes(database, workspace_id, key):
    from sqlalchemy import func as sql_func

    from abmhub.scoring.rules import condition_sql

    push_accounts(database, workspace_id, "a.com", "b.com")
    with database.write(workspace_id) as tx:
        tx.conn.execute(accounts.update().where(accounts.c.domain == "a.com").values(custom_fields={key: 7}))
    with database.read() as conn:
        where = condition_sql(conn, {"field": f"customFields.{key}", "op": "gte", "value": 5})
        matched = conn.execute(select(accounts.c.domain).where(where)).scalars().all()
        assert matched == ["a.com"]
        assert conn.execute(select(sql_func.count()).select_from(accounts)).scalar_one() == 2
