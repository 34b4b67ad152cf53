"""The overview's lists: accounts whose intent surges, high scores nobody has touched, open
deals gone quiet. Each is one indexed query returning a short list (`limit`), for a page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, select

from abmhub.db.engine import Database
from abmhub.db.tables import accounts, activities, deal_accounts, deals, pipeline_stages, pipelines, signals
from abmhub.scoring.engine import deal_journey
from abmhub.scoring.model import day_of
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


def surging_accounts(
    db: Database, *, workspace_id: int, today: int | None = None, limit: int = 10, min_signals: int = 3
) -> list[Surge]:
    """Accounts with at least `min_signals` intent signals this week and at least twice their
    weekly rate of the three weeks before, the strongest rise first."""
    last = day_of(now_us()) if today is None else today
    recent_from = last - SURGE_DAYS + 1
    recent = func.sum(case((signals.c.occurred_day >= recent_from, 1), else_=0))
    before = func.sum(case((signals.c.occurred_day < recent_from, 1), else_=0))
    per_domain = (
        select(signals.c.domain, recent.label("recent"), before.label("before"))
        .where(
            signals.c.workspace_id == workspace_id,
            signals.c.occurred_day >= recent_from - BASELINE_DAYS,
            signals.c.occurred_day <= last,
        )
        .group_by(signals.c.domain)
        .having(and_(recent >= min_signals, recent * BASELINE_DAYS >= 2 * before * SURGE_DAYS))
        .subquery()
    )
    rise = per_domain.c.recent * BASELINE_DAYS - per_domain.c.before * SURGE_DAYS
    query = (
        select(
            accounts.c.rtp_aid,
            accounts.c.name,
            accounts.c.domain,
            accounts.c.journey_stage,
            accounts.c.account_score,
            per_domain.c.recent,
            per_domain.c.before,
        )
        .join(per_domain, and_(accounts.c.workspace_id == workspace_id, accounts.c.domain == per_domain.c.domain))
        .order_by(rise.desc(), accounts.c.rtp_aid)
        .limit(limit)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [
        Surge(
            rtp_aid=row.rtp_aid,
            name=row.name,
            domain=row.domain,
            journey_stage=row.journey_stage,
            account_score=row.account_score,
            this_week=int(row.recent),
            weekly_before=int(row.before) * SURGE_DAYS / BASELINE_DAYS,
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
    `since_us` (default: the last 14 days), largest amount first."""
    since = now_us() - QUIET_DAYS * 86_400_000_000 if since_us is None else since_us
    on_accounts = (
        select(func.max(activities.c.occurred_us))
        .join(deal_accounts, deal_accounts.c.account_id == activities.c.account_id)
        .where(deal_accounts.c.deal_id == deals.c.id)
        .scalar_subquery()
    )
    on_deal = select(func.max(activities.c.occurred_us)).where(activities.c.deal_id == deals.c.id).scalar_subquery()
    first_account = (
        select(deal_accounts.c.account_id)
        .where(deal_accounts.c.deal_id == deals.c.id, deal_accounts.c.account_id.is_not(None))
        .order_by(deal_accounts.c.position)
        .limit(1)
        .scalar_subquery()
    )
    candidates = (
        select(
            deals.c.name,
            deals.c.amount,
            deals.c.currency,
            deals.c.stage_id,
            deals.c.stage_label,
            deals.c.owner_name,
            pipeline_stages.c.journey_stage,
            (pipeline_stages.c.id.is_not(None)).label("defined"),
            on_accounts.label("on_accounts"),
            on_deal.label("on_deal"),
            first_account.label("account_id"),
        )
        .outerjoin(
            pipelines,
            (pipelines.c.workspace_id == deals.c.workspace_id) & (pipelines.c.pipeline_id == deals.c.pipeline_id),
        )
        .outerjoin(
            pipeline_stages,
            (pipeline_stages.c.pipeline_pk == pipelines.c.id) & (pipeline_stages.c.stage_id == deals.c.stage_id),
        )
        .where(deals.c.workspace_id == workspace_id, deals.c.closed_us.is_(None))
        .subquery()
    )
    # The later of the two, either of which may be missing.
    last_activity = case(
        (candidates.c.on_deal.is_(None), candidates.c.on_accounts),
        (candidates.c.on_accounts.is_(None), candidates.c.on_deal),
        (candidates.c.on_deal > candidates.c.on_accounts, candidates.c.on_deal),
        else_=candidates.c.on_accounts,
    )
    query = (
        select(
            candidates, last_activity.label("last_activity_us"), accounts.c.rtp_aid, accounts.c.name.label("account")
        )
        .outerjoin(accounts, accounts.c.id == candidates.c.account_id)
        .where((last_activity.is_(None)) | (last_activity < since))
        .order_by(candidates.c.amount.desc().nulls_last(), candidates.c.name)
    )
    quiet: list[QuietDeal] = []
    with db.read() as conn:
        for row in conn.execute(query):
            if deal_journey(row) != "Opportunity":
                continue  # won or lost by its stage's label, though not marked closed
            quiet.append(
                QuietDeal(
                    name=row.name,
                    amount=row.amount,
                    currency=row.currency,
                    stage_label=row.stage_label,
                    owner_name=row.owner_name,
                    rtp_aid=row.rtp_aid,
                    account_name=row.account,
                    last_activity_us=row.last_activity_us,
                )
            )
            if len(quiet) == limit:
                break
    return quiet
