"""The outbox: events written in the transaction of the change they announce (contract §8).

A write that can cause events calls `publish` inside its transaction. Nothing is written when
no active subscription of the workspace wants the event; otherwise the events, as one
multi-row statement whatever their number. If the change rolls back, so do they: nothing is
announced that did not commit, and nothing committed goes unannounced. The push pays for the
events only: each subscription's delivering worker turns the events past its cursor into its
deliveries later (`webhooks/delivery.py`).

**Why a cursor is safe.** Event ids come from the table's sequence, and a worker takes the
events of a workspace past the subscription's cursor, in id order. That needs the events of a
workspace to commit in id order, which holds because every transaction that writes them is a
write of that workspace (`Database.write(workspace_id)`), which first ticks the workspace's
clock and so holds its row lock (PostgreSQL; SQLite has one writer) until it commits. Keep it
so: publish only inside such a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from abmhub.db.queries import among, insert_rows, json_text
from abmhub.db.tables import accounts, webhook_deliveries, webhook_events, webhooks
from abmhub.ids import new_object_ids
from abmhub.webhooks.events import SCORE_CHANGED, Event

RETRY_WINDOW_US = 24 * 3600 * 1_000_000  # a delivery is retried for 24 h, then it has failed
_EVENT_COLUMNS = ("workspace_id", "event_id", "type", "data", "created_us", "score_delta", "webhook_pk")


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


def listeners(conn: Connection, workspace_id: int) -> Listeners:
    rows = conn.execute(
        select(webhooks.c.id, webhooks.c.events, webhooks.c.min_score_delta).where(
            webhooks.c.workspace_id == workspace_id, webhooks.c.status.in_(("active", "paused"))
        )
    ).all()
    return Listeners(tuple(Subscription(row.id, frozenset(row.events), row.min_score_delta) for row in rows))


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
    """Write the `events` some subscription of `audience` (default: the workspace's active
    ones) wants, as one statement; returns how many."""
    audience = audience if audience is not None else listeners(conn, workspace_id)
    wanted = [event for event in events if any(s.wants(event) for s in audience.subscriptions)]
    _write(conn, workspace_id, now_us, wanted)
    return len(wanted)


def record_for(conn: Connection, workspace_id: int, now_us: int, event: Event, webhook_pk: int) -> str:
    """One event for one subscription, whatever it subscribed to (a test `ping`), queued with
    its delivery at once; returns the delivery id."""
    [event_id] = _write(conn, workspace_id, now_us, [event], webhook_pk=webhook_pk)
    event_pk = conn.execute(select(webhook_events.c.id).where(webhook_events.c.event_id == event_id)).scalar_one()
    delivery_id = new_object_ids(1)[0]
    conn.execute(
        insert(webhook_deliveries).values(
            workspace_id=workspace_id,
            webhook_pk=webhook_pk,
            event_pk=event_pk,
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
) -> list[str]:
    if not events:
        return []
    event_ids = ["evt_" + public_id for public_id in new_object_ids(len(events))]
    insert_rows(
        conn,
        webhook_events,
        _EVENT_COLUMNS,
        [
            (workspace_id, event_id, event.type, json_text(event.data), now_us, event.score_delta, webhook_pk)
            for event_id, event in zip(event_ids, events, strict=True)
        ],
    )
    return event_ids
