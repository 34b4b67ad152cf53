"""What the reliability tests share: the profile (how hard to push), the figures of a run,
servers started and killed on purpose, and workspaces made straight in a database.

Profiles: `ci` (the default, a few minutes for the whole folder on both databases) and `long`
(ABMHUB_RELIABILITY_PROFILE=long, see `python -m tests.reliability --help`). Figures of a run
(requests fuzzed, races run, kills survived, records checked) are appended as JSON lines to
the file named by ABMHUB_RELIABILITY_FIGURES, when it is set; docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy
from tests.conftest import Server, start_server, stop_server

PROFILE_ENV = "ABMHUB_RELIABILITY_PROFILE"
FIGURES_ENV = "ABMHUB_RELIABILITY_FIGURES"


def profile() -> str:
    value = os.environ.get(PROFILE_ENV, "ci").strip().lower() or "ci"
    if value not in ("ci", "long"):
        raise ValueError(f"{PROFILE_ENV} must be 'ci' or 'long', not {value!r}")
    return value


def pick(ci: int | float, long: int | float) -> int | float:
    """The number for the current profile."""
    return long if profile() == "long" else ci


def record_figures(test: str, backend: str, **figures: object) -> None:
    """Append one test's figures to the figures file (when ABMHUB_RELIABILITY_FIGURES is set)."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    line = json.dumps({"test": test, "backend": backend, "profile": profile(), **figures}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


@dataclass(frozen=True)
class Tenant:
    """A workspace with one user's key, made directly in the database."""

    name: str
    key: str
    email: str


def prepared_database(url: str) -> Database:
    database = Database(url)
    upgrade(database)
    return database


def new_tenant(database: Database, prefix: str = "rel") -> Tenant:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    email = f"{prefix}-{uuid.uuid4().hex[:6]}@example.com"
    tenancy.create_workspace(database, name=name)
    return Tenant(name, tenancy.create_key(database, workspace=name, user_email=email), email)


def surface_r(server: Server, key: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": key}, timeout=timeout)


def serve(backend: str, url: str, log: Path, *extra: str) -> Server:
    """A real `abmhub serve` on `url`, with no scoring schedule unless `extra` asks for one."""
    args = extra if "--score-interval" in extra else ("--score-interval", "0", *extra)
    return start_server(backend, url, log, *args)


def kill(server: Server) -> None:
    """SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)


def stop(server: Server) -> None:
    stop_server(server)


def log_problems(server: Server) -> list[str]:
    """Lines of the server log that show an unexpected error."""
    return [line for line in server.log().splitlines() if "Traceback" in line or " 500 " in line]


def wait_for_exit(process: subprocess.Popen, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return process.returncode
        time.sleep(0.05)
    return None
