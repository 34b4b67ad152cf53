"""A workspace's IP ranges (`PUT /ip-ranges`, `abmhub ip-ranges import`): whose addresses are whose."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from abmhub.db.engine import Database
from abmhub.db.queries import insert_rows
from abmhub.db.tables import ip_ranges
from abmhub.errors import InvalidInput
from abmhub.website.addresses import parse_ranges_csv

MAX_PROBLEMS_SHOWN = 10


class InvalidRanges(InvalidInput):
    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        super().__init__(f"Invalid IP ranges: {shown}{more}")
        self.problems = problems


def replace_ranges(db: Database, *, workspace_id: int, text: str) -> int:
    """Replace the workspace's ranges with the CSV's (`cidr,domain` lines); all or nothing."""
    ranges, problems = parse_ranges_csv(text)
    if problems:
        raise InvalidRanges(problems)
    with db.write(workspace_id) as tx:
        tx.conn.execute(delete(ip_ranges).where(ip_ranges.c.workspace_id == workspace_id))
        insert_rows(
            tx.conn, ip_ranges, ("workspace_id", "cidr", "domain"), [(workspace_id, r.cidr, r.domain) for r in ranges]
        )
    return len(ranges)


def list_ranges(db: Database, *, workspace_id: int) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(ip_ranges.c.cidr, ip_ranges.c.domain)
            .where(ip_ranges.c.workspace_id == workspace_id)
            .order_by(ip_ranges.c.id)
        )
        return [{"cidr": cidr, "domain": domain} for cidr, domain in rows]
