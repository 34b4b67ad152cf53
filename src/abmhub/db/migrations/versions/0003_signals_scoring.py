"""signals and scoring

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:40:36.166762
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_lease")),
    )
    op.create_table(
        "scoring_runs",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("last_run_us", sa.BigInteger(), nullable=False),
        sa.Column("last_full_day", sa.Integer(), nullable=False),
        sa.Column("accounts_scored", sa.Integer(), nullable=False),
        sa.Column("accounts_changed", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_scoring_runs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_scoring_runs")),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("occurred_day", sa.Integer(), nullable=False),
        sa.Column("external_signal_id", sa.String(length=500), nullable=True),
        sa.Column("weight", sa.Float(), server_default=sa.text("1"), nullable=False),
        sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_signals_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint(
            "workspace_id", "external_signal_id", name=op.f("uq_signals_workspace_id_external_signal_id")
        ),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index("ix_signals_workspace_domain", ["workspace_id", "domain", "source"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("score_dirty", sa.Boolean(), server_default=sa.text("true"), nullable=False))
        batch_op.add_column(sa.Column("scored_us", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_accounts_workspace_dirty", ["workspace_id", "score_dirty"], unique=False)

    op.create_index(
        "ix_activities_unlinked",
        "activities",
        ["workspace_id", "domain"],
        sqlite_where=sa.text("account_id IS NULL"),
        postgresql_where=sa.text("account_id IS NULL"),
    )
    op.create_index(
        "ix_deal_accounts_pending",
        "deal_accounts",
        ["workspace_id"],
        sqlite_where=sa.text("account_id IS NULL"),
        postgresql_where=sa.text("account_id IS NULL"),
    )

    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scoring_settings",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    op.drop_index("ix_deal_accounts_pending", table_name="deal_accounts")
    op.drop_index("ix_activities_unlinked", table_name="activities")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("scoring_settings")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_workspace_dirty")
        batch_op.drop_column("scored_us")
        batch_op.drop_column("score_dirty")

    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_workspace_domain")

    op.drop_table("signals")
    op.drop_table("scoring_runs")
    op.drop_table("scoring_lease")
