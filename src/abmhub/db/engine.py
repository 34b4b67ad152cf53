"""Engines and transactions for SQLite and PostgreSQL.

Every request runs in exactly one transaction, opened here. Write transactions of a
workspace are serialised by its *sync clock* (see `tick_clock` and docs/decisions.md):
that one mechanism gives both the per-workspace write order that bulk items rely on and
the delta-sync guarantee that no committed change is ever missed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import make_url

from abmhub.db.queries import json_text
from abmhub.timefmt import now_us

if TYPE_CHECKING:
    from psycopg import Cursor
    from sqlalchemy.engine.interfaces import ExecutionContext
    from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept the URLs people type (`postgresql://`, `postgres://`) and pin the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver: we issue BEGIN ourselves so that
        # writers can say BEGIN IMMEDIATE (take the write lock up front, never fail later
        # with "database is locked" when another process wrote in between).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("abmhub_write", False):
            # The pysqlite driver's connection, open while a transaction begins on it.
            begin_immediate(cast(sqlite3.Connection, conn.connection.driver_connection))
        else:
            conn.exec_driver_sql("BEGIN")


# Waits for the write lock of another process: short first, never longer than 1 ms apart.
_LOCK_POLL_FIRST_S = 0.0001
_LOCK_POLL_MAX_S = 0.001


def begin_immediate(dbapi_connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to the busy timeout for another process's write lock.

    Threads of one process already queue on `Database._writer`; this is the wait for other
    processes on the same file. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms
    ... between attempts, so a writer waiting for a 5 ms transaction typically woke 8 or 18 ms
    after it began, and the file sat unlocked in between (two server processes: p99 of a push
    60 ms against 20 ms for one). Here the attempt repeats at most 1 ms apart.
    """
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = _LOCK_POLL_FIRST_S
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _LOCK_POLL_MAX_S)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


# Execution option for statements on small tables (workspaces, keys, field definitions) whose
# plan cannot go wrong as data grows: on PostgreSQL they are prepared once per connection
# instead of planned on every execution. Not for lookups in tables that grow: a generic plan
# made while a table was small kept scanning it as it grew (the account lookup of a push took
# 37 ms instead of 1 ms after 10,000 accounts, measured).
PREPARED = {"abmhub_prepare": True}


# A pooled PostgreSQL connection is pinged before use only when it may have died: after it sat
# idle this long, or when some connection has met a dead server since it was last used. A ping
# on every checkout (SQLAlchemy's pool_pre_ping) was a round trip of its own, ~0.2 ms of each
# checkout here, twice a request (key, then work): 0.4 of a 2.6 ms page of 100 (measured).
# The same bargain as HikariCP's aliveBypassWindowMs (500 ms) and PgBouncer's
# server_check_delay (30 s).
PING_AFTER_IDLE_S = 1.0


