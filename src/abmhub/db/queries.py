"""Small queries several services share."""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import NullType


def among(conn: Connection, column: Any, values: Sequence[Any], kind: type[Integer | String] = Integer) -> Any:
    """`column IN (values)` for many ids or domains (up to 10,000), as ONE bound parameter.

    Not one bound parameter per value, which SQLAlchemy would render, and the database parse and
    plan, for every query. PostgreSQL gets an array (`= ANY(:values)`) and, for ids, a
    `BETWEEN min AND max` beside it from which the planner estimates the rows (an index range
    scan, not a table scan); SQLite reads the values from a JSON array (`IN (SELECT value FROM
    json_each(:values))`) and looks each one up in the index. `values` must not be empty.
    """
    if conn.dialect.name == "postgresql":
        if kind is not Integer:
            return column == any_(literal(list(values), ARRAY(kind)))
        # Ids go as ONE text `{1,2,3}`: psycopg would dump a list of ints element by element in
        # Python (a regex per element, ~1.3 ms for 1000 ids, measured). The text is sent untyped,
        # so the server reads it as the array itself when it binds the statement: the planner
        # sees a constant array (and hashes it), not a cast from text. A `::text` cast left the
        # conversion in the plan, redone for every row of a sequential scan: 10,000 ids against
        # 67,000 activities took 22 s a batch (a 300,000-account workspace), not 10 ms.
        ids = cast(literal(_id_array(values), NullType()), ARRAY(Integer))
        # Integers only: Python's order of strings is not the database collation's.
        return and_(column == any_(ids), column.between(min(values), max(values)))
    each = func.json_each(literal(json_text(list(values)))).table_valued("value")
    return column.in_(select(each.c.value))


def bound_among(dialect: str, column: Any) -> Any:
    """`among` for ids bound when the statement runs (`among_parameters`), for statements
    built once (`DriverQuery`)."""
    if dialect == "postgresql":
        ids = cast(bindparam("among_ids", type_=NullType()), ARRAY(Integer))
        return and_(column == any_(ids), column.between(bindparam("among_low"), bindparam("among_high")))
    each = func.json_each(bindparam("among_ids", type_=String)).table_valued("value")
    return column.in_(select(each.c.value))


def among_parameters(dialect: str, ids: Sequence[int]) -> dict[str, Any]:
    """The bound values of `bound_among` for `ids` (none matches an empty list)."""
    if dialect == "postgresql":
        return {"among_ids": _id_array(ids), "among_low": min(ids, default=0), "among_high": max(ids, default=0)}
    return {"among_ids": json_text(list(ids))}


def _id_array(ids: Sequence[int]) -> str:
    return "{" + ",".join(map(str, ids)) + "}"


def stored_values(conn: Connection, column: Column[Any], workspace_id: int, values: Collection[str]) -> set[str]:
    """Which of `values` the workspace already has in `column` (create-only and idempotent pushes)."""
    if not values:
        return set()
    table = column.table
    return set(
        conn.execute(select(column).where(table.c.workspace_id == workspace_id, column.in_(sorted(values)))).scalars()
    )


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT `rows` (tuples in `columns` order) with one driver-level `executemany`.

    For the hot bulk writes: SQLAlchemy's per-row parameter processing cost more than the
    INSERT itself (per 100 accounts, measured). Values must already be what the driver
    takes: JSON columns as JSON text (`json_text`), which both drivers store as given
    (PostgreSQL casts the untyped text to `jsonb`).
    """
    if rows:
        conn.exec_driver_sql(_insert_sql(conn, table, columns), list(rows))


def upsert_rows(
    conn: Connection, table: Table, columns: Sequence[str], keys: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`insert_rows`, where a row whose `keys` exist already overwrites the other columns
    (`ON CONFLICT (keys) DO UPDATE`, the same on SQLite and PostgreSQL)."""
    if rows:
        quote = conn.dialect.identifier_preparer.quote
        targets = ", ".join(quote(name) for name in keys)
        updates = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in columns if name not in keys)
        conflict = f" ON CONFLICT ({targets}) DO UPDATE SET {updates}"
        conn.exec_driver_sql(_insert_sql(conn, table, columns) + conflict, list(rows))


def _insert_sql(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown}")
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    marks = ", ".join([param_mark(conn)] * len(columns))
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"


