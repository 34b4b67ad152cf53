"""Account records (GET /accounts, GET /segments/:id/accounts) are byte for byte what they were.

The page path reads `tags` and `custom_fields` as JSON text and unpacks rows by position
(`service.record_columns`, `router.account_records`). This test keeps a copy of the path as
it was before (rows through SQLAlchemy's JSON type, attribute access, an expanding IN for
the segment memberships) and compares the serialized records over varied rows, on both
databases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from abmhub.accounts import service as accounts_service
from abmhub.accounts.router import account_page_body
from abmhub.accounts.schemas import AccountItem
from abmhub.custom_fields import service as custom_fields_service
from abmhub.custom_fields.service import active_fields
from abmhub.db.engine import Database
from abmhub.db.queries import DriverQuery, DriverReader
from abmhub.db.readers import SyncReader, open_pool_reader
from abmhub.db.tables import accounts, segment_members, segments
from abmhub.paging import PageRequest
from abmhub.segments import service as segments_service
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import format_us

# --- the record path as it was (a copy, not imported) ---------------------------------------

_OLD_RECORD_COLUMNS = (
    accounts.c.id,
    accounts.c.rtp_aid,
    accounts.c.uuid,
    accounts.c.external_id,
    accounts.c.name,
    accounts.c.domain,
    accounts.c.short_name,
    accounts.c.linkedin_url,
    accounts.c.tags,
    accounts.c.custom_fields,
    accounts.c.account_score,
    accounts.c.journey_stage,
    accounts.c.advertising_score,
    accounts.c.website_score,
    accounts.c.g2_score,
    accounts.c.bombora_score,
    accounts.c.change_us,
)


def _old_format_us(us: int) -> str:
    from abmhub.timefmt import _date_and_time, _utc_fields

    *fields, micros = _utc_fields(us)
    return f"{_date_and_time(*fields)}.{micros // 1000:03d}Z"


def _old_account_record(row: Any, segment_ids: dict[int, list[str]], field_keys: list[str]) -> dict[str, Any]:
    stored = row.custom_fields or {}
    return {
        "rtp_aid": row.rtp_aid,
        "id": row.uuid,
        "externalId": row.external_id,
        "name": row.name,
        "domain": row.domain,
        "shortName": row.short_name,
        "linkedinUrl": row.linkedin_url,
        "tags": row.tags or [],
        "rtp_account_score": row.account_score,
        "rtp_journey_stage": row.journey_stage,
        "rtp_advertising_activity_score": row.advertising_score,
        "rtp_website_intent_score": row.website_score,
        "rtp_g2_intent_score": row.g2_score,
        "rtp_bombora_intent_score": row.bombora_score,
        "rtp_last_account_date": _old_format_us(row.change_us),
        "customFields": {key: stored.get(key) for key in field_keys},
        "segmentIds": segment_ids.get(row.id, []),
    }


def _old_records(db: Database, workspace_id: int, segment_id: str | None = None) -> list[dict[str, Any]]:
    with db.read() as conn:
        query = select(*_OLD_RECORD_COLUMNS).where(accounts.c.workspace_id == workspace_id)
        if segment_id is not None:
            members = (
                select(segment_members.c.account_id)
                .join(segments, segments.c.id == segment_members.c.segment_id)
                .where(segments.c.segment_id == segment_id)
            )
            query = query.where(accounts.c.id.in_(members))
        rows = conn.execute(query.order_by(accounts.c.rtp_aid)).all()
        segment_ids: dict[int, list[str]] = {}
        pairs = conn.execute(
            select(segment_members.c.account_id, segments.c.segment_id)
            .join(segments, segments.c.id == segment_members.c.segment_id)
            .where(segment_members.c.account_id.in_([row.id for row in rows]))
            .order_by(segments.c.segment_id)
        ).all()
        for account_id, public_id in pairs:
            segment_ids.setdefault(account_id, []).append(public_id)
        field_keys = list(active_fields(conn, workspace_id))
    return [_old_account_record(row, segment_ids, field_keys) for row in rows]


def _new_records(db: Database, workspace_id: int, limit: int, segment_id: str | None = None) -> list[dict[str, Any]]:
    """Every record, through the page path, `limit` at a time (one delta-sync pass)."""
    records: list[dict[str, Any]] = []
    page = PageRequest(limit=limit)
    filters = accounts_service.AccountFilter(segment_id=segment_id)
    while True:
        found, extras = accounts_service.list_accounts(db, workspace_id=workspace_id, page=page, filters=filters)
        records.extend(account_page_body(found, extras)["data"])
        if not found.has_next:
            return records
        page = PageRequest(limit=limit, after=found.last_key, sync_us=found.sync_us)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)  # the bytes of web.responses.JSONBytes


# --- varied data ----------------------------------------------------------------------------

FIELDS = [
    ("Note", "singleLineText", []),
    ("Story", "multiLineText", []),
    ("Tier", "singleSelection", ["gold", "silver", "bronze"]),
    ("Regions", "multiSelection", ["emea", "na", "apac"]),
    ("Employees", "number", []),
    ("Renewal", "date", []),
    ("Legacy", "singleLineText", []),  # deactivated after the push: its values stay stored, hidden
]

TEXTS = [
    "",
    "plain",
    "é and 日本 and 🦆",
    'quote " backslash \\ slash /',
    "ctrl \n\t\r\x01\x1f\x7f",
    "\u2028\u2029 <>&'",
]
NUMBERS = [30, 30.5, 0, -0.0, 0.1 + 0.2, 1e20, 1.5e-7, -12, 2**53 + 1, 2**63 - 1, -(2**63), 123456789.125]


def _item(i: int) -> AccountItem:
    fields: dict[str, Any] = {}
    if i % 9 != 0:  # every ninth: no custom fields at all
        fields = {
            "NOTE_C": TEXTS[i % len(TEXTS)],
            "STORY_C": TEXTS[(i + 1) % len(TEXTS)] if i % 2 else None,
            "TIER_C": ["gold", "silver", "bronze"][i % 3],
            "REGIONS_C": [["emea"], ["na", "apac"], []][i % 3],
            "EMPLOYEES_C": NUMBERS[i % len(NUMBERS)],
            "RENEWAL_C": "2026-04-30" if i % 4 else "2026-04-30T10:00:00.000Z",
            "LEGACY_C": f"old {i}",
        }
        for drop in range(i % 4):  # some keys missing
            fields.pop(list(fields)[drop + 1], None)
        if i % 5 == 0:  # stored in another order than the active fields'
            fields = dict(reversed(list(fields.items())))
    tags = [None, [], ["a"], ["smb", "latam", "target-fy26"], TEXTS[2:], [TEXTS[i % len(TEXTS)]]][i % 6]
    return AccountItem.model_validate(
        {
            "domain": f"co-{i}.example.com",
            "name": TEXTS[i % len(TEXTS)] or f"Co {i}",
            "externalId": f"ext-{i}" if i % 3 else None,
            "shortName": TEXTS[(i + 2) % len(TEXTS)] if i % 2 else None,
            "linkedinUrl": f"https://linkedin.com/company/co-{i}" if i % 4 == 1 else None,
            "tags": tags,
            "customFields": fields,
        }
    )


# Stored values no push writes, but the old code answered for: JSON null, falsy JSON, odd shapes.
ODD_STORED = [
    {"tags": None, "custom_fields": None},
    {"tags": {}, "custom_fields": {}},
    {"tags": "solo", "custom_fields": {"EMPLOYEES_C": 30}},
    {"tags": False, "custom_fields": {"EMPLOYEES_C": 30.5, "UNKNOWN_C": 1}},
    {"tags": [], "custom_fields": {"NOTE_C": None}},
    {"tags": ["x", "y"], "custom_fields": {"REGIONS_C": ["na"], "NOTE_C": "n"}},
]
# Instants at the edges of what format_us writes, and ordinary ones.
CHANGE_US = [
    -1,
    0,
    999,
    -62_135_596_800_000_000,
    -62_135_596_800_000_001,
    253_402_300_800_000_000,
    1_777_543_200_123_999,
]


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="records")


def _varied_accounts(database: Database, workspace_id: int) -> list[Any]:
    """60 accounts of every shape, in two segments (returned), some stored values odd."""
    for label, label_type, options in FIELDS:
        custom_fields_service.create_field(
            database, workspace_id=workspace_id, label=label, label_type=label_type, description=None, options=options
        )
    outcome = accounts_service.push_accounts(database, workspace_id=workspace_id, items=[_item(i) for i in range(60)])
    assert outcome.summary["created"] == 60, outcome.summary
    custom_fields_service.deactivate_field(database, workspace_id=workspace_id, key="LEGACY_C")

    seg_a = segments_service.create_segment(
        database, workspace_id=workspace_id, name="A", type="static", status="active"
    )
    seg_b = segments_service.create_segment(
        database, workspace_id=workspace_id, name="B", type="static", status="active"
    )
    with database.read() as conn:
        rtp_aids = list(
            conn.execute(
                select(accounts.c.rtp_aid).where(accounts.c.workspace_id == workspace_id).order_by(accounts.c.rtp_aid)
            ).scalars()
        )
    segments_service.add_members(
        database, workspace_id=workspace_id, segment_id=seg_a.segment_id, rtp_aids=rtp_aids[::2]
    )
    segments_service.add_members(
        database, workspace_id=workspace_id, segment_id=seg_b.segment_id, rtp_aids=rtp_aids[::3]
    )

    with database.write(workspace_id) as tx:
        for i, values in enumerate(ODD_STORED):
            tx.conn.execute(
                update(accounts)
                .where(accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid == rtp_aids[i * 7])
                .values(**values)
            )
        for i, us in enumerate(CHANGE_US):
            tx.conn.execute(
                update(accounts)
                .where(accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid == rtp_aids[i * 5 + 1])
                .values(change_us=us, account_score=i * 13, journey_stage=["", "aware", "decision"][i % 3], g2_score=i)
            )

    return [seg_a, seg_b]


def test_account_records_are_byte_identical_to_the_old_path(database: Database, workspace_id: int) -> None:
    seg_a, seg_b = _varied_accounts(database, workspace_id)
    old = _old_records(database, workspace_id)
    assert len(old) == 60
    assert sum(1 for r in old if r["segmentIds"]) > 20 and any(len(r["segmentIds"]) == 2 for r in old)
    assert any(isinstance(r["customFields"].get("EMPLOYEES_C"), float) for r in old)
    assert not any("LEGACY_C" in r["customFields"] for r in old)
    expected = _dumps(old)
    for limit in (1, 7, 100):
        assert _dumps(_new_records(database, workspace_id, limit)) == expected, f"limit {limit}"
    # The edge instants were all formatted (and matched above).
    assert {r["rtp_last_account_date"] for r in old} >= {format_us(us) for us in CHANGE_US}

    # A segment's members (GET /segments/:id/accounts) go the same way.
    for seg in (seg_a, seg_b):
        members = _dumps(_old_records(database, workspace_id, seg.segment_id))
        assert _dumps(_new_records(database, workspace_id, 5, seg.segment_id)) == members


def test_the_app_reader_reads_later_pages_byte_for_byte(database: Database, workspace_id: int) -> None:
    """The server reads a later page with its key (`later_page_of_key`) through the app's
    reader (db/readers.py), on PostgreSQL with psycopg's async driver on connections of its
    own: they must read what the engine's do (the JSON loader, the types), into the same bytes."""
    _varied_accounts(database, workspace_id)
    expected = _dumps(_old_records(database, workspace_id))
    dialect = database.engine.dialect.name
    key = tenancy.key_lookup(tenancy.create_key(database, workspace="records", user_email="reader@example.com"))

    async def records(limit: int) -> list[dict[str, Any]]:
        async with open_pool_reader(database) as pool_reader:
            reader = pool_reader or SyncReader(database.engine)
            found, extras = accounts_service.list_accounts(
                database, workspace_id=workspace_id, page=PageRequest(limit=limit)
            )
            records = account_page_body(found, extras)["data"]
            while found.has_next:
                page = PageRequest(limit=limit, after=found.last_key, sync_us=found.sync_us)
                read = await reader.run(accounts_service.later_page_of_key(dialect, key, page))
                assert read is not None, "the key was not found with its page"
                found, extras = read[1]
                records.extend(account_page_body(found, extras)["data"])
            return records

    for limit in (1, 7, 100):
        assert _dumps(asyncio.run(records(limit))) == expected, f"limit {limit}"


