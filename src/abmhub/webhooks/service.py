"""Subscriptions of a workspace and their deliveries (contract §8). No HTTP here.

`allow_private` is the server's `--webhook-allow-private-targets`: without it, a URL whose
host resolves to a loopback, private, link-local or otherwise non-public address is refused
here, and again at every delivery attempt (the address may change in between).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from abmhub.db.engine import Database
from abmhub.db.tables import webhook_deliveries, webhook_events, webhooks
from abmhub.errors import InvalidInput, NotFound
from abmhub.ids import new_object_id
from abmhub.paging import Page, PageRequest
from abmhub.webhooks import events as event_types
from abmhub.webhooks import outbox
from abmhub.webhooks.signing import new_secret
from abmhub.webhooks.targets import creation_problem

DEFAULT_MIN_SCORE_DELTA = 10


@dataclass(frozen=True, slots=True)
class Webhook:
    pk: int
    webhook_id: str
    url: str
    events: list[str]
    description: str | None
    format: str
    min_score_delta: int
    status: str
    created_us: int
    updated_us: int


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_us: int | None
    created_us: int
    pk: int


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"Webhook '{webhook_id}' not found")


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"Delivery '{delivery_id}' not found")


class PrivateWebhookTarget(InvalidInput):
    """400 with the contract's text: `Webhook URL '<url>' points to a private address`."""


_COLUMNS = (
    webhooks.c.id,
    webhooks.c.webhook_id,
    webhooks.c.url,
    webhooks.c.events,
    webhooks.c.description,
    webhooks.c.format,
    webhooks.c.min_score_delta,
    webhooks.c.status,
    webhooks.c.created_us,
    webhooks.c.updated_us,
)


def _webhook(row: Any) -> Webhook:
    return Webhook(*row)


def _check_target(url: str, allow_private: bool) -> None:
    problem = creation_problem(url, allow_private=allow_private)
    if problem is not None:
        raise PrivateWebhookTarget(problem)


def create_webhook(
    db: Database,
    *,
    workspace_id: int,
    url: str,
    events: Sequence[str],
    description: str | None = None,
    format: str = "json",
    min_score_delta: int = DEFAULT_MIN_SCORE_DELTA,
    allow_private: bool = False,
) -> tuple[Webhook, str]:
    """A new active subscription and its secret, which nothing shows again."""
    unknown = sorted(set(events) - set(event_types.EVENT_TYPES))
    if unknown or not events:
        raise ValueError(f"unknown event types: {', '.join(unknown)}" if unknown else "no event types")
    _check_target(url, allow_private)
    secret = new_secret()
    with db.write(workspace_id) as tx:
        pk = tx.conn.execute(
            insert(webhooks)
            .values(
                workspace_id=workspace_id,
                webhook_id=new_object_id(),
                url=url,
                events=list(events),
                description=description,
                format=format,
                min_score_delta=min_score_delta,
                status="active",
                secret=secret,
                created_us=tx.now_us,
                updated_us=tx.now_us,
                cursor_event_pk=_last_event(tx.conn, workspace_id),  # from now on
            )
            .returning(webhooks.c.id)
        ).scalar_one()
        return _webhook(tx.conn.execute(select(*_COLUMNS).where(webhooks.c.id == pk)).one()), secret


def _last_event(conn: Connection, workspace_id: int) -> int:
    last = select(func.max(webhook_events.c.id)).where(webhook_events.c.workspace_id == workspace_id)
    return int(conn.execute(last).scalar() or 0)


def _find(conn: Connection, workspace_id: int, webhook_id: str) -> Webhook:
    row = conn.execute(
        select(*_COLUMNS).where(webhooks.c.workspace_id == workspace_id, webhooks.c.webhook_id == webhook_id)
    ).first()
    if row is None:
        raise WebhookNotFound(webhook_id)
    return _webhook(row)


def get_webhook(db: Database, *, workspace_id: int, webhook_id: str) -> Webhook:
    with db.read() as conn:
        return _find(conn, workspace_id, webhook_id)


def list_webhooks(db: Database, *, workspace_id: int, page: PageRequest) -> Page[Webhook]:
    """Keyset pages in creation order."""
    with db.read() as conn:
        query = select(*_COLUMNS).where(webhooks.c.workspace_id == workspace_id)
        if (after := page.start_after(int)) is not None:
            query = query.where(webhooks.c.id > after)
        rows = conn.execute(query.order_by(webhooks.c.id).limit(page.limit + 1)).all()
    found = [_webhook(row) for row in rows[: page.limit]]
    return Page(items=found, has_next=len(rows) > page.limit, last_key=(found[-1].pk,) if found else None)


