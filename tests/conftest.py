"""Fixtures for both databases: SQLite files and a throwaway PostgreSQL cluster.

Every test that uses `backend` (directly or through `database`, `server`, `api`, ...) runs
once on SQLite and once on PostgreSQL. The PostgreSQL cluster is started by the suite itself
(tests/support/postgres.py); where its binaries are missing those runs skip with the reason,
unless ABMHUB_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy
from tests.support.postgres import (
    PostgresCluster,
    PostgresUnavailable,
    postgres_required,
)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
_names = itertools.count()


# --- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required (ABMHUB_REQUIRE_POSTGRES=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL server binaries not found, PostgreSQL tests skipped: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="abmhub-tests-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def new_database_url(request: pytest.FixtureRequest, scratch_dir: Path) -> Callable[[str], str]:
    """A factory of URLs of new, empty databases on a backend."""

    def make(backend: str) -> str:
        name = f"abmhub_{next(_names)}_{uuid.uuid4().hex[:6]}"
        if backend == "sqlite":
            return f"sqlite:///{scratch_dir / name}.db"
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        return cluster.create_database(name)

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database(backend: str, new_database_url: Callable[[str], str]) -> Iterator[Database]:
    """A fresh, migrated database of the test's own."""
    db = Database(new_database_url(backend))
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def postgres(new_database_url: Callable[[str], str]) -> Iterator[Database]:
    """A fresh, migrated database on PostgreSQL only, for what SQLite has no counterpart of:
    a server to lose, a pool to ping, an async driver."""
    db = Database(new_database_url("postgresql"))
    upgrade(db)
    yield db
    db.dispose()


# --- a real server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    backend: str
    base_url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(backend: str, database_url: str, log_path: Path, *extra: str) -> Server:
    """Start `abmhub serve` on a free port and wait until /healthz answers."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "abmhub", "serve", "--port", str(port), "--database-url", database_url, *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"abmhub serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return Server(backend, base_url, database_url, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"abmhub serve did not become healthy in 60 s:\n{log_path.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, new_database_url: Callable[[str], str], scratch_dir: Path
) -> Iterator[Server]:
    """One `abmhub serve` process per backend, shared by the session; tests isolate by workspace."""
    url = new_database_url(request.param)
    # No scoring schedule: tests run the job themselves (`abmhub score`) when they need it.
    # Webhooks may target the tests' receivers on 127.0.0.1.
    running = start_server(
        request.param,
        url,
        scratch_dir / f"server-{request.param}.log",
        "--score-interval",
        "0",
        "--webhook-allow-private-targets",
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def server_databases() -> Iterator[dict[str, Database]]:
    opened: dict[str, Database] = {}
    yield opened
    for db in opened.values():
        db.dispose()


@pytest.fixture
def server_database(server: Server, server_databases: dict[str, Database]) -> Database:
    """The server's database, opened by the test process (to set up workspaces and keys)."""
    if server.database_url not in server_databases:
        server_databases[server.database_url] = Database(server.database_url)
    return server_databases[server.database_url]


@dataclass(frozen=True)
class Workspace:
    name: str
    key: str
    user_email: str


@pytest.fixture
def new_workspace(server_database: Database) -> Callable[[], Workspace]:
    """A factory of fresh workspaces (with one user and key) on the server's database."""

    def make() -> Workspace:
        name = f"ws-{uuid.uuid4().hex[:10]}"
        email = f"user-{uuid.uuid4().hex[:6]}@example.com"
        tenancy.create_workspace(server_database, name=name)
        key = tenancy.create_key(server_database, workspace=name, user_email=email)
        return Workspace(name, key, email)

    return make


@pytest.fixture
def workspace(new_workspace: Callable[[], Workspace]) -> Workspace:
    return new_workspace()


@pytest.fixture
def api(server: Server, workspace: Workspace) -> Iterator[httpx.Client]:
    """An HTTP client of Surface R, authenticated as the test's workspace."""
    with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": workspace.key}, timeout=30) as client:
        yield client


@pytest.fixture
def cli(server: Server) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `abmhub` command against the server's database."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "abmhub", *args, "--database-url", server.database_url],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
