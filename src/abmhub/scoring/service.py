"""Scoring runs: which accounts to score, one run at a time per database, and the report.

At most one run works on a database at a time, however many processes are started: on
PostgreSQL a session advisory lock (released by the server if the process dies), on SQLite
a lease row that a run renews after every batch and that expires if its holder crashed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from abmhub.db.engine import Database
from abmhub.db.tables import scoring_lease, scoring_runs, workspaces
from abmhub.scoring import engine
from abmhub.scoring.model import day_of
from abmhub.scoring.rules import refresh_dynamic_segments
from abmhub.scoring.settings import (
    DEFAULT_SETTINGS,
    ScoringSettings,
    check_overrides,
    settings_from,
)
from abmhub.timefmt import now_us

log = logging.getLogger("abmhub.scoring")

LEASE_SECONDS = 120
_PG_SCORING_LOCK = 0x61626D73  # "abms"


class ScoringBusy(RuntimeError):
    """Another process is running the scoring job on this database."""


@dataclass(slots=True)
class WorkspaceRun:
    workspace: str
    full: bool
    scored: int = 0
    changed: int = 0
    memberships: int = 0
    seconds: float = 0.0
    failed: bool = False


@dataclass(slots=True)
class RunReport:
    workspaces: list[WorkspaceRun] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(w.scored for w in self.workspaces)

    @property
    def changed(self) -> int:
        return sum(w.changed for w in self.workspaces)


def _holder() -> str:
    """A token naming this run: the host and process (for operators) plus a unique part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def scoring_lock(db: Database) -> Iterator[Callable[[], None]]:
    """Hold the database's scoring lock; yields a `renew()` to call between batches."""
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_SCORING_LOCK}).scalar()
            conn.commit()
            if not got:
                raise ScoringBusy("another scoring run holds the lock")
            try:
                yield lambda: None
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_SCORING_LOCK})
                conn.commit()
        return
    me = _holder()

    def take() -> bool:
        now = now_us()
        with db.write() as tx:
            tx.conn.execute(
                sqlite.insert(scoring_lease).values(id=1, holder=None, expires_us=0).on_conflict_do_nothing()
            )
            return bool(
                tx.conn.execute(
                    update(scoring_lease)
                    .where(scoring_lease.c.id == 1)
                    .where((scoring_lease.c.expires_us < now) | (scoring_lease.c.holder == me))
                    .values(holder=me, expires_us=now + LEASE_SECONDS * 1_000_000)
                ).rowcount
            )

    if not take():
        raise ScoringBusy("another scoring run holds the lease")

    def renew() -> None:
        if not take():
            raise ScoringBusy("the scoring lease was lost")

    try:
        yield renew
    finally:
        with db.write() as tx:
            tx.conn.execute(
                update(scoring_lease)
                .where(scoring_lease.c.id == 1, scoring_lease.c.holder == me)
                .values(holder=None, expires_us=0)
            )


def run_scoring(
    db: Database, *, workspace: str | None = None, full: bool = False, clock: Callable[[], int] = now_us
) -> RunReport:
    """Score the accounts whose inputs changed (all of them with `full`, or on a new UTC day).

    Raises `ScoringBusy` when another run holds the lock.
    """
    report = RunReport()
    with scoring_lock(db) as renew:
        with db.read() as conn:
            query = select(workspaces.c.id, workspaces.c.name, workspaces.c.scoring_settings)
            if workspace is not None:
                query = query.where(workspaces.c.name == workspace)
            targets = conn.execute(query.order_by(workspaces.c.id)).all()
            last_full = dict(conn.execute(select(scoring_runs.c.workspace_id, scoring_runs.c.last_full_day)).all())
        for workspace_id, name, overrides in targets:
            today = day_of(clock())
            whole = full or last_full.get(workspace_id, -1) < today
            try:
                run = _run_workspace(db, workspace_id, name, settings_from(overrides), today, whole, renew)
            except ScoringBusy:
                raise
            except Exception:
                log.exception("scoring workspace %s failed; its accounts stay marked for the next run", name)
                run = WorkspaceRun(workspace=name, full=whole, failed=True)
            report.workspaces.append(run)
    if any(run.full for run in report.workspaces):
        db.refresh_statistics()  # once a day at most: tables grew, plans should follow
    return report


