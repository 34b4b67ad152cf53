"""Workspaces, users and API keys (contract §0). Managed from the CLI; used by every request."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, ScalarSelect, Select, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from abmhub.db.engine import Database
from abmhub.db.queries import DriverQuery
from abmhub.db.tables import api_keys, users, workspaces
from abmhub.errors import Conflict, NotFound
from abmhub.ids import new_uuid7
from abmhub.tenancy.keys import hash_api_key, new_api_key
from abmhub.timefmt import now_us

if TYPE_CHECKING:
    from abmhub.db.readers import Reader

DEFAULT_WORKSPACE = "default"
DEFAULT_USER = "admin@localhost"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's user and the workspace every query is scoped to."""

    workspace_id: int
    workspace_name: str
    user_id: int
    user_uuid: str
    user_email: str


@dataclass(frozen=True, slots=True)
class Workspace:
    id: int
    name: str
    created_us: int
    users: int


class WorkspaceNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Workspace '{name}' not found")


class WorkspaceExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Workspace '{name}' already exists")


class UserNotFound(NotFound):
    def __init__(self, email: str, workspace: str) -> None:
        super().__init__(f"User '{email}' not found in workspace '{workspace}'")


def create_workspace(db: Database, *, name: str) -> int:
    name = name.strip()
    if not name:
        raise ValueError("a workspace needs a name")
    with db.write() as tx:
        if tx.conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).first():
            raise WorkspaceExists(name)
        created: int = tx.conn.execute(
            insert(workspaces).values(name=name, created_us=now_us(), clock_us=0).returning(workspaces.c.id)
        ).scalar_one()
        return created


def list_workspaces(db: Database) -> list[Workspace]:
    user_count = (
        select(func.count()).select_from(users).where(users.c.workspace_id == workspaces.c.id).scalar_subquery()
    )
    with db.read() as conn:
        rows = conn.execute(
            select(workspaces.c.id, workspaces.c.name, workspaces.c.created_us, user_count).order_by(workspaces.c.id)
        ).all()
    return [Workspace(*row) for row in rows]


def _workspace_id(conn: Connection, name: str) -> int:
    found: int | None = conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar_one_or_none()
    if found is None:
        raise WorkspaceNotFound(name)
    return found


def create_key(db: Database, *, workspace: str, user_email: str) -> str:
    """Issue a new key for the user (created on first use), revoking the user's old key at once."""
    email = user_email.strip().lower()
    if not email or "@" not in email:
        raise ValueError(f"'{user_email}' is not an email address")
    key = new_api_key()
    stamp = now_us()
    with db.write() as tx:
        conn = tx.conn
        workspace_id = _workspace_id(conn, workspace)
        user_id = conn.execute(
            select(users.c.id).where(users.c.workspace_id == workspace_id, users.c.email == email)
        ).scalar_one_or_none()
        if user_id is None:
            user_id = conn.execute(
                insert(users)
                .values(uuid=new_uuid7(), workspace_id=workspace_id, email=email, created_us=stamp)
                .returning(users.c.id)
            ).scalar_one()
        conn.execute(
            update(api_keys)
            .where(api_keys.c.user_id == user_id, api_keys.c.revoked_us.is_(None))
            .values(revoked_us=stamp)
        )
        conn.execute(
            insert(api_keys).values(
                user_id=user_id, workspace_id=workspace_id, key_hash=hash_api_key(key), created_us=stamp
            )
        )
    return key


def revoke_key(db: Database, *, workspace: str, user_email: str) -> int:
    """Revoke the user's active key; returns how many keys were revoked (0 or 1)."""
    email = user_email.strip().lower()
    with db.write() as tx:
        workspace_id = _workspace_id(tx.conn, workspace)
        user_id = tx.conn.execute(
            select(users.c.id).where(users.c.workspace_id == workspace_id, users.c.email == email)
        ).scalar_one_or_none()
        if user_id is None:
            raise UserNotFound(email, workspace)
        return tx.conn.execute(
            update(api_keys)
            .where(api_keys.c.user_id == user_id, api_keys.c.revoked_us.is_(None))
            .values(revoked_us=now_us())
        ).rowcount


# The active key whose digest is bound as `digest`.
_ACTIVE_KEY = (api_keys.c.key_hash == bindparam("digest"), api_keys.c.revoked_us.is_(None))

