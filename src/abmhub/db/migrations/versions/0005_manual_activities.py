"""manual activities (Surface V) and the activity timelines' keyset indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:00:00

Manual activities live in `activities` (kind 'manual') next to the calls and emails, so one
timeline holds both surfaces' history. The timelines page newest first by (occurred_us,
uuid), per account, deal and contact; `activity_contacts` copies the activity's time and
UUID so that a contact's timeline has an index in that order too.

SQLite cannot add a foreign key with ALTER TABLE ... ADD CONSTRAINT, and Alembic's batch
mode would rebuild `activities` — dropping the old table cascades into `activity_contacts`
— so the two reference columns are added with inline REFERENCES clauses there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REFERENCES = (
    # column, referenced table, constraint name (tables.py naming convention)
    ("deal_id", "deals", "fk_activities_deal_id_deals"),
    ("owner_user_id", "users", "fk_activities_owner_user_id_users"),
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("activities", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("activities", sa.Column("category", sa.String(length=32), nullable=True))
    for column, target, name in _REFERENCES:
        if sqlite:
            op.execute(
                f"ALTER TABLE activities ADD COLUMN {column} INTEGER "
                f"CONSTRAINT {name} REFERENCES {target} (id) ON DELETE SET NULL"
            )
        else:
            op.add_column("activities", sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(name, "activities", target, [column], ["id"], ondelete="SET NULL")
    op.add_column("activities", sa.Column("sequence_id", sa.String(length=36), nullable=True))
    op.add_column("activities", sa.Column("pipeline_select_list_value_id", sa.String(length=36), nullable=True))
    op.create_index("ix_activities_account_timeline", "activities", ["account_id", "occurred_us", "uuid"])
    op.create_index(
        "ix_activities_deal_timeline",
        "activities",
        ["deal_id", "occurred_us", "uuid"],
        sqlite_where=sa.text("deal_id IS NOT NULL"),
        postgresql_where=sa.text("deal_id IS NOT NULL"),
    )

    # The activity's timeline key on its contact links (always written from now on; the
    # server defaults only let SQLite add NOT NULL columns to existing rows).
    op.add_column(
        "activity_contacts",
        sa.Column("occurred_us", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "activity_contacts",
        sa.Column("activity_uuid", sa.String(length=36), server_default=sa.text("''"), nullable=False),
    )
    op.execute(
        "UPDATE activity_contacts SET "
        "occurred_us = (SELECT activities.occurred_us FROM activities WHERE activities.id = activity_contacts.activity_id), "
        "activity_uuid = (SELECT activities.uuid FROM activities WHERE activities.id = activity_contacts.activity_id)"
    )
    op.create_index(
        "ix_activity_contacts_timeline",
        "activity_contacts",
        ["contact_id", "occurred_us", "activity_uuid", "activity_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_activity_contacts_timeline", table_name="activity_contacts")
    op.drop_index("ix_activities_deal_timeline", table_name="activities")
    op.drop_index("ix_activities_account_timeline", table_name="activities")
    # SQLite (3.35+) drops a plain column in place; the two reference columns and the
    # NOT NULL copy would need a table rebuild there, so a downgrade is PostgreSQL-only.
    if op.get_bind().dialect.name == "sqlite":
        raise NotImplementedError("downgrading 0005 on SQLite is not supported")
    op.drop_column("activity_contacts", "activity_uuid")
    op.drop_column("activity_contacts", "occurred_us")
    for column, _, name in _REFERENCES:
        op.drop_constraint(name, "activities", type_="foreignkey")
        op.drop_column("activities", column)
    for column in ("pipeline_select_list_value_id", "sequence_id", "category", "description"):
        op.drop_column("activities", column)
