"""Alembic environment: migrations run on a connection handed in by abmhub.db.migrate."""

from alembic import context

from abmhub.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - abmhub always hands one in
    raise RuntimeError("run migrations through `abmhub.db.migrate.upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
