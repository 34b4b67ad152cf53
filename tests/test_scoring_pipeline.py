"""The pipelined scoring run on PostgreSQL: segments of batches, each batch written on a second connection.

Small batches (7 accounts) and segments of a fixed number of batches make several segments of
several batches out of a few dozen accounts. See `service._score_in_segments` for the design.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.db.tables import accounts
from abmhub.scoring import engine, service
from abmhub.scoring.service import run_scoring
from abmhub.scoring.settings import SCORE_COLUMNS, SIGNAL_TYPES
from abmhub.tenancy import service as tenancy
from tests.test_scoring import add_signals, clock

pytestmark = pytest.mark.postgres

STORED = ("account_score", "journey_stage", *SCORE_COLUMNS.values())


@pytest.fixture
def new_pg(new_database_url: Callable[[str], str]) -> Iterator[Callable[[], Database]]:
    opened: list[Database] = []

    def make() -> Database:
        db = Database(new_database_url("postgresql"))
        upgrade(db)
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.dispose()


@pytest.fixture
def segments_of(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    """Batches of 7 accounts; segments of `n` batches. Returns the list of segment sizes, filled as segments end."""

    def patch(n: int) -> list[int]:
        ended: list[int] = []

        def over(started: float, batches: int) -> bool:
            if batches >= n:
                ended.append(batches)
                return True
            return False

        monkeypatch.setattr(engine, "BATCH_SIZE", 7)
        monkeypatch.setattr(service, "_segment_over", over)
        return ended

    return patch


def push_accounts(db: Database, workspace_id: int, domains: list[str]) -> None:
    items = [AccountItem.model_validate({"domain": d, "name": d}) for d in domains]
    accounts_service.push_accounts(db, workspace_id=workspace_id, items=items)


def random_signals(rng: random.Random, domains: list[str], n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        source = rng.choice(list(SIGNAL_TYPES))
        row = {"source": source, "type": rng.choice(SIGNAL_TYPES[source]), "domain": rng.choice(domains)}
        row |= {"age": rng.randrange(0, 120), "count": rng.randrange(1, 4)}
        if source == "bombora":
            row["score"] = rng.randrange(40, 100)
        rows.append(row)
    return rows


def stored(db: Database) -> dict[str, Any]:
    with db.read() as conn:
        return {row.domain: row for row in conn.execute(select(accounts).order_by(accounts.c.domain))}


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(service.WRITER_THREAD)]


def test_pipelined_runs_store_what_the_sequential_path_stores(new_pg, segments_of, monkeypatch):
    ended = segments_of(3)
    domains = [f"d{i:02}.com" for i in range(50)]  # 8 batches: segments of 3, 3 and 2
    rng = random.Random(4)
    first, later = random_signals(rng, domains[:40], 300), random_signals(rng, domains[::3], 40)
    dbs = {"pipelined": new_pg(), "sequential": new_pg()}
    ids = {}
    for db in dbs.values():
        ids[db] = tenancy.create_workspace(db, name="acme")
        push_accounts(db, ids[db], domains)
        add_signals(db, ids[db], *first)

    def run_all(**kwargs: Any) -> dict[str, tuple[int, int]]:
        reports = {}
        for name, db in dbs.items():
            with monkeypatch.context() as patch:
                if name == "sequential":  # the SQLite path, on the same kind of database
                    patch.setattr(service, "_score_in_segments", service._score_in_order)
                report = run_scoring(db, clock=clock, **kwargs)
            assert not report.workspaces[0].failed
            reports[name] = (report.scored, report.changed)
        return reports

    def compare(before: dict[str, dict[str, Any]]) -> None:
        """Same values, dirty flags, and the same accounts changed (`change_us`) as the sequential path."""
        after = {name: stored(db) for name, db in dbs.items()}
        for domain in domains:
            seen = {}
            for name in dbs:
                row, old = after[name][domain], before[name][domain]
                moved = row.change_us != old.change_us
                assert not moved or row.change_us == row.scored_us, "a change is stamped with the scoring stamp"
                seen[name] = (tuple(row._mapping[c] for c in STORED), row.score_dirty, moved)
            assert seen["pipelined"] == seen["sequential"], domain

    # Every write of a batch is committed before the main connection commits anything (the
    # segment's transaction releasing the clock): the order of the COMMITs as they happen.
    events, write, commit = [], engine.write_batch, dbs["pipelined"].engine.dialect.do_commit

    def on_writer() -> bool:
        return threading.current_thread().name.startswith(service.WRITER_THREAD)

    def recorded_write(*args: Any) -> None:
        if on_writer():  # (the sequential path writes on the main thread)
            events.append("write")
            time.sleep(0.05)  # not synchronisation: a slow write, so that a COMMIT out of order would show
        write(*args)

    def recorded_commit(dbapi_connection: Any) -> None:
        if on_writer():
            commit(dbapi_connection)
            events.append("writer committed")
        else:
            events.append("main commit")
            commit(dbapi_connection)

    monkeypatch.setattr(engine, "write_batch", recorded_write)
    monkeypatch.setattr(dbs["pipelined"].engine.dialect, "do_commit", recorded_commit)
    before = {name: stored(db) for name, db in dbs.items()}
    reports = run_all()  # the first run: a full one
    assert reports["pipelined"] == reports["sequential"] == (50, 50)
    assert ended == [3, 3], "segments of 3, 3 and the last 2 batches"
    compare(before)
    writes = [e for e in events if e != "main commit"]
    assert writes == ["write", "writer committed"] * 8, "8 batches, each written and committed by the writer"
    for before_main in (events[: i + 1] for i, e in enumerate(events) if e == "main commit"):
        assert before_main.count("write") == before_main.count("writer committed"), events
    assert {row.journey_stage for row in stored(dbs["pipelined"]).values()} >= {"Unaware", "Aware"}

    ended.clear()
    before = {name: stored(db) for name, db in dbs.items()}
    for db in dbs.values():
        add_signals(db, ids[db], *later)
    reports = run_all()  # incremental: only the dirty accounts (up to 17: 3 batches)
    assert reports["pipelined"] == reports["sequential"]
    assert reports["pipelined"][0] == len({row["domain"] for row in later}) > 7
    compare(before)

    before = {name: stored(db) for name, db in dbs.items()}
    reports = run_all(full=True)  # nothing changed: every account leaves the dirty set, none is a change
    assert reports["pipelined"] == reports["sequential"] == (50, 0)
    compare(before)
    assert all(not row.score_dirty for row in stored(dbs["pipelined"]).values())
    assert not writer_threads() and dbs["pipelined"].engine.pool.checkedout() == 0


def test_a_failed_write_fails_the_workspace_and_leaves_the_rest_dirty(new_pg, segments_of, monkeypatch):
    segments_of(3)
    db = new_pg()
    workspace_id = tenancy.create_workspace(db, name="acme")
    domains = [f"d{i:02}.com" for i in range(30)]  # batches of 7, 7, 7, 7, 2
    push_accounts(db, workspace_id, domains)
    write, calls = engine.write_batch, []

    def failing(conn: Any, batch: engine.ScoredBatch, now: int) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise RuntimeError("the writer's UPDATE failed")
        write(conn, batch, now)

    monkeypatch.setattr(engine, "write_batch", failing)
    report = run_scoring(db, clock=clock)
    assert report.workspaces[0].failed
    assert all(name.startswith(service.WRITER_THREAD) for name in calls), "writes run on the writer's thread"
    got = stored(db)
    written = sorted(domains)[:7]  # the first batch committed before the failure; it stays committed
    assert [d for d, row in got.items() if not row.score_dirty] == written
    assert all(row.journey_stage == "" for d, row in got.items() if d not in written), "nothing else was written"
    assert not writer_threads(), "the writer's thread is gone"
    assert db.engine.pool.checkedout() == 0, "and its connection is back in the pool"

    monkeypatch.setattr(engine, "write_batch", write)
    report = run_scoring(db, clock=clock)
    assert not report.workspaces[0].failed and report.scored == 30, "a failed run leaves the day's full run to do"
    assert not any(row.score_dirty for row in stored(db).values())


def test_a_failure_while_reading_waits_for_the_write_in_flight(new_pg, segments_of, monkeypatch):
    segments_of(3)
    db = new_pg()
    workspace_id = tenancy.create_workspace(db, name="acme")
    domains = [f"d{i:02}.com" for i in range(30)]
    push_accounts(db, workspace_id, domains)
    compute, calls = engine.compute_batch, []

    def failing(*args: Any, **kwargs: Any) -> engine.ScoredBatch:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the third batch's inputs could not be read")
        return compute(*args, **kwargs)

    monkeypatch.setattr(engine, "compute_batch", failing)
    report = run_scoring(db, clock=clock)
    assert report.workspaces[0].failed
    got = stored(db)
    # The second batch was being written when the third failed: its write finished (and
    # committed) before the segment's transaction rolled back.
    assert [d for d, row in got.items() if not row.score_dirty] == sorted(domains)[:14]
    assert not writer_threads() and db.engine.pool.checkedout() == 0


def test_a_push_during_a_segment_waits_for_it_and_stays_dirty(new_pg, segments_of, monkeypatch):
    """The input of a push that arrives while a segment holds the clock is not lost.

    The push comes in right after the first batch's inputs were read, before its scores are
    written. It must wait for the segment (which holds the workspace clock) and land after
    the write that clears the dirty flag — so its account is still dirty after the run.
    """
    ended = segments_of(2)
    db = new_pg()
    workspace_id = tenancy.create_workspace(db, name="acme")
    domains = [f"d{i:02}.com" for i in range(20)]
    push_accounts(db, workspace_id, domains)
    target = min(domains)  # in the first batch of the first segment
    pushed = threading.Event()
    failures: list[BaseException] = []

    def push() -> None:
        try:
            add_signals(db, workspace_id, {"source": "g2", "type": "pricing_view", "domain": target})
        except BaseException as exc:
            failures.append(exc)
        finally:
            pushed.set()

    pusher = threading.Thread(target=push, name="push")
    compute = engine.compute_batch

    def with_push(*args: Any, **kwargs: Any) -> engine.ScoredBatch:
        scored = compute(*args, **kwargs)  # the first batch's inputs: read before the push
        if not pusher.is_alive() and not pushed.is_set():
            pusher.start()
            wait_for_lock_waiter(db)  # the push is blocked on the workspace clock
        return scored

    over, pushed_by_first_segment_end = service._segment_over, []

    def segment_over(started: float, batches: int) -> bool:
        done = over(started, batches)
        if done and len(ended) == 1:
            pushed_by_first_segment_end.append(pushed.is_set())
        return done

    monkeypatch.setattr(engine, "compute_batch", with_push)
    monkeypatch.setattr(service, "_segment_over", segment_over)
    report = run_scoring(db, clock=clock)
    pusher.join(timeout=30)
    assert pushed.is_set() and not failures
    assert not report.workspaces[0].failed
    assert pushed_by_first_segment_end == [False], "the push cannot commit while the segment holds the clock"
    row = stored(db)[target]
    assert row.score_dirty, "the push's mark survived the write of the scores read before it"
    assert row.g2_score == 0 and row.scored_us is not None, "scored once, without the pushed signal"

    run_scoring(db, clock=clock)  # the next run picks the push up
    row = stored(db)[target]
    assert not row.score_dirty and row.g2_score > 0


def wait_for_lock_waiter(db: Database) -> None:
    """Until another session of this database waits for a lock (polled: PostgreSQL has no notification for it)."""
    deadline = time.monotonic() + 30
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the push never waited for the workspace clock")
