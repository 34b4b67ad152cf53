"""webhooks: subscriptions, the outbox of events, and their deliveries (contract §8)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00

An event is written in the transaction of the change it announces; the delivery workers of
every server process share the subscriptions through a lease, turn the events past each
one's cursor into its deliveries and deliver them (abmhub/webhooks/delivery.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _references(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=24), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("min_score_delta", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("failing_since_us", sa.BigInteger(), nullable=True),
        sa.Column("backoff_until_us", sa.BigInteger(), nullable=True),
        sa.Column("lease_until_us", sa.BigInteger(), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_us", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cursor_event_pk", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("status IN ('active', 'paused', 'disabled')", name="ck_webhooks_status"),
        sa.CheckConstraint("format IN ('json', 'slack')", name="ck_webhooks_format"),
        sa.CheckConstraint("min_score_delta BETWEEN 1 AND 100", name="ck_webhooks_min_score_delta"),
        _references("webhooks", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_webhooks_webhook_id")),
    )
    op.create_index("ix_webhooks_workspace", "webhooks", ["workspace_id", "id"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("events", sa.LargeBinary(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("webhook_pk", sa.Integer(), nullable=True),
        _references("webhook_events", "workspace_id", "workspaces"),
        _references("webhook_events", "webhook_pk", "webhooks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_index("ix_webhook_events_workspace", "webhook_events", ["workspace_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("webhook_pk", sa.Integer(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=True),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("delivered_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_webhook_deliveries_status"),
        _references("webhook_deliveries", "workspace_id", "workspaces"),
        _references("webhook_deliveries", "webhook_pk", "webhooks"),
        _references("webhook_deliveries", "event_pk", "webhook_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_webhook_deliveries_delivery_id")),
        sa.UniqueConstraint(
            "webhook_pk", "event_pk", "position", name=op.f("uq_webhook_deliveries_webhook_pk_event_pk_position")
        ),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_pk", "id"])
    op.create_index("ix_webhook_deliveries_event", "webhook_deliveries", ["event_pk"])
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["webhook_pk", "next_attempt_us"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["next_attempt_us"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhooks")
