"""Scoring runs: which accounts to score, one run at a time per database, and the report.

At most one run works on a database at a time, however many processes are started: on
PostgreSQL a session advisory lock (released by the server if the process dies), on SQLite
a lease row that a run renews after every batch and that expires if its holder crashed.

How a run's batches map to transactions: on SQLite each batch of accounts is one write
transaction of its workspace (`_score_in_order`: SQLite has one writer at a time, so there is
nothing to overlap). On PostgreSQL the batches go in *segments* (`_score_in_segments`), and the
write of one batch runs on a second connection while the next batch is read and scored.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from abmhub.db.engine import Database, WriteTransaction
from abmhub.db.tables import scoring_lease, scoring_runs, workspaces
from abmhub.history import service as history
from abmhub.insights import service as insights
from abmhub.predictions import serving as predictions
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
from abmhub.website.aggregate import aggregate as aggregate_visits

log = logging.getLogger("abmhub.scoring")

LEASE_SECONDS = 120
# PostgreSQL: a segment (see `_score_in_segments`) starts no new batch once it has held its
# workspace's clock this long. Every push of the workspace waits for the clock, so this bounds
# how long one waits: this plus one batch (its read and scoring, then the wait for its write:
# ~0.5 s and ~0.4 s for 10,000 accounts; segments of a 1M full run held the clock ~1.6 s on
# average, measured), where one transaction per batch held it for one batch. Longer segments
# overlap more of the writes (a segment's last write overlaps nothing), with diminishing returns.
SEGMENT_SECONDS = 1.0
WRITER_THREAD = "abmhub-scoring-writer"  # the name of `_BatchWriter`'s thread
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
            moment = clock()
            today = day_of(moment)
            whole = full or last_full.get(workspace_id, -1) < today
            try:
                # The site visits collected since the last run count in this one (§9).
                aggregate_visits(db, workspace_id=workspace_id, clock_us=moment)
                run = _run_workspace(db, workspace_id, name, settings_from(overrides), moment, whole, renew)
            except ScoringBusy:
                raise
            except Exception:
                log.exception("scoring workspace %s failed; its accounts stay marked for the next run", name)
                run = WorkspaceRun(workspace=name, full=whole, failed=True)
            report.workspaces.append(run)
    if any(run.full for run in report.workspaces):
        db.refresh_statistics()  # once a day at most: tables grew, plans should follow
    return report


SURGE_REFRESH_US = 3600 * 1_000_000


def _run_workspace(
    db: Database,
    workspace_id: int,
    name: str,
    settings: ScoringSettings,
    moment: int,
    whole: bool,
    renew: Callable[[], None],
) -> WorkspaceRun:
    """Score the workspace as of `moment` (the run's clock): its UTC day decides decay, and its
    stage changes and daily scores are recorded at it (history, §7)."""
    started = time.perf_counter()
    today = day_of(moment)
    run = WorkspaceRun(workspace=name, full=whole)
    with db.read() as conn:
        model = predictions.active_model(conn, workspace_id)
    score = _score_in_order if db.is_sqlite else _score_in_segments
    score(db, workspace_id, settings, moment, whole, renew, run, model)
    with db.write(workspace_id) as tx:
        previous = tx.conn.execute(
            select(scoring_runs.c.last_run_us, scoring_runs.c.last_full_day, scoring_runs.c.surging_us).where(
                scoring_runs.c.workspace_id == workspace_id
            )
        ).one_or_none()
        # The daily full run re-evaluates every account (a safety net); other runs only the
        # accounts changed since the previous refresh.
        since = previous.last_run_us if previous is not None and not whole else None
        run.memberships = refresh_dynamic_segments(tx.conn, workspace_id, tx.now_us, since=since)
        if run.changed or whole:  # the funnel only moves when some account's stage or score did
            history.record_stage_counts(tx.conn, workspace_id=workspace_id, day=today)
        # The surge is an aggregate over four weeks of signals (seconds at ten million): kept by
        # the daily full run and at most once an hour besides, not by every incremental run.
        surging_us = previous.surging_us if previous is not None else None
        if whole or surging_us is None or moment - surging_us >= SURGE_REFRESH_US:
            insights.record_surging(tx.conn, workspace_id=workspace_id, today=today)
            surging_us = moment
        run.seconds = time.perf_counter() - started
        values = {
            "surging_us": surging_us,
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
        name,
        run.scored,
        "full" if whole else "changed inputs",
        run.changed,
        run.memberships,
        run.seconds,
    )
    return run


def _no_parallel_workers(conn: Connection) -> None:
    # A batch is a few index-driven queries; parallel workers only compete with this process
    # (and, pipelined, with its own writer) for the cores (measured: docs/performance.md).
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


def _score_in_order(
    db: Database,
    workspace_id: int,
    settings: ScoringSettings,
    moment: int,
    whole: bool,
    renew: Callable[[], None],
    run: WorkspaceRun,
    model: predictions.ActiveModel | None = None,
) -> None:
    """Each batch is one write transaction of the workspace: read, score, write, commit (SQLite)."""
    after = ""  # batches go in domain order
    while True:
        with db.write(workspace_id) as tx:
            rows = engine.next_batch(tx.conn, workspace_id, after=after, only_dirty=not whole)
            if not rows:
                break
            result = engine.score_batch(
                tx.conn,
                workspace_id,
                rows,
                settings,
                day_of(moment),
                tx.now_us,
                contiguous=whole,
                at_us=moment,
                model=model,
            )
        run.scored += result.scored
        run.changed += result.changed
        after = rows[-1].domain
        renew()


def _segment_over(started: float, batches: int) -> bool:
    """Whether a segment that began at `started` (time.monotonic) should start no new batch.

    `batches` (run so far in the segment) is unused here; tests bound segments by it instead.
    """
    return time.monotonic() - started >= SEGMENT_SECONDS


def _score_in_segments(
    db: Database,
    workspace_id: int,
    settings: ScoringSettings,
    moment: int,
    whole: bool,
    renew: Callable[[], None],
    run: WorkspaceRun,
    model: predictions.ActiveModel | None = None,
) -> None:
    """PostgreSQL: read and score batch N+1 while a second connection writes batch N.

    **Segments** (runs of batches; nothing to do with account segments). The main connection
    opens ONE write transaction of the workspace (which ticks and so row-locks the workspace
    clock until it ends) and runs several batches in it: read batch N (`next_batch`, its
    inputs), score it in Python, hand its writes (changed scores; the dirty flag of the
    unchanged cleared), stamped with the transaction's `now_us`, to a `_BatchWriter` — a thread
    with its own connection that writes and commits each batch in a transaction of its own —
    and read batch N+1 at once, while the writer works. Before batch
    N+1 is handed over, the writer must have committed batch N (a hand-off of depth 1). After
    `SEGMENT_SECONDS`, or when the batches run out, the segment waits for the writer to commit
    its last batch and only THEN commits the main transaction, releasing the clock.

    **No input is lost.** A push committed between the read of a batch's inputs and the write
    of its scores would have its `score_dirty` mark cleared by that write, its input ignored
    until the next daily full run. Every writer of the workspace ticks its clock first (pushes
    mark accounts dirty in such a transaction), and the main transaction holds the clock from
    before the first read of the segment until after the writer's last commit: no such push
    can commit in between, so the inputs a segment reads are still current when its scores
    are written. A push waits for the segment, then marks its accounts dirty again for the
    next run. The writer's connection must not tick the clock (it would wait for the main
    transaction, which waits for it); it stamps with the main transaction's `now_us`. Nor can
    the writer wait for a transaction that waits for the segment: it locks only account rows,
    and every other writer of accounts ticks the workspace clock before it touches any.

    **Delta sync stays sound.** A sync pass takes its stamp by ticking the same clock, so it
    waits for the segment. The writer's changes carry the segment's stamp and are committed
    before the segment commits: a pass whose stamp is greater than theirs ticked after the
    segment committed and sees them; a pass that ticked before the segment has a smaller stamp
    and finds them on its next pass — as if the segment were one writer of the workspace.

    Batches of a segment are disjoint (domain order, `after` moves on), so the writer's UPDATE
    of batch N touches no row the main connection reads for batch N+1. If the writer fails,
    the error comes out at the next hand-off or at the segment's end: the main transaction
    rolls back and the run of the workspace fails; batches the writer committed stay committed
    (their scores are right), the others stay dirty. If the main side fails, the writer's batch
    in flight is finished (committed or not) before the main transaction rolls back, and the
    thread and its connection are released.
    """
    after = ""  # batches go in domain order
    while True:
        with db.write(workspace_id) as tx, _BatchWriter(db, tx) as writer:
            _no_parallel_workers(tx.conn)
            started, batches = time.monotonic(), 0
            while True:
                rows = engine.next_batch(tx.conn, workspace_id, after=after, only_dirty=not whole)
                if not rows:
                    return  # the writer's last batch is committed, then the segment (context exits)
                scored = engine.compute_batch(
                    tx.conn, workspace_id, rows, settings, day_of(moment), contiguous=whole, at_us=moment, model=model
                )
                writer.submit(scored)
                run.scored += scored.scored
                run.changed += len(scored.changed)
                after = rows[-1].domain
                batches += 1
                renew()
                if _segment_over(started, batches):
                    break


class _BatchWriter:
    """Writes a segment's batches on a thread and a connection of its own, one batch at a time.

    `submit` hands a batch over once the previous one is committed (raising its error, if it
    failed). Leaving the `with` block waits for the batch in flight: on a normal exit it raises
    that batch's error; on an error exit it only logs it (the error on its way out wins). Either
    way the thread is joined and the connection returned to the pool before the `with` block of
    the segment's transaction (entered first) commits or rolls back.
    """

    def __init__(self, db: Database, tx: WriteTransaction) -> None:
        self._now_us = tx.now_us
        self._conn = db.engine.connect()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WRITER_THREAD)
        self._pending: Future[None] | None = None

    def __enter__(self) -> Self:
        return self

    def _write(self, scored: engine.ScoredBatch) -> None:
        with self._conn.begin():
            _no_parallel_workers(self._conn)
            engine.write_batch(self._conn, scored, self._now_us)

    def submit(self, scored: engine.ScoredBatch) -> None:
        self.wait()
        self._pending = self._thread.submit(self._write, scored)

    def wait(self) -> None:
        """Block until the batch handed over last is committed; raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.wait()
            elif self._pending is not None and (failure := self._pending.exception()) is not None:
                log.error("the scoring writer failed too: %r", failure)
        finally:
            self._thread.shutdown(wait=True)
            self._conn.close()


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
