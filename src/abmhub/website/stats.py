"""`GET /sites/:id/stats` (contract §9): what a site's visits came to over a period.

Counters come from what /collect counted; visitors, sessions, matches and the top lists from
the raw events of the period (kept 90 days). A visitor is a visitor key of one UTC day (the key
changes daily by design); a session ends after 30 minutes without an event.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select

from abmhub.db.engine import Database
from abmhub.db.tables import accounts, website_counters, website_events, website_identities
from abmhub.timefmt import now_us
from abmhub.website.aggregate import PRIORITY, US_PER_DAY, accounts_of_owners
from abmhub.website.collect import COUNTERS
from abmhub.website.sites import Site

SESSION_GAP_US = 30 * 60 * 1_000_000
DEFAULT_DAYS = 30
TOP = 10


def site_stats(db: Database, *, site: Site, since_us: int | None, until_us: int | None) -> dict[str, Any]:
    until = until_us if until_us is not None else now_us()
    since = since_us if since_us is not None else until - DEFAULT_DAYS * US_PER_DAY
    first_day, last_day = since // US_PER_DAY, (until - 1) // US_PER_DAY
    with db.read() as conn:
        counted = dict(
            conn.execute(
                select(website_counters.c.counter, func.sum(website_counters.c.count))
                .where(
                    website_counters.c.site_pk == site.pk,
                    website_counters.c.day.between(first_day, last_day),
                )
                .group_by(website_counters.c.counter)
            ).all()
        )
        rows = conn.execute(
            select(
                website_events.c.day,
                website_events.c.visitor,
                website_events.c.occurred_us,
                website_events.c.kind,
                website_events.c.path,
                website_events.c.category,
                website_events.c.domain,
                website_events.c.matched_by,
                website_events.c.network,
            )
            .where(
                website_events.c.site_pk == site.pk,
                website_events.c.day.between(first_day, last_day),
                website_events.c.occurred_us >= since,
                website_events.c.occurred_us < until,
            )
            .order_by(website_events.c.day, website_events.c.visitor, website_events.c.occurred_us)
        ).all()
        identified = {
            (day, visitor): domain
            for day, visitor, domain in conn.execute(
                select(website_identities.c.day, website_identities.c.visitor, website_identities.c.domain).where(
                    website_identities.c.site_pk == site.pk, website_identities.c.day.between(first_day, last_day)
                )
            )
        }
        owners = accounts_of_owners(conn, site.workspace_id, {row.network for row in rows if row.network})
        who: dict[tuple[int, str], tuple[int, str, str]] = {
            key: (0, domain, "identify") for key, domain in identified.items()
        }
        sessions = 0
        previous: tuple[int, str, int] | None = None
        for row in rows:
            key = (row.day, row.visitor)
            if previous is None or previous[:2] != key or row.occurred_us - previous[2] > SESSION_GAP_US:
                sessions += 1
            previous = (row.day, row.visitor, row.occurred_us)
            candidates = []
            if row.domain is not None and row.matched_by is not None:
                candidates.append((PRIORITY[row.matched_by], row.domain, row.matched_by))
            if row.network and owners.get(row.network):
                candidates.append((PRIORITY["network"], owners[row.network], "network"))
            for candidate in candidates:
                if key not in who or candidate[0] < who[key][0]:
                    who[key] = candidate
        visitors = {(row.day, row.visitor) for row in rows}
        matched = Counter(who[key][2] for key in visitors if key in who)
        views: Counter[str] = Counter()
        account_visitors: dict[str, set[tuple[int, str]]] = defaultdict(set)
        pages: Counter[tuple[str, str | None]] = Counter()
        for row in rows:
            if row.kind != "pageview":
                continue
            pages[(row.path or "/", row.category)] += 1
            key = (row.day, row.visitor)
            if key in who:
                views[who[key][1]] += 1
                account_visitors[who[key][1]].add(key)
        top_domains = [domain for domain, _ in views.most_common(TOP)]
        ids = (
            dict(
                conn.execute(
                    select(accounts.c.domain, accounts.c.rtp_aid).where(
                        accounts.c.workspace_id == site.workspace_id, accounts.c.domain.in_(top_domains)
                    )
                ).all()
            )
            if top_domains
            else {}
        )
    return {
        "events": {name: int(counted.get(name, 0)) for name in COUNTERS},
        "visitors": len(visitors),
        "sessions": sessions,
        "matched": {name: matched.get(name, 0) for name in ("identify", "ipRange", "network")},
        "unmatched": len(visitors) - sum(matched.values()),
        "topAccounts": [
            {
                "rtp_aid": ids.get(domain),
                "domain": domain,
                "pageViews": views[domain],
                "visitors": len(account_visitors[domain]),
            }
            for domain in top_domains
        ],
        "topPages": [
            {"path": path, "category": category, "views": count} for (path, category), count in pages.most_common(TOP)
        ],
    }
