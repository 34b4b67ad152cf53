"""The activity timeline and manual activities in-process, on both databases (API.md §4.2, §4.3,
§6.24): one order across calls, emails and manual activities, references checked inside the
workspace, scoring inputs marked, and keyset pages whose cost does not grow with depth — measured
on a 100,000-activity timeline of one account by what the database itself reports."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select, update

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.activities import manual, service, timeline
from abmhub.activities.schemas import ActivityItem
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, activities, activity_contacts, contacts, deals, users
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import DealItem
from abmhub.errors import MissingRecord, RecordsNotFound
from abmhub.ids import new_uuid7
from abmhub.tenancy import service as tenancy
from tests.support.statements import StatementCounter

US = 1_000_000
T0 = 1_770_000_000 * US  # 2026-02-02, an arbitrary fixed instant


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


@pytest.fixture
def user_id(database: Database, workspace_id: int) -> int:
    tenancy.create_key(database, workspace="acme", user_email="rep@acme.com")
    with database.read() as conn:
        return conn.execute(select(users.c.id).where(users.c.email == "rep@acme.com")).scalar_one()


def push_account(db: Database, workspace_id: int, domain: str) -> tuple[int, str]:
    accounts_service.push_accounts(
        db, workspace_id=workspace_id, items=[AccountItem.model_validate({"domain": domain, "name": domain})]
    )
    with db.read() as conn:
        row = conn.execute(
            select(accounts.c.id, accounts.c.uuid).where(
                accounts.c.workspace_id == workspace_id, accounts.c.domain == domain
            )
        ).one()
    return row.id, row.uuid


def push_call(db: Database, workspace_id: int, external_id: str, occurred: str, domain: str, email: str) -> None:
    item = ActivityItem.model_validate(
        {
            "externalActivityId": external_id,
            "activityType": "call",
            "occurredAt": occurred,
            "domain": domain,
            "ownerEmail": "rep@acme.com",
            "contacts": [{"email": email}],
        }
    )
    outcome = service.push_activities(db, workspace_id=workspace_id, items=[item])
    assert outcome.summary["created"] == 1, outcome


def uuid_of(db: Database, table: Any, **where: Any) -> str:
    with db.read() as conn:
        return conn.execute(select(table.c.uuid).where(*(table.c[k] == v for k, v in where.items()))).scalar_one()


def whole_timeline(db: Database, workspace_id: int, limit: int = 2, **scope: Any) -> list[timeline.TimelineEntry]:
    entries: list[timeline.TimelineEntry] = []
    after = None
    while True:
        page = timeline.timeline(
            db, workspace_id=workspace_id, query=timeline.TimelineQuery(**scope, after=after, limit=limit)
        )
        entries.extend(page.entries)
        if page.next_key is None:
            return entries
        after = page.next_key


# --- behaviour --------------------------------------------------------------------------------


def test_one_order_across_surfaces_newest_first_then_by_uuid(database, workspace_id, user_id):
    account_id, account_uuid = push_account(database, workspace_id, "acme.com")
    push_call(database, workspace_id, "c1", "2026-04-22T10:00:00Z", "acme.com", "john@acme.com")
    push_call(database, workspace_id, "c2", "2026-04-24T10:00:00Z", "acme.com", "john@acme.com")
    for subject, when in (("m1", 23), ("m2", 22), ("m3", 22)):
        manual.log_manual_activity(
            database,
            workspace_id=workspace_id,
            user_id=user_id,
            activity=manual.ManualActivity(
                occurred_us=T0 + when, subject=subject, description="", account_uuid=account_uuid
            ),
        )
    with database.read() as conn:
        expected = [
            row.uuid
            for row in conn.execute(
                select(activities.c.uuid)
                .where(activities.c.account_id == account_id)
                .order_by(activities.c.occurred_us.desc(), activities.c.uuid.desc())
            )
        ]
    got = whole_timeline(database, workspace_id, account_uuid=account_uuid)
    assert [e.row.uuid for e in got] == expected
    assert len(expected) == 5 and sorted(expected[-2:], reverse=True) == expected[-2:]
    assert [e.row.kind for e in got] == ["call", "call", "manual", "manual", "manual"]


def test_a_manual_activity_is_stored_with_its_references_and_marks_its_account(database, workspace_id, user_id):
    account_id, account_uuid = push_account(database, workspace_id, "acme.com")
    push_call(database, workspace_id, "c1", "2026-04-22T10:00:00Z", "acme.com", "john@acme.com")
    deals_service.push_deals(
        database, workspace_id=workspace_id, items=[DealItem.model_validate({"externalDealId": "d1", "name": "D"})]
    )
    deal_uuid = uuid_of(database, deals, external_deal_id="d1")
    contact_uuid = uuid_of(database, contacts, email="john@acme.com")
    with database.write() as tx:
        tx.conn.execute(update(accounts).values(score_dirty=False))
    counter = StatementCounter(database)
    entry = manual.log_manual_activity(
        database,
        workspace_id=workspace_id,
        user_id=user_id,
        activity=manual.ManualActivity(
            occurred_us=T0,
            subject="Booth chat",
            description="Met at the conference",
            category="CONFERENCE",
            account_uuid=account_uuid,
            deal_uuid=deal_uuid,
            contact_uuids=[contact_uuid, contact_uuid],
            sequence_id="3c90c3cc-0d44-4b50-8888-8dd25736052a",
        ),
    )
    assert counter.commits == 1, "one transaction"
    row = entry.row
    assert (row.kind, row.subject, row.description, row.category) == (
        "manual",
        "Booth chat",
        "Met at the conference",
        "CONFERENCE",
    )
    assert row.sequence_id == "3c90c3cc-0d44-4b50-8888-8dd25736052a" and row.domain is None
    assert row.owner_user_uuid == uuid_of(database, users, id=user_id)
    with database.read() as conn:
        stored = conn.execute(select(activities).where(activities.c.uuid == row.uuid)).one()
        links = conn.execute(
            select(activity_contacts.c.occurred_us).where(activity_contacts.c.activity_id == stored.id)
        ).all()
        dirty = conn.execute(select(accounts.c.score_dirty).where(accounts.c.id == account_id)).scalar_one()
    assert stored.account_id == account_id and stored.deal_id is not None and stored.external_activity_id is None
    assert [link.occurred_us for link in links] == [T0], "a contact named twice is linked once, with the time"
    assert dirty is True, "a manual activity is a scoring input of its account"
    # It is on all three timelines, and on Surface R's list of calls and emails it is not.
    for scope in ({"account_uuid": account_uuid}, {"deal_uuid": deal_uuid}, {"contact_uuid": contact_uuid}):
        assert row.uuid in [e.row.uuid for e in whole_timeline(database, workspace_id, **scope)], scope
    from abmhub.paging import PageRequest

    listed = service.list_activities(database, workspace_id=workspace_id, page=PageRequest(limit=100))
    assert [view.row.kind for view in listed.items] == ["call"]


def test_unknown_and_foreign_references_store_nothing(database, workspace_id, user_id):
    other = tenancy.create_workspace(database, name="other")
    _, foreign_account = push_account(database, other, "foreign.com")
    _, account_uuid = push_account(database, workspace_id, "acme.com")
    with database.read() as conn:
        before = conn.execute(select(func.count()).select_from(activities)).scalar_one()
    unknown = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    with pytest.raises(RecordsNotFound) as raised:
        manual.log_manual_activity(
            database,
            workspace_id=workspace_id,
            user_id=user_id,
            activity=manual.ManualActivity(
                occurred_us=T0,
                subject="s",
                description="d",
                account_uuid=foreign_account,
                deal_uuid=unknown,
                contact_uuids=[unknown],
            ),
        )
    assert raised.value.missing == [
        MissingRecord("account", foreign_account),
        MissingRecord("opportunity", unknown),
        MissingRecord("contact", unknown, 0),
    ]
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(activities)).scalar_one() == before
    with pytest.raises(RecordsNotFound):
        timeline.timeline(
            database, workspace_id=workspace_id, query=timeline.TimelineQuery(account_uuid=foreign_account)
        )
    assert whole_timeline(database, workspace_id, account_uuid=account_uuid) == []


def test_manual_activities_never_make_account_pushes_look_for_waiting_activities(database, workspace_id, user_id):
    # A manual activity without an account has no domain: it waits for nothing, so pushing
    # accounts keeps skipping the linking step (one existence check, no re-link UPDATE).
    manual.log_manual_activity(
        database,
        workspace_id=workspace_id,
        user_id=user_id,
        activity=manual.ManualActivity(occurred_us=T0, subject="s", description="d"),
    )
    counter = StatementCounter(database)
    push_account(database, workspace_id, "acme.com")
    assert not any(s.startswith("UPDATE ACTIVITIES") for s in counter.statements), counter.statements


def test_time_bounds_are_from_inclusive_to_exclusive(database, workspace_id, user_id):
    _, account_uuid = push_account(database, workspace_id, "acme.com")
    for offset in range(5):
        manual.log_manual_activity(
            database,
            workspace_id=workspace_id,
            user_id=user_id,
            activity=manual.ManualActivity(
                occurred_us=T0 + offset * US, subject=str(offset), description="", account_uuid=account_uuid
            ),
        )
    got = whole_timeline(database, workspace_id, account_uuid=account_uuid, from_us=T0 + US, to_us=T0 + 3 * US)
    assert [e.row.subject for e in got] == ["2", "1"]


# --- 100,000 activities for one account: keyset pages -------------------------------------------

ROWS = 100_000
LIMIT = 50


@pytest.fixture
def big_timeline(database, workspace_id) -> dict[str, Any]:
    return load_big_timeline(database, workspace_id)


def load_big_timeline(database: Database, workspace_id: int) -> dict[str, Any]:
    """One account, one deal and one contact, each with the same 100,000 activities (calls,
    emails and manual ones; four at each instant, so ties are decided by UUID), among 2,000
    other accounts. Rows are written directly (COPY on PostgreSQL): the point is reading them."""
    started = time.perf_counter()
    account_id, account_uuid = push_account(database, workspace_id, "big.com")
    deals_service.push_deals(
        database, workspace_id=workspace_id, items=[DealItem.model_validate({"externalDealId": "big", "name": "Big"})]
    )
    deal_uuid = uuid_of(database, deals, external_deal_id="big")
    push_call(database, workspace_id, "seed", "2026-01-01T00:00:00Z", "big.com", "ceo@big.com")
    contact_uuid = uuid_of(database, contacts, email="ceo@big.com")
    with database.read() as conn:
        contact_id = conn.execute(select(contacts.c.id).where(contacts.c.uuid == contact_uuid)).scalar_one()
        deal_id = conn.execute(select(deals.c.id).where(deals.c.uuid == deal_uuid)).scalar_one()
    others = [
        {
            "workspace_id": workspace_id,
            "rtp_aid": f"{i:024x}",
            "uuid": new_uuid7(),
            "name": f"Other {i}",
            "domain": f"other-{i}.com",
            "tags": [],
            "custom_fields": {},
            "created_us": T0,
            "change_us": T0,
        }
        for i in range(2000)
    ]
    kinds = ("call", "email", "manual")
    columns = (
        "workspace_id",
        "uuid",
        "kind",
        "occurred_us",
        "domain",
        "account_id",
        "deal_id",
        "subject",
        "created_us",
        "change_us",
    )
    rows = [
        (
            workspace_id,
            new_uuid7(),
            kinds[i % 3],
            T0 + (i // 4) * 60 * US,
            "big.com" if i % 3 != 2 else None,
            account_id,
            deal_id,
            f"activity {i}",
            T0,
            T0,
        )
        for i in range(ROWS)
    ]
    with database.write() as tx:
        tx.conn.execute(insert(accounts), others)
        if database.is_sqlite:
            tx.conn.execute(insert(activities), [dict(zip(columns, row, strict=True)) for row in rows])
        else:
            with (
                tx.conn.connection.driver_connection.cursor() as cursor,
                cursor.copy(f"COPY activities ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        tx.conn.execute(
            insert(activity_contacts).from_select(
                ["activity_id", "contact_id", "position", "occurred_us", "activity_uuid"],
                select(
                    activities.c.id, literal(contact_id), literal(0), activities.c.occurred_us, activities.c.uuid
                ).where(activities.c.deal_id == deal_id),
            )
        )
    database.refresh_statistics()
    return {
        "account_uuid": account_uuid,
        "deal_uuid": deal_uuid,
        "contact_uuid": contact_uuid,
        "load_s": time.perf_counter() - started,
    }


@contextmanager
def captured(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The timeline statements (the ones that ORDER BY the activity time) run meanwhile."""
    seen: list[tuple[str, Any]] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if "ORDER BY" in statement and "occurred_us DESC" in statement:
            seen.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", on_execute)


