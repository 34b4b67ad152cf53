"""Webhook delivery across real server processes on one database (SQLite file, PostgreSQL):
none lost when a process is killed, none delivered twice when several share the work (§8)."""

from __future__ import annotations

import collections
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy
from abmhub.webhooks.delivery import LEASE_US
from tests.conftest import Server, start_server, stop_server
from tests.support.receiver import Receiver, running_receiver

FLAGS = ("--score-interval", "0", "--webhook-allow-private-targets")


@pytest.fixture
def prepared(backend: str, new_database_url: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """A migrated database with one workspace; (url, key). Migrated once, before any server starts."""
    url = new_database_url(backend)
    db = Database(url)
    upgrade(db)
    tenancy.create_workspace(db, name="hooks")
    key = tenancy.create_key(db, workspace="hooks", user_email="ops@example.com")
    db.dispose()
    yield url, key


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            stop_server(server)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def api(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": key}, timeout=60)


def push_accounts(client: httpx.Client, count: int, prefix: str) -> None:
    for start in range(0, count, 100):
        items = [{"domain": f"{prefix}-{i}.example.com", "name": f"{prefix} {i}"} for i in range(start, start + 100)]
        response = client.post("/accounts", json={"accounts": items[: count - start]})
        assert response.status_code == 200, response.text


def event_ids(receiver: Receiver) -> list[str]:
    return [r.json()["id"] for r in receiver.received]


def test_three_processes_deliver_1000_events_none_missing_none_twice(backend, prepared, servers, receiver, tmp_path):
    url, key = prepared
    for number in range(3):
        servers.append(start_server(backend, url, tmp_path / f"server-{number}.log", *FLAGS))
    with api(servers[0], key) as first:
        created = first.post("/webhooks", json={"url": receiver.url, "events": ["account.created"]})
        assert created.status_code == 200, created.text
        push_accounts(first, 1000, "many")
    receiver.wait_for_count(1000, timeout=120)
    time.sleep(1.5)  # long enough for a second delivery of anything to arrive
    counts = collections.Counter(event_ids(receiver))
    twice = [event_id for event_id, n in counts.items() if n > 1]
    assert len(counts) == 1000, f"{1000 - len(counts)} events never arrived"
    assert twice == [], f"{len(twice)} events arrived more than once, e.g. {twice[:3]}"
    workers = {r.header("X-Abmhub-Delivery-Id") for r in receiver.received}
    assert len(workers) == 1000


def test_events_committed_by_a_killed_process_still_arrive(backend, prepared, servers, receiver, tmp_path):
    """Killed between commit and delivery (no worker of its own), then killed mid-delivery."""
    url, key = prepared
    api_only = start_server(backend, url, tmp_path / "api-only.log", *FLAGS, "--webhook-workers", "0")
    servers.append(api_only)
    with api(api_only, key) as client:
        created = client.post("/webhooks", json={"url": receiver.url, "events": ["account.created"]})
        assert created.status_code == 200, created.text
        push_accounts(client, 20, "first")
    os.kill(api_only.process.pid, signal.SIGKILL)
    api_only.process.wait()
    receiver.script = [("sleep", 60.0)]  # the next delivering process hangs on its first delivery
    delivering = start_server(backend, url, tmp_path / "delivering.log", *FLAGS, "--webhook-workers", "1")
    servers.append(delivering)
    receiver.wait_for_count(1, timeout=20)
    os.kill(delivering.process.pid, signal.SIGKILL)  # mid-delivery, holding the subscription's lease
    delivering.process.wait()
    taken_over = time.monotonic()
    servers.append(start_server(backend, url, tmp_path / "survivor.log", *FLAGS))
    receiver.wait_for(lambda got: len({r.json()["id"] for r in got}) >= 20, timeout=LEASE_US / 1e6 + 30)
    assert time.monotonic() - taken_over <= LEASE_US / 1e6 + 15, "taken over once the killed worker's lease ran out"
    assert len(set(event_ids(receiver))) == 20, "every committed event arrived"
