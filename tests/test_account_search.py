"""The dashboard's search (`q=`): name or domain containing the text, on both databases,
through the trigram index of migration 0008 and without it."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from abmhub.accounts import search
from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem, UpdateAccountRequest
from abmhub.db.engine import Database
from abmhub.db.tables import workspaces
from abmhub.tenancy import service as tenancy

ACCOUNTS = {
    "acme.com": "Acme Corporation",
    "globex.io": "Globex",
    "initech.com": "Initech (ACME subsidiary)",
    "hooli.xyz": "Hooli",
    "percent.org": "100% Percent_Labs",
    "quote.net": 'The "Quoted" Co/op',
    "muenchen.de": "Münchner Werke",
}


def push(db: Database, workspace_id: int, accounts: dict[str, str]) -> None:
    items = [AccountItem.model_validate({"domain": d, "name": n}) for d, n in accounts.items()]
    outcome = accounts_service.push_accounts(db, workspace_id=workspace_id, items=items, upsert=True)
    assert outcome.summary["failed"] == 0, outcome.results


@pytest.fixture
def workspace_id(database: Database) -> int:
    workspace_id = tenancy.create_workspace(database, name="acme")
    push(database, workspace_id, ACCOUNTS)
    return workspace_id


def found(db: Database, workspace_id: int, text: str) -> set[str]:
    """Domains on the pages of a search, the same whether the accounts pushed since the last
    `catch_up` are still waiting for the SQLite index (tested directly) or indexed."""
    waiting = searched(db, workspace_id, text)
    search.catch_up(db)
    indexed = searched(db, workspace_id, text)
    assert waiting == indexed, f"search {text!r}: {sorted(waiting)} before indexing, {sorted(indexed)} after"
    return indexed


def searched(db: Database, workspace_id: int, text: str) -> set[str]:
    """Domains on the pages of a search (walked 2 at a time), checked against its count."""
    filters = accounts_service.AccountFilter(search=text)
    domains: list[str] = []
    after = None
    while True:
        page = accounts_service.browse_accounts(db, workspace_id=workspace_id, filters=filters, after=after, limit=2)
        domains += [row.domain for row in page.rows]
        if not page.has_next:
            break
        after = page.last_key
    assert len(domains) == len(set(domains)), f"search {text!r} showed an account twice: {domains}"
    counted = accounts_service.count_accounts(db, workspace_id=workspace_id, filters=filters)
    assert counted == len(domains), f"search {text!r}: {counted} counted, {len(domains)} listed"
    return set(domains)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme", {"acme.com", "initech.com"}),  # name, any case
        ("ACME", {"acme.com", "initech.com"}),
        ("Corp", {"acme.com"}),  # inside a name
        (".com", {"acme.com", "initech.com"}),  # a domain
        ("bex.i", {"globex.io"}),  # across the domain's dot
        ("hooli", {"hooli.xyz"}),  # name and domain both: once
        ("100%", {"percent.org"}),  # LIKE's wildcards are literal
        ("t_L", {"percent.org"}),
        ('"Quoted"', {"quote.net"}),  # FTS syntax is literal
        ("co/op", {"quote.net"}),  # the escape character too
        ("münch", {"muenchen.de"}),
        ("ex", {"globex.io"}),  # under three characters: no index, still found
        ("zzz", set()),
        ("Acme Corporation", {"acme.com"}),  # a phrase
        ("Acme Corporations", set()),
    ],
)
def test_search_finds_name_or_domain_containing_the_text(database, workspace_id, text, expected):
    assert found(database, workspace_id, text) == expected


def test_search_stays_in_the_workspace(database, workspace_id):
    other = tenancy.create_workspace(database, name="other")
    push(database, other, {"acme.org": "Acme Other", "acme-two.org": "Acme Two"})
    assert found(database, workspace_id, "acme") == {"acme.com", "initech.com"}
    assert found(database, other, "acme") == {"acme.org", "acme-two.org"}


def test_a_renamed_account_is_found_by_its_new_name_only(database, workspace_id):
    [row] = accounts_service.browse_accounts(
        database, workspace_id=workspace_id, filters=accounts_service.AccountFilter(search="globex")
    ).rows
    changes = UpdateAccountRequest.model_validate({"name": "Umbrella Industries"})
    accounts_service.update_account(database, workspace_id=workspace_id, changes=changes, rtp_aid=row.rtp_aid)
    push(database, workspace_id, {"hooli.xyz": "Pied Piper"})  # a push renames too
    assert found(database, workspace_id, "globex") == {"globex.io"}  # its domain still matches
    assert found(database, workspace_id, "Globex") == {"globex.io"}
    assert found(database, workspace_id, "umbrella") == {"globex.io"}
    assert found(database, workspace_id, "Hooli") == {"hooli.xyz"}
    assert found(database, workspace_id, "piper") == {"hooli.xyz"}
    assert found(database, workspace_id, "Pied Piper") == {"hooli.xyz"}


def test_a_common_text_pages_the_same_past_the_lookup_cap(database, workspace_id, monkeypatch):
    """Past LOOKED_UP_AT_MOST indexed matches a page walks the list's order instead."""
    push(database, workspace_id, {f"shop-{i}.com": f"Shop {i}" for i in range(12)})
    expected = {f"shop-{i}.com" for i in range(12)}
    assert found(database, workspace_id, "shop") == expected
    monkeypatch.setattr(search, "LOOKED_UP_AT_MOST", 5)
    assert found(database, workspace_id, "shop") == expected
    capped = accounts_service.count_accounts(
        database, workspace_id=workspace_id, filters=accounts_service.AccountFilter(search="shop"), at_most=10
    )
    assert capped == 11, "a capped count says 'more than 10' as 11"


