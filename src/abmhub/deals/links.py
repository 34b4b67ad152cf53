"""Resolving deal associations when their account appears (contract §2.8, §6.32).

Called by every write that creates accounts or changes their domain, externalId or name:
associations that were stored unresolved are matched now, key by key (domain, then
externalId, then a name that exactly one account has), in set-based statements.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Column, Connection, and_, func, select, update

from abmhub.db.tables import accounts, deal_accounts, deals
from abmhub.scoring.inputs import mark_accounts


def resolve_deal_accounts(
    conn: Connection,
    workspace_id: int,
    *,
    domains: Collection[str],
    external_ids: Collection[str],
    names: Collection[str],
    now_us: int,
) -> int:
    """Resolve pending associations that these account keys now match; returns how many deals changed."""
    pending = and_(deal_accounts.c.workspace_id == workspace_id, deal_accounts.c.account_id.is_(None))
    touched: set[int] = set()

    def resolve(
        key_column: Column[Any], account_column: Column[Any], keys: Collection[str], *, unique_only: bool = False
    ) -> None:
        if not keys:
            return
        candidates = select(func.min(accounts.c.id)).where(
            accounts.c.workspace_id == workspace_id, account_column == key_column
        )
        if unique_only:
            candidates = candidates.having(func.count() == 1)
        match = candidates.scalar_subquery()
        rows = conn.execute(
            update(deal_accounts)
            .where(pending, key_column.in_(list(keys)), match.is_not(None))
            .values(account_id=match)
            .returning(deal_accounts.c.deal_id, deal_accounts.c.account_id)
        ).all()
        touched.update(row[0] for row in rows)
        mark_accounts(conn, [row[1] for row in rows])

    resolve(deal_accounts.c.domain, accounts.c.domain, domains)
    resolve(deal_accounts.c.external_id, accounts.c.external_id, external_ids)
    resolve(deal_accounts.c.name, accounts.c.name, names, unique_only=True)
    if touched:
        conn.execute(update(deals).where(deals.c.id.in_(sorted(touched))).values(change_us=now_us))
    return len(touched)
