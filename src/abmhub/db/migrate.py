"""Apply the schema migrations (Alembic) — automatically, on every start of every command.

Several processes may start at once against one database; the migration runs under a lock
(a PostgreSQL advisory lock, an exclusive write transaction on SQLite), so exactly one of
them upgrades and the others find the schema current.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from abmhub.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x61626D68  # "abmh"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision."""
    config = alembic_config()
    with database.engine.connect() as conn:
        if database.is_sqlite:
            # BEGIN IMMEDIATE (see engine.py) holds the write lock for the whole upgrade.
            conn = conn.execution_options(abmhub_write=True)
        else:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                if database.is_sqlite:
                    # Fresh statistics keep the planner on the keyset indexes.
                    conn.exec_driver_sql("ANALYZE")
        finally:
            if not database.is_sqlite:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