def test_an_empty_page_has_no_records(database: Database, workspace_id: int) -> None:
    found, extras = accounts_service.list_accounts(database, workspace_id=workspace_id, page=PageRequest(limit=10))
    assert account_page_body(found, extras)["data"] == []


def _recording_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[DriverQuery, Any]]:
    """Every (statement, parameters) read through `DriverReader.snapshot` from now on."""
    reads: list[tuple[DriverQuery, Any]] = []
    snapshot = DriverReader.snapshot

    def recorded(reader: DriverReader, given: Any) -> Any:
        reads.extend(given)
        return snapshot(reader, given)

    monkeypatch.setattr(DriverReader, "snapshot", recorded)
    return reads


def test_a_plain_page_walks_the_rtp_aid_index_before_the_table_is_first_analyzed(
    database: Database, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync followed at once by a pull: no statistics yet. PostgreSQL estimated a few
    rows and sorted every account after the cursor on each page (80 ms at 100,000 accounts)."""
    if database.backend != "postgresql":
        pytest.skip("a PostgreSQL planner question")

    from abmhub.web.paging import page_body, page_request

    with database.write(workspace_id) as tx:  # 100,000 accounts in one statement, no ANALYZE after
        tx.conn.exec_driver_sql(
            "INSERT INTO accounts (workspace_id, rtp_aid, uuid, name, domain, tags, custom_fields, created_us, change_us) "
            "SELECT %s, lpad(to_hex(g), 24, '0'), gen_random_uuid()::text, 'Bulk ' || g, 'bulk' || g || '.example.com', "
            "'[]', '{}', %s, %s FROM generate_series(1, 100000) AS g",
            (workspace_id, tx.now_us, tx.now_us),
        )
    first, _ = accounts_service.list_accounts(database, workspace_id=workspace_id, page=page_request("100", None, None))
    reads = _recording_reads(monkeypatch)
    cursor = page_body(first, [])["nextCursor"]
    later, _ = accounts_service.list_accounts(
        database, workspace_id=workspace_id, page=page_request("100", cursor, None)
    )
    assert len(later.items) == 100 and later.has_next
    pages = [(query, parameters) for query, parameters in reads if "FROM accounts" in str(query.statement)]
    assert len(pages) == 1, [str(query.statement) for query, _ in reads]
    # The server's own read of it: the page of the key's workspace, read with the key's lookup.
    key = tenancy.create_key(database, workspace="records", user_email="plan@example.com")
    steps = accounts_service.later_page_of_key("postgresql", tenancy.key_lookup(key), page_request("100", cursor, None))
    _, by_key = next(steps)
    for statement, parameters in (pages[0], by_key):
        with database.read() as conn:
            plan = statement.explain(conn, parameters)
        assert "Sort" not in plan and "uq_accounts_workspace_id_rtp_aid" in plan, (
            f"a page should walk the (workspace_id, rtp_aid) index in order, not sort:\n{plan}"
        )


def test_a_page_turns_sorting_off_for_its_own_statement_only(database: Database, workspace_id: int) -> None:
    """`enable_sort = off` is for the page's own index walk. Left in force for the segment
    memberships query after it, that query's sort was priced as disabled (10^10), far past
    `jit_above_cost`: PostgreSQL JIT-compiled it on every page, ~40 ms of a 45 ms page
    (benchmarks/dashboard.py, its `/api/v1/accounts?limit=50` baseline)."""
    if database.backend != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    statement = accounts_service._plain_page("postgresql", after=False, changed=False)
    with database.read() as conn:
        rows = statement.rows(conn, {"ws": workspace_id, "n": 10})
        setting = conn.exec_driver_sql("SHOW enable_sort").scalar_one()
    assert rows == []
    assert setting == "on", f"after the page's statement, its transaction still has enable_sort = {setting}"


@pytest.mark.parametrize("spread", [1, 4], ids=["dense ids", "sparse ids"])
def test_the_memberships_of_a_later_page_are_read_by_its_ids(
    database: Database, workspace_id: int, monkeypatch: pytest.MonkeyPatch, spread: int
) -> None:
    """The memberships query of a page: the range of the accounts' ids when they are dense
    (a scan's pages mostly are), else the ids themselves (and their range, so that
    PostgreSQL walks the (segment_id, account_id) key of each segment); no sort either way:
    the pairs come back in any order and each account's segment ids are sorted after. With
    `spread` 4, another workspace's accounts take three ids of every four."""
    from abmhub.web.paging import page_body, page_request

    other = tenancy.create_workspace(database, name="interleaved")
    for i in range(30):
        item = AccountItem(domain=f"plain{i}.example.com", name=f"Plain {i}")
        accounts_service.push_accounts(database, workspace_id=workspace_id, items=[item])
        neighbours = [AccountItem(domain=f"other{i}-{j}.example.com", name="Other") for j in range(spread - 1)]
        if neighbours:
            accounts_service.push_accounts(database, workspace_id=other, items=neighbours)
    made = [
        segments_service.create_segment(database, workspace_id=workspace_id, name=name, type="static", status="active")
        for name in ("A", "B", "C")
    ]
    with database.read() as conn:
        rtp_aids = list(
            conn.execute(
                select(accounts.c.rtp_aid).where(accounts.c.workspace_id == workspace_id).order_by(accounts.c.rtp_aid)
            ).scalars()
        )
    for segment in made[:2]:
        segments_service.add_members(
            database, workspace_id=workspace_id, segment_id=segment.segment_id, rtp_aids=rtp_aids
        )
    segments_service.add_members(  # the third segment: every other account
        database, workspace_id=workspace_id, segment_id=made[2].segment_id, rtp_aids=rtp_aids[::2]
    )
    database.refresh_statistics()
    first, _ = accounts_service.list_accounts(database, workspace_id=workspace_id, page=page_request("10", None, None))
    reads = _recording_reads(monkeypatch)
    cursor = page_body(first, [])["nextCursor"]
    later, extras = accounts_service.list_accounts(
        database, workspace_id=workspace_id, page=page_request("10", cursor, None)
    )
    every, some = sorted(s.segment_id for s in made), sorted(s.segment_id for s in made[:2])
    assert [extras.segment_ids.get(row[0]) for row in later.items] == [every, some] * 5
    memberships = [(query, parameters) for query, parameters in reads if "FROM segment_members" in str(query.statement)]
    assert len(memberships) == 1
    assert ("low" in memberships[0][1]) == (spread == 1), f"dense ids read by range, sparse by the ids: {memberships}"
    if database.backend != "postgresql":
        return
    with database.read() as conn:
        plan = memberships[0][0].explain(conn, memberships[0][1])
    assert "Sort" not in plan and "10000000000" not in plan, plan
