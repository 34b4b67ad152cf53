"""Manual activities: logged by a user against an account, a deal and contacts (contract §4.2).

They are stored in `activities` next to the calls and emails (kind `manual`), so they share
the timeline and count as sales engagement for the account's score like a call does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert

from abmhub.activities.timeline import (
    MANUAL_KIND,
    TimelineEntry,
    entries_query,
    read_entries,
    resolve_references,
)
from abmhub.db.engine import Database
from abmhub.db.tables import activities, activity_contacts
from abmhub.ids import new_uuid7
from abmhub.scoring.inputs import mark_accounts
from abmhub.webhooks import outbox
from abmhub.webhooks.events import ACTIVITY_CREATED, Event, activity_created

CATEGORIES = ("TEXT", "LINKEDIN", "SOCIAL_MEDIA", "EVENT", "CONFERENCE", "WEBINAR", "CALL", "OTHER")


@dataclass(frozen=True, slots=True)
class ManualActivity:
    """What a user logs. References are UUIDs of the workspace's records."""

    occurred_us: int
    subject: str
    description: str
    category: str = "OTHER"
    account_uuid: str | None = None
    deal_uuid: str | None = None
    contact_uuids: Sequence[str] = ()
    # Stored as given (they name records of the caller's own systems).
    sequence_id: str | None = None
    pipeline_select_list_value_id: str | None = None


def log_manual_activity(db: Database, *, workspace_id: int, user_id: int, activity: ManualActivity) -> TimelineEntry:
    """Store a manual activity owned by `user_id`, in one transaction, and return it.

    Raises RecordsNotFound, storing nothing, when a referenced account, deal or contact is
    not a record of the workspace. The account is marked for rescoring.
    """
    if activity.category not in CATEGORIES:
        raise ValueError(f"unknown category {activity.category!r}")
    with db.write(workspace_id) as tx:
        conn = tx.conn
        refs = resolve_references(
            conn,
            workspace_id,
            account_uuid=activity.account_uuid,
            deal_uuid=activity.deal_uuid,
            contact_uuids=activity.contact_uuids,
        )
        uuid = new_uuid7()
        activity_id = conn.execute(
            insert(activities)
            .values(
                workspace_id=workspace_id,
                uuid=uuid,
                kind=MANUAL_KIND,
                occurred_us=activity.occurred_us,
                account_id=refs.account_id,
                deal_id=refs.deal_id,
                owner_user_id=user_id,
                subject=activity.subject,
                description=activity.description,
                category=activity.category,
                sequence_id=activity.sequence_id,
                pipeline_select_list_value_id=activity.pipeline_select_list_value_id,
                created_us=tx.now_us,
                change_us=tx.now_us,
            )
            .returning(activities.c.id)
        ).scalar_one()
        if refs.contact_ids:
            conn.execute(
                insert(activity_contacts),
                [
                    {
                        "activity_id": activity_id,
                        "contact_id": contact_id,
                        "position": position,
                        "occurred_us": activity.occurred_us,
                        "activity_uuid": uuid,
                    }
                    for position, contact_id in enumerate(refs.contact_ids)
                ],
            )
        mark_accounts(conn, [refs.account_id])  # sales engagement is a scoring input
        announce = functools.partial(_created_event, conn, uuid=uuid, activity=activity, account_id=refs.account_id)
        outbox.publish(conn, workspace_id, tx.now_us, announce)
        (entry,) = read_entries(conn, entries_query().where(activities.c.id == activity_id))
    return entry


def _created_event(
    conn: Connection, audience: outbox.Listeners, *, uuid: str, activity: ManualActivity, account_id: int | None
) -> list[Event]:
    """`activity.created` for the logged activity (§8)."""
    if not audience.want(ACTIVITY_CREATED):
        return []
    accounts = outbox.account_summaries(conn, [account_id] if account_id is not None else [])
    return [
        activity_created(
            uuid=uuid,
            kind=MANUAL_KIND,
            occurred_us=activity.occurred_us,
            subject=activity.subject,
            account=accounts.get(account_id) if account_id is not None else None,
        )
    ]
