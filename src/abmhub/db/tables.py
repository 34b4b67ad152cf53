"""The schema, as SQLAlchemy Core tables. Alembic migrations under db/migrations create it.

Times are stored as BIGINT microseconds since the Unix epoch (UTC) on both databases: one
representation, exact ordering, no time-zone conversions between drivers.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
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
    # Overrides of the scoring model's defaults (scoring/settings.py); NULL = all defaults.
    Column("scoring_settings", Json, nullable=True),
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
    # The overall score against 7 days before (history, §7), kept by the scoring job for the
    # dashboard's "biggest movers" order; not a change of the account (no `change_us`).
    Column("score_change", Integer, nullable=False, server_default=text("0")),
    # Set by every write that changes a scoring input of the account; cleared by the scoring job.
    Column("score_dirty", Boolean, nullable=False, server_default=text("true")),
    # When the scoring job last computed this account (GET /accounts/:rtp_aid/score computedAt).
    Column("scored_us", BigInteger, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    # Stamp of the last change (sync clock): rtp_last_account_date and the delta-sync filter.
    Column("change_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "rtp_aid"),
    UniqueConstraint("workspace_id", "domain"),
    UniqueConstraint("workspace_id", "external_id"),
    Index("ix_accounts_workspace_change", "workspace_id", "change_us"),
)
# The dashboard's account lists (migration 0007): keyset pages by score, by name and by 7-day
# change, each made unique by rtp_aid, and a stage's accounts by score (or counted).
Index("ix_accounts_workspace_score", accounts.c.workspace_id, accounts.c.account_score, accounts.c.rtp_aid)
Index("ix_accounts_workspace_name", accounts.c.workspace_id, func.lower(accounts.c.name), accounts.c.rtp_aid)
Index(
    "ix_accounts_workspace_stage",
    accounts.c.workspace_id,
    accounts.c.journey_stage,
    accounts.c.account_score,
    accounts.c.rtp_aid,
)
Index("ix_accounts_workspace_trend", accounts.c.workspace_id, accounts.c.score_change, accounts.c.rtp_aid)
# The scoring job's work list, in its order: only the dirty accounts are in it (migration 0006).
Index(
    "ix_accounts_dirty_domain",
    accounts.c.workspace_id,
    accounts.c.domain,
    sqlite_where=accounts.c.score_dirty.is_(True),
    postgresql_where=accounts.c.score_dirty.is_(True),
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

# --- deals and pipelines -------------------------------------------------------------------

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("pipeline_id", String(500), nullable=False),
    Column("label", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "pipeline_id"),
)

pipeline_stages = Table(
    "pipeline_stages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline_pk", ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
    Column("stage_id", String(500), nullable=False),
    Column("label", Text, nullable=False),
    # The journey stage a deal in this stage gives its accounts: Opportunity, Customer, or
    # NULL for a lost stage (counts for nothing).
    Column("journey_stage", String(20), nullable=True),
    Column("position", Integer, nullable=False),
    UniqueConstraint("pipeline_pk", "stage_id"),
)

deals = Table(
    "deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("external_deal_id", String(500), nullable=False),
    Column("name", Text, nullable=False),
    Column("amount", Float, nullable=True),
    Column("currency", String(16), nullable=True),
    Column("stage_id", String(500), nullable=True),
    Column("stage_label", Text, nullable=True),
    Column("pipeline_id", String(500), nullable=True),
    Column("pipeline_label", Text, nullable=True),
    Column("start_us", BigInteger, nullable=True),
    Column("closed_us", BigInteger, nullable=True),
    Column("owner_name", Text, nullable=True),
    Column("owner_email", String(320), nullable=True),
    Column("owner_id", String(500), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("change_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "external_deal_id"),
    Index("ix_deals_workspace_change", "workspace_id", "change_us"),
)

deal_accounts = Table(
    "deal_accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("deal_id", ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    # The association as pushed (domain normalised; NULL when absent or not a domain).
    Column("domain", String(253), nullable=True),
    Column("external_id", String(500), nullable=True),
    Column("name", Text, nullable=True),
    Column("given_domain", Text, nullable=True),
    # The account it resolved to; NULL until a matching account exists.
    Column("account_id", ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    Index("ix_deal_accounts_deal", "deal_id", "position"),
    Index("ix_deal_accounts_account", "account_id"),
    Index("ix_deal_accounts_domain", "workspace_id", "domain"),
    Index("ix_deal_accounts_external_id", "workspace_id", "external_id"),
    Index("ix_deal_accounts_name", "workspace_id", "name"),
)

deal_stage_history = Table(
    "deal_stage_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deal_id", ForeignKey("deals.id", ondelete="CASCADE"), nullable=False),
    Column("stage_id", String(500), nullable=False),
    Column("stage_label", Text, nullable=True),
    Column("pipeline_id", String(500), nullable=True),
    Column("entered_us", BigInteger, nullable=False),
    Index("ix_deal_stage_history_deal", "deal_id", "entered_us"),
)

# --- contacts and sales activities -----------------------------------------------------------

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("uuid", String(36), nullable=False, unique=True),
    # Lowercased: the dedup key within the workspace.
    Column("email", String(320), nullable=False),
    Column("external_contact_id", String(500), nullable=True),
    Column("name", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("department", Text, nullable=True),
    Column("seniority", Text, nullable=True),
    Column("phone", Text, nullable=True),
    Column("linkedin_url", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("change_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "email"),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("external_activity_id", String(500), nullable=True),
    Column("kind", String(16), nullable=False),  # call | email (Surface R) | manual (Surface V)
    Column("occurred_us", BigInteger, nullable=False),
    Column("domain", String(253), nullable=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    Column("account_name", Text, nullable=True),
    Column("subject", Text, nullable=True),
    Column("owner_email", String(320), nullable=True),
    Column("owner_name", Text, nullable=True),
    Column("owner_id", String(500), nullable=True),
    Column("from_name", Text, nullable=True),
    Column("from_email", Text, nullable=True),
    Column("call_title", Text, nullable=True),
    Column("duration_minutes", Float, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("direction", String(16), nullable=True),
    Column("open_count", Float, nullable=True),
    Column("click_count", Float, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("change_us", BigInteger, nullable=False),
    # Manual activities (Surface V, migration 0005): logged by a user, against an account,
    # a deal and contacts named by UUID; they have no domain and are never re-linked.
    Column("description", Text, nullable=True),
    Column("category", String(32), nullable=True),
    Column("deal_id", ForeignKey("deals.id", ondelete="SET NULL"), nullable=True),
    Column("owner_user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("sequence_id", String(36), nullable=True),
    Column("pipeline_select_list_value_id", String(36), nullable=True),
    UniqueConstraint("workspace_id", "external_activity_id"),
    Index("ix_activities_workspace_change", "workspace_id", "change_us"),
    Index("ix_activities_workspace_domain", "workspace_id", "domain"),
    # The timelines' keyset order (newest first by activity time, then by UUID; §6.24).
    Index("ix_activities_account_timeline", "account_id", "occurred_us", "uuid"),
)
# Activities waiting for their account (added with the scoring schema, migration 0003).
Index(
    "ix_activities_unlinked",
    activities.c.workspace_id,
    activities.c.domain,
    sqlite_where=activities.c.account_id.is_(None),
    postgresql_where=activities.c.account_id.is_(None),
)
Index(
    "ix_activities_deal_timeline",
    activities.c.deal_id,
    activities.c.occurred_us,
    activities.c.uuid,
    sqlite_where=activities.c.deal_id.is_not(None),
    postgresql_where=activities.c.deal_id.is_not(None),
)
Index(
    "ix_deal_accounts_pending",
    deal_accounts.c.workspace_id,
    sqlite_where=deal_accounts.c.account_id.is_(None),
    postgresql_where=deal_accounts.c.account_id.is_(None),
)

activity_contacts = Table(
    "activity_contacts",
    metadata,
    Column("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    # The activity's timeline key, copied (an activity never changes its time or UUID) so
    # that a contact's timeline pages on an index in timeline order, like an account's
    # (migration 0005). Always written; the defaults only let SQLite add the columns.
    Column("occurred_us", BigInteger, nullable=False, server_default=text("0")),
    Column("activity_uuid", String(36), nullable=False, server_default=text("''")),
    Index("ix_activity_contacts_contact", "contact_id"),
    Index("ix_activity_contacts_timeline", "contact_id", "occurred_us", "activity_uuid", "activity_id"),
)

# --- intent signals and scoring ------------------------------------------------------------

signals = Table(
    "signals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(16), nullable=False),  # website | g2 | bombora | linkedin_ads
    Column("type", String(32), nullable=False),
    # Normalised; signals join accounts by domain, so a signal for a domain with no account
    # yet counts as soon as the account exists.
    Column("domain", String(253), nullable=False),
    Column("occurred_us", BigInteger, nullable=False),
    # Days since 1970-01-01 (UTC) of occurred_us: decay is applied per whole day.
    Column("occurred_day", Integer, nullable=False),
    Column("external_signal_id", String(500), nullable=True),
    Column("weight", Float, nullable=False, server_default=text("1")),
    Column("count", Integer, nullable=False, server_default=text("1")),
    Column("score", Integer, nullable=True),  # bombora surge score 0-100
    Column("topic", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "external_signal_id"),
    # Covers the scoring query (migration 0004): the signals of a domain are read from the
    # index alone, in one range, instead of one scattered table-row fetch per signal (signals
    # arrive in time order, not grouped by domain).
    Index(
        "ix_signals_scoring",
        "workspace_id",
        "domain",
        "source",
        "occurred_day",
        "type",
        "weight",
        "count",
        "score",
    ),
    # The week's intent against the weeks before it (the dashboard's "surging", migration 0007).
    Index("ix_signals_workspace_day", "workspace_id", "occurred_day", "domain"),
)

scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("last_run_us", BigInteger, nullable=False),
    # The UTC day (days since the epoch) of the last full recompute (decay is daily).
    Column("last_full_day", Integer, nullable=False),
    Column("accounts_scored", Integer, nullable=False),
    Column("accounts_changed", Integer, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    # When the run's clock last kept the workspace's surging accounts (`surging_accounts`).
    Column("surging_us", BigInteger, nullable=True),
)

# At most one scoring run at a time per database, however many processes (SQLite lease;
# PostgreSQL uses an advisory lock and this row only for reporting).
scoring_lease = Table(
    "scoring_lease",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("holder", String(200), nullable=True),
    Column("expires_us", BigInteger, nullable=False),
)

# --- history (contract §7) -----------------------------------------------------------------

# Every journey-stage change the scoring job makes; `from_stage` is '' for an account's first.
stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("from_stage", String(20), nullable=False),
    Column("to_stage", String(20), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    # "first" (from ''), "progressed" (to a later stage) or "regressed", fixed when written.
    Column("direction", String(12), nullable=False),
    # An account's changes, oldest first (its history; the day it entered its previous stage).
    Index("ix_stage_changes_account", "account_id", "at_us", "id"),
    # A workspace's changes, newest first (GET /accounts/stage-changes keyset pages) ...
    Index("ix_stage_changes_workspace", "workspace_id", "at_us", "id"),
    # ... and those of one direction: a week after a million first stages, the week's moves
    # are found without walking past the first stages.
    Index("ix_stage_changes_direction", "workspace_id", "direction", "at_us", "id"),
)

# Per account and UTC day, the day's last scores; a day on which nothing changed has no row
# (readers carry the previous day forward).
daily_scores = Table(
    "daily_scores",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Integer, primary_key=True),  # days since 1970-01-01, UTC
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("account_score", Integer, nullable=False),
    Column("journey_stage", String(20), nullable=False),
    Column("advertising_score", Integer, nullable=False),
    Column("website_score", Integer, nullable=False),
    Column("g2_score", Integer, nullable=False),
    Column("bombora_score", Integer, nullable=False),
)

# Per workspace and UTC day, how many accounts were in each journey stage at the end of the
# day's last scoring run: the funnel of a past day without reading every account's history.
daily_stage_counts = Table(
    "daily_stage_counts",
    metadata,
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("journey_stage", String(20), primary_key=True),
    Column("accounts", Integer, nullable=False),
    Column("score_sum", BigInteger, nullable=False),  # of their overall scores (the average)
)

# The accounts whose intent surged at the last scoring run that changed anything, best first
# (the dashboard's "surging": one aggregate over four weeks of signals per run, not per page).
surging_accounts = Table(
    "surging_accounts",
    metadata,
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("this_week", Integer, nullable=False),
    Column("before", Integer, nullable=False),  # signals in the 21 days before this week
)

# Secrets the server generates once and every process shares (the dashboard's session key).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)


# --- webhooks (contract §8) ---------------------------------------------------------------------

# A workspace's subscriptions. The secret signs deliveries, so it is kept as issued (a hash
# could not sign); it is shown once, at creation, and never logged.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(24), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("events", Json, nullable=False),  # event types, as a JSON array
    Column("description", Text, nullable=True),
    Column("format", String(8), nullable=False),
    Column("min_score_delta", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # Since when every attempt has failed (NULL after a success): 3 days of it disable it.
    Column("failing_since_us", BigInteger, nullable=True),
    # After a failed attempt, nothing more is sent before the failed delivery's retry: a dead
    # receiver costs one attempt per wait, not one per pending event.
    Column("backoff_until_us", BigInteger, nullable=True),
    # One delivering worker per subscription at a time, in any process: it holds the lease
    # until then (renewed at each attempt); a killed worker's lease simply runs out.
    Column("lease_until_us", BigInteger, nullable=True),
    Column("lease_token", String(32), nullable=True),
    Column("claimed_us", BigInteger, nullable=False, server_default=text("0")),  # round robin
    # The outbox position: events of the workspace up to this id have been turned into this
    # subscription's deliveries (by the worker that held its lease).
    Column("cursor_event_pk", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("status IN ('active', 'paused', 'disabled')", name="ck_webhooks_status"),
    CheckConstraint("format IN ('json', 'slack')", name="ck_webhooks_format"),
    CheckConstraint("min_score_delta BETWEEN 1 AND 100", name="ck_webhooks_min_score_delta"),
    Index("ix_webhooks_workspace", "workspace_id", "id"),
)

# The outbox: the events of one transaction are written in it as ONE row (a JSON array of
# `{id, type, data, scoreDelta}`, zlib-compressed: webhooks/outbox.py), when an active or paused
# subscription of the workspace wants them. Each subscription's worker turns the rows past its cursor into deliveries
# (webhooks/delivery.py). One row per transaction, not per event: a push of 100 accounts with
# subscriptions then costs one more row, not 100 (measured: 0.80 of a push without, per-event).
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("events", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # Events for one subscription only (a test ping), queued with their delivery.
    Column("webhook_pk", ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=True),
    Index("ix_webhook_events_workspace", "workspace_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_pk", ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    # The event: its outbox row and place in it, and (for reading lists) its id and type.
    Column("event_pk", ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("delivery_id", String(24), nullable=False, unique=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_us", BigInteger, nullable=True),  # NULL once it succeeded or failed
    Column("expires_us", BigInteger, nullable=False),  # no retry after it: 24 h after queueing
    Column("created_us", BigInteger, nullable=False),
    Column("delivered_us", BigInteger, nullable=True),
    UniqueConstraint("webhook_pk", "event_pk", "position"),  # an event once per subscription
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_webhook_deliveries_status"),
    Index("ix_webhook_deliveries_webhook", "webhook_pk", "id"),  # GET .../deliveries, newest first
    Index("ix_webhook_deliveries_event", "event_pk"),
)
# What is due, per subscription and overall (the workers' idle poll): pending ones only.
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.webhook_pk,
    webhook_deliveries.c.next_attempt_us,
    sqlite_where=text("status = 'pending'"),
    postgresql_where=text("status = 'pending'"),
)
Index(
    "ix_webhook_deliveries_pending",
    webhook_deliveries.c.next_attempt_us,
    sqlite_where=text("status = 'pending'"),
    postgresql_where=text("status = 'pending'"),
)


# --- website visits (contract §9) ---------------------------------------------------------------

sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("site_id", String(24), nullable=False, unique=True),
    # Public (it is in every page's HTML): it names the site, it grants nothing but sending.
    Column("site_key", String(32), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("hostnames", Json, nullable=False),
    Column("page_rules", Json, nullable=True),  # NULL: the built-in rules
    # Events up to this id are in the website signals (aggregate.py recomputes their days).
    Column("aggregated_event_pk", BigInteger, nullable=False, server_default=text("0")),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_sites_workspace", "workspace_id", "id"),
)

# Raw visit events, kept 90 days (configurable). Never an IP address: `visitor` is a keyed
# hash of (site, IP, user agent) under a salt that changes every UTC day.
website_events = Table(
    "website_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("site_pk", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("day", Integer, nullable=False),  # UTC days since 1970-01-01
    Column("occurred_us", BigInteger, nullable=False),
    Column("kind", String(12), nullable=False),  # pageview | engagement | identify
    Column("visitor", String(32), nullable=False),
    Column("path", Text, nullable=True),
    Column("category", String(40), nullable=True),
    Column("weight", Float, nullable=True),
    Column("referrer_host", String(253), nullable=True),
    Column("engaged_ms", Integer, nullable=True),
    Column("scroll", Integer, nullable=True),
    # The account's domain as resolved when the event came in, and how.
    Column("domain", String(253), nullable=True),
    Column("matched_by", String(10), nullable=True),  # identify | ipRange | network
    # The owner of the visitor's network (iptoasn), when the IP ranges did not match: matched to
    # an account by name when the events are aggregated.
    Column("network", Text, nullable=True),
    Index("ix_website_events_site_day", "site_pk", "day", "id"),
    Index("ix_website_events_workspace_day", "workspace_id", "day"),
)

# Who a visitor said they were (identify) on a day: later events of the same visitor key that
# day belong to that company. Deleted with the day's salt (the key means nothing after it).
website_identities = Table(
    "website_identities",
    metadata,
    Column("site_pk", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("visitor", String(32), primary_key=True),
    Column("domain", String(253), nullable=False),
)

# Counters of what /collect received and dropped, per site and day (GET /sites/:id/stats).
website_counters = Table(
    "website_counters",
    metadata,
    Column("site_pk", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("counter", String(20), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# A workspace's IP ranges (`PUT /ip-ranges`): a range's addresses belong to the domain's company.
ip_ranges = Table(
    "ip_ranges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("domain", String(253), nullable=False),
    Index("ix_ip_ranges_workspace", "workspace_id", "id"),
)

# The optional network-owner dataset (`abmhub ip-data import`, iptoasn): server-wide.
ip_networks = Table(
    "ip_networks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    # Range bounds as fixed-width hex (32 digits): ordered as text the way the addresses are.
    Column("start_hex", String(32), nullable=False),
    Column("end_hex", String(32), nullable=False),
    Column("asn", BigInteger, nullable=False),
    Column("country", String(8), nullable=True),
    Column("owner", Text, nullable=False),
    Index("ix_ip_networks_start", "start_hex"),
)


# --- predictions (contract §10) ------------------------------------------------------------------

# A model learned from a workspace's own history, with its backtest report. At most one is
# active per workspace (the partial unique index); activating another is the rollback.
prediction_models = Table(
    "prediction_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("model_id", String(24), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("false")),
    Column("horizon_days", Integer, nullable=False),
    Column("as_of_us", BigInteger, nullable=False),  # the training data's cut
    Column("beats_hand_set", Boolean, nullable=False),
    # SHA-256 of the training rows (features and labels): same data, same fingerprint.
    Column("fingerprint", String(64), nullable=False),
    Column("parameters", Json, nullable=False),  # features, scaling, coefficients, calibration, bands
    Column("report", Json, nullable=False),  # trainedOn, backtest (with intervals), drift
    Index("ix_prediction_models_workspace", "workspace_id", "id"),
    Index(
        "ux_prediction_models_active",
        "workspace_id",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
)

# The active model's prediction per account, refreshed by every scoring run. `probability` and
# `band` are NULL for an account with an open or won deal (it has its opportunity).
account_predictions = Table(
    "account_predictions",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("model_pk", ForeignKey("prediction_models.id", ondelete="CASCADE"), nullable=False),
    Column("as_of_us", BigInteger, nullable=False),
    Column("probability", Float, nullable=True),
    Column("probability_30d", Float, nullable=True),
    Column("band", String(1), nullable=True),
    Column("factors", Json, nullable=True),  # the top 5 [feature, value, contribution]
    CheckConstraint("band IN ('A', 'B', 'C', 'D')", name="ck_account_predictions_band"),
    CheckConstraint("probability BETWEEN 0 AND 1", name="ck_account_predictions_probability"),
    # The overview's "likely to open an opportunity" list and the segment rules' `probability`.
    Index("ix_account_predictions_workspace_probability", "workspace_id", "probability"),
    # The segment refresh's "predicted since the last run" (scoring/rules.py).
    Index("ix_account_predictions_workspace_as_of", "workspace_id", "as_of_us"),
)