def test_deleted_accounts_leave_no_match_behind(database, workspace_id):
    """A deleted workspace's accounts are found nowhere, even when SQLite gives their ids
    (the highest) to the next accounts created."""
    late = tenancy.create_workspace(database, name="late")
    push(database, late, {"latecomer.com": "Latecomer Ltd", "tardy.com": "Tardy Acme"})
    search.catch_up(database)  # their entries are in the index, at the highest ids
    with database.write() as tx:
        tx.conn.execute(delete(workspaces).where(workspaces.c.id == late))
    other = tenancy.create_workspace(database, name="other")
    push(database, other, {"zeta.com": "Zeta", "eta.com": "Eta"})
    assert found(database, other, "latecomer") == set()
    assert found(database, other, "zeta") == {"zeta.com"}
    assert found(database, workspace_id, "acme") == {"acme.com", "initech.com"}
    if database.is_sqlite:
        with database.write() as tx:  # raises if the index is corrupt
            tx.conn.exec_driver_sql("INSERT INTO account_search (account_search) VALUES ('integrity-check')")


def test_the_search_index_exists(database: Database):
    """The migration leaves an index on both databases of the suite (each is optional elsewhere)."""
    with database.engine.connect() as conn:
        if database.is_sqlite:
            assert search._indexed(conn, "acme"), "no account_search table"
        else:
            indexes = {
                row[0]: row[1]
                for row in conn.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts'"
                )
            }
            assert "gin_trgm_ops" in indexes.get("ix_accounts_name_trigrams", ""), indexes
            assert "gin_trgm_ops" in indexes.get("ix_accounts_domain_trigrams", ""), indexes


def test_new_accounts_are_found_before_and_after_the_background_index_catches_up(database, workspace_id):
    """The SQLite index holds every account up to its mark; the accounts past it are tested
    directly until `catch_up` indexes them, in batches."""
    push(database, workspace_id, {f"later-{i}.com": f"Later Widgets {i}" for i in range(7)})
    expected = {f"later-{i}.com" for i in range(7)}
    assert searched(database, workspace_id, "widgets") == expected, "a pushed account is found before indexing"
    if not database.is_sqlite:
        assert search.catch_up(database) == 0, "PostgreSQL's GIN indexes keep themselves"
        return
    with database.engine.connect() as conn:
        before = search.indexed_through(conn)
    assert search.catch_up(database, batch=3) == 7 + len(ACCOUNTS) * (before == 0)
    with database.engine.connect() as conn:
        highest = conn.exec_driver_sql("SELECT max(id) FROM accounts").scalar()
        assert search.indexed_through(conn) == highest, "after catching up the mark is the highest account"
    assert search.catch_up(database) == 0, "nothing is left to index"
    assert searched(database, workspace_id, "widgets") == expected


def test_a_rename_waiting_for_the_index_is_indexed_under_its_new_name(database, workspace_id):
    push(database, workspace_id, {"soon.com": "Soon Renamed"})
    push(database, workspace_id, {"soon.com": "Renamed Already"})  # before any catch-up
    assert found(database, workspace_id, "soon renamed") == set()
    assert found(database, workspace_id, "renamed already") == {"soon.com"}
    push(database, workspace_id, {"soon.com": "Third Name"})  # now indexed: re-indexed by the write
    assert searched(database, workspace_id, "renamed already") == set()
    assert searched(database, workspace_id, "third name") == {"soon.com"}
