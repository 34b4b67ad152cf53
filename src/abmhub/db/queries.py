"""Small queries several services share."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Column, Connection, select


def stored_values(
    conn: Connection, column: Column, workspace_id: int, values: Collection[str]
) -> set[str]:
    """Which of `values` the workspace already has in `column` (create-only and idempotent pushes)."""
    if not values:
        return set()
    table = column.table
    return set(
        conn.execute(
            select(column).where(
                table.c.workspace_id == workspace_id, column.in_(sorted(values))
            )
        ).scalars()
    )
