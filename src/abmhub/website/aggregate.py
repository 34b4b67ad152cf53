"""Visits become `website` signals: per site, account and UTC day (contract §9).

For each day with new events (and always today and yesterday, where events may still be
arriving), a site's day is recomputed whole from its raw events and its signals replaced:
`page_view` (count), `high_intent_page` (one per category, weight of the page rule, count of
views) and `engaged_time` (count = engaged minutes). Re-running changes nothing, so it is
idempotent; the accounts whose signals changed are marked for rescoring.

Who a visitor is, for the day: an email they identified with wins; then the workspace's IP
ranges; then the owner of their network, matched to an account whose domain's first label is
a word of the owner's name (`acme.com` ← "ACME-CORP Acme Corporation"). One resolution per
visitor and day applies to all their events that day.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from abmhub.db.engine import Database
from abmhub.db.queries import upsert_rows
from abmhub.db.tables import accounts, signals, sites, website_events, website_identities
from abmhub.scoring.inputs import mark_domains
from abmhub.timefmt import now_us

US_PER_DAY = 86_400 * 1_000_000
PRIORITY = {"identify": 0, "ipRange": 1, "network": 2}
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(slots=True)
class Report:
    sites: int = 0
    days: int = 0
    signals: int = 0
    accounts: set[str] = field(default_factory=set)


def aggregate(db: Database, *, workspace_id: int | None = None, clock_us: int | None = None) -> Report:
    """Bring the website signals of every site (of one workspace) up to date with its events."""
    now = clock_us if clock_us is not None else now_us()
    today = now // US_PER_DAY
    report = Report()
    with db.read() as conn:
        query = select(sites.c.id, sites.c.workspace_id, sites.c.site_id, sites.c.aggregated_event_pk)
        if workspace_id is not None:
            query = query.where(sites.c.workspace_id == workspace_id)
        found = conn.execute(query.order_by(sites.c.id)).all()
    for site in found:
        with db.write(site.workspace_id) as tx:
            conn = tx.conn
            last = conn.execute(
                select(func.max(website_events.c.id)).where(website_events.c.site_pk == site.id)
            ).scalar()
            if last is None:
                continue
            days = set(
                conn.execute(
                    select(website_events.c.day)
                    .where(website_events.c.site_pk == site.id, website_events.c.id > site.aggregated_event_pk)
                    .distinct()
                ).scalars()
            ) | {today, today - 1}
            for day in sorted(days):
                written, touched = _aggregate_day(conn, site, day, tx.now_us)
                report.signals += written
                report.accounts |= touched
                report.days += 1
            conn.execute(update(sites).where(sites.c.id == site.id).values(aggregated_event_pk=last))
            report.sites += 1
    return report


def _aggregate_day(conn: Connection, site: Any, day: int, now: int) -> tuple[int, set[str]]:
    rows = conn.execute(
        select(
            website_events.c.visitor,
            website_events.c.kind,
            website_events.c.category,
            website_events.c.weight,
            website_events.c.engaged_ms,
            website_events.c.domain,
            website_events.c.matched_by,
            website_events.c.network,
        ).where(website_events.c.site_pk == site.id, website_events.c.day == day)
    ).all()
    identified = dict(
        conn.execute(
            select(website_identities.c.visitor, website_identities.c.domain).where(
                website_identities.c.site_pk == site.id, website_identities.c.day == day
            )
        ).all()
    )
    owners = accounts_of_owners(conn, site.workspace_id, {row.network for row in rows if row.network})
    who: dict[str, tuple[int, str]] = {visitor: (0, domain) for visitor, domain in identified.items()}
    for row in rows:
        candidates = []
        if row.domain is not None and row.matched_by is not None:
            candidates.append((PRIORITY[row.matched_by], row.domain))
        if row.network and owners.get(row.network):
            candidates.append((PRIORITY["network"], owners[row.network]))
        for candidate in candidates:
            if row.visitor not in who or candidate[0] < who[row.visitor][0]:
                who[row.visitor] = candidate
    views: dict[str, int] = defaultdict(int)
    intent: dict[tuple[str, str], tuple[int, float]] = {}
    engaged: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.visitor not in who:
            continue
        domain = who[row.visitor][1]
        if row.kind == "pageview":
            views[domain] += 1
            if row.category is not None and (row.weight or 0) > 0:
                count, _ = intent.get((domain, row.category), (0, 0.0))
                intent[(domain, row.category)] = (count + 1, float(row.weight))
        elif row.kind == "engagement" and row.engaged_ms:
            engaged[domain] += row.engaged_ms
    prefix = f"website:{site.site_id}:{day}:"
    previous = set(conn.execute(select(signals.c.domain).where(*_signals_of(site.workspace_id, prefix))).scalars())
    conn.execute(signals.delete().where(*_signals_of(site.workspace_id, prefix)))
    occurred = day * US_PER_DAY + US_PER_DAY // 2  # midday: the day's visits as one moment
    rows_out: list[tuple[Any, ...]] = []

    def add(type_: str, domain: str, key: str, count: int, weight: float, url: str | None = None) -> None:
        rows_out.append(
            (site.workspace_id, "website", type_, domain, occurred, day, prefix + key, weight, count, url, now)
        )

    for domain, count in views.items():
        add("page_view", domain, f"{domain}:page_view", count, 1.0)
    for (domain, category), (count, weight) in intent.items():
        add("high_intent_page", domain, f"{domain}:high_intent_page:{category}", count, weight, category)
    for domain, ms in engaged.items():
        minutes = round(ms / 60_000)
        if minutes > 0:
            add("engaged_time", domain, f"{domain}:engaged_time", minutes, 1.0)
    columns = (
        "workspace_id", "source", "type", "domain", "occurred_us", "occurred_day", "external_signal_id",
        "weight", "count", "url", "created_us",
    )  # fmt: skip
    upsert_rows(conn, signals, columns, ("workspace_id", "external_signal_id"), rows_out)
    touched = previous | {row[3] for row in rows_out}
    if touched:
        mark_domains(conn, site.workspace_id, touched)
    return len(rows_out), touched


def _signals_of(workspace_id: int, prefix: str) -> tuple[Any, ...]:
    # A range of the unique (workspace_id, external_signal_id) index: the ids starting with prefix.
    return (
        signals.c.workspace_id == workspace_id,
        signals.c.external_signal_id >= prefix,
        signals.c.external_signal_id < prefix + "\U0010ffff",
    )


def accounts_of_owners(conn: Connection, workspace_id: int, owners: Iterable[str]) -> dict[str, str]:
    """Each network owner's account, when exactly one account's domain label is a word of its name."""
    matched: dict[str, str] = {}
    for owner in owners:
        words = {word for word in _WORDS.findall(owner.lower()) if len(word) >= 4}
        if not words:
            continue
        bounds = [and_(accounts.c.domain >= f"{word}.", accounts.c.domain < f"{word}/") for word in sorted(words)]
        found = (
            conn.execute(
                select(accounts.c.domain).where(accounts.c.workspace_id == workspace_id, or_(*bounds)).limit(2)
            )
            .scalars()
            .all()
        )
        if len(found) == 1:
            matched[owner] = found[0]
    return matched
