"""Finding accounts by a fragment of their name or domain (the dashboard's `q=`).

A match is an account whose name or domain contains the text, in any case. Migration 0008 gives
each database a trigram index for it:

- PostgreSQL: pg_trgm GIN indexes on lower(name) and on domain serve `LIKE '%text%'` directly,
  and the planner weighs them against walking the list's order.
- SQLite: the FTS5 table `account_search` (trigram tokenizer), written by `index_accounts` in
  the transaction of every account write. It knows nothing of workspaces
  or of the list's order, so a page asks it first how many accounts match, up to
  `LOOKED_UP_AT_MOST`: a rare text (the usual search, for one company) is looked up by id and
  sorted; a common one ("inc", "com") is frequent enough that walking the list's own order and
  testing each row finds a page after a few hundred rows. A count joins the index to accounts
  and stops at its cap.

Without the index (an SQLite lacking the trigram tokenizer, a server without pg_trgm) every
search scans; texts under three characters always do: a trigram index cannot look them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, column, false, func, or_, select, table

from abmhub.db.queries import among, json_text
from abmhub.db.tables import accounts

# The most accounts a search looks up by id before it walks the list's order instead.
LOOKED_UP_AT_MOST = 10_000
SHORTEST_INDEXED = 3  # characters: one trigram

_index = table("account_search", column("rowid", Integer), column("account_search"))


def index_accounts(conn: Connection, workspace_id: int, rtp_aids: Sequence[str]) -> None:
    """(Re)index the names and domains of these accounts, as written in this transaction: one
    statement (SQLite; PostgreSQL's GIN indexes keep themselves)."""
    if not rtp_aids or not _has_index(conn):
        return
    conn.exec_driver_sql(
        "INSERT OR REPLACE INTO account_search (rowid, name, domain) SELECT id, name, domain FROM accounts "
        "WHERE workspace_id = ? AND rtp_aid IN (SELECT value FROM json_each(?))",
        (workspace_id, json_text(list(rtp_aids))),
    )


def matches(conn: Connection, text: str) -> Any:
    """The condition on `accounts` for a page of the accounts whose name or domain contains `text`."""
    if _indexed(conn, text):
        found = conn.execute(select(_index.c.rowid).where(_matching(text)).limit(LOOKED_UP_AT_MOST + 1)).scalars()
        ids = list(found)
        if not ids:
            return false()
        if len(ids) <= LOOKED_UP_AT_MOST:
            return among(conn, accounts.c.id, ids)
    return _contains(conn, text)


def joined(conn: Connection, query: Select[Any], text: str) -> Select[Any]:
    """`query` (on `accounts`) restricted to the accounts whose name or domain contains `text`,
    read from the index first where there is one: for counts, which stop at a cap."""
    if _indexed(conn, text):
        return query.join_from(accounts, _index, _index.c.rowid == accounts.c.id).where(_matching(text))
    return query.where(_contains(conn, text))


def _contains(conn: Connection, text: str) -> Any:
    pattern = "%" + text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    # SQLite's LIKE ignores ASCII case by itself; PostgreSQL's index is on lower(name). Domains
    # are stored lower case.
    name = accounts.c.name if conn.dialect.name == "sqlite" else func.lower(accounts.c.name)
    return or_(name.like(pattern, escape="/"), accounts.c.domain.like(pattern, escape="/"))


def _matching(text: str) -> Any:
    # One FTS5 phrase: inside double quotes every character is literal (a quote is doubled).
    return _index.c.account_search.op("MATCH")('"' + text.replace('"', '""') + '"')


def _indexed(conn: Connection, text: str) -> bool:
    return len(text) >= SHORTEST_INDEXED and _has_index(conn)


def _has_index(conn: Connection) -> bool:
    if conn.dialect.name != "sqlite":
        return False
    found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'account_search'")
    return found.first() is not None
