"""The reads a request awaits on the event loop: the API key of every request and a later page
of accounts, the API's hottest reads.

Two readers answer the same two calls, `one` (a single statement) and `run` (`Steps`, a read
in one snapshot per round trip):

- `PoolReader` (PostgreSQL, while the app runs): psycopg's async driver on a small pool of its
  own (psycopg_pool), opened and closed with the app. No threadpool hand-off: on two shared
  cores one and back cost up to ~0.5 ms, a quarter of a page of 100 (docs/decisions.md §15).
- `SyncReader` (SQLite; PostgreSQL outside a running app): `DriverReader` on the SQLAlchemy
  pool, on the event loop for SQLite (a WAL reader never waits for a writer, and handing it
  to a thread cost more than the read), in the threadpool for PostgreSQL.

The app starts with a `SyncReader`; its lifespan puts a `PoolReader` in its place on
PostgreSQL (`open_pool_reader`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from abmhub.db.engine import Database
from abmhub.db.queries import BEGIN_SNAPSHOT, DriverQuery, DriverReader, Found, Reads, Result, Rows, Steps

# Connections of the event loop's pool, besides the SQLAlchemy pool's (10, up to 30): enough
# for the requests one process interleaves, few enough for several processes on one server.
POOL_SIZE = 10


class Reader(Protocol):
    async def one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows: ...

    async def run(self, steps: Steps[Result]) -> Result: ...


class SyncReader:
    """`DriverReader` behind the awaitable calls: inline on SQLite, in the threadpool otherwise."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inline = engine.dialect.name == "sqlite"

    async def one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        if self._inline:
            return query.lookup(self._engine, parameters)
        return await run_in_threadpool(query.lookup, self._engine, parameters)

    async def run(self, steps: Steps[Result]) -> Result:
        if self._inline:
            return self._run(steps)
        return await run_in_threadpool(self._run, steps)

    def _run(self, steps: Steps[Result]) -> Result:
        with DriverReader(self._engine) as reader:
            return reader.run(steps)


class PoolReader:
    """Reads on psycopg's async connections, on the event loop (PostgreSQL).

    What `DriverReader` does, awaited: a snapshot's statements go in one round trip between
    BEGIN (REPEATABLE READ READ ONLY) and COMMIT (a pipeline); `one` is an autocommit
    statement. The connections are made from the engine's own connect arguments (host,
    credentials, the JSON loader), in autocommit, planning each statement unless it is
    prepared (`DriverQuery.prepare`), as the engine's are.

    A read on a connection the server dropped (a restart) runs once more, after the pool has
    checked its idle connections and replaced the dead ones: a read changes nothing.
    """

    def __init__(self, engine: Engine, *, size: int = POOL_SIZE) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PoolReader reads PostgreSQL only")
        _, arguments = engine.dialect.create_connect_args(engine.url)
        self._dialect = engine.dialect
        self._pool = AsyncConnectionPool(
            kwargs={**arguments, "autocommit": True, "prepare_threshold": None},
            min_size=1,
            max_size=size,
            open=False,
            name="abmhub-reads",
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)  # the first read waits for its connection if need be

    async def close(self) -> None:
        await self._pool.close()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    async def one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        return await self._again_if_dropped(self._one, query, parameters)

    async def run(self, steps: Steps[Result]) -> Result:
        reads = next(steps)
        while True:
            rows = await self._again_if_dropped(self._snapshot, reads)
            try:
                reads = steps.send(rows)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _again_if_dropped(self, read: Callable[..., Awaitable[Found]], *arguments: Any) -> Found:
        async with self._pool.connection() as connection:
            try:
                return await read(connection, *arguments)
            except psycopg.Error:
                if not connection.broken:
                    raise
        # The pool discarded the broken connection; its idle ones may be as dead.
        await self._pool.check()
        async with self._pool.connection() as connection:
            return await read(connection, *arguments)

    async def _snapshot(self, connection: psycopg.AsyncConnection[Any], reads: Reads) -> list[Rows]:
        async with connection.pipeline():
            control = connection.cursor()
            await control.execute(BEGIN_SNAPSHOT)
            cursors = [await query._send_async(self._dialect, connection, parameters) for query, parameters in reads]
            await control.execute("COMMIT")
        return [await cursor.fetchall() for cursor in cursors]

    async def _one(self, connection: psycopg.AsyncConnection[Any], query: DriverQuery, parameters: Any) -> Rows:
        cursor = await query._send_async(self._dialect, connection, parameters)
        try:
            return await cursor.fetchall()  # type: ignore[no-any-return]
        finally:
            await cursor.close()


@contextlib.asynccontextmanager
async def open_pool_reader(database: Database) -> AsyncIterator[Reader | None]:
    """A `PoolReader` for PostgreSQL while the block runs (None on SQLite)."""
    if database.is_sqlite:
        yield None
        return
    reader = PoolReader(database.engine)
    await reader.open()
    try:
        yield reader
    finally:
        await reader.close()
