"""Segments: the static lists accounts are pushed into, and (later) rule-based ones (§2.12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError

from abmhub.db.engine import Database, sync_pass
from abmhub.db.tables import accounts, segment_members, segments
from abmhub.errors import InvalidInput, NotFound
from abmhub.ids import new_object_id
from abmhub.paging import Page, PageRequest
from abmhub.scoring.rules import rule_sql

TYPES = ("static", "dynamic")
STATUSES = ("active", "draft", "archived")
ACCEPTING_STATUSES = ("active", "draft")


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    name: str
    type: str
    status: str
    rule: Any = None
    created_us: int = 0
    change_us: int = 0


class SegmentNotFound(NotFound):
    def __init__(self, segment_id: str) -> None:
        super().__init__(f"Segment '{segment_id}' not found")


class SegmentIsDynamic(InvalidInput):
    def __init__(self, segment_id: str) -> None:
        super().__init__(f"Segment '{segment_id}' is dynamic; its members come from its rule")


class RuleNeedsDynamicSegment(InvalidInput):
    def __init__(self) -> None:
        super().__init__("Only a dynamic segment can have a rule")


_SEGMENT_COLUMNS = (
    segments.c.segment_id,
    segments.c.name,
    segments.c.type,
    segments.c.status,
    segments.c.rule,
    segments.c.created_us,
    segments.c.change_us,
)


class SegmentNotUsable(InvalidInput):
    """A push named a segment that cannot take its accounts (a 400 for the whole request)."""


def create_segment(db: Database, *, workspace_id: int, name: str, type: str, status: str, rule: Any = None) -> Segment:
    if type not in TYPES:
        raise ValueError(f"type must be one of: {', '.join(TYPES)}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of: {', '.join(STATUSES)}")
    if not name.strip():
        raise ValueError("a segment needs a name")
    if rule is not None and type != "dynamic":
        raise RuleNeedsDynamicSegment()
    with db.write(workspace_id) as tx:
        segment = Segment(new_object_id(), name, type, status, rule, tx.now_us, tx.now_us)
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
    return int(row.id)


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
        query = select(*_SEGMENT_COLUMNS).where(
            segments.c.workspace_id == workspace_id,
            segments.c.type == "static",
            segments.c.status.in_(ACCEPTING_STATUSES),
        )
        if (after := page.start_after(str)) is not None:
            query = query.where(segments.c.segment_id > after)
        if page.changed_after_us is not None:
            query = query.where(segments.c.change_us > page.changed_after_us)
        rows = conn.execute(query.order_by(segments.c.segment_id).limit(page.limit + 1)).all()
    has_next = len(rows) > page.limit
    items = [Segment(*row) for row in rows[: page.limit]]
    return Page(items=items, has_next=has_next, last_key=(items[-1].segment_id,) if items else None, sync_us=sync_us)


def _segment_row(conn: Connection, workspace_id: int, segment_id: str) -> Any:
    row = conn.execute(
        select(segments.c.id, *_SEGMENT_COLUMNS).where(
            segments.c.workspace_id == workspace_id, segments.c.segment_id == segment_id
        )
    ).first()
    if row is None:
        raise SegmentNotFound(segment_id)
    return row


def get_segment(db: Database, *, workspace_id: int, segment_id: str) -> Segment:
    with db.read() as conn:
        return Segment(*_segment_row(conn, workspace_id, segment_id)[1:])


def update_segment(db: Database, *, workspace_id: int, segment_id: str, changes: dict[str, Any]) -> Segment:
    """Rename, change status or replace the rule; `changes` holds only the given keys."""
    with db.write(workspace_id) as tx:
        row = _segment_row(tx.conn, workspace_id, segment_id)
        if changes.get("rule") is not None and row.type != "dynamic":
            raise RuleNeedsDynamicSegment()
        values = {key: value for key, value in changes.items() if key in ("name", "status", "rule")}
        if "name" in values and values["name"] is None:
            del values["name"]
        if "status" in values and values["status"] is None:
            del values["status"]
        if values:
            tx.conn.execute(update(segments).where(segments.c.id == row.id).values(change_us=tx.now_us, **values))
        return Segment(*_segment_row(tx.conn, workspace_id, segment_id)[1:])


@dataclass(frozen=True, slots=True)
class MembershipChange:
    changed: int
    not_found: list[str]


def _member_accounts(conn: Connection, workspace_id: int, rtp_aids: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    wanted = list(dict.fromkeys(rtp_aids))
    found = dict(
        conn.execute(
            select(accounts.c.rtp_aid, accounts.c.id).where(
                accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid.in_(wanted)
            )
        ).all()
    )
    return found, [r for r in wanted if r not in found]


def _static_segment_pk(conn: Connection, workspace_id: int, segment_id: str, *, adding: bool) -> int:
    row = _segment_row(conn, workspace_id, segment_id)
    if row.type != "static":
        raise SegmentIsDynamic(segment_id)
    if adding and row.status not in ACCEPTING_STATUSES:
        raise SegmentNotUsable(f"Segment '{segment_id}' is not active or draft and cannot accept new members")
    return int(row.id)


def add_members(db: Database, *, workspace_id: int, segment_id: str, rtp_aids: Sequence[str]) -> MembershipChange:
    """Add accounts to a static segment; each new member counts as a change of its account."""
    with db.write(workspace_id) as tx:
        segment_pk = _static_segment_pk(tx.conn, workspace_id, segment_id, adding=True)
        found, not_found = _member_accounts(tx.conn, workspace_id, rtp_aids)
        already = set(
            tx.conn.execute(
                select(segment_members.c.account_id).where(
                    segment_members.c.segment_id == segment_pk, segment_members.c.account_id.in_(list(found.values()))
                )
            ).scalars()
        )
        new = [account_id for account_id in found.values() if account_id not in already]
        if new:
            tx.conn.execute(
                insert(segment_members),
                [{"segment_id": segment_pk, "account_id": a, "added_us": tx.now_us} for a in new],
            )
            tx.conn.execute(update(accounts).where(accounts.c.id.in_(new)).values(change_us=tx.now_us))
    return MembershipChange(len(new), not_found)


def remove_members(db: Database, *, workspace_id: int, segment_id: str, rtp_aids: Sequence[str]) -> MembershipChange:
    """Remove accounts from a static segment; each removal counts as a change of its account."""
    with db.write(workspace_id) as tx:
        segment_pk = _static_segment_pk(tx.conn, workspace_id, segment_id, adding=False)
        found, not_found = _member_accounts(tx.conn, workspace_id, rtp_aids)
        removed = list(
            tx.conn.execute(
                delete(segment_members)
                .where(
                    segment_members.c.segment_id == segment_pk,
                    segment_members.c.account_id.in_(list(found.values())),
                )
                .returning(segment_members.c.account_id)
            ).scalars()
        )
        if removed:
            tx.conn.execute(update(accounts).where(accounts.c.id.in_(removed)).values(change_us=tx.now_us))
    return MembershipChange(len(removed), not_found)


def list_all(db: Database, *, workspace_id: int) -> list[tuple[Segment, int]]:
    """Every segment of the workspace with its member count (for operators)."""
    members = (
        select(func.count())
        .select_from(segment_members)
        .where(segment_members.c.segment_id == segments.c.id)
        .scalar_subquery()
    )
    with db.read() as conn:
        rows = conn.execute(
            select(*_SEGMENT_COLUMNS, members).where(segments.c.workspace_id == workspace_id).order_by(segments.c.id)
        ).all()
    return [(Segment(*row[:-1]), row[-1]) for row in rows]


# --- the dashboard's reads ----------------------------------------------------------------------


def segments_of_account(db: Database, *, workspace_id: int, account_id: int) -> list[Segment]:
    """The segments of the workspace that have this account as a member, by name."""
    with db.read() as conn:
        rows = conn.execute(
            select(*_SEGMENT_COLUMNS)
            .join(segment_members, segment_members.c.segment_id == segments.c.id)
            .where(segments.c.workspace_id == workspace_id, segment_members.c.account_id == account_id)
            .order_by(segments.c.name, segments.c.segment_id)
        ).all()
    return [Segment(*row) for row in rows]


class RuleNotEvaluable(InvalidInput):
    def __init__(self) -> None:
        super().__init__("This rule cannot be evaluated: a numeric comparison met a value that is not a number")


@dataclass(frozen=True, slots=True)
class RulePreview:
    """How many accounts a rule selects now, and the best-scored of them."""

    count: int
    accounts: list[Any]


def preview_rule(db: Database, *, workspace_id: int, rule: dict[str, Any] | None, limit: int = 10) -> RulePreview:
    """Evaluate a dynamic segment's rule (checked against `SegmentRule`) without storing anything.

    The same SQL as the scoring job's refresh of dynamic segments, so the preview matches the
    members the segment gets at its next run (as long as the accounts do not change meanwhile).
    """
    with db.read() as conn:
        matches = and_(accounts.c.workspace_id == workspace_id, rule_sql(conn, rule))
        try:
            count = conn.execute(select(func.count()).select_from(accounts).where(matches)).scalar_one()
            rows = conn.execute(
                select(
                    accounts.c.rtp_aid,
                    accounts.c.name,
                    accounts.c.domain,
                    accounts.c.journey_stage,
                    accounts.c.account_score,
                )
                .where(matches)
                .order_by(accounts.c.account_score.desc(), accounts.c.rtp_aid)
                .limit(limit)
            ).all()
        except DataError:  # PostgreSQL: a custom field holding text compared as a number
            raise RuleNotEvaluable() from None
    return RulePreview(count=int(count), accounts=list(rows))
