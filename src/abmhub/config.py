"""Settings, read once at the edge (CLI flags and ABMHUB_* variables) and passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./abmhub.db"
MAX_BODY_BYTES = 5 * 1024 * 1024


def database_url_from_env(explicit: str | None = None) -> str:
    """The database URL: an explicit flag wins, then ABMHUB_DATABASE_URL, then the embedded default."""
    return explicit or os.environ.get("ABMHUB_DATABASE_URL") or DEFAULT_DATABASE_URL


def session_secret_from_env() -> str | None:
    """ABMHUB_SESSION_SECRET, the key that signs dashboard sessions; None: one kept in the database."""
    return os.environ.get("ABMHUB_SESSION_SECRET") or None


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = MAX_BODY_BYTES
    # Requests per second per API key (burst of the same size); None: no limit (§5.1).
    rate_limit: float | None = None
    # Signs the dashboard's session cookies; None: a random one stored in the database, which
    # every server process on that database shares (tenancy/secrets.py).
    session_secret: str | None = None
    # `--webhook-allow-private-targets`: webhook URLs may point at loopback or private
    # addresses (a receiver on the same machine or network); off, they are refused (SSRF).
    webhook_allow_private_targets: bool = False
    # Peers whose X-Forwarded-For is believed (the website collector's visitor address), as
    # uvicorn's --forwarded-allow-ips: addresses or CIDRs, "*" for any.
    forwarded_allow_ips: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    # Days raw website events are kept (their signals stay).
    website_retention_days: int = 90