_CALLER_LOOKUP = DriverQuery(
    select(
        api_keys.c.key_hash,
        workspaces.c.id,
        workspaces.c.name,
        users.c.id,
        users.c.uuid,
        users.c.email,
    )
    .join(users, users.c.id == api_keys.c.user_id)
    .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
    .where(*_ACTIVE_KEY)
)


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """The lookup of a presented API key: read by itself (`authenticate`), or in the snapshot
    of a read that needs the key's workspace (`read`, `workspace_of_key`)."""

    digest: str

    @property
    def read(self) -> tuple[DriverQuery, dict[str, Any]]:
        return _CALLER_LOOKUP, {"digest": self.digest}

    def caller(self, found: Sequence[tuple[Any, ...]]) -> Caller | None:
        """The caller in the lookup's rows, None for an unknown or revoked key."""
        row = found[0] if found else None
        # The index lookup already matched; the constant-time compare keeps the check honest
        # should the lookup ever become a prefix or range match.
        if row is None or not hmac.compare_digest(row[0], self.digest):
            return None
        return Caller(workspace_id=row[1], workspace_name=row[2], user_id=row[3], user_uuid=row[4], user_email=row[5])


def key_lookup(key: str) -> KeyLookup:
    return KeyLookup(hash_api_key(key))


def workspace_of_key() -> ScalarSelect[int]:
    """The workspace of the active key whose digest is bound as `digest` (NULL for none): for
    a statement read beside the key's own lookup, in the same snapshot, before the caller is
    known (`KeyLookup`)."""
    return select(api_keys.c.workspace_id).where(*_ACTIVE_KEY).scalar_subquery()


def authenticate(db: Database, key: str) -> Caller | None:
    """The caller a key belongs to, or None for an unknown or revoked key (one lookup)."""
    lookup = key_lookup(key)
    query, parameters = lookup.read
    return lookup.caller(query.lookup(db.engine, parameters))


async def authenticate_on(reader: Reader, key: str) -> Caller | None:
    """`authenticate`, read by a request's reader (`db.readers`: on the event loop)."""
    lookup = key_lookup(key)
    return lookup.caller(await reader.one(*lookup.read))


def bootstrap(db: Database) -> str | None:
    """On an empty database, create the `default` workspace and user; return the user's new key.

    Returns None when the database already has a workspace. Safe when several processes
    start at once: only the one that creates the workspace issues a key.
    """
    with db.read() as conn:
        if conn.execute(select(workspaces.c.id).limit(1)).first():
            return None
    try:
        create_workspace(db, name=DEFAULT_WORKSPACE)
    except (WorkspaceExists, IntegrityError):  # another process won the race
        return None
    return create_key(db, workspace=DEFAULT_WORKSPACE, user_email=DEFAULT_USER)


# --- dashboard sessions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """An active key and its caller: what a dashboard session is bound to (never the key itself)."""

    key_id: int
    key_hash: str
    caller: Caller


_KEY_HOLDER_COLUMNS = (
    api_keys.c.id,
    api_keys.c.key_hash,
    workspaces.c.id,
    workspaces.c.name,
    users.c.id,
    users.c.uuid,
    users.c.email,
)


def _key_holder(row: Any) -> KeyHolder:
    return KeyHolder(
        key_id=row[0],
        key_hash=row[1],
        caller=Caller(workspace_id=row[2], workspace_name=row[3], user_id=row[4], user_uuid=row[5], user_email=row[6]),
    )


def _active_keys() -> Select[Any]:
    return (
        select(*_KEY_HOLDER_COLUMNS)
        .join(users, users.c.id == api_keys.c.user_id)
        .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
        .where(api_keys.c.revoked_us.is_(None))
    )


def key_holder(db: Database, key: str) -> KeyHolder | None:
    """The active key `key` is, with its caller; None for an unknown or revoked key (sign-in)."""
    digest = hash_api_key(key)
    with db.read() as conn:
        row = conn.execute(_active_keys().where(api_keys.c.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    return _key_holder(row)


def active_key_holder(db: Database, *, key_id: int, key_hash_prefix: str) -> KeyHolder | None:
    """The key with this id, if it is still active and its hash starts with `key_hash_prefix`.

    A dashboard session names its key this way on every request, so revoking the key (or
    replacing it with a new one) ends the session at its next request. The prefix ties the
    session to that very key should ids ever be reused (a database restored from a backup).
    """
    with db.read() as conn:
        row = conn.execute(_active_keys().where(api_keys.c.id == key_id)).first()
    if row is None or not key_hash_prefix or not hmac.compare_digest(row[1][: len(key_hash_prefix)], key_hash_prefix):
        return None
    return _key_holder(row)