def page_cost(database: Database, statement: str, parameters: Any) -> dict[str, Any]:
    """What one run of a page's statement costs, as the database reports it.

    PostgreSQL: the plan (EXPLAIN ANALYZE) — whether it sorts, and how many rows its scans
    produced. SQLite: the plan (EXPLAIN QUERY PLAN) and the number of virtual-machine steps
    the statement took (a progress handler called every 100 steps), which grows with every
    row the statement reads.
    """
    with database.engine.connect() as conn:
        if database.is_sqlite:
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            raw: sqlite3.Connection = conn.connection.driver_connection
            steps = [0]

            def tick() -> int:
                steps[0] += 1
                return 0

            raw.set_progress_handler(tick, 100)
            try:
                conn.exec_driver_sql(statement, parameters).all()
            finally:
                raw.set_progress_handler(None, 100)
            return {"plan": plan, "work": steps[0], "sorts": "TEMP B-TREE" in plan}
        explained = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()
        root = explained[0]["Plan"]
        nodes: list[dict[str, Any]] = []
        stack = [root]
        while stack:
            node = stack.pop()
            nodes.append(node)
            stack.extend(node.get("Plans", []))
        scanned = sum(n.get("Actual Rows", 0) * n.get("Actual Loops", 1) for n in nodes if "Scan" in n["Node Type"])
        indexes = sorted({n.get("Index Name", "") for n in nodes if "Index" in n["Node Type"]})
        return {"plan": indexes, "work": scanned, "sorts": any(n["Node Type"] == "Sort" for n in nodes)}


