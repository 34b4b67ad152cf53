"""The reads a request awaits on the event loop: the API key of every request and a later page
of accounts, the API's hottest reads.

Two readers answer the same two calls, `one` (a single statement) and `run` (`Steps`, a read
in one snapshot per round trip):

- `PoolReader` (PostgreSQL, while the app runs): psycopg's async driver on a small pool of its
  own (`Connections`), closed with the app. No threadpool hand-off: on two shared
  cores one and back cost up to ~0.5 ms, a quarter of a page of 100 (docs/decisions.md §15).
- `SyncReader` (SQLite; PostgreSQL outside a running app): `DriverReader` on the SQLAlchemy
  pool, on the event loop for SQLite (a WAL reader never waits for a writer, and handing it
  to a thread cost more than the read), in the threadpool for PostgreSQL.

The app starts with a `SyncReader`; its lifespan puts a `PoolReader` in its place on
PostgreSQL (`open_pool_reader`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from abmhub.db.engine import Database
from abmhub.db.queries import BEGIN_SNAPSHOT, DriverQuery, DriverReader, Found, Reads, Result, Rows, Steps

# Connections of the event loop's reads, besides the SQLAlchemy pool's (10, up to 30): enough
# for the requests one process interleaves, few enough for several processes on one server.
POOL_SIZE = 10


class Reader(Protocol):
    """What a request's hottest reads are read with (`SyncReader`, `PoolReader`)."""

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


class Connections:
    """psycopg's async connections to one database, made when a read needs one and kept for the
    next (at most `size` in use, waiting reads queue): what SQLAlchemy's pool does for the
    engine. A connection whose read raised (a failed statement, a cancelled read) is closed,
    not kept, and so is a broken one or one left in a transaction.

    Not psycopg_pool: it makes connections in the background and does not tell the reads
    that wait for one why none comes. With PostgreSQL stopped, each read waited its whole
    timeout (30 s) before it failed (measured, docs/decisions.md §15); a shorter timeout
    would fail reads that merely queue. Here a read that cannot connect fails at once, as
    the engine's do, and the first read after PostgreSQL is back connects.
    """

    def __init__(self, arguments: Mapping[str, Any], size: int) -> None:
        self._arguments = {**arguments, "autocommit": True, "prepare_threshold": None}
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self.closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            if self._idle:
                connection = self._idle.pop()
            else:
                connection = await psycopg.AsyncConnection.connect(**self._arguments)
            try:
                yield connection
            except BaseException:
                await connection.close()
                raise
            if self.closed or connection.broken or connection.info.transaction_status != TransactionStatus.IDLE:
                await connection.close()
            else:
                self._idle.append(connection)

    async def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def close(self) -> None:
        """Close the idle connections now, and those in use when their reads end."""
        self.closed = True
        await self.close_idle()


class PoolReader:
    """Reads on psycopg's async connections, on the event loop (PostgreSQL).

    What `DriverReader` does, awaited: a snapshot's statements go in one round trip between
    BEGIN (REPEATABLE READ READ ONLY) and COMMIT (a pipeline); `one` is an autocommit
    statement. The connections (`Connections`) are made from the engine's own connect
    arguments (host, credentials, the JSON loader), in autocommit, planning each statement
    unless it is prepared (`DriverQuery.prepare`), as the engine's are.

    A read on a connection the server dropped (a restart) runs once more on a new
    connection, after the idle ones, likely as dead, were closed: a read changes nothing.
    """

    def __init__(self, engine: Engine, *, size: int = POOL_SIZE) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PoolReader reads PostgreSQL only")
        _, arguments = engine.dialect.create_connect_args(engine.url)
        self._dialect = engine.dialect
        self._connections = Connections(arguments, size)

    async def close(self) -> None:
        await self._connections.close()

    @property
    def closed(self) -> bool:
        return self._connections.closed

    async def one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        return await self._again_if_dropped(self._one, query.alone(), parameters)

    async def run(self, steps: Steps[Result]) -> Result:
        reads = next(steps)
        while True:
            rows = await self._again_if_dropped(self._snapshot, reads)
            try:
                reads = steps.send(rows)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _again_if_dropped(self, read: Callable[..., Awaitable[Found]], *arguments: Any) -> Found:
        async with self._connections.connection() as connection:
            try:
                return await read(connection, *arguments)
            except psycopg.Error:
                if not connection.broken:
                    raise
        await self._connections.close_idle()
        async with self._connections.connection() as connection:
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
    try:
        yield reader
    finally:
        await reader.close()
