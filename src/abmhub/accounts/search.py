"""Finding accounts by a fragment of their name or domain (the dashboard's `q=`).

A match is an account whose name or domain contains the text, in any case. Migration 0008 gives
each database a trigram index for it:

- PostgreSQL: pg_trgm GIN indexes on lower(name) and on domain serve `LIKE '%text%'` directly,
  and the planner weighs them against walking the list's order.
- SQLite: the FTS5 table `account_search` (trigram tokenizer). It knows nothing of workspaces
  or of the list's order, so a page asks it first how many accounts match, up to
  `LOOKED_UP_AT_MOST`: a rare text (the usual search, for one company) is looked up by id and
  sorted; a common one ("inc", "com") is frequent enough that walking the list's own order and
  testing each row finds a page after a few hundred rows. A count stops at its cap.

The SQLite index is kept off the push path (docs/decisions.md §10): indexing 100 accounts in
the push's transaction cost as much as the rest of the push. Accounts are never deleted and
their ids only grow, so the index holds every account up to its highest rowid, the *mark*;
`catch_up` indexes the accounts past it in large batches (`SearchIndexer`, a thread of
`abmhub serve`, every few seconds), and a search tests those pending accounts directly, so it
finds an account the moment its push commits. (Accounts of a deleted workspace leave their
entries, harmless as their ids name no account, until `forget_deleted` drops those that SQLite
could give to new accounts.) A rename of an account at or below the mark is
re-indexed in the write's own transaction (`reindex_renamed`): renames are rare.

Without the index (an SQLite lacking the trigram tokenizer, a server without pg_trgm) every
search scans; texts under three characters always do: a trigram index cannot look them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Integer, Select, column, false, func, or_, select, table

from abmhub.db.engine import Database
from abmhub.db.queries import among, json_text
from abmhub.db.tables import accounts
from abmhub.periodic import Periodic

# The most accounts a search looks up by id before it walks the list's order instead.
LOOKED_UP_AT_MOST = 10_000
SHORTEST_INDEXED = 3  # characters: one trigram

_index = table("account_search", column("rowid", Integer), column("account_search"))


def reindex_renamed(conn: Connection, account_ids: Sequence[int]) -> None:
    """Re-index these accounts, whose name or domain this transaction changed (SQLite; PostgreSQL's
    GIN indexes keep themselves). Accounts past the mark are left to `catch_up`: indexing one
    of them now would move the mark over the others still waiting."""
    if not account_ids or not _has_index(conn):
        return
    conn.exec_driver_sql(
        "INSERT OR REPLACE INTO account_search (rowid, name, domain) SELECT id, name, domain FROM accounts "
        "WHERE id IN (SELECT value FROM json_each(?)) AND id <= ?",
        (json_text(list(account_ids)), indexed_through(conn)),
    )


def forget_deleted(conn: Connection) -> None:
    """Drop the entries of deleted accounts above the highest id left (SQLite): SQLite gives
    those ids to the next accounts created, which must not look indexed under the old names.
    Run before accounts are created; a lookup of two rowids when there is nothing to drop."""
    if _has_index(conn):
        conn.exec_driver_sql(
            "DELETE FROM account_search WHERE rowid > coalesce((SELECT id FROM accounts ORDER BY id DESC LIMIT 1), 0)"
        )


def indexed_through(conn: Connection) -> int:
    """The mark: the index holds every account whose id is at most this."""
    found = conn.exec_driver_sql("SELECT rowid FROM account_search ORDER BY rowid DESC LIMIT 1").scalar()
    return int(found or 0)


CATCH_UP_BATCH = 5_000  # accounts per transaction: one FTS5 segment, the write lock held ~50 ms


def catch_up(db: Database, *, batch: int = CATCH_UP_BATCH) -> int:
    """Index the accounts past the mark, `batch` per write transaction; how many were indexed."""
    if db.engine.dialect.name != "sqlite":
        return 0
    indexed = 0
    while True:
        with db.write() as tx:
            if not _has_index(tx.conn):
                return indexed
            forget_deleted(tx.conn)
            done = tx.conn.exec_driver_sql(
                "INSERT INTO account_search (rowid, name, domain) SELECT id, name, domain FROM accounts "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (indexed_through(tx.conn), batch),
            ).rowcount
        indexed += done
        if done < batch:
            return indexed


class SearchIndexer(Periodic):
    """`catch_up` every `interval` seconds on a daemon thread of `abmhub serve` (SQLite only)."""

    def __init__(self, db: Database, interval: float = 2.0) -> None:
        super().__init__("search-index", interval if db.is_sqlite else 0, lambda: catch_up(db))


def matches(conn: Connection, text: str) -> Any:
    """The condition on `accounts` for a page of the accounts whose name or domain contains `text`."""
    if _indexed(conn, text):
        found = conn.execute(select(_index.c.rowid).where(_matching(text)).limit(LOOKED_UP_AT_MOST + 1)).scalars()
        ids = [*found, *_waiting(conn, text)]
        if not ids:
            return false()
        if len(ids) <= LOOKED_UP_AT_MOST:
            return among(conn, accounts.c.id, ids)
    return _contains(conn, text)


def joined(conn: Connection, query: Select[Any], text: str) -> Select[Any] | CompoundSelect[Any]:
    """`query` (on `accounts`) restricted to the accounts whose name or domain contains `text`,
    read from the index first where there is one: for counts, which stop at a cap."""
    if _indexed(conn, text):
        indexed = query.join_from(accounts, _index, _index.c.rowid == accounts.c.id).where(_matching(text))
        waiting = _waiting(conn, text)
        return indexed.union_all(query.where(among(conn, accounts.c.id, waiting))) if waiting else indexed
    return query.where(_contains(conn, text))


def _waiting(conn: Connection, text: str) -> list[int]:
    """Ids of the matching accounts past the mark, not indexed yet (of every workspace, like the
    index itself: the caller's query keeps its workspace's). A range of rowids, which
    `catch_up` keeps short."""
    return list(
        conn.execute(
            select(accounts.c.id).where(accounts.c.id > indexed_through(conn), _contains(conn, text))
        ).scalars()
    )


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
