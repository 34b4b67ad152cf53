"""Sites (contract §9): what a workspace tracks, its hostnames and page rules. No HTTP here."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from abmhub.db.engine import Database
from abmhub.db.tables import sites
from abmhub.errors import NotFound
from abmhub.ids import new_object_id
from abmhub.paging import Page, PageRequest
from abmhub.website.rules import PageRule, rules_from


@dataclass(frozen=True, slots=True)
class Site:
    pk: int
    workspace_id: int
    site_id: str
    site_key: str
    name: str
    hostnames: list[str]
    page_rules: tuple[PageRule, ...]
    custom_rules: bool
    created_us: int
    updated_us: int


class SiteNotFound(NotFound):
    def __init__(self, site_id: str) -> None:
        super().__init__(f"Site '{site_id}' not found")


_COLUMNS = (
    sites.c.id,
    sites.c.workspace_id,
    sites.c.site_id,
    sites.c.site_key,
    sites.c.name,
    sites.c.hostnames,
    sites.c.page_rules,
    sites.c.created_us,
    sites.c.updated_us,
)


def _site(row: Any) -> Site:
    return Site(
        row.id,
        row.workspace_id,
        row.site_id,
        row.site_key,
        row.name,
        list(row.hostnames),
        rules_from(row.page_rules),
        row.page_rules is not None,
        row.created_us,
        row.updated_us,
    )


def new_site_key() -> str:
    """Public, in every page's HTML: unguessable only so that nobody sends for a site by accident."""
    return secrets.token_urlsafe(12)


def create_site(db: Database, *, workspace_id: int, name: str, hostnames: Sequence[str]) -> Site:
    with db.write(workspace_id) as tx:
        pk = tx.conn.execute(
            insert(sites)
            .values(
                workspace_id=workspace_id,
                site_id=new_object_id(),
                site_key=new_site_key(),
                name=name,
                hostnames=list(hostnames),
                page_rules=None,
                created_us=tx.now_us,
                updated_us=tx.now_us,
            )
            .returning(sites.c.id)
        ).scalar_one()
        return _site(tx.conn.execute(select(*_COLUMNS).where(sites.c.id == pk)).one())


def _find(conn: Connection, workspace_id: int, site_id: str) -> Site:
    row = conn.execute(
        select(*_COLUMNS).where(sites.c.workspace_id == workspace_id, sites.c.site_id == site_id)
    ).first()
    if row is None:
        raise SiteNotFound(site_id)
    return _site(row)


def get_site(db: Database, *, workspace_id: int, site_id: str) -> Site:
    with db.read() as conn:
        return _find(conn, workspace_id, site_id)


def list_sites(db: Database, *, workspace_id: int, page: PageRequest) -> Page[Site]:
    with db.read() as conn:
        query = select(*_COLUMNS).where(sites.c.workspace_id == workspace_id)
        if (after := page.start_after(int)) is not None:
            query = query.where(sites.c.id > after)
        rows = conn.execute(query.order_by(sites.c.id).limit(page.limit + 1)).all()
    found = [_site(row) for row in rows[: page.limit]]
    return Page(items=found, has_next=len(rows) > page.limit, last_key=(found[-1].pk,) if found else None)


def all_sites(db: Database, *, workspace_id: int) -> list[Site]:
    with db.read() as conn:
        rows = conn.execute(select(*_COLUMNS).where(sites.c.workspace_id == workspace_id).order_by(sites.c.id))
        return [_site(row) for row in rows]


def update_site(db: Database, *, workspace_id: int, site_id: str, changes: dict[str, Any]) -> Site:
    """`name` and/or `hostnames`."""
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, site_id)
        tx.conn.execute(update(sites).where(sites.c.id == found.pk).values(**changes, updated_us=tx.now_us))
        return _find(tx.conn, workspace_id, site_id)


def set_page_rules(db: Database, *, workspace_id: int, site_id: str, rules: Sequence[PageRule] | None) -> Site:
    """Replace the site's rules (None: back to the built-in ones)."""
    stored = [rule.as_dict() for rule in rules] if rules is not None else None
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, site_id)
        tx.conn.execute(update(sites).where(sites.c.id == found.pk).values(page_rules=stored, updated_us=tx.now_us))
        return _find(tx.conn, workspace_id, site_id)


def delete_site(db: Database, *, workspace_id: int, site_id: str) -> None:
    """Gone with its raw events and counters; the website signals it produced stay (they are
    the account's history)."""
    with db.write(workspace_id) as tx:
        found = _find(tx.conn, workspace_id, site_id)
        tx.conn.execute(delete(sites).where(sites.c.id == found.pk))


def every_site(conn: Connection) -> list[Site]:
    """All sites of the server (the collector's lookup by key)."""
    return [_site(row) for row in conn.execute(select(*_COLUMNS))]