def _ping_when_in_doubt(engine: Engine) -> None:
    last_disconnect = [0.0]  # time.monotonic() when a connection was last found dead

    @event.listens_for(engine, "checkin")
    def note_idle(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "invalidate")
    def note_death(dbapi_connection: Any, _record: ConnectionPoolEntry, exception: BaseException | None) -> None:
        dbapi_error = engine.dialect.loaded_dbapi.Error
        if isinstance(exception, dbapi_error) and engine.dialect.is_disconnect(exception, dbapi_connection, None):
            last_disconnect[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_in_doubt(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # None: a new connection, alive
        if idle_since is None:
            return
        if time.monotonic() - idle_since < PING_AFTER_IDLE_S and idle_since > last_disconnect[0]:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            last_disconnect[0] = time.monotonic()
            # The pool replaces this connection and every one older than now, then retries.
            raise sqlalchemy_exc.InvalidatePoolError() from exc


def _configure_postgresql(engine: Engine) -> None:
    _ping_when_in_doubt(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def choose_preparation(
        _conn: Connection,
        cursor: Cursor[Any],
        _statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        # Statements are planned on every execution (prepare_threshold=None, see Database), which
        # is right for queries whose best plan depends on the data. An executemany (INSERT of
        # many rows, UPDATE ... WHERE id = ...) runs one statement per row in psycopg's pipeline,
        # and planning each row cost ~40 % of the INSERT of a 100-account push (7.3 -> 4.3 ms
        # prepared, measured). Its plan does not depend on the data, so it is prepared once per
        # connection and reused (psycopg keeps up to 100 prepared statements per connection),
        # as are the statements marked PREPARED (planning was ~0.5 ms of each, measured).
        prepare = executemany or (context is not None and context.execution_options.get("abmhub_prepare", False))
        cursor.connection.prepare_threshold = 0 if prepare else None


@dataclass(slots=True)
class WriteTransaction:
    """A write transaction of one workspace and the clock value that stamps its changes."""

    conn: Connection
    now_us: int


class Database:
    """One engine plus the two kinds of transaction abmhub uses."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        backend = make_url(self.url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"Unsupported database '{backend}': use sqlite:/// or postgresql://")
        self.backend = backend
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": json_text, "json_deserializer": orjson.loads}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        else:
            # prepare_threshold=None: plan every statement with the table's current statistics;
            # psycopg's cached generic plans kept a bad early plan as tables grew (measured).
            kwargs.update(pool_size=10, max_overflow=20, connect_args={"prepare_threshold": None})
        self.engine = create_engine(self.url, **kwargs)
        # SQLite has one writer at a time; threads of this process queue on a lock instead of
        # polling the database's busy timeout (measured p99 of concurrent pushes: 1.5 s -> 0.2 s).
        self._writer = threading.Lock() if backend == "sqlite" else contextlib.nullcontext()
        if backend == "sqlite":
            _configure_sqlite(self.engine)
        else:
            _configure_postgresql(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on SQLite, read committed on PostgreSQL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, workspace_id: int | None = None) -> Iterator[WriteTransaction]:
        """A write transaction; with a workspace, it first ticks that workspace's sync clock.

        Committed on normal exit, rolled back on any exception: nothing half-written.
        """
        with self._writer, self.engine.connect().execution_options(abmhub_write=True) as conn, conn.begin():
            stamp = tick_clock(conn, workspace_id) if workspace_id is not None else now_us()
            yield WriteTransaction(conn, stamp)

    def refresh_statistics(self) -> None:
        """Let the query planner see how the tables grew (keeps keyset and lookup plans right)."""
        if self.is_sqlite:
            # PRAGMA optimize reads, then writes its statistics: in a plain (deferred)
            # transaction a writer committing in between made it fail at once with "database
            # is locked" (found under load, tests/reliability). It takes the write lock up front,
            # like every writer, and so waits its turn.
            with self._writer, self.engine.connect().execution_options(abmhub_write=True) as conn, conn.begin():
                conn.exec_driver_sql("PRAGMA optimize")
            return
        with self.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


_TICK = "UPDATE workspaces SET clock_us = {}(clock_us + 1, :now) WHERE id = :id RETURNING clock_us"
_TICK_SQLITE = text(_TICK.format("max"))
_TICK_POSTGRESQL = text(_TICK.format("greatest")).execution_options(**PREPARED)


def tick_clock(conn: Connection, workspace_id: int) -> int:
    """Advance the workspace's sync clock and return its new value (µs since the epoch).

    The clock row is updated as the *first* statement of every write transaction of the
    workspace, so it is locked until that transaction ends (PostgreSQL row lock; the
    database-wide write lock on SQLite): writers of one workspace run one after another,
    and each one's stamp is strictly greater than every stamp committed before it. A
    delta-sync pass ticks the same clock to get its `syncTimestamp`, so every change with a
    stamp at or below it was committed before the pass read anything.
    """
    row = conn.execute(
        _TICK_SQLITE if conn.dialect.name == "sqlite" else _TICK_POSTGRESQL, {"now": now_us(), "id": workspace_id}
    ).one_or_none()
    if row is None:
        raise LookupError(f"workspace {workspace_id} does not exist")
    return cast(int, row[0])


@contextmanager
def sync_pass(db: Database, workspace_id: int, sync_us: int | None) -> Iterator[tuple[Connection, int]]:
    """A transaction for reading one page of a delta-sync pass, and the pass's sync stamp.

    The first page of a pass (no stamp yet) ticks the workspace clock in a short write
    transaction: it waits for the writer in flight, if any, and every later writer gets a
    greater stamp, so all changes stamped at or below the pass's stamp are visible to it.
    Later pages reuse the stamp from their cursor in a plain read transaction.
    """
    if sync_us is None:
        with db.write(workspace_id) as tx:
            yield tx.conn, tx.now_us
    else:
        with db.read() as conn:
            yield conn, sync_us
