"""Segments: the static lists accounts are pushed into, and (later) rule-based ones (§2.12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Connection, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from abmhub.db.engine import Database, sync_pass
from abmhub.db.tables import accounts, segment_members, segments
from abmhub.errors import InvalidInput
from abmhub.ids import new_object_id
from abmhub.paging import Page, PageRequest

TYPES = ("static", "dynamic")
STATUSES = ("active", "draft", "archived")
ACCEPTING_STATUSES = ("active", "draft")


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    name: str
    type: str
    status: str


class SegmentNotUsable(InvalidInput):
    """A push named a segment that cannot take its accounts (a 400 for the whole request)."""


def create_segment(
    db: Database, *, workspace_id: int, name: str, type: str, status: str, rule: Any = None
) -> Segment:
    if type not in TYPES:
        raise ValueError(f"type must be one of: {', '.join(TYPES)}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of: {', '.join(STATUSES)}")
    if not name.strip():
        raise ValueError("a segment needs a name")
    segment = Segment(new_object_id(), name, type, status)
    with db.write(workspace_id) as tx:
        tx.conn.execute(
            insert(segments).values(
                workspace_id=workspace_id,
                segment_id=segment.segment_id,
                name=name,
                type=type,
                status=status,
                rule=rule,
                created_us=tx.now_us,
                change_us=tx.now_us,
            )
        )
    return segment


def segment_accepting_members(conn: Connection, workspace_id: int, segment_id: str) -> int:
    """The row id of a static, active or draft segment; otherwise the contract's 400 (§2.2)."""
    row = conn.execute(
        select(segments.c.id, segments.c.type, segments.c.status).where(
            segments.c.workspace_id == workspace_id, segments.c.segment_id == segment_id
        )
    ).first()
    if row is None:
        raise SegmentNotUsable(f"Segment '{segment_id}' not found")
    if row.type != "static":
        raise SegmentNotUsable(f"Segment '{segment_id}' is not a static segment")
    if row.status not in ACCEPTING_STATUSES:
        raise SegmentNotUsable(f"Segment '{segment_id}' is not active or draft and cannot accept new members")
    return row.id


def add_members_by_rtp_aid(
    conn: Connection, workspace_id: int, segment_pk: int, rtp_aids: Sequence[str], now: int
) -> None:
    """Add the workspace's accounts with these ids to the segment; existing members stay as they are."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    chosen = select(segments.c.id, accounts.c.id, literal(now, BigInteger)).where(
        segments.c.id == segment_pk,
        accounts.c.workspace_id == workspace_id,
        accounts.c.rtp_aid.in_(list(rtp_aids)),
    )
    conn.execute(
        dialect_insert(segment_members)
        .from_select(["segment_id", "account_id", "added_us"], chosen)
        .on_conflict_do_nothing()
    )


def list_member_lists(db: Database, *, workspace_id: int, page: PageRequest) -> Page[Segment]:
    """GET /segments: static segments that accept members, by id (keyset pages, delta sync)."""
    with sync_pass(db, workspace_id, page.sync_us) as (conn, sync_us):
        query = select(segments.c.segment_id, segments.c.name, segments.c.type, segments.c.status).where(
            segments.c.workspace_id == workspace_id,
            segments.c.type == "static",
            segments.c.status.in_(ACCEPTING_STATUSES),
        )
        if page.after is not None:
            query = query.where(segments.c.segment_id > page.after[0])
        if page.changed_after_us is not None:
            query = query.where(segments.c.change_us > page.changed_after_us)
        rows = conn.execute(query.order_by(segments.c.segment_id).limit(page.limit + 1)).all()
    has_next = len(rows) > page.limit
    items = [Segment(*row) for row in rows[: page.limit]]
    return Page(
        items=items, has_next=has_next, last_key=(items[-1].segment_id,) if items else None, sync_us=sync_us
    )
