"""Intent signals: push them (contract §3.1, §6.21, §6.33).

A push is one transaction. Items are decided in memory in request order against the
externalSignalIds already stored (one query); the created signals are then written with
one batched INSERT, and the accounts they concern are marked for rescoring with one UPDATE,
however many items there are. The HTTP endpoint and the file importers share this entry
point, so an imported signal obeys exactly the rules of a pushed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abmhub.accounts.domains import normalize_domain
from abmhub.bulk import PushOutcome, outcome
from abmhub.db.engine import Database
from abmhub.db.queries import insert_dicts, stored_values
from abmhub.db.tables import signals
from abmhub.scoring import inputs as scoring_inputs
from abmhub.signals.schemas import SignalItem
from abmhub.timefmt import parse_iso8601

US_PER_DAY = 86_400_000_000


def already_exists(external_signal_id: str) -> str:
    return f"Signal with externalSignalId '{external_signal_id}' already exists"


def occurred_day(occurred_us: int) -> int:
    """The UTC day (days since 1970-01-01) of a time; floor division, so also right before 1970."""
    return occurred_us // US_PER_DAY


def push_signals(db: Database, *, workspace_id: int, items: Sequence[SignalItem]) -> PushOutcome:
    """Store signals, item by item in request order, in one transaction.

    Create-only and idempotent: an item whose externalSignalId is known (stored, or created
    by an earlier item of the same push) is skipped; an item whose domain cannot be
    normalised fails. Signals are kept whether or not an account has their domain yet
    (scoring joins by domain); the accounts that do have one of the new signals' domains
    are marked for the scoring job in the same transaction.
    """
    with db.write(workspace_id) as tx:
        conn = tx.conn
        seen = stored_values(
            conn,
            signals.c.external_signal_id,
            workspace_id,
            {i.externalSignalId for i in items if i.externalSignalId},
        )
        results: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for item in items:
            result: dict[str, Any] = {}
            if item.externalSignalId is not None:
                result["externalSignalId"] = item.externalSignalId
            domain = normalize_domain(item.domain)
            result["domain"] = domain if domain is not None else item.domain
            if item.externalSignalId is not None and item.externalSignalId in seen:
                result.update(status="skipped", reason=already_exists(item.externalSignalId))
            elif domain is None:
                result.update(status="failed", error=f"Invalid domain '{item.domain}'")
            else:
                if item.externalSignalId is not None:
                    seen.add(item.externalSignalId)
                rows.append(_signal_row(workspace_id, item, domain, tx.now_us))
                result["status"] = "created"
            results.append(result)
        if rows:
            insert_dicts(conn, signals, rows)
            # The scoring job rescores these accounts on its next run (`score_dirty`).
            scoring_inputs.mark_domains(conn, workspace_id, {row["domain"] for row in rows})
    return outcome(results, ("created", "skipped", "failed"))


def _signal_row(workspace_id: int, item: SignalItem, domain: str, now: int) -> dict[str, Any]:
    occurred_us = parse_iso8601(item.occurredAt)
    return {
        "workspace_id": workspace_id,
        "source": item.source,
        "type": item.type,
        "domain": domain,
        "occurred_us": occurred_us,
        "occurred_day": occurred_day(occurred_us),
        "external_signal_id": item.externalSignalId,
        "weight": 1.0 if item.weight is None else item.weight,
        "count": 1 if item.count is None else item.count,
        "score": item.score,
        "topic": item.topic,
        "url": item.url,
        "created_us": now,
    }
