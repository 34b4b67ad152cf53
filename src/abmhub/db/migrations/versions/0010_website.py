"""website visits: sites, raw visit events, identities, counters, IP ranges, network owners (§9)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _references(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=24), nullable=False),
        sa.Column("site_key", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("hostnames", JSON, nullable=False),
        sa.Column("page_rules", JSON, nullable=True),
        sa.Column("aggregated_event_pk", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        _references("sites", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("site_id", name=op.f("uq_sites_site_id")),
        sa.UniqueConstraint("site_key", name=op.f("uq_sites_site_key")),
    )
    op.create_index("ix_sites_workspace", "sites", ["workspace_id", "id"])
    op.create_table(
        "website_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("site_pk", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("referrer_host", sa.String(length=253), nullable=True),
        sa.Column("engaged_ms", sa.Integer(), nullable=True),
        sa.Column("scroll", sa.Integer(), nullable=True),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("matched_by", sa.String(length=10), nullable=True),
        sa.Column("network", sa.Text(), nullable=True),
        _references("website_events", "workspace_id", "workspaces"),
        _references("website_events", "site_pk", "sites"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_website_events")),
    )
    op.create_index("ix_website_events_site_day", "website_events", ["site_pk", "day", "id"])
    op.create_index("ix_website_events_workspace_day", "website_events", ["workspace_id", "day"])
    op.create_table(
        "website_identities",
        sa.Column("site_pk", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        _references("website_identities", "site_pk", "sites"),
        sa.PrimaryKeyConstraint("site_pk", "day", "visitor", name=op.f("pk_website_identities")),
    )
    op.create_table(
        "website_counters",
        sa.Column("site_pk", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("counter", sa.String(length=20), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        _references("website_counters", "site_pk", "sites"),
        sa.PrimaryKeyConstraint("site_pk", "day", "counter", name=op.f("pk_website_counters")),
    )
    op.create_table(
        "ip_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        _references("ip_ranges", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_ranges")),
    )
    op.create_index("ix_ip_ranges_workspace", "ip_ranges", ["workspace_id", "id"])
    op.create_table(
        "ip_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start_hex", sa.String(length=32), nullable=False),
        sa.Column("end_hex", sa.String(length=32), nullable=False),
        sa.Column("asn", sa.BigInteger(), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_networks")),
    )
    op.create_index("ix_ip_networks_start", "ip_networks", ["start_hex"])


def downgrade() -> None:
    for table in ("ip_networks", "ip_ranges", "website_counters", "website_identities", "website_events", "sites"):
        op.drop_table(table)
