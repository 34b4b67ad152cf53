"""Contacts: the people of a workspace, keyed by lowercased e-mail (contract §2.11).

Contacts arrive inside sales activities. An upsert applies the given fields in request
order to a working set loaded in one query, then writes the new contacts and the changed
ones in one batched statement each; a contact whose fields did not change is not rewritten,
so its `change_us` (and the `updatedAt` of the activities that show it) stays put.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from abmhub.db.queries import insert_rows
from abmhub.db.tables import contacts
from abmhub.ids import new_uuid7

# The contact fields a push may set, by column.
FIELDS = ("external_contact_id", "name", "title", "department", "seniority", "phone", "linkedin_url")

# Large enough for any normal push in one query, small enough for SQLite's bind limit.
_LOOKUP_CHUNK = 5000


def contact_key(email: str) -> str:
    """The dedup key of a contact within its workspace."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """One mention of a contact in a push: its e-mail and only the fields that were given."""

    email: str
    fields: Mapping[str, str | None]


@dataclass(slots=True, eq=False)
class _ContactState:
    id: int | None
    uuid: str
    email: str
    values: dict[str, Any]
    stored: dict[str, Any] = field(default_factory=dict)


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def upsert_contacts(
    conn: Connection, workspace_id: int, mentions: Sequence[ContactUpdate], now_us: int
) -> dict[str, int]:
    """Create or update the mentioned contacts, in order: given fields overwrite (also with
    null), absent fields keep their stored value. Returns each contact's row id by key."""
    keys = list(dict.fromkeys(contact_key(m.email) for m in mentions))
    states: dict[str, _ContactState] = {}
    for chunk in _chunks(keys, _LOOKUP_CHUNK):
        rows = conn.execute(
            select(contacts.c.id, contacts.c.uuid, contacts.c.email, *(contacts.c[f] for f in FIELDS)).where(
                contacts.c.workspace_id == workspace_id, contacts.c.email.in_(chunk)
            )
        ).all()
        for row in rows:
            stored = {f: row._mapping[f] for f in FIELDS}
            states[row.email] = _ContactState(row.id, row.uuid, row.email, dict(stored), stored)
    for mention in mentions:
        key = contact_key(mention.email)
        state = states.get(key)
        if state is None:
            state = states[key] = _ContactState(None, new_uuid7(), key, dict.fromkeys(FIELDS))
        state.values.update((f, v) for f, v in mention.fields.items() if f in FIELDS)

    created = [s for s in states.values() if s.id is None]
    changed = [s for s in states.values() if s.id is not None and s.values != s.stored]
    if changed:
        conn.execute(
            update(contacts)
            .where(contacts.c.id == bindparam("_id"))
            .values(**{f: bindparam(f) for f in FIELDS}, change_us=bindparam("change_us")),
            [{"_id": s.id, **s.values, "change_us": now_us} for s in changed],
        )
    if created:
        # Driver-level executemany, then the ids by UUID (see activities.service._write).
        insert_rows(
            conn,
            contacts,
            ("workspace_id", "uuid", "email", *FIELDS, "created_us", "change_us"),
            [(workspace_id, s.uuid, s.email, *(s.values[f] for f in FIELDS), now_us, now_us) for s in created],
        )
        ids: dict[str, int] = {}
        for chunk in _chunks([s.uuid for s in created], _LOOKUP_CHUNK):
            ids.update(conn.execute(select(contacts.c.uuid, contacts.c.id).where(contacts.c.uuid.in_(chunk))).all())
        for state in created:
            state.id = ids[state.uuid]
    # Every state has its id by now: loaded with it, or given it just above.
    return {key: state.id for key, state in states.items() if state.id is not None}
