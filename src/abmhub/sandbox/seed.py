"""Fill a workspace with the sandbox data set, through the same services the API uses.

Accounts, deals, activities and signals are pushed with the services' bulk pushes, so
every rule of the API applies (normalised domains, stage history, contact upserts, links,
scoring marks), in batches far larger than an HTTP request may carry: one transaction
per batch of `BATCH_ACCOUNTS` accounts' worth of each kind. Then the scoring job runs
over the workspace, so the accounts have scores and journey stages at once.

With history (`history_days`, the default), the data is replayed day by day instead: the
accounts first, then each past day's signals, activities and deal stages (a deal is pushed
as it stood that day), each day scored at its end by the scoring job with its clock set to
that day. So the history (contract §7) shows the movement a real workspace would have had:
stage changes on the days they happened, daily scores rising and decaying. The last run
scores today. The replay holds the data set in memory (fine for a sandbox's thousands of
accounts; seed millions with `history_days=0`).

A planted sandbox (`planted=True`, `abmhub.sandbox.planted`) follows a hidden rule and comes
with its truth (`SeedReport.truth`): a backfill, as a CRM import would be, of `history_days`
(default `HISTORY_DAYS`, 540) days of records written at once, then scored once.

Seeding again with the same seed converges on the same data: accounts are upserted by
domain, deals by externalDealId, and activities and signals carry ids that make a repeat
a no-op (`failed: already exists` / `skipped`); replayed days score nothing anew.
"""

from __future__ import annotations

import functools
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
from abmhub.sandbox.data import CUSTOM_FIELDS, DAYS, PIPELINES, AccountPlan, SandboxGenerator
from abmhub.sandbox.planted import HISTORY_DAYS, PlantedGenerator, PlantedTruth
from abmhub.scoring import service as scoring_service
from abmhub.scoring.model import US_PER_DAY, day_of
from abmhub.scoring.service import ScoringBusy, run_scoring
from abmhub.signals import service as signals_service
from abmhub.signals.schemas import SignalItem
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import parse_iso8601

BATCH_ACCOUNTS = 1000
SIGNALS_PER_PUSH = 20_000
SCORING_ATTEMPTS = 10
SCORING_RETRY_SECONDS = 3.0


@dataclass(slots=True)
class SeedReport:
    workspace: str
    created_workspace: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    scored: int | None = None  # None: the scoring job was busy; scores come with its next run
    replayed_days: int = 0  # days of history replayed and scored one by one
    seconds: float = 0.0
    scoring_seconds: float = 0.0
    truth: PlantedTruth | None = None  # the hidden truth of a planted sandbox

    def add(self, kind: str, summary: dict[str, int]) -> None:
        into = self.counts.setdefault(kind, {})
        for status, n in summary.items():
            into[status] = into.get(status, 0) + n


Progress = Callable[[int, int, str], None]  # (done, in all, what is being done: "accounts" or "days")


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


