"""Small queries several services share."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Engine, Integer, String, Table, and_, any_, cast, func, literal, select
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
        ids = cast(literal("{" + ",".join(map(str, values)) + "}", NullType()), ARRAY(Integer))
        # Integers only: Python's order of strings is not the database collation's.
        return and_(column == any_(ids), column.between(min(values), max(values)))
    each = func.json_each(literal(orjson.dumps(list(values)).decode())).table_valued("value")
    return column.in_(select(each.c.value))


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
    only; the statement's parameters are named by `bindparam` and passed as a dict. On
    PostgreSQL the statement is prepared once per connection, like a PREPARED statement.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
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

    def rows(self, conn: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, in the transaction of `conn`."""
        return self._run(conn.dialect, conn.connection.dbapi_connection, parameters)

    def lookup(self, engine: Engine, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of this one statement on a pooled connection, without a transaction of our
        own: a single SELECT reads one snapshot by itself (SQLite's implicit transaction,
        PostgreSQL's autocommit statement), and BEGIN, COMMIT and SQLAlchemy's connection
        wrapper cost ~100 µs of a 110 µs key lookup on SQLite (measured). For lookups that
        must be cheap, like the API key of every request."""
        raw = engine.raw_connection()
        dbapi_connection: Any = raw.dbapi_connection
        try:
            if engine.dialect.name == "postgresql":
                # Autocommit for this statement: no BEGIN before it, no ROLLBACK when the pool
                # takes the connection back (two round trips of the four).
                dbapi_connection.autocommit = True
                try:
                    return self._run(engine.dialect, dbapi_connection, parameters)
                finally:
                    dbapi_connection.autocommit = False
            return self._run(engine.dialect, dbapi_connection, parameters)
        finally:
            raw.close()  # back to the pool

    def _run(self, dialect: Dialect, dbapi_connection: Any, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        sql, arguments = self.compiled(dialect, parameters)
        cursor = dbapi_connection.cursor()
        try:
            if dialect.name == "postgresql":
                cursor.execute(sql, arguments, prepare=True)
            else:
                cursor.execute(sql, arguments)
            return list(cursor.fetchall())
        finally:
            cursor.close()
