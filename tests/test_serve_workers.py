"""`abmhub serve --workers N`: several server processes on one port, one scoring schedule."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from abmhub.accounts import search
from abmhub.accounts import service as accounts_service
from abmhub.db.engine import Database
from abmhub.db.tables import scoring_runs
from abmhub.tenancy import service as tenancy
from tests.conftest import Server, start_server, stop_server


def server_processes(parent: int) -> list[int]:
    """The parent's children that serve (uvicorn spawns them with multiprocessing)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def wait_for(condition, seconds: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds:g} s for {what}")


@pytest.fixture
def served(backend: str, new_database_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    server = start_server(backend, url, tmp_path / "serve.log", "--workers", "2", "--score-interval", "1")
    yield server
    stop_server(server)


def push(client: httpx.Client, key: str, domain: str) -> None:
    answer = client.post(
        "/api/v1/accounts", json={"accounts": [{"domain": domain, "name": domain}]}, headers={"X-Api-Key": key}
    )
    assert answer.status_code == 200 and answer.json()["data"]["summary"]["created"] == 1, answer.text


def test_two_server_processes_share_the_port_and_a_dead_one_is_replaced(served: Server):
    workers = wait_for(lambda: len(server_processes(served.process.pid)) == 2 and server_processes(
        served.process.pid), 30, "two server processes")  # fmt: skip
    db = Database(served.database_url)
    try:
        tenancy.create_workspace(db, name="workers")
        key = tenancy.create_key(db, workspace="workers", user_email="ops@example.com")
    finally:
        db.dispose()
    # A new connection per push: the kernel hands connections to either process.
    for i in range(20):
        with httpx.Client(base_url=served.base_url, timeout=10) as client:
            push(client, key, f"w{i}.example")
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        listed = client.get("/api/v1/accounts", params={"limit": 100}, headers={"X-Api-Key": key}).json()
    assert len(listed["data"]["data"]) == 20, "every push is read back, whichever process took it"

    os.kill(workers[0], signal.SIGKILL)
    replaced = wait_for(
        lambda: (now := server_processes(served.process.pid)) and len(now) == 2 and workers[0] not in now and now,
        30,
        "the supervisor to start a new server process in place of the killed one",
    )
    assert workers[1] in replaced, "the other server process kept running"
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        wait_for(lambda: client.get("/healthz").status_code == 200, 10, "the server to answer")
        push(client, key, "after.example")


def test_the_search_index_catches_up_with_what_the_server_processes_wrote(served: Server):
    """The parent's background indexer (SQLite) indexes the accounts the server processes
    pushed, and the dashboard's search finds them before and after."""
    db = Database(served.database_url)
    try:
        workspace_id = tenancy.create_workspace(db, name="searched")
        key = tenancy.create_key(db, workspace="searched", user_email="search@example.com")
        with httpx.Client(base_url=served.base_url, timeout=10) as client:
            for i in range(5):
                push(client, key, f"findable-{i}.example")
        if not db.is_sqlite:
            return  # PostgreSQL's GIN indexes keep themselves
        with db.read() as conn:
            highest = conn.exec_driver_sql("SELECT max(id) FROM accounts").scalar()

        def indexed() -> bool:
            with db.read() as conn:
                return search.indexed_through(conn) >= highest

        wait_for(indexed, 15, "the background indexer to index the pushed accounts (every 2 s)")
        found = accounts_service.count_accounts(
            db, workspace_id=workspace_id, filters=accounts_service.AccountFilter(search="findable")
        )
        assert found == 5, f"{found} of the 5 pushed accounts found by search once indexed"
    finally:
        db.dispose()


def test_one_scoring_schedule_for_all_the_processes(served: Server):
    """--score-interval 1 with two server processes: one run a second, not one per process."""
    db = Database(served.database_url)
    try:
        workspace_id = tenancy.create_workspace(db, name="scored")
        wait_for(lambda: _last_run(db, workspace_id), 15, "a first scoring run")
        seen = set()
        started = time.monotonic()
        while time.monotonic() - started < 4.0:
            seen.add(_last_run(db, workspace_id))
            time.sleep(0.02)
    finally:
        db.dispose()
    assert 2 <= len(seen) <= 6, f"{len(seen)} scoring runs in 4 s at a 1 s interval: one schedule, not three"


def _last_run(db: Database, workspace_id: int) -> int | None:
    """When the workspace was last scored. (One workspace's row: the database has two, and
    PostgreSQL's `LIMIT 1` without an order returned either, counting each run twice.)"""
    with db.read() as conn:
        return conn.execute(
            select(scoring_runs.c.last_run_us).where(scoring_runs.c.workspace_id == workspace_id)
        ).scalar()


def test_sigterm_drains_every_process_and_exits_0(backend: str, new_database_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    server = start_server(backend, new_database_url(backend), tmp_path / "serve.log", "--workers", "2")
    workers = wait_for(lambda: len(server_processes(server.process.pid)) == 2 and server_processes(
        server.process.pid), 30, "two server processes")  # fmt: skip
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=40) == 0, server.log()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], (
            f"server process {pid} still running after the parent exited"
        )
