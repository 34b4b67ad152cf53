"""Secrets the server makes up once and every process of it shares (the dashboard's session key).

A deployment may set its own (ABMHUB_SESSION_SECRET); without one, the first process to need
a secret generates it and stores it in the database, so that several processes behind one
load balancer sign and accept the same session cookies, and a restart keeps users signed in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from abmhub.db.engine import Database
from abmhub.db.tables import server_secrets
from abmhub.timefmt import now_us

SESSION_SECRET = "ui_session"


def new_secret() -> str:
    """256 bits from the system's random source, as URL-safe text."""
    return secrets.token_urlsafe(32)


def get_or_create_secret(db: Database, *, name: str, make: Callable[[], str] = new_secret) -> str:
    """The stored secret called `name`, generated and stored first if there is none.

    Safe when processes race: each inserts its candidate only if the name is absent, then
    reads back whichever value won, so all of them end up with the same secret.
    """
    query = select(server_secrets.c.value).where(server_secrets.c.name == name)
    with db.read() as conn:
        found: str | None = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    dialect_insert = postgresql.insert if not db.is_sqlite else sqlite.insert
    with db.write() as tx:
        tx.conn.execute(
            dialect_insert(server_secrets)
            .values(name=name, value=make(), created_us=now_us())
            .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
        )
        # Read committed (PostgreSQL): this statement sees the row of a racer that committed first.
        stored: str = tx.conn.execute(query).scalar_one()
    return stored
