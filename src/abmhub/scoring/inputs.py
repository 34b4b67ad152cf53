"""Marking accounts whose scoring inputs changed, for the next incremental run.

Every write that changes what an account's score is computed from calls one of these in
its own transaction: the engine then rescores exactly those accounts (`score_dirty`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Select, update

from abmhub.db.tables import accounts


def mark_accounts(conn: Connection, account_ids: Collection[int | None]) -> None:
    """Mark these accounts (None entries ignored) as needing a rescore."""
    ids = sorted({a for a in account_ids if a is not None})
    for start in range(0, len(ids), 1000):
        conn.execute(update(accounts).where(accounts.c.id.in_(ids[start : start + 1000])).values(score_dirty=True))


def mark_selected(conn: Connection, account_ids: Select[Any]) -> None:
    """Mark the accounts a subquery selects (set-based, no ids pulled into Python)."""
    conn.execute(update(accounts).where(accounts.c.id.in_(account_ids)).values(score_dirty=True))


def mark_domains(conn: Connection, workspace_id: int, domains: Collection[str]) -> None:
    """Mark the accounts that have these domains (signals arrive by domain)."""
    wanted = sorted(set(domains))
    for start in range(0, len(wanted), 1000):
        conn.execute(
            update(accounts)
            .where(
                accounts.c.workspace_id == workspace_id,
                accounts.c.domain.in_(wanted[start : start + 1000]),
                accounts.c.score_dirty.is_(False),  # already marked: no rewrite
            )
            .values(score_dirty=True)
        )
