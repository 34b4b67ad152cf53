"""The schema, as SQLAlchemy Core tables. Alembic migrations under db/migrations create it.

Times are stored as BIGINT microseconds since the Unix epoch (UTC) on both databases: one
representation, exact ordering, no time-zone conversions between drivers.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    # The sync clock (db/engine.py: tick_clock): last stamp handed to a write of this workspace.
    Column("clock_us", BigInteger, nullable=False, server_default=text("0")),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "email"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    # SHA-256 of the key, hex. The key itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
    # At most one active key per user, enforced by the database.
    Index(
        "uq_api_keys_active_user",
        "user_id",
        unique=True,
        sqlite_where=text("revoked_us IS NULL"),
        postgresql_where=text("revoked_us IS NULL"),
    ),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("rtp_aid", String(24), nullable=False),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("external_id", String(500), nullable=True),
    Column("name", Text, nullable=False),
    Column("domain", String(253), nullable=False),
    Column("short_name", Text, nullable=True),
    Column("linkedin_url", Text, nullable=True),
    Column("tags", Json, nullable=False),
    # Values by custom-field key. Values of deactivated fields stay here, hidden.
    Column("custom_fields", Json, nullable=False),
    Column("account_score", Integer, nullable=False, server_default=text("0")),
    Column("journey_stage", String(20), nullable=False, server_default=text("''")),
    Column("advertising_score", Integer, nullable=False, server_default=text("0")),
    Column("website_score", Integer, nullable=False, server_default=text("0")),
    Column("g2_score", Integer, nullable=False, server_default=text("0")),
    Column("bombora_score", Integer, nullable=False, server_default=text("0")),
    Column("created_us", BigInteger, nullable=False),
    # Stamp of the last change (sync clock): rtp_last_account_date and the delta-sync filter.
    Column("change_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "rtp_aid"),
    UniqueConstraint("workspace_id", "domain"),
    UniqueConstraint("workspace_id", "external_id"),
    Index("ix_accounts_workspace_change", "workspace_id", "change_us"),
)

custom_fields = Table(
    "custom_fields",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(600), nullable=False),
    Column("label", Text, nullable=False),
    Column("label_type", String(32), nullable=False),
    Column("description", Text, nullable=True),
    Column("options", Json, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "key"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("segment_id", String(24), nullable=False),
    Column("name", Text, nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rule", Json, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("change_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "segment_id"),
    Index("ix_segments_workspace_change", "workspace_id", "change_us"),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("added_us", BigInteger, nullable=False),
    Index("ix_segment_members_account", "account_id"),
)
