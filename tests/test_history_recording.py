"""History (contract §7) as the scoring job records it and the service reads it, on both databases."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert, select

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.accounts.service import AccountNotFound
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, daily_scores, signals, stage_changes
from abmhub.history import service as history
from abmhub.history.service import DailyScores, StageChangeFilter, carried_forward
from abmhub.paging import PageRequest
from abmhub.scoring.model import US_PER_DAY as DAY
from abmhub.scoring.service import run_scoring
from abmhub.tenancy import service as tenancy

DAY1 = 20_000  # a fixed UTC day; runs are deterministic for a given clock
NOON = 12 * 3600 * 1_000_000


def at(day: int) -> int:
    return day * DAY + NOON


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def push_accounts(db: Database, workspace_id: int, *domains: str) -> None:
    accounts_service.push_accounts(
        db, workspace_id=workspace_id, items=[AccountItem.model_validate({"domain": d, "name": d}) for d in domains]
    )


def add_g2(db: Database, workspace_id: int, domain: str, day: int, n: int) -> None:
    """`n` G2 pricing views of `domain` on `day`, its account marked for rescoring (as a push does)."""
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": workspace_id,
            "source": "g2",
            "type": "pricing_view",
            "domain": domain,
            "weight": 1.0,
            "count": 1,
            "score": None,
            "created_us": at(day),
            "occurred_us": at(day),
            "occurred_day": day,
        }
        for _ in range(n)
    ]
    with db.write(workspace_id) as tx:
        tx.conn.execute(insert(signals), rows)
        tx.conn.execute(
            accounts.update()
            .where(accounts.c.workspace_id == workspace_id, accounts.c.domain == domain)
            .values(score_dirty=True)
        )


def rtp_aid(db: Database, domain: str) -> str:
    with db.read() as conn:
        return str(conn.execute(select(accounts.c.rtp_aid).where(accounts.c.domain == domain)).scalar_one())


def score_on(db: Database, day: int) -> None:
    run_scoring(db, clock=lambda: at(day))


def test_the_first_run_records_each_accounts_first_stage_and_its_day(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    score_on(database, DAY1)
    found = history.account_history(database, workspace_id=workspace_id, rtp_aid=rtp_aid(database, "a.com"), today=DAY1)
    assert [(c.from_stage, c.to_stage, c.at_us) for c in found.stage_changes] == [("", "Unaware", at(DAY1))]
    assert [(d.day, d.account_score, d.journey_stage) for d in found.daily] == [(DAY1, 0, "Unaware")]


def test_days_without_change_are_carried_forward_and_stage_moves_are_kept(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    score_on(database, DAY1)
    add_g2(database, workspace_id, "a.com", DAY1 + 2, 40)
    score_on(database, DAY1 + 2)
    score_on(database, DAY1 + 4)  # a new day: decay may change the score, never the day's row of DAY1 + 2
    found = history.account_history(
        database, workspace_id=workspace_id, rtp_aid=rtp_aid(database, "a.com"), days=10, today=DAY1 + 5
    )
    days = [d.day for d in found.daily]
    assert days == list(range(DAY1, DAY1 + 6)), "one entry per day from the first scored day to today"
    by_day = {d.day: d for d in found.daily}
    assert by_day[DAY1 + 1] == replace(by_day[DAY1], day=DAY1 + 1), "day 2 carries day 1 forward"
    assert by_day[DAY1 + 2].g2_score > 0 and by_day[DAY1 + 2].journey_stage != "Unaware"
    assert by_day[DAY1 + 5] == replace(by_day[DAY1 + 4], day=DAY1 + 5)
    assert [(c.from_stage, c.to_stage) for c in found.stage_changes][:2] == [
        ("", "Unaware"),
        ("Unaware", by_day[DAY1 + 2].journey_stage),
    ]
    with database.read() as conn:
        stored = conn.execute(select(daily_scores.c.day).order_by(daily_scores.c.day)).scalars().all()
    assert DAY1 + 1 not in stored and DAY1 + 3 not in stored, "days on which nothing ran are not stored"


def test_the_window_starts_with_the_value_carried_in_from_before_it(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    score_on(database, DAY1)
    found = history.account_history(
        database, workspace_id=workspace_id, rtp_aid=rtp_aid(database, "a.com"), days=3, today=DAY1 + 30
    )
    assert [d.day for d in found.daily] == [DAY1 + 28, DAY1 + 29, DAY1 + 30]
    assert {d.journey_stage for d in found.daily} == {"Unaware"}
    assert found.stage_changes == [], "stage changes before the window are not listed"


def test_an_account_of_another_workspace_is_not_found(database, workspace_id):
    push_accounts(database, workspace_id, "a.com")
    other = tenancy.create_workspace(database, name="other")
    with pytest.raises(AccountNotFound):
        history.account_history(database, workspace_id=other, rtp_aid=rtp_aid(database, "a.com"))


def test_stage_changes_list_newest_first_with_direction_and_days_in_the_previous_stage(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    score_on(database, DAY1)
    add_g2(database, workspace_id, "a.com", DAY1 + 3, 40)
    score_on(database, DAY1 + 3)
    moved = history.list_stage_changes(
        database, workspace_id=workspace_id, filters=StageChangeFilter(), page=PageRequest(limit=10)
    )
    first = moved.items[0]
    assert (first.domain, first.from_stage) == ("a.com", "Unaware"), "newest first"
    assert first.days_in_previous_stage == 3 and first.at_us == at(DAY1 + 3)
    assert all(m.days_in_previous_stage is None for m in moved.items if m.from_stage == "")
    progressed = history.list_stage_changes(
        database,
        workspace_id=workspace_id,
        filters=StageChangeFilter(direction="progressed"),
        page=PageRequest(limit=10),
    )
    assert [m.domain for m in progressed.items] == ["a.com"], "a first stage is no progression"
    regressed = history.list_stage_changes(
        database, workspace_id=workspace_id, filters=StageChangeFilter(direction="regressed"), page=PageRequest()
    )
    assert regressed.items == []
    window = history.list_stage_changes(
        database,
        workspace_id=workspace_id,
        filters=StageChangeFilter(since_us=at(DAY1), until_us=at(DAY1) + 1),
        page=PageRequest(),
    )
    assert sorted(m.domain for m in window.items) == ["a.com", "b.com"], "since is inclusive, until exclusive"


def test_stage_changes_page_by_keyset(database, workspace_id):
    push_accounts(database, workspace_id, *(f"d{i}.com" for i in range(7)))
    score_on(database, DAY1)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = history.list_stage_changes(
            database, workspace_id=workspace_id, filters=StageChangeFilter(), page=PageRequest(limit=3, after=after)
        )
        seen.extend(m.domain for m in page.items)
        if not page.has_next:
            break
        after = page.last_key
    assert sorted(seen) == [f"d{i}.com" for i in range(7)] and len(seen) == 7


def test_the_funnel_of_a_past_day_is_the_last_one_kept_by_then(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    assert history.funnel_on(database, workspace_id=workspace_id, day=DAY1) is None
    score_on(database, DAY1)
    add_g2(database, workspace_id, "a.com", DAY1 + 3, 40)
    score_on(database, DAY1 + 3)
    before = history.funnel_on(database, workspace_id=workspace_id, day=DAY1 + 2)
    after = history.funnel_on(database, workspace_id=workspace_id, day=DAY1 + 3)
    assert before is not None and before["Unaware"] == 2
    assert after is not None and after["Unaware"] == 1 and sum(after.values()) == 2


def test_history_and_scores_commit_together(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    score_on(database, DAY1)
    with database.read() as conn:
        moves = conn.execute(select(stage_changes.c.account_id)).scalars().all()
        stored = conn.execute(select(accounts.c.id).where(accounts.c.journey_stage != "")).scalars().all()
    assert sorted(moves) == sorted(stored)


@pytest.mark.parametrize(
    ("rows", "first", "last", "expected"),
    [
        ([], 10, 12, []),
        ([(5, 1)], 10, 12, [(10, 1), (11, 1), (12, 1)]),
        ([(11, 1)], 10, 13, [(11, 1), (12, 1), (13, 1)]),
        ([(9, 1), (11, 2)], 10, 12, [(10, 1), (11, 2), (12, 2)]),
    ],
)
def test_carried_forward(rows, first, last, expected):
    entries = [DailyScores(day, score, "Aware", 0, 0, 0, 0) for day, score in rows]
    assert [(e.day, e.account_score) for e in carried_forward(entries, first, last)] == expected


def change_of(db: Database, domain: str) -> int:
    with db.read() as conn:
        return int(conn.execute(select(accounts.c.score_change).where(accounts.c.domain == domain)).scalar_one())


def test_the_scoring_job_keeps_each_accounts_change_against_a_week_before(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "b.com")
    score_on(database, DAY1)
    assert change_of(database, "a.com") == 0, "a first score is no change"
    add_g2(database, workspace_id, "a.com", DAY1 + 3, 40)
    score_on(database, DAY1 + 3)
    risen = history.account_history(
        database, workspace_id=workspace_id, rtp_aid=rtp_aid(database, "a.com"), today=DAY1 + 3
    ).daily[-1]
    assert risen.account_score > 0 and change_of(database, "a.com") == risen.account_score
    # A week after the rise, the reference day has moved past it: the change is what decay did since.
    score_on(database, DAY1 + 10)
    days = history.account_history(
        database, workspace_id=workspace_id, rtp_aid=rtp_aid(database, "a.com"), today=DAY1 + 10
    ).daily
    by_day = {d.day: d.account_score for d in days}
    assert change_of(database, "a.com") == by_day[DAY1 + 10] - by_day[DAY1 + 3] <= 0
    assert change_of(database, "b.com") == 0


def test_score_references_carry_forward_or_fall_back_to_the_first_score(database, workspace_id):
    push_accounts(database, workspace_id, "a.com", "late.com")
    score_on(database, DAY1)
    with database.read() as conn:
        ids = dict(conn.execute(select(accounts.c.domain, accounts.c.id)).all())
        assert history.score_references(conn, list(ids.values()), DAY1 + 5) == {ids["a.com"]: 0, ids["late.com"]: 0}
        assert history.score_references(conn, [ids["a.com"]], DAY1 - 5) == {ids["a.com"]: 0}, "first score"
        assert history.score_references(conn, [], DAY1) == {}


def test_stage_counts_are_the_last_runs_funnel_plus_the_accounts_not_scored_yet(database, workspace_id):
    from sqlalchemy import func

    push_accounts(database, workspace_id, "a.com", "b.com", "c.com")
    assert history.stage_counts(database, workspace_id=workspace_id).by_stage == {"": 3}
    add_g2(database, workspace_id, "a.com", DAY1, 40)
    score_on(database, DAY1)
    push_accounts(database, workspace_id, "new.com")  # after the run: not scored yet
    counts = history.stage_counts(database, workspace_id=workspace_id)
    with database.read() as conn:
        live = dict(
            conn.execute(
                select(accounts.c.journey_stage, func.count())
                .where(accounts.c.workspace_id == workspace_id)
                .group_by(accounts.c.journey_stage)
            ).all()
        )
        scores = conn.execute(select(func.sum(accounts.c.account_score))).scalar_one()
    assert counts.by_stage == live and counts.total == 4 and live[""] == 1
    assert counts.average_score == pytest.approx(scores / 4)


def test_a_count_can_stop_early(database, workspace_id):
    push_accounts(database, workspace_id, *(f"d{i}.com" for i in range(7)))
    assert accounts_service.count_accounts(database, workspace_id=workspace_id) == 7
    assert accounts_service.count_accounts(database, workspace_id=workspace_id, at_most=3) == 4
    assert accounts_service.count_accounts(database, workspace_id=workspace_id, at_most=10) == 7
