"""The overview's lists: accounts whose intent surges, high scores nobody has touched, open
deals gone quiet. Each page read is an indexed query returning a short list (`limit`); the
surge, an aggregate over four weeks of signals, is kept by the scoring job instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, select

from abmhub.db.engine import Database
from abmhub.db.tables import (
    accounts,
    activities,
    deal_accounts,
    deals,
    pipeline_stages,
    pipelines,
    signals,
    surging_accounts,
)
from abmhub.scoring.engine import deal_journey
from abmhub.timefmt import now_us

SURGE_DAYS = 7  # this week's intent ...
BASELINE_DAYS = 21  # ... against the three weeks before it
QUIET_DAYS = 14


@dataclass(frozen=True, slots=True)
class Surge:
    rtp_aid: str
    name: str
    domain: str
    journey_stage: str
    account_score: int
    this_week: int  # signals in the last 7 days, today included
    weekly_before: float  # signals per week in the 21 days before them


SURGING_KEPT = 20  # accounts kept per run; the overview shows the first ones


def record_surging(conn: Connection, *, workspace_id: int, today: int, min_signals: int = 3) -> None:
    """Keep the accounts with at least `min_signals` intent signals in the 7 days up to `today`
    and at least twice their weekly rate of the three weeks before, the strongest rise first.
    Run by the scoring job (one aggregate over four weeks of signals), read by the overview."""
    recent_from = today - SURGE_DAYS + 1
    recent = func.sum(case((signals.c.occurred_day >= recent_from, 1), else_=0))
    before = func.sum(case((signals.c.occurred_day < recent_from, 1), else_=0))
    per_domain = (
        select(signals.c.domain, recent.label("recent"), before.label("before"))
        .where(
            signals.c.workspace_id == workspace_id,
            signals.c.occurred_day >= recent_from - BASELINE_DAYS,
            signals.c.occurred_day <= today,
        )
        .group_by(signals.c.domain)
        .having(and_(recent >= min_signals, recent * BASELINE_DAYS >= 2 * before * SURGE_DAYS))
        .subquery()
    )
    rise = per_domain.c.recent * BASELINE_DAYS - per_domain.c.before * SURGE_DAYS
    rows = conn.execute(
        select(accounts.c.id, per_domain.c.recent, per_domain.c.before)
        .join(per_domain, and_(accounts.c.workspace_id == workspace_id, accounts.c.domain == per_domain.c.domain))
        .order_by(rise.desc(), accounts.c.rtp_aid)
        .limit(SURGING_KEPT)
    ).all()
    conn.execute(surging_accounts.delete().where(surging_accounts.c.workspace_id == workspace_id))
    if rows:
        conn.execute(
            surging_accounts.insert(),
            [
                {"workspace_id": workspace_id, "position": n, "account_id": a, "this_week": r, "before": b}
                for n, (a, r, b) in enumerate(rows)
            ],
        )


def surging_accounts_now(db: Database, *, workspace_id: int, limit: int = 10) -> list[Surge]:
    """The accounts whose intent surged at the last scoring run (`record_surging`), best first."""
    with db.read() as conn:
        rows = conn.execute(
            select(
                accounts.c.rtp_aid,
                accounts.c.name,
                accounts.c.domain,
                accounts.c.journey_stage,
                accounts.c.account_score,
                surging_accounts.c.this_week,
                surging_accounts.c.before,
            )
            .join(accounts, accounts.c.id == surging_accounts.c.account_id)
            .where(surging_accounts.c.workspace_id == workspace_id)
            .order_by(surging_accounts.c.position)
            .limit(limit)
        ).all()
    return [
        Surge(
            rtp_aid=row.rtp_aid,
            name=row.name,
            domain=row.domain,
            journey_stage=row.journey_stage,
            account_score=row.account_score,
            this_week=row.this_week,
            weekly_before=row.before * SURGE_DAYS / BASELINE_DAYS,
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class QuietAccount:
    rtp_aid: str
    name: str
    domain: str
    journey_stage: str
    account_score: int
    last_touch_us: int | None  # the last call, email or manual activity; None: never


def untouched_high_scores(
    db: Database, *, workspace_id: int, min_score: int = 50, since_us: int | None = None, limit: int = 10
) -> list[QuietAccount]:
    """Accounts scoring at least `min_score` with no sales activity since `since_us` (default:
    the last 14 days), best score first."""
    since = now_us() - QUIET_DAYS * 86_400_000_000 if since_us is None else since_us
    touched = exists().where(activities.c.account_id == accounts.c.id, activities.c.occurred_us >= since)
    last_touch = select(func.max(activities.c.occurred_us)).where(activities.c.account_id == accounts.c.id)
    query = (
        select(
            accounts.c.rtp_aid,
            accounts.c.name,
            accounts.c.domain,
            accounts.c.journey_stage,
            accounts.c.account_score,
            last_touch.scalar_subquery().label("last_touch_us"),
        )
        .where(accounts.c.workspace_id == workspace_id, accounts.c.account_score >= min_score, ~touched)
        .order_by(accounts.c.account_score.desc(), accounts.c.rtp_aid)
        .limit(limit)
    )
    with db.read() as conn:
        return [QuietAccount(*row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class QuietDeal:
    name: str
    amount: float | None
    currency: str | None
    stage_label: str | None
    owner_name: str | None
    rtp_aid: str | None  # the deal's first associated account, when resolved
    account_name: str | None
    last_activity_us: int | None


def quiet_open_deals(
    db: Database, *, workspace_id: int, since_us: int | None = None, limit: int = 10
) -> list[QuietDeal]:
    """Open deals (§6.19: not won, not lost) with no activity on them or their accounts since
    `since_us` (default: the last 14 days), largest amount first.

    Two steps: the quiet candidates in amount order, a few at a time (two index probes per
    deal: activity on the deal, on its accounts), then the last activity of the few shown.
    """
    since = now_us() - QUIET_DAYS * 86_400_000_000 if since_us is None else since_us
    recent_on_deal = exists().where(activities.c.deal_id == deals.c.id, activities.c.occurred_us >= since)
    recent_on_accounts = exists().where(
        deal_accounts.c.deal_id == deals.c.id,
        activities.c.account_id == deal_accounts.c.account_id,
        activities.c.occurred_us >= since,
    )
    candidates = (
        select(
            deals.c.id,
            deals.c.name,
            deals.c.amount,
            deals.c.currency,
            deals.c.stage_id,
            deals.c.stage_label,
            deals.c.owner_name,
            pipeline_stages.c.journey_stage,
            (pipeline_stages.c.id.is_not(None)).label("defined"),
        )
        .outerjoin(
            pipelines,
            (pipelines.c.workspace_id == deals.c.workspace_id) & (pipelines.c.pipeline_id == deals.c.pipeline_id),
        )
        .outerjoin(
            pipeline_stages,
            (pipeline_stages.c.pipeline_pk == pipelines.c.id) & (pipeline_stages.c.stage_id == deals.c.stage_id),
        )
        .where(deals.c.workspace_id == workspace_id, deals.c.closed_us.is_(None), ~recent_on_deal, ~recent_on_accounts)
        .order_by(deals.c.amount.desc().nulls_last(), deals.c.name, deals.c.id)
    )
    chosen: list[Any] = []
    with db.read() as conn:
        offset = 0
        while len(chosen) < limit:
            rows = conn.execute(candidates.limit(limit * 4).offset(offset)).all()
            # Won or lost by its stage's label, though not marked closed: not open.
            chosen.extend(row for row in rows if deal_journey(row) == "Opportunity")
            if len(rows) < limit * 4:
                break
            offset += len(rows)
        chosen = chosen[:limit]
        details = _deal_details(conn, [row.id for row in chosen])
    return [
        QuietDeal(
            name=row.name,
            amount=row.amount,
            currency=row.currency,
            stage_label=row.stage_label,
            owner_name=row.owner_name,
            rtp_aid=details[row.id][0],
            account_name=details[row.id][1],
            last_activity_us=details[row.id][2],
        )
        for row in chosen
    ]


def _deal_details(conn: Connection, deal_ids: list[int]) -> dict[int, tuple[str | None, str | None, int | None]]:
    """Per deal: its first resolved account's rtp_aid and name, and its last activity (on it or
    on any of its accounts). Three queries for all the deals shown."""
    if not deal_ids:
        return {}
    first_position = (
        select(deal_accounts.c.deal_id, func.min(deal_accounts.c.position).label("position"))
        .where(deal_accounts.c.deal_id.in_(deal_ids), deal_accounts.c.account_id.is_not(None))
        .group_by(deal_accounts.c.deal_id)
        .subquery()
    )
    first = {
        row.deal_id: (row.rtp_aid, row.name)
        for row in conn.execute(
            select(deal_accounts.c.deal_id, accounts.c.rtp_aid, accounts.c.name)
            .join(accounts, accounts.c.id == deal_accounts.c.account_id)
            .join(
                first_position,
                and_(
                    first_position.c.deal_id == deal_accounts.c.deal_id,
                    first_position.c.position == deal_accounts.c.position,
                ),
            )
        )
    }
    last: dict[int, int] = {}
    for deal_key, join in (
        (activities.c.deal_id, None),
        (deal_accounts.c.deal_id, deal_accounts.c.account_id == activities.c.account_id),
    ):
        query = select(deal_key, func.max(activities.c.occurred_us)).where(deal_key.in_(deal_ids)).group_by(deal_key)
        if join is not None:
            query = query.join(deal_accounts, join)
        for deal_id, moment in conn.execute(query):
            if moment is not None and moment > last.get(deal_id, -1):
                last[deal_id] = moment
    return {deal_id: (*first.get(deal_id, (None, None)), last.get(deal_id)) for deal_id in deal_ids}
