"""The readers of the hottest reads (db/readers.py): the API key of every request and a later
page of accounts, awaited on the event loop.

On PostgreSQL the app reads them with psycopg's async driver on a pool of its own while it
runs (`PoolReader`), and with `DriverReader` on the SQLAlchemy pool otherwise (`SyncReader`,
which SQLite always uses). The two must read the same rows, survive a server that dropped
their connections, and the app must open and close its pool with its lifespan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import bindparam, func, literal_column, select

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.queries import DriverQuery, DriverReader, Steps
from abmhub.db.readers import PoolReader, SyncReader
from abmhub.db.tables import accounts
from abmhub.paging import PageRequest
from abmhub.tenancy import service as tenancy
from tests.support.postgres import drop_every_connection


def _accounts(db: Database, name: str, count: int) -> tuple[int, str]:
    """A workspace with `count` accounts, and a key of it."""
    workspace_id = tenancy.create_workspace(db, name=name)
    key = tenancy.create_key(db, workspace=name, user_email=f"{name}@example.com")
    items = [AccountItem(domain=f"{name}{i}.example.com", name=f"{name} {i}", tags=["t"]) for i in range(count)]
    accounts_service.push_accounts(db, workspace_id=workspace_id, items=items)
    return workspace_id, key


def _second_page(db: Database, workspace_id: int, limit: int) -> PageRequest:
    first, _ = accounts_service.list_accounts(db, workspace_id=workspace_id, page=PageRequest(limit=limit))
    assert first.has_next, "the workspace should have more than one page"
    return PageRequest(limit=limit, after=first.last_key, sync_us=first.sync_us)


@pytest.mark.postgres
def test_the_pool_reader_reads_what_the_driver_reader_reads(postgres: Database) -> None:
    workspace_id, key = _accounts(postgres, "same", 7)
    page = _second_page(postgres, workspace_id, 3)
    with DriverReader(postgres.engine) as reader:
        expected = reader.run(accounts_service.later_page("postgresql", workspace_id, page))

    async def read() -> tuple[object, object]:
        reader = PoolReader(postgres.engine)
        try:
            found = await reader.run(accounts_service.later_page("postgresql", workspace_id, page))
            return found, await tenancy.authenticate_on(reader, key)
        finally:
            await reader.close()

    found, caller = asyncio.run(read())
    assert found == expected, "the async driver's page differs from the engine's (rows, their types or extras)"
    assert caller == tenancy.authenticate(postgres, key)


def test_a_later_page_read_with_its_key_is_the_page_of_the_keys_workspace(database: Database) -> None:
    """`later_page_of_key`: the key's lookup and its workspace's page in one snapshot. The
    same page as `later_page` for the workspace; nothing for another workspace's accounts;
    None for a revoked or unknown key."""
    workspace_id, key = _accounts(database, "mine", 6)
    _accounts(database, "theirs", 6)  # interleaved ids and rtp_aids in the same table
    page = _second_page(database, workspace_id, 2)
    dialect = database.engine.dialect.name
    with DriverReader(database.engine) as reader:
        expected = reader.run(accounts_service.later_page(dialect, workspace_id, page))
        read = reader.run(accounts_service.later_page_of_key(dialect, tenancy.key_lookup(key), page))
        assert read is not None
        assert read == (tenancy.authenticate(database, key), expected)
        assert reader.run(accounts_service.later_page_of_key(dialect, tenancy.key_lookup("x" * 64), page)) is None
        tenancy.revoke_key(database, workspace="mine", user_email="mine@example.com")
        assert reader.run(accounts_service.later_page_of_key(dialect, tenancy.key_lookup(key), page)) is None


@pytest.mark.postgres
def test_the_pool_reader_reads_again_after_the_server_dropped_its_connections(postgres: Database) -> None:
    workspace_id, key = _accounts(postgres, "dropped", 5)
    page = _second_page(postgres, workspace_id, 2)

    async def read() -> None:
        reader = PoolReader(postgres.engine)
        try:
            # Three reads at once: three pooled connections, all of them to be dropped.
            callers = await asyncio.gather(*(tenancy.authenticate_on(reader, key) for _ in range(3)))
            assert all(caller is not None for caller in callers)
            assert drop_every_connection(postgres) >= 3
            caller = await tenancy.authenticate_on(reader, key)
            assert caller is not None and caller.workspace_id == workspace_id, "the key lookup failed after a drop"
            found, _ = await reader.run(accounts_service.later_page("postgresql", workspace_id, page))
            assert len(found.items) == 2, "the later page failed after a drop"
        finally:
            await reader.close()

    asyncio.run(read())


@pytest.mark.postgres
def test_a_read_that_fails_leaves_its_connection_fit_for_the_next(postgres: Database) -> None:
    workspace_id, key = _accounts(postgres, "failed", 3)
    page = _second_page(postgres, workspace_id, 2)
    broken = DriverQuery(select(literal_column("1") / bindparam("zero")))

    async def read() -> None:
        reader = PoolReader(postgres.engine, size=1)  # the next read gets the same connection
        try:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await reader.run(_one_snapshot(broken, {"zero": 0}))
            with pytest.raises(psycopg.errors.DivisionByZero):
                await reader.one(broken, {"zero": 0})
            assert await tenancy.authenticate_on(reader, key) is not None
            found, _ = await reader.run(accounts_service.later_page("postgresql", workspace_id, page))
            assert len(found.items) == 1
        finally:
            await reader.close()

    asyncio.run(read())


@pytest.mark.postgres
def test_a_read_fails_at_once_while_the_database_refuses_connections_and_connects_after(postgres: Database) -> None:
    """An outage: a read that cannot connect fails at once (it did not wait for a pool's
    timeout), and the first read once the database takes connections again succeeds."""
    workspace_id, key = _accounts(postgres, "outage", 3)
    name = postgres.engine.url.database
    maintenance = postgres.engine.url.set(drivername="postgresql", database="postgres")

    def allow_connections(allowed: bool) -> None:
        """Refusing, every session of the database also ends (from another database: this one
        takes no connection)."""
        with psycopg.connect(maintenance.render_as_string(hide_password=False), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    async def read() -> None:
        reader = PoolReader(postgres.engine)
        try:
            assert await tenancy.authenticate_on(reader, key) is not None
            allow_connections(False)
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                await tenancy.authenticate_on(reader, key)
            assert time.monotonic() - started < 5, "a read waited for a connection the database refuses"
            allow_connections(True)
            caller = await tenancy.authenticate_on(reader, key)
            assert caller is not None and caller.workspace_id == workspace_id
        finally:
            allow_connections(True)
            await reader.close()

    asyncio.run(read())


@pytest.mark.postgres
def test_a_cancelled_read_does_not_hold_up_the_next(postgres: Database) -> None:
    """A read cancelled mid-statement (a client gone, a timeout): the next read, even with
    one connection allowed, neither fails nor waits for the cancelled statement."""
    workspace_id, key = _accounts(postgres, "cancelled", 3)
    slow = DriverQuery(select(func.pg_sleep(bindparam("seconds"))))

    async def read() -> None:
        reader = PoolReader(postgres.engine, size=1)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.one(slow, {"seconds": 2}), timeout=0.2)
            started = time.monotonic()
            caller = await tenancy.authenticate_on(reader, key)
            assert caller is not None and caller.workspace_id == workspace_id
            assert time.monotonic() - started < 1, "the next read waited for the cancelled statement"
        finally:
            await reader.close()

    asyncio.run(read())


def _one_snapshot(query: DriverQuery, parameters: dict[str, int]) -> Steps[object]:
    (rows,) = yield [(query, parameters)]
    return rows


def test_the_app_reads_on_a_pool_of_its_own_while_it_runs(database: Database, tmp_path: Path) -> None:
    workspace_id, key = _accounts(database, "app", 5)
    app = create_app(Settings(database_url=database.url), database)
    assert isinstance(app.state.reader, SyncReader), "before it starts, the app reads through SQLAlchemy's pool"
    with TestClient(app, headers={"X-Api-Key": key}) as client:
        running = app.state.reader
        expected = PoolReader if database.backend == "postgresql" else SyncReader
        assert isinstance(running, expected)
        first = client.get("/api/v1/accounts", params={"limit": 2}).json()["data"]
        later = client.get("/api/v1/accounts", params={"limit": 2, "cursor": first["nextCursor"]})
        assert later.status_code == 200, later.text
        seen = {record["domain"] for record in first["data"]}
        assert [r["domain"] for r in later.json()["data"]["data"]] == sorted(
            {f"app{i}.example.com" for i in range(5)} - seen, key=_order_in(database, workspace_id)
        )[:2]
        cursor = {"limit": 2, "cursor": first["nextCursor"]}
        # The key is looked up with a later page; the errors come in the contract's order still.
        unknown = client.get("/api/v1/accounts", params=cursor, headers={"X-Api-Key": "x" * 64})
        assert (unknown.status_code, unknown.json()["customMessage"]) == (401, "Invalid API key"), unknown.text
        both = client.get("/api/v1/accounts", params={**cursor, "limit": 0}, headers={"X-Api-Key": "x" * 64})
        assert both.status_code == 401, f"an unknown key comes before a bad limit: {both.text}"
        assert client.get("/api/v1/accounts", params={**cursor, "limit": 0}).status_code == 400
        # A NUL anywhere in the URL (an unknown parameter here) is refused before any query.
        nul = client.get("/api/v1/accounts", params={**cursor, "note": "a\x00"})
        assert nul.status_code == 400 and "NUL" in nul.json()["customMessage"], nul.text
    assert isinstance(app.state.reader, SyncReader), "after it stopped, the app reads through SQLAlchemy's pool"
    if isinstance(running, PoolReader):
        assert running.closed, "the app's pool outlived the app"


def _order_in(db: Database, workspace_id: int) -> Callable[[str], str]:
    """The scan's order of domains (by rtp_aid)."""
    with db.read() as conn:
        rows = conn.execute(
            select(accounts.c.domain, accounts.c.rtp_aid).where(accounts.c.workspace_id == workspace_id)
        )
        rtp_aids: dict[str, str] = dict(rows.all())
    return rtp_aids.__getitem__


def test_a_later_page_counts_against_the_rate_limit(database: Database) -> None:
    """A later page admits its key after reading it with the page: it still takes a token,
    and a key over its limit is answered 429 (§5.1), not its page."""
    _, key = _accounts(database, "limited", 5)
    app = create_app(Settings(database_url=database.url, rate_limit=2), database)  # a burst of 2
    with TestClient(app, headers={"X-Api-Key": key}) as client:
        first = client.get("/api/v1/accounts", params={"limit": 2}).json()["data"]
        cursor = {"limit": 2, "cursor": first["nextCursor"]}
        assert client.get("/api/v1/accounts", params=cursor).status_code == 200
        limited = client.get("/api/v1/accounts", params=cursor)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1, limited.text
