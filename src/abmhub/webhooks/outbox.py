"""The outbox: events written in the transaction of the change they announce (contract §8).

A write that can cause events calls `publish` inside its transaction. Nothing is written when
no subscription of the workspace wants them; otherwise the events, as ONE row whatever their
number (a JSON array). If the change rolls back, so do they: nothing is
announced that did not commit, and nothing committed goes unannounced. The push pays for the
events only: each subscription's delivering worker turns the events past its cursor into its
deliveries later (`webhooks/delivery.py`).

**Why a cursor is safe.** Outbox rows get their ids from the table's sequence, and a worker
takes the rows of a workspace past the subscription's cursor, in id order. That needs the rows
of a workspace to commit in id order, which holds because every transaction that writes them is a
write of that workspace (`Database.write(workspace_id)`), which first ticks the workspace's
clock and so holds its row lock (PostgreSQL; SQLite has one writer) until it commits. Keep it
so: publish only inside such a transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Connection, insert, select, text

from abmhub.db.engine import PREPARED
from abmhub.db.queries import among
from abmhub.db.tables import accounts, webhook_deliveries
from abmhub.ids import new_object_ids
from abmhub.webhooks.events import SCORE_CHANGED, Event

RETRY_WINDOW_US = 24 * 3600 * 1_000_000  # a delivery is retried for 24 h, then it has failed


@dataclass(frozen=True, slots=True)
class Subscription:
    pk: int
    events: frozenset[str]
    min_score_delta: int

    def wants(self, event: Event) -> bool:
        if event.type not in self.events:
            return False
        return event.type != SCORE_CHANGED or (event.score_delta or 0) >= self.min_score_delta


@dataclass(frozen=True, slots=True)
class Listeners:
    """The workspace's subscriptions that take events, read once per write: the active ones and
    the paused ones (a paused subscription gets what it missed when it is resumed)."""

    subscriptions: tuple[Subscription, ...]

    def want(self, event_type: str) -> bool:
        """Whether any subscription takes this type: build no event nobody takes."""
        return any(event_type in s.events for s in self.subscriptions)


# Every push, scoring batch and activity asks this, subscribed or not: one small prepared
# statement (webhooks is a small table), its JSON read by hand (a compiled Core select with
# the JSON type cost 0.45 ms a call, a third of what a push of 100 accounts spent on events).
_LISTENERS = text(
    "SELECT id, events, min_score_delta FROM webhooks WHERE workspace_id = :w AND status IN ('active', 'paused')"
).execution_options(**PREPARED)


def listeners(conn: Connection, workspace_id: int) -> Listeners:
    rows = conn.execute(_LISTENERS, {"w": workspace_id}).all()
    return Listeners(
        tuple(
            Subscription(pk, frozenset(orjson.loads(events) if isinstance(events, str) else events), min_delta)
            for pk, events, min_delta in rows
        )
    )


def account_summaries(conn: Connection, account_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """`{rtp_aid, domain, name}` of these accounts by id: how an event names an account."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(accounts.c.id, accounts.c.rtp_aid, accounts.c.domain, accounts.c.name).where(
            among(conn, accounts.c.id, ids)
        )
    )
    return {row.id: {"rtp_aid": row.rtp_aid, "domain": row.domain, "name": row.name} for row in rows}


def publish(conn: Connection, workspace_id: int, now_us: int, build: Callable[[Listeners], Sequence[Event]]) -> int:
    """Record the events `build` makes (it is called only when some subscription listens, and
    should skip the types none wants). Returns the number of events written."""
    audience = listeners(conn, workspace_id)
    if not audience.subscriptions:
        return 0
    return record(conn, workspace_id, now_us, build(audience), audience)


def record(
    conn: Connection, workspace_id: int, now_us: int, events: Sequence[Event], audience: Listeners | None = None
) -> int:
    """Write the `events` some subscription of `audience` (default: the workspace's listening
    ones) wants, as one outbox row; returns how many."""
    audience = audience if audience is not None else listeners(conn, workspace_id)
    wanted = [event for event in events if any(s.wants(event) for s in audience.subscriptions)]
    _write(conn, workspace_id, now_us, wanted)
    return len(wanted)


def record_for(conn: Connection, workspace_id: int, now_us: int, event: Event, webhook_pk: int) -> str:
    """One event for one subscription, whatever it subscribed to (a test `ping`), queued with
    its delivery at once; returns the delivery id."""
    event_pk, [event_id] = _write(conn, workspace_id, now_us, [event], webhook_pk=webhook_pk)
    delivery_id = new_object_ids(1)[0]
    conn.execute(
        insert(webhook_deliveries).values(
            workspace_id=workspace_id,
            webhook_pk=webhook_pk,
            event_pk=event_pk,
            position=0,
            event_id=event_id,
            event_type=event.type,
            delivery_id=delivery_id,
            status="pending",
            attempts=0,
            next_attempt_us=now_us,
            expires_us=now_us + RETRY_WINDOW_US,
            created_us=now_us,
        )
    )
    return delivery_id


def _write(
    conn: Connection, workspace_id: int, now_us: int, events: Sequence[Event], webhook_pk: int | None = None
) -> tuple[int, list[str]]:
    """The events as one outbox row; (its id, the events' ids)."""
    if not events:
        return 0, []
    event_ids = ["evt_" + public_id for public_id in new_object_ids(len(events))]
    stored = [
        {"id": event_id, "type": event.type, "data": event.data, "scoreDelta": event.score_delta}
        for event_id, event in zip(event_ids, events, strict=True)
    ]
    pk = conn.execute(_INSERT, {"w": workspace_id, "e": pack(stored), "c": now_us, "h": webhook_pk}).scalar_one()
    return int(pk), event_ids


_INSERT = text(
    "INSERT INTO webhook_events (workspace_id, events, created_us, webhook_pk) VALUES (:w, :e, :c, :h) RETURNING id"
)


def pack(events: list[dict[str, Any]]) -> bytes:
    """An outbox row's events as stored: JSON, compressed. A push's 100 events are ~20 KB of
    JSON with the same keys over and over (~4 KB compressed, 20 µs): what a push writes to the
    database's log is what it pays for (measured, SQLite: the push ratio with 5 subscriptions
    went from 0.86-0.88 to see docs/performance.md#webhooks)."""
    return zlib.compress(orjson.dumps(events), 1)


def unpack(stored: bytes) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], orjson.loads(zlib.decompress(stored)))