def all_webhooks(db: Database, *, workspace_id: int) -> list[Webhook]:
    with db.read() as conn:
        rows = conn.execute(
            select(*_COLUMNS).where(webhooks.c.workspace_id == workspace_id).order_by(webhooks.c.id)
        ).all()
    return [_webhook(row) for row in rows]


def update_webhook(
    db: Database, *, workspace_id: int, webhook_id: str, changes: dict[str, Any], allow_private: bool = False
) -> Webhook:
    """Apply the given keys (`url`, `events`, `description`, `min_score_delta`, `status`).

    Resuming a paused subscription delivers what happened while it was paused. Resuming a
    disabled one (3 days of failures) forgets its run of failures and starts from now: events
    are not kept for a disabled subscription; its deliveries still pending become due again.
    """
    if changes.get("url") is not None:
        _check_target(changes["url"], allow_private)
    values = {key: value for key, value in changes.items() if value is not None or key == "description"}
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, webhook_id)
        if values.get("status") == "active" and found.status != "active":
            values["failing_since_us"] = None
        if values.get("status") == "active" and found.status == "disabled":
            values["cursor_event_pk"] = _last_event(tx.conn, workspace_id)
        tx.conn.execute(update(webhooks).where(webhooks.c.id == found.pk).values(**values, updated_us=tx.now_us))
        return _find(tx.conn, workspace_id, webhook_id)


def delete_webhook(db: Database, *, workspace_id: int, webhook_id: str) -> None:
    """Gone with its deliveries. The outbox rows stay: another subscription may not have taken
    their events yet (the worker's hourly purge removes old ones nobody needs)."""
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, webhook_id)
        tx.conn.execute(delete(webhooks).where(webhooks.c.id == found.pk))  # deliveries cascade


def send_test(db: Database, *, workspace_id: int, webhook_id: str) -> Delivery:
    """Queue a `ping` to this subscription alone, whatever its events and status."""
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, webhook_id)
        queued = outbox.record_for(tx.conn, workspace_id, tx.now_us, event_types.ping(found.webhook_id), found.pk)
        row = tx.conn.execute(_delivery_query().where(webhook_deliveries.c.delivery_id == queued)).one()
    return Delivery(*row)


# --- deliveries --------------------------------------------------------------------------------


def _delivery_query() -> Any:
    return select(
        webhook_deliveries.c.delivery_id,
        webhook_deliveries.c.event_id,
        webhook_deliveries.c.event_type,
        webhook_deliveries.c.status,
        webhook_deliveries.c.attempts,
        webhook_deliveries.c.last_status_code,
        webhook_deliveries.c.last_error,
        webhook_deliveries.c.next_attempt_us,
        webhook_deliveries.c.created_us,
        webhook_deliveries.c.id,
    )


def list_deliveries(db: Database, *, workspace_id: int, webhook_id: str, page: PageRequest) -> Page[Delivery]:
    """A subscription's deliveries, newest first (keyset pages)."""
    with db.read() as conn:
        found = _find(conn, workspace_id, webhook_id)
        query = _delivery_query().where(webhook_deliveries.c.webhook_pk == found.pk)
        if (before := page.start_after(int)) is not None:
            query = query.where(webhook_deliveries.c.id < before)
        rows = conn.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(page.limit + 1)).all()
    items = [Delivery(*row) for row in rows[: page.limit]]
    return Page(items=items, has_next=len(rows) > page.limit, last_key=(items[-1].pk,) if items else None)


def redeliver(db: Database, *, workspace_id: int, webhook_id: str, delivery_id: str) -> Delivery:
    """Queue a delivery again, now, with a new 24-hour window (whatever its status was)."""
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, webhook_id)
        mine = (webhook_deliveries.c.webhook_pk == found.pk) & (webhook_deliveries.c.delivery_id == delivery_id)
        queued = tx.conn.execute(
            update(webhook_deliveries)
            .where(mine)
            .values(status="pending", next_attempt_us=tx.now_us, expires_us=tx.now_us + outbox.RETRY_WINDOW_US)
        )
        if queued.rowcount == 0:
            raise DeliveryNotFound(delivery_id)
        return Delivery(*tx.conn.execute(_delivery_query().where(mine)).one())
