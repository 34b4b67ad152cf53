"""Fill a workspace with the sandbox data set, through the same services the API uses.

Accounts, deals, activities and signals are pushed with the services' bulk pushes, so
every rule of the API applies (normalised domains, stage history, contact upserts, links,
scoring marks), in batches far larger than an HTTP request may carry: one transaction
per batch of `BATCH_ACCOUNTS` accounts' worth of each kind. Then the scoring job runs
over the workspace, so the accounts have scores and journey stages at once.

Seeding again with the same seed converges on the same data: accounts are upserted by
domain, deals by externalDealId, and activities and signals carry ids that make a repeat
a no-op (`failed: already exists` / `skipped`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.activities import service as activities_service
from abmhub.activities.schemas import ActivityItem
from abmhub.custom_fields import service as custom_fields_service
from abmhub.db.engine import Database
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import DealItem, PipelineDefinition
from abmhub.sandbox.data import CUSTOM_FIELDS, PIPELINES, AccountPlan, SandboxGenerator
from abmhub.scoring.service import ScoringBusy, run_scoring
from abmhub.signals import service as signals_service
from abmhub.signals.schemas import SignalItem
from abmhub.tenancy import service as tenancy

BATCH_ACCOUNTS = 1000
SCORING_ATTEMPTS = 10
SCORING_RETRY_SECONDS = 3.0


@dataclass(slots=True)
class SeedReport:
    workspace: str
    created_workspace: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    scored: int | None = None  # None: the scoring job was busy; scores come with its next run
    seconds: float = 0.0
    scoring_seconds: float = 0.0

    def add(self, kind: str, summary: dict[str, int]) -> None:
        into = self.counts.setdefault(kind, {})
        for status, n in summary.items():
            into[status] = into.get(status, 0) + n


Progress = Callable[[int, int, str], None]  # (accounts done, accounts in all, what is happening)


def _workspace(db: Database, name: str) -> tuple[int, bool]:
    for workspace in tenancy.list_workspaces(db):
        if workspace.name == name:
            return workspace.id, False
    return tenancy.create_workspace(db, name=name), True


def _define_fields(db: Database, workspace_id: int) -> None:
    active = {f.key for f in custom_fields_service.list_fields(db, workspace_id=workspace_id)}
    for definition in CUSTOM_FIELDS:
        key = definition["label"].replace(" ", "_").upper() + "_C"
        if key in active:
            continue
        custom_fields_service.create_field(
            db,
            workspace_id=workspace_id,
            label=definition["label"],
            label_type=definition["labelType"],
            description=definition.get("description"),
            options=definition.get("options", []),
        )


def _define_pipelines(db: Database, workspace_id: int) -> None:
    known = {p["pipelineId"] for p in deals_service.list_pipelines(db, workspace_id=workspace_id)}
    missing = [PipelineDefinition.model_validate(p) for p in PIPELINES if p["pipelineId"] not in known]
    if missing:
        deals_service.create_pipelines(db, workspace_id=workspace_id, definitions=missing)


def _write_batch(db: Database, workspace_id: int, plans: Sequence[AccountPlan], report: SeedReport) -> None:
    def items(model: type[Any], rows: list[dict[str, Any]]) -> list[Any]:
        return [model.model_validate(row) for row in rows]

    accounts = items(AccountItem, [p.account for p in plans])
    report.add(
        "accounts", accounts_service.push_accounts(db, workspace_id=workspace_id, items=accounts, upsert=True).summary
    )
    deals = items(DealItem, [d for p in plans for d in p.deals])
    if deals:
        report.add("deals", deals_service.push_deals(db, workspace_id=workspace_id, items=deals).summary)
    activities = items(ActivityItem, [a for p in plans for a in p.activities])
    if activities:
        report.add(
            "activities", activities_service.push_activities(db, workspace_id=workspace_id, items=activities).summary
        )
    signals = items(SignalItem, [s for p in plans for s in p.signals])
    if signals:
        report.add("signals", signals_service.push_signals(db, workspace_id=workspace_id, items=signals).summary)


def seed_workspace(
    db: Database,
    *,
    workspace: str,
    accounts: int,
    seed: int,
    as_of: datetime | None = None,
    score: bool = True,
    progress: Progress | None = None,
) -> SeedReport:
    """Create (if new) and fill `workspace` with `accounts` sandbox accounts and their data."""
    started = time.perf_counter()
    report = SeedReport(workspace)
    workspace_id, report.created_workspace = _workspace(db, workspace)
    _define_fields(db, workspace_id)
    _define_pipelines(db, workspace_id)
    generator = SandboxGenerator(seed=seed, accounts=accounts, as_of=as_of)
    done = 0
    batch: list[AccountPlan] = []
    for plan in generator.plans():
        batch.append(plan)
        if len(batch) == BATCH_ACCOUNTS:
            _write_batch(db, workspace_id, batch, report)
            done += len(batch)
            batch = []
            if progress:
                progress(done, accounts, "writing")
    if batch:
        _write_batch(db, workspace_id, batch, report)
        done += len(batch)
    if progress:
        progress(done, accounts, "scoring")
    if score:
        scoring_started = time.perf_counter()
        # The tables just grew from nothing: without fresh statistics the planner picks
        # scans for scoring's joins (measured: 340 s instead of 0.6 s for 10,000 accounts).
        db.refresh_statistics()
        report.scored = _score(db, workspace)
        report.scoring_seconds = time.perf_counter() - scoring_started
    report.seconds = time.perf_counter() - started
    return report


def _score(db: Database, workspace: str) -> int | None:
    """Run the scoring job over the workspace; wait a little if another run holds the lock."""
    for attempt in range(SCORING_ATTEMPTS):
        try:
            return run_scoring(db, workspace=workspace, full=True).scored
        except ScoringBusy:
            if attempt == SCORING_ATTEMPTS - 1:
                return None
            time.sleep(SCORING_RETRY_SECONDS)
    return None
