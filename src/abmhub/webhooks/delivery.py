"""The delivery workers' side of the database: what is due, who delivers it, how it went.

Any number of workers, in any number of server processes on one database, share the work
through a lease on the *subscription*: a worker claims one active subscription that has work
and whose lease is free (round robin, by when each was last claimed). In the claim's
transaction it turns the workspace's events past the subscription's cursor into pending
deliveries (those the subscription wants) and moves the cursor; then it delivers up to a batch
of the due ones in order (stopping at a failure: the subscription then backs off until the
failed delivery's retry), and records how each went, renewing the lease as it goes. So each
delivery is made by one worker in the normal path, a subscription's events go out in order,
and a slow or dead receiver holds one worker, never the others. A worker killed mid-batch
stops renewing: its lease runs out (`LEASE_US`) and another worker takes the subscription
over, starting again with what was not recorded as delivered (at least once).

Claiming is one short write transaction: SQLite runs writers one at a time (BEGIN
IMMEDIATE); PostgreSQL locks the chosen subscription row with `FOR UPDATE SKIP LOCKED`, so
concurrent workers pass over it instead of waiting, and re-checks the lease of a row that
changed under it. The events past a cursor are complete in id order (webhooks/outbox.py).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, delete, exists, func, literal, or_, select, update

from abmhub.db.engine import Database
from abmhub.db.queries import insert_rows
from abmhub.db.tables import webhook_deliveries, webhook_events, webhooks
from abmhub.ids import new_object_ids
from abmhub.webhooks.events import SCORE_CHANGED
from abmhub.webhooks.outbox import RETRY_WINDOW_US, unpack
from abmhub.webhooks.sender import Attempt

US = 1_000_000
# A worker's hold on a subscription: longer than one attempt may take (10 s), renewed after each.
LEASE_US = 20 * US
MAX_WAIT_US = 3600 * US  # the longest wait between two attempts
DISABLE_AFTER_US = 3 * 24 * 3600 * US  # a subscription whose every attempt failed for this long
FINISHED_KEPT_US = 30 * 24 * 3600 * US  # succeeded and failed deliveries are kept this long
BATCH = 50  # deliveries attempted per claim
FAN_OUT = 20  # outbox rows past the cursor turned into deliveries per claim
_DELIVERY_COLUMNS = (
    "workspace_id", "webhook_pk", "event_pk", "position", "event_id", "event_type", "delivery_id", "status",
    "attempts", "next_attempt_us", "expires_us", "created_us",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Due:
    """One delivery to attempt, with what its body is made of."""

    pk: int
    delivery_id: str
    attempts: int
    expires_us: int
    event_id: str
    event_type: str
    event_created_us: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    webhook_pk: int
    webhook_id: str
    url: str
    secret: str
    format: str
    token: str
    claimed_us: int
    due: list[Due]


def _due(now_us: int) -> Any:
    return and_(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_us <= now_us)


def _has_work(now_us: int) -> Any:
    """For a row of `webhooks`: deliveries due, or events past its cursor."""
    due = exists(select(literal(1)).where(webhook_deliveries.c.webhook_pk == webhooks.c.id, _due(now_us)))
    new = exists(
        select(literal(1)).where(
            webhook_events.c.workspace_id == webhooks.c.workspace_id,
            webhook_events.c.id > webhooks.c.cursor_event_pk,
        )
    )
    return or_(due, new)


def _deliverable(now_us: int) -> Any:
    """A row of `webhooks` that may be sent to now: active, not backing off after a failure."""
    return and_(
        webhooks.c.status == "active",
        or_(webhooks.c.backoff_until_us.is_(None), webhooks.c.backoff_until_us <= now_us),
    )


def anything_due(db: Database, now_us: int) -> bool:
    """A cheap read first: an idle worker polls with this, not with a write transaction."""
    with db.read() as conn:
        query = select(literal(1)).where(_deliverable(now_us), _has_work(now_us)).limit(1)
        return conn.execute(query).first() is not None


def claim(db: Database, now_us: int, *, batch: int = BATCH) -> Claim | None:
    """Take the lease of one active subscription with work; None if none is free."""
    token = secrets.token_hex(16)
    with db.write() as tx:
        conn = tx.conn
        candidate = (
            select(webhooks.c.id)
            .where(
                _deliverable(now_us),
                or_(webhooks.c.lease_until_us.is_(None), webhooks.c.lease_until_us < now_us),
                _has_work(now_us),
            )
            .order_by(webhooks.c.claimed_us, webhooks.c.id)
            .limit(1)
        )
        if conn.dialect.name == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True, of=webhooks)
        pk = conn.execute(candidate).scalar()
        if pk is None:
            return None
        hook = conn.execute(
            update(webhooks)
            .where(webhooks.c.id == pk)
            .values(lease_until_us=now_us + LEASE_US, lease_token=token, claimed_us=now_us)
            .returning(
                webhooks.c.webhook_id,
                webhooks.c.workspace_id,
                webhooks.c.url,
                webhooks.c.secret,
                webhooks.c.format,
                webhooks.c.events,
                webhooks.c.min_score_delta,
                webhooks.c.cursor_event_pk,
            )
        ).one()
        _fan_out(conn, pk, hook, now_us)
        rows = conn.execute(
            select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.delivery_id,
                webhook_deliveries.c.attempts,
                webhook_deliveries.c.expires_us,
                webhook_deliveries.c.event_id,
                webhook_deliveries.c.event_type,
                webhook_deliveries.c.event_pk,
                webhook_deliveries.c.position,
            )
            .where(webhook_deliveries.c.webhook_pk == pk, _due(now_us))
            .order_by(webhook_deliveries.c.next_attempt_us, webhook_deliveries.c.id)
            .limit(batch)
        ).all()
        # Each outbox row once, however many of its events are due.
        outboxed: dict[int, list[dict[str, Any]]] = {}
        created: dict[int, int] = {}
        for row in conn.execute(
            select(webhook_events.c.id, webhook_events.c.created_us, webhook_events.c.events).where(
                webhook_events.c.id.in_({row.event_pk for row in rows})
            )
        ):
            outboxed[row.id], created[row.id] = unpack(row.events), row.created_us
    due = [
        Due(
            row.id,
            row.delivery_id,
            row.attempts,
            row.expires_us,
            row.event_id,
            row.event_type,
            created[row.event_pk],
            outboxed[row.event_pk][row.position]["data"],
        )
        for row in rows
    ]
    return Claim(pk, hook.webhook_id, hook.url, hook.secret, hook.format, token, now_us, due)


def _fan_out(conn: Connection, webhook_pk: int, hook: Any, now_us: int) -> None:
    """Queue a delivery of each event past the cursor that the subscription wants; move the cursor."""
    outboxed = conn.execute(
        select(webhook_events.c.id, webhook_events.c.events, webhook_events.c.webhook_pk, webhook_events.c.created_us)
        .where(webhook_events.c.workspace_id == hook.workspace_id, webhook_events.c.id > hook.cursor_event_pk)
        .order_by(webhook_events.c.id)
        .limit(FAN_OUT)
    ).all()
    if not outboxed:
        return
    wanted = set(hook.events)
    queued = [
        (row, position, event)
        for row in outboxed
        if row.webhook_pk is None  # those for one subscription were queued with their delivery
        for position, event in enumerate(unpack(row.events))
        if event["type"] in wanted
        and (event["type"] != SCORE_CHANGED or (event["scoreDelta"] or 0) >= hook.min_score_delta)
    ]
    insert_rows(
        conn,
        webhook_deliveries,
        _DELIVERY_COLUMNS,
        [
            (
                hook.workspace_id,
                webhook_pk,
                row.id,
                position,
                event["id"],
                event["type"],
                delivery_id,
                "pending",
                0,
                now_us,
                row.created_us + RETRY_WINDOW_US,
                now_us,
            )
            for (row, position, event), delivery_id in zip(queued, new_object_ids(len(queued)), strict=True)
        ],
    )
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_pk).values(cursor_event_pk=outboxed[-1].id))


def next_wait_us(attempts: int, retry_base_s: float) -> int:
    """The wait after the `attempts`-th failed attempt: base, doubling, at most an hour, then
    up to 20 % more at random (jitter: receivers that come back are not hit all at once)."""
    wait = min(retry_base_s * US * 2 ** min(attempts - 1, 40), MAX_WAIT_US)
    return int(min(wait * random.uniform(1.0, 1.2), MAX_WAIT_US))


@dataclass(frozen=True, slots=True)
class Outcome:
    due: Due
    attempt: Attempt
    at_us: int


def record(db: Database, held: Claim, outcomes: Sequence[Outcome], *, retry_base_s: float) -> list[str]:
    """Store how attempts went, in one transaction, and renew the lease; the new statuses."""
    statuses: list[str] = []
    with db.write() as tx:
        conn = tx.conn
        for outcome in outcomes:
            statuses.append(_record_one(conn, held, outcome, retry_base_s))
        now_us = max((o.at_us for o in outcomes), default=held.claimed_us)
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == held.webhook_pk, webhooks.c.lease_token == held.token)
            .values(lease_until_us=now_us + LEASE_US)
        )
    return statuses


def _record_one(conn: Connection, held: Claim, outcome: Outcome, retry_base_s: float) -> str:
    due, attempt, now_us = outcome.due, outcome.attempt, outcome.at_us
    attempts = due.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
    }
    if attempt.ok:
        status = "succeeded"
        values.update(status=status, next_attempt_us=None, delivered_us=now_us)
        hook: dict[str, Any] = {"failing_since_us": None, "backoff_until_us": None}
    else:
        retry_at = now_us + next_wait_us(attempts, retry_base_s)
        status = "failed" if retry_at > due.expires_us else "pending"
        values.update(status=status, next_attempt_us=retry_at if status == "pending" else None)
        failing_since = func.coalesce(webhooks.c.failing_since_us, now_us)
        hook = {
            "failing_since_us": failing_since,
            "backoff_until_us": retry_at if status == "pending" else None,
            "status": case((failing_since <= now_us - DISABLE_AFTER_US, "disabled"), else_=webhooks.c.status),
        }
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == due.pk).values(**values))
    conn.execute(update(webhooks).where(webhooks.c.id == held.webhook_pk).values(**hook))
    return status


def record_attempt(db: Database, held: Claim, due: Due, attempt: Attempt, now_us: int, *, retry_base_s: float) -> str:
    """`record` for one attempt."""
    return record(db, held, [Outcome(due, attempt, now_us)], retry_base_s=retry_base_s)[0]


def release(db: Database, held: Claim) -> None:
    """Give the subscription back (another worker may take it at once)."""
    with db.write() as tx:
        tx.conn.execute(
            update(webhooks)
            .where(webhooks.c.id == held.webhook_pk, webhooks.c.lease_token == held.token)
            .values(lease_until_us=None, lease_token=None)
        )


def purge(db: Database, now_us: int) -> int:
    """Forget finished deliveries older than FINISHED_KEPT_US, and the outbox rows as old that
    no delivery needs and every listening (active or paused) subscription has taken."""
    with db.write() as tx:
        removed = tx.conn.execute(
            delete(webhook_deliveries).where(
                webhook_deliveries.c.status != "pending",
                webhook_deliveries.c.created_us < now_us - FINISHED_KEPT_US,
            )
        ).rowcount
        needed = select(webhook_deliveries.c.event_pk)
        behind = exists(
            select(literal(1)).where(
                webhooks.c.workspace_id == webhook_events.c.workspace_id,
                webhooks.c.status.in_(("active", "paused")),
                webhooks.c.cursor_event_pk < webhook_events.c.id,
            )
        )
        tx.conn.execute(
            delete(webhook_events).where(
                webhook_events.c.created_us < now_us - FINISHED_KEPT_US,
                webhook_events.c.id.not_in(needed),
                ~behind,
            )
        )
    return int(removed or 0)
