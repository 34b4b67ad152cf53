"""Account custom-field definitions of a workspace."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select, update

from abmhub.custom_fields.keys import custom_field_key
from abmhub.custom_fields.model import CustomField
from abmhub.db.engine import PREPARED, Database
from abmhub.db.queries import DriverQuery
from abmhub.db.tables import custom_fields
from abmhub.errors import Conflict, NotFound

_COLUMNS = (
    custom_fields.c.key,
    custom_fields.c.label,
    custom_fields.c.label_type,
    custom_fields.c.description,
    custom_fields.c.options,
    custom_fields.c.active,
)


class CustomFieldExists(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(f"Custom field with key '{key}' already exists")


class CustomFieldNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"Custom field '{key}' not found")


def active_fields(conn: Connection, workspace_id: int) -> dict[str, CustomField]:
    """The workspace's active fields by key, in creation order."""
    rows = conn.execute(_ACTIVE_FIELDS, {"ws": workspace_id}).all()
    return {row.key: CustomField(*row) for row in rows}


_ACTIVE_FIELDS = (
    select(*_COLUMNS)
    .where(custom_fields.c.workspace_id == bindparam("ws"), custom_fields.c.active.is_(True))
    .order_by(custom_fields.c.id)
    .execution_options(**PREPARED)
)


# The keys of `active_fields`, for reads on the driver's cursor (account pages).
ACTIVE_KEYS = DriverQuery(
    select(custom_fields.c.key)
    .where(custom_fields.c.workspace_id == bindparam("ws"), custom_fields.c.active.is_(True))
    .order_by(custom_fields.c.id)
)


def list_fields(db: Database, *, workspace_id: int) -> list[CustomField]:
    with db.read() as conn:
        return list(active_fields(conn, workspace_id).values())


def create_field(
    db: Database,
    *,
    workspace_id: int,
    label: str,
    label_type: str,
    description: str | None,
    options: list[str],
) -> CustomField:
    """Define a field; re-creating a deactivated key brings it (and its kept values) back."""
    key = custom_field_key(label)
    field = CustomField(key, label, label_type, description, options)
    with db.write(workspace_id) as tx:
        existing = tx.conn.execute(
            select(custom_fields.c.id, custom_fields.c.active).where(
                custom_fields.c.workspace_id == workspace_id, custom_fields.c.key == key
            )
        ).first()
        values = {
            "label": label,
            "label_type": label_type,
            "description": description,
            "options": options,
            "active": True,
        }
        if existing is None:
            tx.conn.execute(
                insert(custom_fields).values(workspace_id=workspace_id, key=key, created_us=tx.now_us, **values)
            )
        elif existing.active:
            raise CustomFieldExists(key)
        else:
            tx.conn.execute(update(custom_fields).where(custom_fields.c.id == existing.id).values(**values))
    return field


def deactivate_field(db: Database, *, workspace_id: int, key: str) -> None:
    """Hide a field: it leaves lists and records; its values are kept for a re-creation."""
    with db.write(workspace_id) as tx:
        changed = tx.conn.execute(
            update(custom_fields)
            .where(
                custom_fields.c.workspace_id == workspace_id,
                custom_fields.c.key == key,
                custom_fields.c.active.is_(True),
            )
            .values(active=False)
        ).rowcount
        if not changed:
            raise CustomFieldNotFound(key)
