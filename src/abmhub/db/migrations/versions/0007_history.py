"""history: stage changes, daily scores, daily funnel counts; server secrets

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00

The scoring job records every journey-stage change and, per account and UTC day, the day's
last scores (contract §7); at the end of each run it also keeps the day's count of accounts
per stage, so that a past day's funnel is a handful of rows. The dashboard's lists get the
indexes they page along: accounts by score and by name, per stage, and signals by day. `server_secrets` holds what the
server generates once and every process must share (the dashboard's session key).
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _references(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "stage_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=20), nullable=False),
        sa.Column("to_stage", sa.String(length=20), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=12), nullable=False),
        _references("stage_changes", "workspace_id", "workspaces"),
        _references("stage_changes", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_changes")),
    )
    op.create_index("ix_stage_changes_account", "stage_changes", ["account_id", "at_us", "id"])
    op.create_index("ix_stage_changes_workspace", "stage_changes", ["workspace_id", "at_us", "id"])
    op.create_index("ix_stage_changes_direction", "stage_changes", ["workspace_id", "direction", "at_us", "id"])
    op.create_table(
        "daily_scores",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("account_score", sa.Integer(), nullable=False),
        sa.Column("journey_stage", sa.String(length=20), nullable=False),
        sa.Column("advertising_score", sa.Integer(), nullable=False),
        sa.Column("website_score", sa.Integer(), nullable=False),
        sa.Column("g2_score", sa.Integer(), nullable=False),
        sa.Column("bombora_score", sa.Integer(), nullable=False),
        _references("daily_scores", "account_id", "accounts"),
        _references("daily_scores", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_daily_scores")),
    )
    op.create_table(
        "daily_stage_counts",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("journey_stage", sa.String(length=20), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.BigInteger(), nullable=False),
        _references("daily_stage_counts", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("workspace_id", "day", "journey_stage", name=op.f("pk_daily_stage_counts")),
    )
    # The funnel now, as the funnel of today: the dashboard reads the latest one kept, and
    # accounts scored before this migration are in no run's funnel yet.
    today = int(time.time() // 86_400)
    op.execute(
        sa.text(
            "INSERT INTO daily_stage_counts (workspace_id, day, journey_stage, accounts, score_sum) "
            "SELECT workspace_id, :today, journey_stage, count(*), coalesce(sum(account_score), 0) "
            "FROM accounts WHERE journey_stage <> '' GROUP BY workspace_id, journey_stage"
        ).bindparams(today=today)
    )
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("score_change", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("scoring_runs") as batch_op:
        batch_op.add_column(sa.Column("surging_us", sa.BigInteger(), nullable=True))
    # The dashboard: account lists by score, by name and by 7-day change, the funnel, this
    # week's intent.
    op.create_index("ix_accounts_workspace_trend", "accounts", ["workspace_id", "score_change", "rtp_aid"])
    op.create_index("ix_accounts_workspace_score", "accounts", ["workspace_id", "account_score", "rtp_aid"])
    op.create_index("ix_accounts_workspace_name", "accounts", ["workspace_id", sa.text("lower(name)"), "rtp_aid"])
    op.create_index(
        "ix_accounts_workspace_stage", "accounts", ["workspace_id", "journey_stage", "account_score", "rtp_aid"]
    )
    op.create_index("ix_signals_workspace_day", "signals", ["workspace_id", "occurred_day", "domain"])
    op.create_table(
        "surging_accounts",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("this_week", sa.Integer(), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        _references("surging_accounts", "workspace_id", "workspaces"),
        _references("surging_accounts", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("workspace_id", "position", name=op.f("pk_surging_accounts")),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("surging_accounts")
    op.drop_index("ix_signals_workspace_day", table_name="signals")
    op.drop_index("ix_accounts_workspace_stage", table_name="accounts")
    op.drop_index("ix_accounts_workspace_name", table_name="accounts")
    op.drop_index("ix_accounts_workspace_score", table_name="accounts")
    op.drop_index("ix_accounts_workspace_trend", table_name="accounts")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("score_change")
    with op.batch_alter_table("scoring_runs") as batch_op:
        batch_op.drop_column("surging_us")
    op.drop_table("daily_stage_counts")
    op.drop_table("daily_scores")
    op.drop_table("stage_changes")
