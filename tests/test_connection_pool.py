"""PostgreSQL's pooled connections: pinged only when in doubt, replaced when the server dropped them.

A ping on every checkout was a round trip of its own (~0.2 ms, twice a request). The pool
pings a connection only after it sat idle for `PING_AFTER_IDLE_S`, or once some connection
has found the server gone (db/engine.py); reads on the driver's cursor run again on a new
connection when theirs was dropped (db/queries.py, `DriverReader`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.db import engine as engine_module
from abmhub.db.engine import PING_AFTER_IDLE_S, Database
from abmhub.tenancy import service as tenancy
from abmhub.web.paging import page_body, page_request
from tests.support.postgres import drop_every_connection

pytestmark = pytest.mark.postgres


def _counting_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    ping = db.engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_just_used_is_not_pinged_and_an_idle_one_is(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _counting_pings(postgres, monkeypatch)
    for _ in range(5):
        with postgres.read() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == [], "a connection checked in a moment ago was pinged"

    clock = engine_module.time.monotonic
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock() + PING_AFTER_IDLE_S + 1)
    with postgres.read() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == [1], f"a connection idle for over {PING_AFTER_IDLE_S} s should be pinged once, pinged {len(pings)}"


def test_reads_and_writes_go_on_after_the_server_dropped_every_connection(postgres: Database) -> None:
    workspace_id = tenancy.create_workspace(postgres, name="pool")
    key = tenancy.create_key(postgres, workspace="pool", user_email="pool@example.com")
    items = [AccountItem(domain=f"pool{i}.example.com", name=f"Pool {i}") for i in range(5)]
    accounts_service.push_accounts(postgres, workspace_id=workspace_id, items=items)
    first, _ = accounts_service.list_accounts(postgres, workspace_id=workspace_id, page=page_request("2", None, None))
    cursor = page_body(first, [])["nextCursor"]
    # Several pooled connections, all used a moment ago: none will be pinged for its age.
    connections = [postgres.engine.connect() for _ in range(3)]
    for conn in connections:
        conn.execute(text("SELECT 1"))
        conn.close()

    assert drop_every_connection(postgres) >= 3
    # A read on the driver's cursor: its connection is dead; it runs again on a new one.
    found = tenancy.authenticate(postgres, key)
    assert found is not None and found.workspace_id == workspace_id
    # The death was noted: every other pooled connection is pinged, found dead and replaced.
    later, _ = accounts_service.list_accounts(postgres, workspace_id=workspace_id, page=page_request("2", cursor, None))
    assert len(later.items) == 2
    outcome = accounts_service.push_accounts(
        postgres, workspace_id=workspace_id, items=[AccountItem(domain="after.example.com", name="After")]
    )
    assert outcome.summary["created"] == 1, outcome.summary


def test_a_write_after_a_quiet_spell_meets_a_fresh_connection(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dropped the pool's connections while nothing ran; a write after that is
    the first to check one out, and its connection (idle long enough) is pinged and replaced."""
    workspace_id = tenancy.create_workspace(postgres, name="quiet")
    with postgres.read() as conn:
        conn.execute(text("SELECT 1"))
    assert drop_every_connection(postgres) >= 1
    clock = engine_module.time.monotonic
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock() + PING_AFTER_IDLE_S + 1)
    outcome = accounts_service.push_accounts(
        postgres, workspace_id=workspace_id, items=[AccountItem(domain="quiet.example.com", name="Quiet")]
    )
    assert outcome.summary["created"] == 1, outcome.summary
