"""`db.queries.among`: many ids or domains as one bound parameter, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from abmhub.db.engine import Database
from abmhub.db.queries import among

_metadata = MetaData()
_rows = Table("among_rows", _metadata, Column("id", Integer, primary_key=True), Column("key", String(20)))
ROWS = 20_000


@pytest.fixture
def table(database: Database) -> Database:
    _metadata.create_all(database.engine)
    with database.engine.begin() as conn:
        conn.execute(insert(_rows), [{"id": i, "key": f"k{i}"} for i in range(1, ROWS + 1)])
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE among_rows")
    return database


def test_finds_exactly_the_given_ids_and_keys(table: Database) -> None:
    ids = list(range(7, ROWS, 7))  # 2,856 ids spread over the whole table, in no index order
    ids.reverse()
    with table.engine.connect() as conn:
        found = set(conn.execute(select(_rows.c.id).where(among(conn, _rows.c.id, ids))).scalars())
        keys = set(
            conn.execute(select(_rows.c.key).where(among(conn, _rows.c.key, ["k3", "k5", "nope"], String))).scalars()
        )
    assert found == set(ids), f"{len(found)} ids found, expected the {len(ids)} given"
    assert keys == {"k3", "k5"}, f"keys found: {keys}"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_sees_the_ids_as_a_constant_array_even_in_a_sequential_scan(table: Database) -> None:
    """The ids arrive as text; the server must read them as an integer array once, at bind time.

    With the text cast in the plan, a sequential scan converted the 10,000 ids again for every
    row (a scoring batch of a 300,000-account workspace: 22 s instead of 10 ms).
    """
    ids = list(range(2, ROWS, 2))
    with table.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        statement = select(_rows.c.id).where(among(conn, _rows.c.id, ids))
        compiled = statement.compile(conn)
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params()).all()
        )
        found = len(conn.execute(statement).all())
    assert "Seq Scan" in plan, f"the test should force a sequential scan:\n{plan}"
    assert "::text" not in plan and "'::integer[]" in plan, (
        f"the ids should be one constant integer array:\n{plan[:600]}"
    )
    assert found == len(ids)