def insert_dicts(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`insert_rows` for rows given as dicts that all have the first row's keys."""
    if rows:
        columns = list(rows[0])
        insert_rows(conn, table, columns, [tuple(row[name] for name in columns) for row in rows])


def json_text(value: Any) -> str:
    """A value as the JSON text a JSON column stores (what SQLAlchemy's serializer writes)."""
    return orjson.dumps(value).decode()


def param_mark(conn: Connection) -> str:
    """The driver's positional placeholder, for SQL run with `exec_driver_sql`."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def tuples_in_batches(conn: Connection, statement: Any, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """A large read's rows as the driver gives them (plain tuples), `size` at a time.

    For reads of millions of rows (a model's training history): SQLAlchemy's Row objects cost
    as much as the query itself there (measured: 8 s of 21 s on 10M grouped rows on SQLite).
    The statement is compiled by the connection's dialect and run on the driver's own cursor
    in this connection's transaction: a server-side (named) cursor on PostgreSQL, so that the
    rows stream instead of arriving all at once. Bound values pass as they are (no type
    processing): use it for statements whose parameters are plain numbers and strings.
    """
    compiled = statement.compile(dialect=conn.dialect)
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor(name="abmhub_batches")
        parameters: Any = compiled.params
    else:
        cursor = driver.cursor()
        parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    try:
        cursor.execute(str(compiled), parameters)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


class DriverQuery:
    """A Core statement compiled once per dialect and run on the driver's own cursor.

    Its rows are the driver's tuples, not SQLAlchemy Rows: building those cost ~2 µs a row,
    a quarter of a page of 1,000 accounts on PostgreSQL (measured). For the hottest reads
    only; the statement's parameters are named by `bindparam` and passed as a dict.

    On PostgreSQL, `settings` (planner settings such as `enable_sort`) are in force for this
    statement only: set for the transaction before it, back to their defaults after it. With
    `prepare` the statement is prepared once per connection, like a PREPARED statement: only
    for statements whose plan cannot go wrong as tables grow (engine.PREPARED).
    """

    def __init__(
        self, statement: ClauseElement, *, settings: Mapping[str, str] | None = None, prepare: bool = True
    ) -> None:
        self.statement = statement
        self.prepare = prepare
        self._before = tuple(f"SET LOCAL {name} = {value}" for name, value in (settings or {}).items())
        self._after = tuple(f"SET LOCAL {name} TO DEFAULT" for name in settings or {})
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def compiled(self, dialect: Dialect, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL text for this dialect's driver and its arguments in the driver's style."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            done: Any = self.statement.compile(dialect=dialect)
            positions = tuple(done.positiontup) if done.positiontup else None
            # Bound values of its own (SQLite's `LIMIT ? OFFSET ?` binds the offset 0).
            compiled = self._compiled[dialect.name] = (str(done), positions, dict(done.params))
        sql, positions, defaults = compiled
        given = {**defaults, **parameters}
        return sql, tuple(given[name] for name in positions) if positions else given

    def alone(self) -> DriverQuery:
        """This statement, checked fit to run by itself, with no transaction around it
        (`DriverReader.one`, `db.readers`): where SET LOCAL would do nothing."""
        if self._before:
            raise ValueError("a statement by itself has no transaction, where SET LOCAL does nothing")
        return self

    def explain(self, conn: Connection, parameters: Mapping[str, Any]) -> str:
        """PostgreSQL's plan for the statement under its settings, in the transaction of `conn`."""
        sql, arguments = self.compiled(conn.dialect, parameters)
        for setting in self._before:
            conn.exec_driver_sql(setting)
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, arguments))
        for setting in self._after:
            conn.exec_driver_sql(setting)
        return plan

    def rows(self, conn: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, in the transaction of `conn`."""
        return _all_rows(self._send(conn.dialect, conn.connection.dbapi_connection, parameters))

    def lookup(self, engine: Engine, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of this one statement on a pooled connection, without a transaction of our
        own: a single SELECT reads one snapshot by itself (SQLite's implicit transaction,
        PostgreSQL's autocommit statement), and BEGIN, COMMIT and SQLAlchemy's connection
        wrapper cost ~100 µs of a 110 µs key lookup on SQLite (measured). For lookups that
        must be cheap, like the API key of every request."""
        with DriverReader(engine) as reader:
            return reader.one(self, parameters)

    def _send(self, dialect: Dialect, dbapi_connection: Any, parameters: Mapping[str, Any]) -> Any:
        """Execute on a new cursor of the driver and return that cursor, its rows unread."""
        sql, arguments = self.compiled(dialect, parameters)
        cursor = dbapi_connection.cursor()
        if dialect.name == "postgresql":
            for setting in self._before:
                cursor.execute(setting)
            cursor.execute(sql, arguments, prepare=self.prepare)
            if self._after:
                # The statement's rows stay on its own cursor; the resets go on another.
                other = dbapi_connection.cursor()
                for setting in self._after:
                    other.execute(setting)
                other.close()
        else:
            cursor.execute(sql, arguments)
        return cursor

    async def _send_async(self, dialect: Dialect, connection: Any, parameters: Mapping[str, Any]) -> Any:
        """`_send` on psycopg's async connection (PostgreSQL only)."""
        sql, arguments = self.compiled(dialect, parameters)
        cursor = connection.cursor()
        for setting in self._before:
            await cursor.execute(setting)
        await cursor.execute(sql, arguments, prepare=self.prepare)
        if self._after:
            other = connection.cursor()
            for setting in self._after:
                await other.execute(setting)
            await other.close()
        return cursor


Reads = Sequence[tuple[DriverQuery, Mapping[str, Any]]]
Rows = list[tuple[Any, ...]]
Found = TypeVar("Found")
Result = TypeVar("Result")
# A read in several round trips, written once for every reader: a generator that yields the
# reads of each snapshot, is sent their rows back, and returns what it made of them
# (`DriverReader.run`, `db.readers`). It does no I/O of its own.
Steps = Generator[Reads, list[Rows], Result]

# What a PostgreSQL snapshot of several reads begins with (`DriverReader.snapshot`).
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


class DriverReader:
    """Reads on one pooled connection of the driver's own, without SQLAlchemy's wrapper.

    `snapshot` sends statements together and returns their rows; `one` reads one statement
    by itself. On PostgreSQL a snapshot's statements go in ONE round trip with BEGIN and
    COMMIT around them (psycopg's pipeline mode), in a REPEATABLE READ READ ONLY transaction:
    one snapshot for all, and a read-only transaction never fails to serialise. A round trip
    costs ~0.1 ms on a loopback: the hottest reads (a later page of accounts) are a round
    trip or two, not one per statement. On SQLite, a deferred transaction (its snapshot
    taken at the first read).

    A statement that fails leaves the connection in an aborted transaction, or broken: it
    is discarded, not handed out again (a dropped connection is replaced, see `snapshot`).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._raw: Any = None

    def __enter__(self) -> DriverReader:
        self._raw = self._engine.raw_connection()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, *_: object) -> None:
        raw, self._raw = self._raw, None
        if raw is None:  # no connection to be had after a dropped one (see _again_if_dropped)
            return
        if error is not None:
            raw.invalidate(error)  # the engine learns whether the server was gone (engine.py)
        raw.close()  # back to the pool

    def snapshot(self, reads: Reads) -> list[Rows]:
        """The rows of each of `reads`, read from one snapshot."""
        return self._again_if_dropped(self._snapshot, reads)

    def run(self, steps: Steps[Result]) -> Result:
        """What `steps` make of their snapshots, each read by `snapshot`."""
        reads = next(steps)
        while True:
            try:
                reads = steps.send(self.snapshot(reads))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        """The rows of one statement, with no BEGIN or COMMIT: it is one snapshot by itself
        (PostgreSQL's autocommit, SQLite's implicit transaction). No planner `settings`: they
        need a transaction."""
        return self._again_if_dropped(self._one, query.alone(), parameters)

    def _again_if_dropped(self, read: Callable[..., Found], *arguments: Any) -> Found:
        """`read(*arguments)`; on a connection the server dropped (a restart), again on a new
        connection, once: a read changes nothing, so running it again is safe."""
        try:
            return read(*arguments)
        except self._dialect.loaded_dbapi.Error as exc:
            if not self._dialect.is_disconnect(exc, self._raw.dbapi_connection, None):
                raise
            dropped, self._raw = self._raw, None
            dropped.invalidate(exc)
            dropped.close()
            self._raw = self._engine.raw_connection()
            return read(*arguments)

    def _snapshot(self, reads: Reads) -> list[Rows]:
        connection = self._raw.dbapi_connection
        dialect = self._dialect
        if dialect.name == "postgresql":
            connection.autocommit = True  # BEGIN and COMMIT are ours, sent in the pipeline
            with connection.pipeline():
                control = connection.cursor()
                control.execute(BEGIN_SNAPSHOT)
                cursors = [query._send(dialect, connection, parameters) for query, parameters in reads]
                control.execute("COMMIT")
            found = [list(cursor.fetchall()) for cursor in cursors]
            connection.autocommit = False
            return found
        control = connection.cursor()
        control.execute("BEGIN")
        found = [self._fetch(query, parameters) for query, parameters in reads]
        control.execute("COMMIT")
        return found

    def _one(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        if self._dialect.name != "postgresql":
            return self._fetch(query, parameters)
        connection = self._raw.dbapi_connection
        connection.autocommit = True  # no BEGIN before it, no ROLLBACK when the pool takes it back
        found = self._fetch(query, parameters)  # not in a pipeline: its own work cost ~60 µs (measured)
        connection.autocommit = False
        return found

    def _fetch(self, query: DriverQuery, parameters: Mapping[str, Any]) -> Rows:
        return _all_rows(query._send(self._dialect, self._raw.dbapi_connection, parameters))


def _all_rows(cursor: Any) -> Rows:
    """Every row of a driver cursor, which is closed after."""
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()
