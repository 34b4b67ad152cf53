"""The migrations build exactly the schema that db/tables.py declares, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from abmhub.db.engine import Database
from abmhub.db.tables import metadata


def _foreign_key(diff: tuple[Any, ...]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    constraint = diff[1]
    return constraint.table.name, tuple(constraint.column_keys), tuple(e.target_fullname for e in constraint.elements)


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_match_the_declared_tables(database: Database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, metadata)
        if database.is_sqlite:
            # SQLite can only add a foreign key inline with its column (migration 0005); its
            # reflection does not read the name of such a key, so the comparison reports it as
            # removed and added. Same columns, same target: check its ON DELETE directly.
            removed = {_foreign_key(d) for d in differences if d[0] == "remove_fk"}
            added = {_foreign_key(d) for d in differences if d[0] == "add_fk"}
            assert removed == added, differences
            for table, columns, _ in added:
                actions = {row[3]: row[6] for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})")}
                declared = {
                    fk.parent.name: (fk.ondelete or "NO ACTION").upper() for fk in metadata.tables[table].foreign_keys
                }
                assert all(actions[column] == declared[column] for column in columns), (actions, declared)
            differences = [d for d in differences if d[0] not in ("remove_fk", "add_fk")]
    assert differences == [], differences


def test_the_expression_index_exists(database: Database):
    """Neither dialect reflects an expression index, so the comparison above skips this one."""
    query = (
        "SELECT sql FROM sqlite_master WHERE name = 'ix_accounts_workspace_name'"
        if database.is_sqlite
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_accounts_workspace_name'"
    )
    with database.engine.connect() as conn:
        definition = conn.exec_driver_sql(query).scalar_one()
    assert "lower(name)" in definition.replace('"', "").lower(), definition