@dataclass(slots=True)
class Records:
    """Wire items to push, of every kind."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, plans: Sequence[AccountPlan]) -> Records:
        return cls(
            accounts=[p.account for p in plans],
            deals=[d for p in plans for d in p.deals],
            activities=[a for p in plans for a in p.activities],
            signals=[s for p in plans for s in p.signals],
        )


def _push(db: Database, workspace_id: int, records: Records, report: SeedReport) -> None:
    """Push the records through the services, accounts first (the others link to them)."""

    def items(model: type[Any], rows: list[dict[str, Any]]) -> list[Any]:
        return [model.model_validate(row) for row in rows]

    if records.accounts:
        accounts = items(AccountItem, records.accounts)
        outcome = accounts_service.push_accounts(db, workspace_id=workspace_id, items=accounts, upsert=True)
        report.add("accounts", outcome.summary)
    if records.deals:
        deals = items(DealItem, records.deals)
        report.add("deals", deals_service.push_deals(db, workspace_id=workspace_id, items=deals).summary)
    if records.activities:
        activities = items(ActivityItem, records.activities)
        report.add(
            "activities", activities_service.push_activities(db, workspace_id=workspace_id, items=activities).summary
        )
    # Signals in pushes of at most SIGNALS_PER_PUSH: the service looks the push's ids up in one
    # statement, and PostgreSQL takes at most 65,535 parameters in one (a planted batch of 1,000
    # accounts has ~135,000 signals).
    for start in range(0, len(records.signals), SIGNALS_PER_PUSH):
        signals = items(SignalItem, records.signals[start : start + SIGNALS_PER_PUSH])
        report.add("signals", signals_service.push_signals(db, workspace_id=workspace_id, items=signals).summary)


def _day(iso_moment: str) -> int:
    return day_of(parse_iso8601(iso_moment))


def records_by_day(plans: Sequence[AccountPlan]) -> dict[int, Records]:
    """The signals, activities and deal stages of the data set, by the UTC day they happened.

    A deal appears on each day one of its stages was entered, as it stood at the end of that
    day: that stage, the history so far, and its closing date once closed.
    """
    days: dict[int, Records] = {}
    for plan in plans:
        for signal in plan.signals:
            days.setdefault(_day(signal["occurredAt"]), Records()).signals.append(signal)
        for activity in plan.activities:
            days.setdefault(_day(activity["occurredAt"]), Records()).activities.append(activity)
        for deal in plan.deals:
            history = deal["stageHistory"]
            for index, entry in enumerate(history):
                later = history[index + 1 : index + 2]
                if later and _day(later[0]["enteredAt"]) == _day(entry["enteredAt"]):
                    continue  # the day's last stage is what the day's end saw
                as_then = {**deal, "stageId": entry["stageId"], "stageLabel": entry["stageLabel"]}
                as_then["stageHistory"] = history[: index + 1]
                if index < len(history) - 1:
                    as_then.pop("closedDate", None)
                days.setdefault(_day(entry["enteredAt"]), Records()).deals.append(as_then)
    return days


def seed_workspace(
    db: Database,
    *,
    workspace: str,
    accounts: int,
    seed: int,
    as_of: datetime | None = None,
    score: bool = True,
    history_days: int | None = None,
    planted: bool = False,
    progress: Progress | None = None,
) -> SeedReport:
    """Create (if new) and fill `workspace` with `accounts` sandbox accounts and their data.

    With `history_days` > 0 (default `DAYS`, and `score`), the data covers that many days before
    `as_of` and is replayed and scored day by day, so the workspace has history; with 0 it
    covers 90 days, written at once and scored once. With `planted`, the data follows the
    planted rule over `history_days` (default `HISTORY_DAYS`), written at once and scored
    once; `report.truth` is its hidden truth.
    """
    started = time.perf_counter()
    report = SeedReport(workspace)
    workspace_id, report.created_workspace = _workspace(db, workspace)
    _define_fields(db, workspace_id)
    _define_pipelines(db, workspace_id)
    generator: SandboxGenerator
    if planted:
        generator = PlantedGenerator(
            seed=seed, accounts=accounts, as_of=as_of, days=HISTORY_DAYS if history_days is None else history_days
        )
        report.truth = generator.truth
        replay = False  # a backfill: everything at once, as a CRM import would be
    else:
        days = DAYS if history_days is None else history_days
        # A history is replayed into a workspace that has none yet: replaying past days over a
        # workspace scored today would score those days with records of later days.
        replay = score and days > 0 and scoring_service.last_run_us(db, workspace_id) is None
        generator = SandboxGenerator(seed=seed, accounts=accounts, as_of=as_of, days=days if replay else DAYS)
    if replay:
        _replay(db, workspace, workspace_id, generator, report, progress)
        report.replayed_days = generator.days
    else:
        _write_at_once(db, workspace_id, generator, report, progress)
    if score:
        scoring_started = time.perf_counter()
        # The tables just grew from nothing: without fresh statistics the planner picks
        # scans for scoring's joins (measured: 340 s instead of 0.6 s for 10,000 accounts).
        db.refresh_statistics()
        report.scored = _score(db, workspace)
        report.scoring_seconds = time.perf_counter() - scoring_started
    report.seconds = time.perf_counter() - started
    return report


def _write_at_once(
    db: Database, workspace_id: int, generator: SandboxGenerator, report: SeedReport, progress: Progress | None
) -> None:
    """Every account with all of its records, `BATCH_ACCOUNTS` accounts per push."""
    done = 0
    batch: list[AccountPlan] = []
    for plan in generator.plans():
        batch.append(plan)
        if len(batch) == BATCH_ACCOUNTS:
            _push(db, workspace_id, Records.of(batch), report)
            done += len(batch)
            batch = []
            if progress:
                progress(done, generator.count, "accounts")
    if batch:
        _push(db, workspace_id, Records.of(batch), report)
        done += len(batch)
    if progress:
        progress(done, generator.count, "accounts")


def _replay(
    db: Database,
    workspace: str,
    workspace_id: int,
    generator: SandboxGenerator,
    report: SeedReport,
    progress: Progress | None,
) -> None:
    """The accounts, then day after day that day's records, each day scored at its end."""
    plans = list(generator.plans())
    for start in range(0, len(plans), BATCH_ACCOUNTS):
        _push(db, workspace_id, Records(accounts=[p.account for p in plans[start : start + BATCH_ACCOUNTS]]), report)
    db.refresh_statistics()
    by_day = records_by_day(plans)
    today = day_of(int(generator.as_of.timestamp() * 1_000_000))
    first = today - generator.days
    for day in range(first, today):
        records = by_day.get(day)
        if records is not None:
            _push(db, workspace_id, records, report)
        _score(db, workspace, clock=functools.partial(int, (day + 1) * US_PER_DAY - 1))  # the day's end
        if progress:
            progress(day - first + 1, generator.days, "days")


def _score(db: Database, workspace: str, clock: Callable[[], int] | None = None) -> int | None:
    """Run the scoring job over the workspace (at `clock`'s moment, default now); wait a little
    if another run holds the lock."""
    for attempt in range(SCORING_ATTEMPTS):
        try:
            if clock is not None:
                return run_scoring(db, workspace=workspace, clock=clock).scored
            return run_scoring(db, workspace=workspace, full=True).scored
        except ScoringBusy:
            if attempt == SCORING_ATTEMPTS - 1:
                return None
            time.sleep(SCORING_RETRY_SECONDS)
    return None