def _run_workspace(db, workspace_id, name, settings, today, whole, renew) -> WorkspaceRun:
    started = time.perf_counter()
    run = WorkspaceRun(workspace=name, full=whole)
    after = ""  # batches go in domain order
    while True:
        with db.write(workspace_id) as tx:
            if not db.is_sqlite:
                # A batch is a few index-driven queries; parallel workers only compete with this
                # process for the cores (measured: docs/performance.md).
                tx.conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            rows = engine.next_batch(tx.conn, workspace_id, after=after, only_dirty=not whole)
            if not rows:
                break
            result = engine.score_batch(tx.conn, workspace_id, rows, settings, today, tx.now_us, contiguous=whole)
        run.scored += result.scored
        run.changed += result.changed
        after = rows[-1].domain
        renew()
    with db.write(workspace_id) as tx:
        previous = tx.conn.execute(
            select(scoring_runs.c.last_run_us, scoring_runs.c.last_full_day).where(
                scoring_runs.c.workspace_id == workspace_id
            )
        ).one_or_none()
        # The daily full run re-evaluates every account (a safety net); other runs only the
        # accounts changed since the previous refresh.
        since = previous.last_run_us if previous is not None and not whole else None
        run.memberships = refresh_dynamic_segments(tx.conn, workspace_id, tx.now_us, since=since)
        run.seconds = time.perf_counter() - started
        values = {
            "last_run_us": tx.now_us,
            "accounts_scored": run.scored,
            "accounts_changed": run.changed,
            "duration_ms": int(run.seconds * 1000),
        }
        dialect_insert = postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert
        full_day = today if whole else (previous.last_full_day if previous is not None else -1)
        tx.conn.execute(
            dialect_insert(scoring_runs)
            .values(workspace_id=workspace_id, last_full_day=full_day, **values)
            .on_conflict_do_update(index_elements=["workspace_id"], set_={"last_full_day": full_day, **values})
        )
    log.info(
        "scored workspace %s: %d accounts (%s), %d changed, %d membership changes in %.2f s",
        name, run.scored, "full" if whole else "changed inputs", run.changed, run.memberships, run.seconds,
    )
    return run


def last_run_us(db: Database, workspace_id: int) -> int | None:
    with db.read() as conn:
        return conn.execute(
            select(scoring_runs.c.last_run_us).where(scoring_runs.c.workspace_id == workspace_id)
        ).scalar_one_or_none()


def workspace_settings(db: Database, workspace_id: int) -> tuple[dict[str, Any] | None, ScoringSettings]:
    """A workspace's stored overrides (None: the defaults) and the settings they give."""
    with db.read() as conn:
        overrides = conn.execute(
            select(workspaces.c.scoring_settings).where(workspaces.c.id == workspace_id)
        ).scalar_one()
    return overrides, settings_from(overrides)


def set_workspace_settings(db: Database, workspace_id: int, overrides: dict[str, Any] | None) -> ScoringSettings:
    """Store a workspace's overrides after checking them (None or {}: back to the defaults).

    Raises InvalidSettings naming every problem. The workspace's next run is a full one:
    new settings can change any account's scores.
    """
    settings = check_overrides(overrides) if overrides else DEFAULT_SETTINGS
    with db.write(workspace_id) as tx:
        tx.conn.execute(
            update(workspaces).where(workspaces.c.id == workspace_id).values(scoring_settings=overrides or None)
        )
        tx.conn.execute(
            update(scoring_runs).where(scoring_runs.c.workspace_id == workspace_id).values(last_full_day=-1)
        )
    return settings

