"""predictions: models learned from a workspace's history and their per-account predictions (§10)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _references(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "prediction_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=24), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("as_of_us", sa.BigInteger(), nullable=False),
        sa.Column("beats_hand_set", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("report", JSON, nullable=False),
        _references("prediction_models", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_models")),
        sa.UniqueConstraint("model_id", name=op.f("uq_prediction_models_model_id")),
    )
    op.create_index("ix_prediction_models_workspace", "prediction_models", ["workspace_id", "id"])
    op.create_index(
        "ux_prediction_models_active",
        "prediction_models",
        ["workspace_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "account_predictions",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("as_of_us", sa.BigInteger(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("probability_30d", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=1), nullable=True),
        sa.Column("factors", JSON, nullable=True),
        sa.CheckConstraint("band IN ('A', 'B', 'C', 'D')", name="ck_account_predictions_band"),
        sa.CheckConstraint("probability BETWEEN 0 AND 1", name="ck_account_predictions_probability"),
        _references("account_predictions", "account_id", "accounts"),
        _references("account_predictions", "workspace_id", "workspaces"),
        _references("account_predictions", "model_pk", "prediction_models"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_predictions")),
    )
    op.create_index(
        "ix_account_predictions_workspace_probability", "account_predictions", ["workspace_id", "probability"]
    )
    op.create_index("ix_account_predictions_workspace_as_of", "account_predictions", ["workspace_id", "as_of_us"])


def downgrade() -> None:
    op.drop_table("account_predictions")
    op.drop_table("prediction_models")