def timed_page(database: Database, workspace_id: int, query: timeline.TimelineQuery) -> tuple[float, Any]:
    best = float("inf")
    page = None
    for _ in range(3):
        started = time.perf_counter()
        page = timeline.timeline(database, workspace_id=workspace_id, query=query)
        best = min(best, time.perf_counter() - started)
    return best, page


def deep_key(database: Database, workspace_id: int, depth: int, **scope: Any) -> tuple[int, str]:
    """The key of the entry at `depth` (counted with OFFSET once, outside the measured work)."""
    with database.read() as conn:
        account_id = conn.execute(select(accounts.c.id).where(accounts.c.uuid == scope["account_uuid"])).scalar_one()
        row = conn.execute(
            select(activities.c.occurred_us, activities.c.uuid)
            .where(activities.c.account_id == account_id)
            .order_by(activities.c.occurred_us.desc(), activities.c.uuid.desc())
            .offset(depth)
            .limit(1)
        ).one()
    return row.occurred_us, row.uuid


INDEXES = {
    "account_uuid": "ix_activities_account_timeline",
    "deal_uuid": "ix_activities_deal_timeline",
    "contact_uuid": "ix_activity_contacts_timeline",
}


def test_a_100k_timeline_pages_by_keyset_at_a_flat_cost(database, workspace_id, big_timeline, capsys):
    for scope, index in INDEXES.items():
        where = {scope: big_timeline[scope]}
        first_s, first = timed_page(database, workspace_id, timeline.TimelineQuery(**where, limit=LIMIT))
        assert len(first.entries) == LIMIT and first.next_key is not None
        with captured(database) as statements:
            timeline.timeline(database, workspace_id=workspace_id, query=timeline.TimelineQuery(**where, limit=LIMIT))
        first_cost = page_cost(database, *statements[0])
        # Pages in the middle of the timeline and near its end.
        for depth in (ROWS // 2, ROWS - 100):
            after = deep_key(database, workspace_id, depth, account_uuid=big_timeline["account_uuid"])
            deep_s, deep = timed_page(database, workspace_id, timeline.TimelineQuery(**where, after=after, limit=LIMIT))
            assert len(deep.entries) == LIMIT
            keys = [(e.row.occurred_us, e.row.uuid) for e in deep.entries]
            assert all(a > b for a, b in itertools.pairwise(keys)), "newest first, then by UUID"
            assert keys[0] < after, "strictly after the cursor"
            following = timeline.timeline(
                database,
                workspace_id=workspace_id,
                query=timeline.TimelineQuery(**where, after=deep.next_key, limit=LIMIT),
            )
            assert (following.entries[0].row.occurred_us, following.entries[0].row.uuid) < keys[-1]
            with captured(database) as statements:
                timeline.timeline(
                    database, workspace_id=workspace_id, query=timeline.TimelineQuery(**where, after=after, limit=LIMIT)
                )
            deep_cost = page_cost(database, *statements[0])
            with capsys.disabled():
                print(
                    f"\n[{database.backend} {scope}] 100k timeline (loaded in {big_timeline['load_s']:.1f} s): "
                    f"first page {first_s * 1000:.2f} ms, page at depth {depth:,} {deep_s * 1000:.2f} ms; "
                    f"work first {first_cost['work']}, deep {deep_cost['work']}; plan {deep_cost['plan']}"
                )
            assert index in str(deep_cost["plan"]), deep_cost
            if database.is_sqlite:
                assert not deep_cost["sorts"] and not first_cost["sorts"], f"the index gives the order: {deep_cost}"
            # The page at depth reads about as much as the first page: keyset, not OFFSET.
            assert deep_cost["work"] <= 3 * first_cost["work"] + 50, (scope, depth, first_cost, deep_cost)
            assert deep_cost["work"] < ROWS / 100, (scope, depth, deep_cost)
