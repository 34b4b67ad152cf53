"""`abmhub seed`: a deterministic, realistic sandbox data set, with scores, on both databases."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from abmhub.accounts.schemas import AccountItem
from abmhub.activities.schemas import ActivityItem
from abmhub.client import RecotapClient
from abmhub.deals.schemas import DealItem
from abmhub.sandbox.data import SandboxGenerator
from abmhub.sandbox.seed import seed_workspace
from abmhub.signals.schemas import SignalItem
from abmhub.tenancy import service as tenancy

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)


def plans(seed: int, accounts: int) -> list:
    return list(SandboxGenerator(seed=seed, accounts=accounts, as_of=AS_OF).plans())


def test_the_generator_is_deterministic_and_its_items_are_valid_requests():
    first, again = plans(7, 400), plans(7, 400)
    assert first == again
    assert plans(7, 100) == first[:100], "a smaller data set is the start of a larger one"
    assert [p.account["domain"] for p in plans(8, 50)] != [p.account["domain"] for p in first[:50]]
    many = plans(3, 5000)
    domains = [p.account["domain"] for p in many]
    assert len(set(domains)) == len(domains) and len({p.account["name"] for p in many}) == len(many)
    for plan in first:
        AccountItem.model_validate(plan.account)
        for deal in plan.deals:
            DealItem.model_validate(deal)
        for activity in plan.activities:
            ActivityItem.model_validate(activity)
        for signal in plan.signals:
            SignalItem.model_validate(signal)
            assert signal["occurredAt"] < "2026-04-30" and signal["occurredAt"] >= "2026-01-30"
    sources = Counter(s["source"] for p in first for s in p.signals)
    assert set(sources) == {"website", "g2", "bombora", "linkedin_ads"}
    assert sum(len(p.deals) for p in first) > 20 and sum(len(p.activities) for p in first) > 400


def test_seed_twice_with_one_seed_gives_identical_scored_workspaces(cli, server, server_database):
    names = [f"seed-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    # Today (scores decay from the day they are computed), but pinned: both seeds end on one day.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for name in names:
        proc = cli(
            "seed", "--workspace", name, "--accounts", "120", "--seed", "42", "--as-of", today.date().isoformat()
        )
        assert proc.returncode == 0, proc.stderr
        assert "Scored 120 accounts" in proc.stdout

    def snapshot(name: str) -> tuple[list, list, int]:
        key = tenancy.create_key(server_database, workspace=name, user_email="dev@example.com")
        with RecotapClient(server.base_url, key) as client:
            accounts = sorted(client.iter_accounts(), key=lambda a: a.domain)
            deals = sorted(
                (d.externalDealId, d.stageId, [h.stageId for h in d.stageHistory]) for d in client.iter_deals()
            )
            activities = sum(1 for _ in client.iter_sales_activities())
        return accounts, deals, activities

    (first, first_deals, first_activities), (second, second_deals, second_activities) = map(snapshot, names)
    assert [(a.domain, a.name, a.externalId, a.tags, a.customFields) for a in first] == [
        (a.domain, a.name, a.externalId, a.tags, a.customFields) for a in second
    ]
    assert (first_deals, first_activities) == (second_deals, second_activities)
    assert [(a.rtp_account_score, a.rtp_journey_stage) for a in first] == [
        (a.rtp_account_score, a.rtp_journey_stage) for a in second
    ], "same data, same day: same scores"
    assert len(first) == 120 and first_activities > 100 and first_deals
    assert all(a.rtp_journey_stage for a in first), "every account has been scored"
    assert sum(a.rtp_account_score > 0 for a in first) > 40
    assert {"Aware", "Opportunity"} <= {a.rtp_journey_stage for a in first}

    # Seeding again converges on the same data: nothing is duplicated.
    report = seed_workspace(server_database, workspace=names[0], accounts=120, seed=42, as_of=today, score=False)
    assert report.counts["accounts"]["created"] == 0 and report.counts["activities"]["created"] == 0
    assert report.counts["signals"]["created"] == 0


def _history(db, name: str) -> tuple[list, list]:
    from sqlalchemy import select

    from abmhub.db.tables import accounts, daily_scores, stage_changes, workspaces

    with db.read() as conn:
        workspace_id = conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar_one()
        moves = conn.execute(
            select(accounts.c.domain, stage_changes.c.from_stage, stage_changes.c.to_stage, stage_changes.c.at_us)
            .join(accounts, accounts.c.id == stage_changes.c.account_id)
            .where(stage_changes.c.workspace_id == workspace_id)
            .order_by(accounts.c.domain, stage_changes.c.at_us, stage_changes.c.id)
        ).all()
        daily = conn.execute(
            select(accounts.c.domain, daily_scores.c.day, daily_scores.c.account_score, daily_scores.c.journey_stage)
            .join(accounts, accounts.c.id == daily_scores.c.account_id)
            .where(daily_scores.c.workspace_id == workspace_id)
            .order_by(accounts.c.domain, daily_scores.c.day)
        ).all()
    # By day: the last run scores at the moment it runs.
    return [(*m[:3], m[3] // 86_400_000_000) for m in moves], [tuple(d) for d in daily]


def test_seeding_with_history_replays_the_days_deterministically(database):
    from abmhub.scoring.model import day_of

    as_of = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # the last run scores today
    first_day = day_of(int(as_of.timestamp() * 1_000_000)) - 20
    for name in ("one", "two"):
        report = seed_workspace(database, workspace=name, accounts=60, seed=5, as_of=as_of, history_days=20)
        assert report.scored == 60
    moves, daily = _history(database, "one")
    assert (moves, daily) == _history(database, "two"), "the same seed and day give the same history"
    move_days = {day for *_, day in moves}
    assert min(move_days) == first_day, "every account gets its first stage on the first replayed day"
    assert len(move_days) > 5, f"stages move on many days, not only at the end: {sorted(move_days)}"
    assert any((old and old != "Unaware") or (old == "Unaware" and new != "Aware") for _, old, new, _ in moves)
    assert len({day for _, day, _, _ in daily}) > 10, "daily scores on many days"
    # Seeding again adds nothing: no duplicated records, no new history.
    again = seed_workspace(database, workspace="one", accounts=60, seed=5, as_of=as_of, history_days=20)
    assert again.replayed_days == 0, "a workspace scored before gets no replayed past"
    assert again.counts["signals"]["created"] == 0 and again.counts["deals"].get("upserted", 0) >= 0
    assert _history(database, "one") == (moves, daily)
