"""Which account a sales activity belongs to: the one that has the activity's domain (§2.11).

An activity pushed for a domain no account has yet is kept unlinked; a write that gives an
account a domain (a push that creates it, or moves it to a new domain) calls
`link_activities` in its own transaction so those activities follow at once.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select, update

from abmhub.db.tables import accounts, activities
from abmhub.scoring.inputs import mark_selected


def link_activities(conn: Connection, workspace_id: int, domains: Collection[str], now_us: int) -> int:
    """Point the activities of `domains` (normalised, as stored on accounts) at the account
    that has each domain now, and stamp the ones that changed with `now_us`.

    Unlinked activities get linked; activities still pointing at an account that no longer
    has their domain are re-linked to the new holder, or unlinked when there is none (pass
    the old domain of a moved account for that). Returns how many activities changed.
    """
    if not domains:
        return 0
    holder = (
        select(accounts.c.id)
        .where(accounts.c.workspace_id == workspace_id, accounts.c.domain == activities.c.domain)
        .scalar_subquery()
    )
    moved = activities.alias("moved")
    # Both the account an activity leaves and the one it joins are rescored.
    mark_selected(
        conn,
        select(moved.c.account_id).where(
            moved.c.workspace_id == workspace_id,
            moved.c.domain.in_(sorted(set(domains))),
            moved.c.account_id.is_not(None),
        ),
    )
    result = conn.execute(
        update(activities)
        .where(
            activities.c.workspace_id == workspace_id,
            activities.c.domain.in_(sorted(set(domains))),
            activities.c.account_id.is_distinct_from(holder),
        )
        .values(account_id=holder, change_us=now_us)
    )
    return result.rowcount
