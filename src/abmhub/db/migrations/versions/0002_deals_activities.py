"""deals, pipelines, contacts, sales activities

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:08:08.682640
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("external_contact_id", sa.String(length=500), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("seniority", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("linkedin_url", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("change_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_contacts_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("uuid", name=op.f("uq_contacts_uuid")),
        sa.UniqueConstraint("workspace_id", "email", name=op.f("uq_contacts_workspace_id_email")),
    )
    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("external_deal_id", sa.String(length=500), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("stage_id", sa.String(length=500), nullable=True),
        sa.Column("stage_label", sa.Text(), nullable=True),
        sa.Column("pipeline_id", sa.String(length=500), nullable=True),
        sa.Column("pipeline_label", sa.Text(), nullable=True),
        sa.Column("start_us", sa.BigInteger(), nullable=True),
        sa.Column("closed_us", sa.BigInteger(), nullable=True),
        sa.Column("owner_name", sa.Text(), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("owner_id", sa.String(length=500), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("change_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_deals_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("uuid", name=op.f("uq_deals_uuid")),
        sa.UniqueConstraint("workspace_id", "external_deal_id", name=op.f("uq_deals_workspace_id_external_deal_id")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index("ix_deals_workspace_change", ["workspace_id", "change_us"], unique=False)

    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.String(length=500), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_pipelines_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("workspace_id", "pipeline_id", name=op.f("uq_pipelines_workspace_id_pipeline_id")),
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("external_activity_id", sa.String(length=500), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("account_name", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("owner_name", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.String(length=500), nullable=True),
        sa.Column("from_name", sa.Text(), nullable=True),
        sa.Column("from_email", sa.Text(), nullable=True),
        sa.Column("call_title", sa.Text(), nullable=True),
        sa.Column("duration_minutes", sa.Float(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("open_count", sa.Float(), nullable=True),
        sa.Column("click_count", sa.Float(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("change_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_activities_account_id_accounts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_activities_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sa.UniqueConstraint("uuid", name=op.f("uq_activities_uuid")),
        sa.UniqueConstraint(
            "workspace_id", "external_activity_id", name=op.f("uq_activities_workspace_id_external_activity_id")
        ),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index("ix_activities_account_time", ["account_id", "occurred_us", "id"], unique=False)
        batch_op.create_index("ix_activities_workspace_change", ["workspace_id", "change_us"], unique=False)
        batch_op.create_index("ix_activities_workspace_domain", ["workspace_id", "domain"], unique=False)

    op.create_table(
        "deal_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("external_id", sa.String(length=500), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("given_domain", sa.Text(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_deal_accounts_account_id_accounts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_deal_accounts_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_deal_accounts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_accounts")),
    )
    with op.batch_alter_table("deal_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_deal_accounts_account", ["account_id"], unique=False)
        batch_op.create_index("ix_deal_accounts_deal", ["deal_id", "position"], unique=False)
        batch_op.create_index("ix_deal_accounts_domain", ["workspace_id", "domain"], unique=False)
        batch_op.create_index("ix_deal_accounts_external_id", ["workspace_id", "external_id"], unique=False)
        batch_op.create_index("ix_deal_accounts_name", ["workspace_id", "name"], unique=False)

    op.create_table(
        "deal_stage_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.String(length=500), nullable=False),
        sa.Column("stage_label", sa.Text(), nullable=True),
        sa.Column("pipeline_id", sa.String(length=500), nullable=True),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_deal_stage_history_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_stage_history")),
    )
    with op.batch_alter_table("deal_stage_history", schema=None) as batch_op:
        batch_op.create_index("ix_deal_stage_history_deal", ["deal_id", "entered_us"], unique=False)

    op.create_table(
        "pipeline_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_pk", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.String(length=500), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("journey_stage", sa.String(length=20), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_pk"], ["pipelines.id"], name=op.f("fk_pipeline_stages_pipeline_pk_pipelines"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_stages")),
        sa.UniqueConstraint("pipeline_pk", "stage_id", name=op.f("uq_pipeline_stages_pipeline_pk_stage_id")),
    )
    op.create_table(
        "activity_contacts",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_contacts_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_activity_contacts_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("activity_id", "contact_id", name=op.f("pk_activity_contacts")),
    )
    with op.batch_alter_table("activity_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_activity_contacts_contact", ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("activity_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_contacts_contact")

    op.drop_table("activity_contacts")
    op.drop_table("pipeline_stages")
    with op.batch_alter_table("deal_stage_history", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_stage_history_deal")

    op.drop_table("deal_stage_history")
    with op.batch_alter_table("deal_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_accounts_name")
        batch_op.drop_index("ix_deal_accounts_external_id")
        batch_op.drop_index("ix_deal_accounts_domain")
        batch_op.drop_index("ix_deal_accounts_deal")
        batch_op.drop_index("ix_deal_accounts_account")

    op.drop_table("deal_accounts")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_workspace_domain")
        batch_op.drop_index("ix_activities_workspace_change")
        batch_op.drop_index("ix_activities_account_time")

    op.drop_table("activities")
    op.drop_table("pipelines")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_workspace_change")

    op.drop_table("deals")
    op.drop_table("contacts")
