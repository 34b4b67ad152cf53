"""What the dashboard shows of website visits: an account's days, the week's most visiting
accounts. Read from the `website` signals (collected visits and pushed ones alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from abmhub.db.engine import Database
from abmhub.db.tables import accounts, signals
from abmhub.timefmt import now_us

US_PER_DAY = 86_400 * 1_000_000


@dataclass(slots=True)
class VisitDay:
    day: int
    page_views: int = 0
    engaged_minutes: int = 0
    intent: dict[str, int] = field(default_factory=dict)  # category -> views


def visits_of_account(db: Database, *, workspace_id: int, domain: str, days: int = 30) -> list[VisitDay]:
    """The account's website activity per day, newest first."""
    first = now_us() // US_PER_DAY - days + 1
    with db.read() as conn:
        rows = conn.execute(
            select(signals.c.occurred_day, signals.c.type, signals.c.url, func.sum(signals.c.count))
            .where(
                signals.c.workspace_id == workspace_id,
                signals.c.domain == domain,
                signals.c.source == "website",
                signals.c.occurred_day >= first,
            )
            .group_by(signals.c.occurred_day, signals.c.type, signals.c.url)
        ).all()
    by_day: dict[int, VisitDay] = {}
    for day, type_, url, count in rows:
        visit = by_day.setdefault(day, VisitDay(day))
        if type_ == "page_view":
            visit.page_views += int(count)
        elif type_ == "engaged_time":
            visit.engaged_minutes += int(count)
        elif type_ == "high_intent_page":
            visit.intent[url or "other"] = visit.intent.get(url or "other", 0) + int(count)
    return sorted(by_day.values(), key=lambda visit: -visit.day)


@dataclass(frozen=True, slots=True)
class VisitingAccount:
    rtp_aid: str
    name: str
    domain: str
    page_views: int
    high_intent_views: int


def most_visiting(db: Database, *, workspace_id: int, days: int = 7, limit: int = 5) -> list[VisitingAccount]:
    """The accounts with the most website page views over the last `days` days."""
    first = now_us() // US_PER_DAY - days + 1
    views = func.sum(signals.c.count).filter(signals.c.type == "page_view")
    intent = func.sum(signals.c.count).filter(signals.c.type == "high_intent_page")
    with db.read() as conn:
        rows = conn.execute(
            select(accounts.c.rtp_aid, accounts.c.name, accounts.c.domain, views.label("v"), intent.label("i"))
            .join(
                accounts, (accounts.c.workspace_id == signals.c.workspace_id) & (accounts.c.domain == signals.c.domain)
            )
            .where(
                signals.c.workspace_id == workspace_id,
                signals.c.occurred_day >= first,
                signals.c.source == "website",
            )
            .group_by(accounts.c.rtp_aid, accounts.c.name, accounts.c.domain)
            .order_by(views.desc().nulls_last(), accounts.c.rtp_aid)
            .limit(limit)
        ).all()
    return [VisitingAccount(r.rtp_aid, r.name, r.domain, int(r.v or 0), int(r.i or 0)) for r in rows if r.v]
