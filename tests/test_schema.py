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


def _search_index(diff: tuple[Any, ...]) -> bool:
    if diff[0] == "remove_table":
        return bool(diff[1].name.startswith("account_search"))
    return diff[0] == "remove_index" and diff[1].name in ("ix_accounts_name_trigrams", "ix_accounts_domain_trigrams")


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
    # The search index of migration 0008 is not declared: it is optional (an FTS5 table and its
    # shadow tables on SQLite, pg_trgm GIN indexes on PostgreSQL); test_account_search checks it.
    differences = [d for d in differences if not _search_index(d)]
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


def test_upgrading_a_scored_workspace_keeps_its_funnel(backend: str, new_database_url):
    """0007 keeps the funnel of the accounts scored before it as today's, so the dashboard's
    counts are right before the first scoring run after the upgrade."""
    from alembic import command
    from sqlalchemy import text

    from abmhub.db.migrate import alembic_config
    from abmhub.history import service as history

    database = Database(new_database_url(backend))
    config = alembic_config()
    with database.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(text("INSERT INTO workspaces (name, created_us, clock_us) VALUES ('w', 0, 0)"))
        workspace_id = conn.execute(text("SELECT id FROM workspaces")).scalar_one()
        for i, (stage, score) in enumerate([("Aware", 20), ("Aware", 30), ("Customer", 90), ("", 0)]):
            conn.execute(
                text(
                    "INSERT INTO accounts (workspace_id, rtp_aid, uuid, name, domain, tags, custom_fields, "
                    "account_score, journey_stage, created_us, change_us) "
                    "VALUES (:w, :aid, :uuid, :name, :domain, '[]', '{}', :score, :stage, 0, 0)"
                ),
                {
                    "w": workspace_id,
                    "aid": f"{i:024x}",
                    "uuid": f"00000000-0000-0000-0000-{i:012x}",
                    "name": f"A{i}",
                    "domain": f"a{i}.com",
                    "score": score,
                    "stage": stage,
                },
            )
        command.upgrade(config, "head")
    counts = history.stage_counts(database, workspace_id=workspace_id)
    assert counts.by_stage == {"Aware": 2, "Customer": 1, "": 1} and counts.total == 4
    assert counts.average_score == pytest.approx(140 / 4)
    database.dispose()
