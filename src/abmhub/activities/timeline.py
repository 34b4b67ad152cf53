"""The activity timeline: one history of calls, emails and manual activities (contract §4.3, §6.24).

Calls and emails (pushed on Surface R) and manual activities (logged on Surface V) share the
`activities` table, so a timeline is one keyset query, whatever the mix. It is scoped to an
account, a deal or a contact (or several: all must hold) and ordered newest first by
activity time, then by UUID; each of the three scopes has an index in exactly that order,
so a page costs the same at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, select, tuple_

from abmhub.activities.service import RECORD_COLUMNS, contacts_of
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, activities, activity_contacts, contacts, deals, users
from abmhub.errors import MissingRecord, RecordsNotFound

MANUAL_KIND = "manual"

TIMELINE_COLUMNS = (
    *RECORD_COLUMNS,
    activities.c.description,
    activities.c.category,
    activities.c.sequence_id,
    activities.c.pipeline_select_list_value_id,
    users.c.uuid.label("owner_user_uuid"),
)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One activity of a timeline: its row (with the linked account's `rtp_aid` and the
    owner's UUID) and, for calls and emails, its contacts as they are now."""

    row: Any
    contacts: list[Any]

    @property
    def updated_us(self) -> int:
        """When the activity as shown last changed (its contacts included)."""
        return int(max([self.row.change_us, *(person.change_us for person in self.contacts)]))


# --- references by UUID --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class References:
    """Row ids of the records a request named by UUID (None where it named none)."""

    account_id: int | None = None
    deal_id: int | None = None
    contact_ids: tuple[int, ...] = ()


def resolve_references(
    conn: Connection,
    workspace_id: int,
    *,
    account_uuid: str | None = None,
    deal_uuid: str | None = None,
    contact_uuids: Sequence[str] = (),
) -> References:
    """The row ids of the named account, deal and contacts of this workspace.

    Raises RecordsNotFound naming every reference that the workspace does not have; a
    record of another workspace is not found, like one that does not exist.
    """
    missing: list[MissingRecord] = []
    account_id = deal_id = None
    if account_uuid is not None:
        account_id = _id_of(conn, accounts, workspace_id, account_uuid)
        if account_id is None:
            missing.append(MissingRecord("account", account_uuid))
    if deal_uuid is not None:
        deal_id = _id_of(conn, deals, workspace_id, deal_uuid)
        if deal_id is None:
            missing.append(MissingRecord("opportunity", deal_uuid))
    found: dict[str, int] = {}
    if contact_uuids:
        found = dict(
            conn.execute(
                select(contacts.c.uuid, contacts.c.id).where(
                    contacts.c.workspace_id == workspace_id, contacts.c.uuid.in_(sorted(set(contact_uuids)))
                )
            ).all()
        )
        missing.extend(
            MissingRecord("contact", value, position)
            for position, value in enumerate(contact_uuids)
            if value not in found
        )
    if missing:
        raise RecordsNotFound(missing)
    return References(account_id, deal_id, tuple(found[value] for value in dict.fromkeys(contact_uuids)))


def _id_of(conn: Connection, table: Any, workspace_id: int, uuid: str) -> int | None:
    return conn.execute(
        select(table.c.id).where(table.c.workspace_id == workspace_id, table.c.uuid == uuid)
    ).scalar_one_or_none()


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    """Which timeline (at least one scope) and which page of it."""

    account_uuid: str | None = None
    contact_uuid: str | None = None
    deal_uuid: str | None = None
    # Bounds on the activity time: from inclusive, to exclusive (§6.24).
    from_us: int | None = None
    to_us: int | None = None
    # The (occurred_us, uuid) of the last entry of the previous page.
    after: tuple[int, str] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TimelinePage:
    entries: list[TimelineEntry]
    # Where the next page starts; None on the last page.
    next_key: tuple[int, str] | None


def entries_query() -> Select[Any]:
    return select(*TIMELINE_COLUMNS).select_from(
        activities.outerjoin(accounts, accounts.c.id == activities.c.account_id).outerjoin(
            users, users.c.id == activities.c.owner_user_id
        )
    )


def read_entries(conn: Connection, query: Select[Any]) -> list[TimelineEntry]:
    """The entries a query of `entries_query` selects, in its order, with their contacts."""
    rows = conn.execute(query).all()
    # Manual activities are "lean cards": their contacts are not shown, so not read.
    people = contacts_of(conn, [row.id for row in rows if row.kind != MANUAL_KIND])
    return [TimelineEntry(row, people.get(row.id, [])) for row in rows]


def timeline(db: Database, *, workspace_id: int, query: TimelineQuery) -> TimelinePage:
    """One page of a timeline, newest first.

    Raises RecordsNotFound when a scope names a record the workspace does not have.
    """
    if query.account_uuid is None and query.contact_uuid is None and query.deal_uuid is None:
        raise ValueError("a timeline needs an account, a contact or a deal")
    with db.read() as conn:
        refs = resolve_references(
            conn,
            workspace_id,
            account_uuid=query.account_uuid,
            deal_uuid=query.deal_uuid,
            contact_uuids=[query.contact_uuid] if query.contact_uuid is not None else [],
        )
        statement = entries_query().where(activities.c.workspace_id == workspace_id)
        # The timeline key: by default the activity's own columns...
        time, uuid = activities.c.occurred_us, activities.c.uuid
        if refs.account_id is not None:
            statement = statement.where(activities.c.account_id == refs.account_id)
        if refs.deal_id is not None:
            statement = statement.where(activities.c.deal_id == refs.deal_id)
        if refs.contact_ids:
            statement = statement.join(
                activity_contacts,
                (activity_contacts.c.activity_id == activities.c.id)
                & (activity_contacts.c.contact_id == refs.contact_ids[0]),
            )
            if refs.account_id is None and refs.deal_id is None:
                # ...but a contact's timeline pages on the copy in its links, whose
                # (contact_id, occurred_us, activity_uuid) index is in timeline order.
                time, uuid = activity_contacts.c.occurred_us, activity_contacts.c.activity_uuid
        if query.from_us is not None:
            statement = statement.where(time >= query.from_us)
        if query.to_us is not None:
            statement = statement.where(time < query.to_us)
        if query.after is not None:
            after_us, after_uuid = query.after
            # The redundant bound keeps the range on the index's time column for any planner.
            statement = statement.where(time <= after_us, tuple_(time, uuid) < tuple_(after_us, after_uuid))
        statement = statement.order_by(time.desc(), uuid.desc()).limit(query.limit + 1)
        entries = read_entries(conn, statement)
    has_next = len(entries) > query.limit
    entries = entries[: query.limit]
    last = entries[-1].row if has_next else None
    return TimelinePage(entries, (last.occurred_us, last.uuid) if last is not None else None)


def get_entry(db: Database, *, workspace_id: int, uuid: str) -> TimelineEntry | None:
    """One activity of the workspace by its UUID, or None."""
    with db.read() as conn:
        found = read_entries(
            conn,
            entries_query().where(activities.c.workspace_id == workspace_id, activities.c.uuid == uuid),
        )
    return found[0] if found else None
