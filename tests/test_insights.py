"""The overview's lists (surging, untouched high scores, quiet open deals) on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.activities import service as activities_service
from abmhub.activities.schemas import ActivityItem
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, signals
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import DealItem, PipelineDefinition
from abmhub.insights import service as insights
from abmhub.scoring.model import US_PER_DAY as DAY
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import format_us, now_us

TODAY = 20_400


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def push_accounts(db: Database, workspace_id: int, *domains: str) -> None:
    items = [AccountItem.model_validate({"domain": d, "name": d.split(".")[0].title()}) for d in domains]
    accounts_service.push_accounts(db, workspace_id=workspace_id, items=items)


def signals_on(db: Database, workspace_id: int, domain: str, *days_ago: int) -> None:
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": workspace_id,
            "source": "g2",
            "type": "profile_view",
            "domain": domain,
            "weight": 1.0,
            "count": 1,
            "created_us": (TODAY - ago) * DAY,
            "occurred_us": (TODAY - ago) * DAY,
            "occurred_day": TODAY - ago,
        }
        for ago in days_ago
    ]
    with db.write(workspace_id) as tx:
        tx.conn.execute(insert(signals), rows)


def test_surging_is_this_weeks_intent_at_least_twice_the_weekly_rate_before(database, workspace_id):
    push_accounts(database, workspace_id, "rising.com", "steady.com", "faint.com", "surge2.com")
    signals_on(database, workspace_id, "rising.com", 0, 1, 2, 3, 6, 10)  # 5 this week, 1 before
    signals_on(database, workspace_id, "steady.com", 0, 1, 2, *range(7, 28, 2))  # 3 this week, 3.7/week before
    signals_on(database, workspace_id, "faint.com", 0, 1)  # too few
    signals_on(database, workspace_id, "surge2.com", 0, 1, 2, 30, 31, 40)  # 3 this week, none in the 21 days
    signals_on(database, workspace_id, "nobody.com", 0, 1, 2, 3)  # no account
    assert insights.surging_accounts_now(database, workspace_id=workspace_id) == [], "kept by the scoring job"
    with database.write(workspace_id) as tx:
        insights.record_surging(tx.conn, workspace_id=workspace_id, today=TODAY)
    found = insights.surging_accounts_now(database, workspace_id=workspace_id)
    assert [s.domain for s in found] == ["rising.com", "surge2.com"], "strongest rise first"
    assert (found[0].this_week, found[0].weekly_before) == (5, pytest.approx(1 / 3))
    other = tenancy.create_workspace(database, name="other")
    assert insights.surging_accounts_now(database, workspace_id=other) == []
    # Kept anew by the next run: the week moves on, nothing surges any more.
    with database.write(workspace_id) as tx:
        insights.record_surging(tx.conn, workspace_id=workspace_id, today=TODAY + 60)
    assert insights.surging_accounts_now(database, workspace_id=workspace_id) == []


def test_the_scoring_job_keeps_the_surge(database, workspace_id):
    from abmhub.scoring.service import run_scoring

    push_accounts(database, workspace_id, "rising.com")
    signals_on(database, workspace_id, "rising.com", 0, 1, 2, 3)
    run_scoring(database, clock=lambda: TODAY * DAY + 3600 * 1_000_000)
    assert [s.domain for s in insights.surging_accounts_now(database, workspace_id=workspace_id)] == ["rising.com"]


def set_scores(db: Database, workspace_id: int, scores: dict[str, int]) -> None:
    with db.write(workspace_id) as tx:
        for domain, score in scores.items():
            tx.conn.execute(accounts.update().where(accounts.c.domain == domain).values(account_score=score))


def call(domain: str, days_ago: float, ext: str) -> ActivityItem:
    return ActivityItem.model_validate(
        {
            "externalActivityId": ext,
            "activityType": "call",
            "occurredAt": format_us(now_us() - int(days_ago * DAY)),
            "domain": domain,
            "ownerEmail": "rep@seller.com",
            "contacts": [{"email": f"buyer@{domain}"}],
        }
    )


def test_high_scores_without_a_touch_in_14_days(database, workspace_id):
    push_accounts(database, workspace_id, "hot.com", "called.com", "stale.com", "cold.com")
    set_scores(database, workspace_id, {"hot.com": 90, "called.com": 95, "stale.com": 60, "cold.com": 20})
    activities_service.push_activities(
        database, workspace_id=workspace_id, items=[call("called.com", 2, "c1"), call("stale.com", 20, "c2")]
    )
    found = insights.untouched_high_scores(database, workspace_id=workspace_id)
    assert [(a.domain, a.account_score) for a in found] == [("hot.com", 90), ("stale.com", 60)]
    assert found[0].last_touch_us is None and found[1].last_touch_us is not None


def test_open_deals_with_no_activity_in_14_days(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com", "c.com")
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
                    ],
                }
            )
        ],
    )

    def deal(ext: str, domain: str, stage: str, amount: float) -> DealItem:
        return DealItem.model_validate(
            {
                "externalDealId": ext,
                "name": f"Deal {ext}",
                "amount": amount,
                "pipelineId": "p",
                "stageId": stage,
                "associatedAccounts": [{"domain": domain}],
            }
        )

    deals_service.push_deals(
        database,
        workspace_id=workspace_id,
        items=[deal("quiet", "a.com", "demo", 10), deal("busy", "b.com", "demo", 50), deal("won", "c.com", "won", 90)],
    )
    activities_service.push_activities(database, workspace_id=workspace_id, items=[call("b.com", 1, "c1")])
    found = insights.quiet_open_deals(database, workspace_id=workspace_id)
    assert [(d.name, d.account_name, d.last_activity_us) for d in found] == [("Deal quiet", "A", None)]
    # An old touch of the account makes the deal no less quiet, and shows as its last activity.
    activities_service.push_activities(database, workspace_id=workspace_id, items=[call("a.com", 20, "c2")])
    [quiet] = insights.quiet_open_deals(database, workspace_id=workspace_id)
    assert quiet.name == "Deal quiet" and quiet.rtp_aid is not None
    assert quiet.last_activity_us is not None and now_us() - quiet.last_activity_us > 19 * DAY


def test_the_surge_is_kept_by_the_full_run_and_at_most_hourly_besides(database, workspace_id):
    from abmhub.scoring.service import run_scoring

    hour = 3600 * 1_000_000
    push_accounts(database, workspace_id, "early.com", "late.com")
    signals_on(database, workspace_id, "early.com", 0, 1, 2)
    run_scoring(database, clock=lambda: TODAY * DAY + hour)  # the day's first run: a full one
    signals_on(database, workspace_id, "late.com", 0, 1, 2, 3)
    with database.write(workspace_id) as tx:  # as a push does: its account is scored again
        tx.conn.execute(accounts.update().where(accounts.c.domain == "late.com").values(score_dirty=True))

    def surging() -> list[str]:
        return [s.domain for s in insights.surging_accounts_now(database, workspace_id=workspace_id)]

    run_scoring(database, clock=lambda: TODAY * DAY + 2 * hour - 1)
    assert surging() == ["early.com"], "an incremental run within the hour keeps the surge as it was"
    run_scoring(database, clock=lambda: TODAY * DAY + 2 * hour)
    assert surging() == ["late.com", "early.com"], "an hour after, the surge is kept anew"
