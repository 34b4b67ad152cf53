"""Surface V: the Reevo-compatible activity API under /api/v2 (API.md §0, §1.7, §4, §6.24–§6.28;
vendor page seeds/reevo-log-manual-activity.txt).

Black-box, against a real `abmhub serve` on both databases. Written from the contract: auth
variants, FastAPI-style 422s, record_not_found per field and across workspaces, the exact
ActivityObjectRecord, the timeline (scopes, time bounds, limits, cursor pages) holding the
calls and emails pushed on Surface R, and manual activities as sales engagement in scoring.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from contract_helpers import (
    UUID_RE,
    account,
    activity,
    all_activities,
    all_deals,
    client_for,
    deal,
    describe,
    envelope,
    get_account,
    iso_days_ago,
    no_stack_trace,
    ok,
    push,
    push_activities_ok,
    push_deals_ok,
    push_ok,
    run_score,
    unique_domain,
    unique_name,
)

CATEGORIES = ["TEXT", "LINKEDIN", "SOCIAL_MEDIA", "EVENT", "CONFERENCE", "WEBINAR", "CALL", "OTHER"]
RECORD_KEYS = {"id", "created_at", "updated_at", "attributes", "record_type", "metadata"}
ATTRIBUTE_TYPES = {
    "type": "enum",
    "sub_type": "enum",
    "status": "enum",
    "priority": "enum",
    "display_name": "string",
    "owner_user_id": "record_reference",
    "ended_at": "timestamp",
    "badge_status": "string",
    "location": "string",
}
UNKNOWN = "3c90c3cc-0d44-4b50-8888-8dd25736052a"  # the vendor page's example UUID


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def v(server, workspace) -> Iterator[httpx.Client]:
    """A Surface V client, authenticated with `Authorization: Bearer <key>`."""
    with httpx.Client(
        base_url=f"{server.base_url}/api/v2", headers={"Authorization": f"Bearer {workspace.key}"}, timeout=30
    ) as client:
        yield client


def v_client(server, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base_url}/api/v2", headers=headers, timeout=30)


def instant(text: str) -> datetime:
    """An ISO 8601 timestamp of a response as an aware datetime (any fraction, `Z` or offset)."""
    assert isinstance(text, str), text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, f"timestamps carry their offset: {text!r}"
    return moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(
    activity_time: str = "2026-04-22T10:30:00Z",
    subject: str | None = None,
    description: str = "Logged from the CRM",
    category: str | None = None,
    **references: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "activity_time": activity_time,
        "subject": subject or unique_name("Subject"),
        "description": description,
    }
    if category is not None:
        metadata["category"] = category
    return {"attributes": {"metadata": metadata, **references}}


def detail_errors(r: httpx.Response, status: int = 422) -> list[dict[str, Any]]:
    """Assert a FastAPI-style validation error (§4.1); return its detail items."""
    assert r.status_code == status, describe(r)
    assert "application/json" in r.headers.get("content-type", ""), describe(r)
    payload = r.json()
    assert set(payload) == {"detail"}, f"Surface V errors are {{detail}} only, never the v1 envelope: {describe(r)}"
    items = payload["detail"]
    assert isinstance(items, list) and items, describe(r)
    for item in items:
        assert {"type", "loc", "msg", "input"} <= set(item), f"detail items carry type, loc, msg, input: {item}"
        assert isinstance(item["type"], str) and isinstance(item["msg"], str) and item["msg"], item
        assert isinstance(item["loc"], list) and item["loc"], item
    no_stack_trace(r)
    return items


def item_at(items: list[dict[str, Any]], *loc: Any) -> dict[str, Any]:
    found = [i for i in items if i["loc"] == list(loc)]
    assert found, f"no detail item at loc {list(loc)}; got {items}"
    return found[0]


def detail(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, describe(r)
    assert r.json() == {"detail": text}, describe(r)


def log_raw(v: httpx.Client, payload: Any) -> httpx.Response:
    return v.post("/activity", json=payload)


def log(v: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    """POST /activity that must succeed: 201 and `{data: ActivityObjectRecord}`; return the record."""
    r = log_raw(v, payload)
    assert r.status_code == 201, describe(r)
    answer = r.json()
    assert set(answer) == {"data"}, describe(r)
    assert_record(answer["data"])
    return answer["data"]


def assert_record(record: dict[str, Any]) -> None:
    """The ActivityObjectRecord of §4.2: exact keys, typed attribute values."""
    assert set(record) == RECORD_KEYS, f"record keys: {sorted(record)}"
    assert UUID_RE.match(record["id"]), record
    assert record["record_type"] == "activity", record
    instant(record["created_at"])
    instant(record["updated_at"])
    attributes = record["attributes"]
    assert set(attributes) == set(ATTRIBUTE_TYPES), f"attribute keys: {sorted(attributes)}"
    for name, value_type in ATTRIBUTE_TYPES.items():
        typed = attributes[name]
        assert set(typed) == {"value", "value_type"}, f"{name} is a typed value {{value, value_type}}: {typed}"
        assert typed["value_type"] == value_type, f"{name}.value_type: {typed}"
    instant(attributes["ended_at"]["value"])


def value(record: dict[str, Any], name: str) -> Any:
    return record["attributes"][name]["value"]


def query_raw(v: httpx.Client, **payload: Any) -> httpx.Response:
    return v.post("/activity/_query", json=payload)


def query(v: httpx.Client, **payload: Any) -> dict[str, Any]:
    r = query_raw(v, **payload)
    assert r.status_code == 200, describe(r)
    page = r.json()
    assert set(page) == {"data", "next_cursor"}, describe(r)
    assert isinstance(page["data"], list), describe(r)
    assert page["next_cursor"] is None or (isinstance(page["next_cursor"], str) and page["next_cursor"]), describe(r)
    for record in page["data"]:
        assert_record(record)
    return page


def whole_timeline(v: httpx.Client, limit: int = 200, **scope: Any) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; assert no page is empty before the end and no record repeats."""
    records: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        page = query(v, **scope, limit=limit, **({"cursor": cursor} if cursor else {}))
        records.extend(page["data"])
        if page["next_cursor"] is None:
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), f"a record came twice: {ids}"
            return records
        assert len(page["data"]) == limit, "only the last page may be short"
        cursor = page["next_cursor"]
    raise AssertionError("the timeline did not end within 200 pages")


def order_key(record: dict[str, Any]) -> tuple[datetime, str]:
    return instant(value(record, "ended_at")), record["id"]


def assert_newest_first(records: list[dict[str, Any]]) -> None:
    """§6.24: newest first by activity time, then by id descending."""
    keys = [order_key(r) for r in records]
    assert keys == sorted(keys, reverse=True), f"timeline order: {[(r['id'], value(r, 'ended_at')) for r in records]}"


def new_account(api: httpx.Client, domain: str | None = None) -> dict[str, Any]:
    """Push an account; return its Surface R record (with its UUID `id`)."""
    domain = domain or unique_domain("v")
    push_ok(api, [account(domain)])
    return get_account(api, domain)


def contact_ids_by_email(api: httpx.Client) -> dict[str, str]:
    return {c["email"]: c["id"] for a in all_activities(api) for c in a["contacts"]}


def new_deal(api: httpx.Client) -> dict[str, Any]:
    item = deal()
    push_deals_ok(api, [item])
    found = [d for d in all_deals(api) if d["externalDealId"] == item["externalDealId"]]
    assert len(found) == 1
    return found[0]


# --------------------------------------------------------------------------- health, auth, routes


def test_health_needs_no_key(server):
    with v_client(server, {}) as anon:
        r = anon.get("/health")
    assert r.status_code == 200, describe(r)
    assert r.json() == {"data": {"status": "healthy"}}


def test_a_missing_key_is_not_authenticated_on_every_route(server):
    with v_client(server, {}) as anon:
        detail(anon.post("/activity", json=body()), 401, "Not authenticated")
        detail(anon.post("/activity/_query", json={"account_id": UNKNOWN}), 401, "Not authenticated")
        detail(anon.get(f"/activity/{UNKNOWN}"), 401, "Not authenticated")
    for headers in (
        {"Authorization": "Bearer"},
        {"Authorization": ""},
        {"X-Api-Key": ""},
        {"Authorization": "Basic abc"},
    ):
        with v_client(server, headers) as client:
            detail(client.post("/activity", json=body()), 401, "Not authenticated")


def test_an_unknown_or_revoked_key_is_invalid(server, cli, new_workspace):
    ws = new_workspace()
    for headers in ({"Authorization": "Bearer " + "x" * 64}, {"X-Api-Key": "x" * 64}):
        with v_client(server, headers) as client:
            detail(client.post("/activity", json=body()), 401, "Invalid API key")
            detail(client.get(f"/activity/{UNKNOWN}"), 401, "Invalid API key")
    proc = cli("keys", "create", "--workspace", ws.name, "--user", ws.user_email, "--quiet")
    assert proc.returncode == 0, proc.stderr
    with v_client(server, {"Authorization": f"Bearer {ws.key}"}) as old:
        detail(old.post("/activity/_query", json={"account_id": UNKNOWN}), 401, "Invalid API key")
    with v_client(server, {"Authorization": f"Bearer {proc.stdout.strip()}"}) as new:
        detail_errors(new.post("/activity/_query", json={"account_id": UNKNOWN}))  # authenticated now


def test_bearer_and_x_api_key_both_work_and_the_key_is_the_surface_r_key(server, api, workspace):
    acct = new_account(api)
    for headers in (
        {"Authorization": f"Bearer {workspace.key}"},
        {"Authorization": f"bearer {workspace.key}"},
        {"X-Api-Key": workspace.key},
    ):
        with v_client(server, headers) as client:
            log(client, body(account_id=acct["id"]))
    with v_client(server, {"Authorization": f"Bearer {workspace.key}"}) as client:
        assert len(whole_timeline(client, account_id=acct["id"])) == 3


def test_authentication_comes_before_validation(server):
    with v_client(server, {}) as anon:
        detail(
            anon.post("/activity", content=b"{not json", headers={"Content-Type": "application/json"}),
            401,
            "Not authenticated",
        )
        detail(anon.post("/activity/_query", json={}), 401, "Not authenticated")


def test_unknown_routes_answer_in_surface_v_shape(server, v):
    for r in (v.get("/nope"), v.post("/activities", json={}), v.get("/activity"), v.delete(f"/activity/{UNKNOWN}")):
        assert r.status_code in (404, 405), describe(r)
        payload = r.json()
        assert set(payload) == {"detail"} and isinstance(payload["detail"], str), f"not the v1 envelope: {describe(r)}"
    with v_client(server, {}) as anon:
        r = anon.get("/nope")
        assert r.status_code == 404 and set(r.json()) == {"detail"}, describe(r)
    # Surface R keeps its own envelope.
    with client_for(server, None) as r_anon:
        r = r_anon.get("/nope")
        assert envelope(r, 404)["message"] == "Cannot GET /api/v1/nope"


# --------------------------------------------------------------------------- POST /activity


def test_logging_returns_201_and_the_record_exactly(v, api):
    acct = new_account(api)
    before = datetime.now(UTC) - timedelta(seconds=5)
    sent = body(
        activity_time="2026-04-22T10:30:00Z",
        subject="Met at the booth",
        description="Talked about renewal",
        category="CONFERENCE",
        account_id=acct["id"],
    )
    record = log(v, sent)
    attrs = record["attributes"]
    assert attrs["type"] == {"value": "MANUAL_ACTIVITY", "value_type": "enum"}
    assert attrs["sub_type"] == {"value": "CONFERENCE", "value_type": "enum"}
    assert attrs["status"] == {"value": "COMPLETED", "value_type": "enum"}
    assert attrs["priority"] == {"value": None, "value_type": "enum"}
    assert attrs["display_name"] == {"value": "Met at the booth", "value_type": "string"}
    assert attrs["badge_status"] == {"value": None, "value_type": "string"}
    assert attrs["location"] == {"value": None, "value_type": "string"}
    assert instant(attrs["ended_at"]["value"]) == datetime(2026, 4, 22, 10, 30, tzinfo=UTC)
    owner = attrs["owner_user_id"]["value"]
    assert set(owner) == {"related_record_id", "related_record_type"}, owner
    assert owner["related_record_type"] == "user" and UUID_RE.match(owner["related_record_id"]), owner
    assert record["metadata"] is None, "manual activities are lean cards"
    assert record["record_type"] == "activity"
    created = instant(record["created_at"])
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=5), record
    assert instant(record["updated_at"]) >= created


def test_owner_is_the_keys_user(server, v, api, cli, workspace):
    acct = new_account(api)
    first = value(log(v, body(account_id=acct["id"])), "owner_user_id")
    again = value(log(v, body(account_id=acct["id"])), "owner_user_id")
    assert first == again, "the same key, the same user"
    proc = cli(
        "keys", "create", "--workspace", workspace.name, "--user", f"{unique_name('other')}@example.com", "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    with v_client(server, {"Authorization": f"Bearer {proc.stdout.strip()}"}) as colleague:
        theirs = value(log(colleague, body(account_id=acct["id"])), "owner_user_id")
    assert theirs["related_record_id"] != first["related_record_id"], "another user of the workspace, another UUID"


def test_category_defaults_to_other_and_takes_every_listed_value(v):
    assert value(log(v, body()), "sub_type") == "OTHER"
    for category in CATEGORIES:
        assert value(log(v, body(category=category)), "sub_type") == category


def test_the_vendor_example_with_every_reference(v, api):
    domain = unique_domain("vendor")
    acct = new_account(api, domain)
    email = f"{unique_name('c')}@example.com"
    push_activities_ok(api, [activity(domain, contacts=[{"email": email}])])
    contact_id = contact_ids_by_email(api)[email]
    opportunity = new_deal(api)
    sent = {
        "attributes": {
            "metadata": {
                "activity_time": "2023-11-07T05:31:56Z",
                "subject": "Quarterly review",
                "description": "Went through the renewal",
                "category": "OTHER",
            },
            "account_id": acct["id"],
            "opportunity_id": opportunity["id"],
            "contact_ids": [contact_id],
            "sequence_id": str(uuid.uuid4()),
            "pipeline_select_list_value_id": str(uuid.uuid4()),
        }
    }
    record = log(v, sent)
    assert instant(value(record, "ended_at")) == datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    for scope in ({"account_id": acct["id"]}, {"opportunity_id": opportunity["id"]}, {"contact_id": contact_id}):
        assert record["id"] in [r["id"] for r in whole_timeline(v, **scope)], scope


def test_activity_time_offsets_are_honoured(v):
    record = log(v, body(activity_time="2026-04-22T12:30:00+02:00"))
    assert instant(value(record, "ended_at")) == datetime(2026, 4, 22, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "loc", "type_"),
    [
        ({}, ["body", "attributes"], "missing"),
        ({"attributes": {}}, ["body", "attributes", "metadata"], "missing"),
        (
            {"attributes": {"metadata": {"subject": "s", "description": "d"}}},
            ["body", "attributes", "metadata", "activity_time"],
            "missing",
        ),
        (
            {"attributes": {"metadata": {"activity_time": "2026-04-22T10:30:00Z", "description": "d"}}},
            ["body", "attributes", "metadata", "subject"],
            "missing",
        ),
        (
            {"attributes": {"metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": "s"}}},
            ["body", "attributes", "metadata", "description"],
            "missing",
        ),
        (body(activity_time="yesterday"), ["body", "attributes", "metadata", "activity_time"], None),
        (body(activity_time="0001-01-01T00:00:00+01:00"), ["body", "attributes", "metadata", "activity_time"], None),
        (body(category="MEETING"), ["body", "attributes", "metadata", "category"], None),
        (body(category="other"), ["body", "attributes", "metadata", "category"], None),
        (
            {"attributes": {"metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": "", "description": "d"}}},
            ["body", "attributes", "metadata", "subject"],
            None,
        ),
        (
            {
                "attributes": {
                    "metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": "  ", "description": "d"}
                }
            },
            ["body", "attributes", "metadata", "subject"],
            None,
        ),
        (
            {
                "attributes": {
                    "metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": "s", "description": "d"},
                    "acount_id": UNKNOWN,
                }
            },
            ["body", "attributes", "acount_id"],
            None,
        ),
        (body(account_id="not-a-uuid"), ["body", "attributes", "account_id"], None),
        (body(opportunity_id=42), ["body", "attributes", "opportunity_id"], None),
        (body(contact_ids="3c90c3cc-0d44-4b50-8888-8dd25736052a"), ["body", "attributes", "contact_ids"], None),
        (body(contact_ids=["nope"]), ["body", "attributes", "contact_ids", 0], None),
        (body(sequence_id="seq-1"), ["body", "attributes", "sequence_id"], None),
        (
            {"attributes": {"metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": 5, "description": "d"}}},
            ["body", "attributes", "metadata", "subject"],
            None,
        ),
        ({"attributes": "x"}, ["body", "attributes"], None),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(v, payload, loc, type_):
    items = detail_errors(log_raw(v, payload))
    item = item_at(items, *loc)
    if type_ is not None:
        assert item["type"] == type_, item


def test_a_body_that_is_not_a_json_object_is_a_422(v):
    for raw, content_type in (
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"subject=x", "text/plain"),
    ):
        items = detail_errors(v.post("/activity", content=raw, headers={"Content-Type": content_type}))
        assert items[0]["loc"][0] == "body", items


def test_a_body_over_5_mib_is_413_and_deep_nesting_is_refused(v):
    r = v.post("/activity", content=b" " * (5 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    detail(r, 413, "Request body exceeds 5 MiB")
    nested: dict[str, Any] = {}
    for _ in range(200):
        nested = {"a": nested}
    detail_errors(log_raw(v, {"attributes": nested}))


def test_unknown_references_are_record_not_found_and_store_nothing(v, api):
    acct = new_account(api)
    cases = [
        ({"account_id": UNKNOWN}, ["body", "attributes", "account_id"]),
        ({"account_id": acct["id"], "opportunity_id": UNKNOWN}, ["body", "attributes", "opportunity_id"]),
        ({"account_id": acct["id"], "contact_ids": [UNKNOWN]}, ["body", "attributes", "contact_ids", 0]),
    ]
    for references, loc in cases:
        items = detail_errors(log_raw(v, body(**references)))
        item = item_at(items, *loc)
        assert item["type"] == "record_not_found", item
        assert UNKNOWN in item["msg"] or item["input"] == UNKNOWN, item
    assert whole_timeline(v, account_id=acct["id"]) == [], "a refused activity is not stored"


def test_every_unknown_reference_is_named(v):
    other = str(uuid.uuid4())
    items = detail_errors(
        log_raw(v, body(account_id=UNKNOWN, opportunity_id=other, contact_ids=[str(uuid.uuid4()), str(uuid.uuid4())]))
    )
    not_found = {tuple(i["loc"]) for i in items if i["type"] == "record_not_found"}
    assert {("body", "attributes", "account_id"), ("body", "attributes", "opportunity_id")} <= not_found, items
    assert any(loc[:3] == ("body", "attributes", "contact_ids") for loc in not_found), items


def test_records_of_another_workspace_are_not_found(server, v, api, new_workspace):
    theirs = new_workspace()
    with (
        client_for(server, theirs.key) as their_api,
        v_client(server, {"Authorization": f"Bearer {theirs.key}"}) as their_v,
    ):
        domain = unique_domain("theirs")
        their_account = new_account(their_api, domain)
        email = f"{unique_name('c')}@example.com"
        push_activities_ok(their_api, [activity(domain, contacts=[{"email": email}])])
        their_contact = contact_ids_by_email(their_api)[email]
        their_deal = new_deal(their_api)
        their_activity = log(their_v, body(account_id=their_account["id"]))
        before = len(whole_timeline(their_v, account_id=their_account["id"]))
    mine = new_account(api)
    for references, loc in (
        ({"account_id": their_account["id"]}, ["body", "attributes", "account_id"]),
        ({"account_id": mine["id"], "opportunity_id": their_deal["id"]}, ["body", "attributes", "opportunity_id"]),
        ({"account_id": mine["id"], "contact_ids": [their_contact]}, ["body", "attributes", "contact_ids", 0]),
    ):
        assert item_at(detail_errors(log_raw(v, body(**references))), *loc)["type"] == "record_not_found"
    for scope, loc in (
        ({"account_id": their_account["id"]}, ["body", "account_id"]),
        ({"opportunity_id": their_deal["id"]}, ["body", "opportunity_id"]),
        ({"contact_id": their_contact}, ["body", "contact_id"]),
    ):
        assert item_at(detail_errors(query_raw(v, **scope)), *loc)["type"] == "record_not_found", scope
    detail(v.get(f"/activity/{their_activity['id']}"), 404, "record_not_found")
    assert whole_timeline(v, account_id=mine["id"]) == [], "nothing was stored"
    with v_client(server, {"Authorization": f"Bearer {theirs.key}"}) as their_v:
        assert len(whole_timeline(their_v, account_id=their_account["id"])) == before


# --------------------------------------------------------------------------- GET /activity/{id}


def test_get_by_id_returns_the_record_and_404_when_absent(v, api):
    acct = new_account(api)
    record = log(v, body(account_id=acct["id"], category="WEBINAR"))
    r = v.get(f"/activity/{record['id']}")
    assert r.status_code == 200, describe(r)
    assert r.json() == {"data": record}
    for missing in (UNKNOWN, "not-a-uuid", "0"):
        detail(v.get(f"/activity/{missing}"), 404, "record_not_found")


def test_get_by_id_also_finds_pushed_calls(v, api):
    domain = unique_domain("get")
    acct = new_account(api, domain)
    push_activities_ok(api, [activity(domain, callTitle="Discovery")])
    (call,) = whole_timeline(v, account_id=acct["id"])
    r = v.get(f"/activity/{call['id']}")
    assert r.status_code == 200 and r.json() == {"data": call}, describe(r)


# --------------------------------------------------------------------------- the timeline


def test_query_needs_one_of_the_three_ids(v):
    for payload in ({}, {"limit": 10}, {"account_id": None}, {"created_from": "2026-01-01T00:00:00Z"}):
        items = detail_errors(query_raw(v, **payload))
        assert items[0]["loc"][0] == "body", items


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"account_id": "x"}, ["body", "account_id"]),
        ({"contact_id": 7}, ["body", "contact_id"]),
        ({"opportunity_id": "nope"}, ["body", "opportunity_id"]),
        ({"account_id": UNKNOWN, "limit": 0}, ["body", "limit"]),
        ({"account_id": UNKNOWN, "limit": 201}, ["body", "limit"]),
        ({"account_id": UNKNOWN, "limit": "many"}, ["body", "limit"]),
        ({"account_id": UNKNOWN, "created_from": "soon"}, ["body", "created_from"]),
        ({"account_id": UNKNOWN, "created_to": "later"}, ["body", "created_to"]),
        ({"account_id": UNKNOWN, "cursor": "not-a-cursor"}, ["body", "cursor"]),
        ({"account_id": UNKNOWN, "cursor": 5}, ["body", "cursor"]),
    ],
)
def test_query_validation_names_the_field(v, payload, loc):
    item_at(detail_errors(query_raw(v, **payload)), *loc)


def test_query_unknown_ids_are_record_not_found(v):
    for name in ("account_id", "contact_id", "opportunity_id"):
        item = item_at(detail_errors(query_raw(v, **{name: UNKNOWN})), "body", name)
        assert item["type"] == "record_not_found", item


def test_limit_defaults_to_50_and_allows_200(v, api):
    domain = unique_domain("limit")
    acct = new_account(api, domain)
    push_activities_ok(api, [activity(domain) for _ in range(50)])
    push_activities_ok(api, [activity(domain) for _ in range(5)])
    page = query(v, account_id=acct["id"])
    assert len(page["data"]) == 50 and page["next_cursor"] is not None
    page = query(v, account_id=acct["id"], limit=200)
    assert len(page["data"]) == 55 and page["next_cursor"] is None, "next_cursor is null on the last page"


def test_cursor_pages_are_newest_first_without_gaps_or_repeats(v, api):
    domain = unique_domain("pages")
    acct = new_account(api, domain)
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    # Calls and manual activities interleaved in time, with ties on the same instant.
    push_activities_ok(api, [activity(domain, occurredAt=iso(base + timedelta(hours=i // 2))) for i in range(12)])
    for i in range(11):
        log(v, body(activity_time=iso(base + timedelta(hours=i // 3, minutes=30 * (i % 2))), account_id=acct["id"]))
    everything = query(v, account_id=acct["id"], limit=200)["data"]
    assert len(everything) == 23
    assert_newest_first(everything)
    for limit in (1, 4, 7, 23):
        paged = whole_timeline(v, limit=limit, account_id=acct["id"])
        assert [r["id"] for r in paged] == [r["id"] for r in everything], f"limit {limit}"


def test_time_bounds_are_from_inclusive_and_to_exclusive_on_the_activity_time(v, api):
    domain = unique_domain("bounds")
    acct = new_account(api, domain)
    base = datetime(2026, 5, 1, tzinfo=UTC)
    push_activities_ok(api, [activity(domain, occurredAt=iso(base + timedelta(days=1)))])
    for day in (0, 2, 3):
        log(v, body(activity_time=iso(base + timedelta(days=day)), account_id=acct["id"]))

    def days(**bounds: Any) -> list[int]:
        records = whole_timeline(v, account_id=acct["id"], **bounds)
        return [(instant(value(r, "ended_at")) - base).days for r in records]

    assert days() == [3, 2, 1, 0]
    assert days(created_from=iso(base + timedelta(days=1))) == [3, 2, 1]
    assert days(created_to=iso(base + timedelta(days=2))) == [1, 0]
    assert days(created_from=iso(base + timedelta(days=1)), created_to=iso(base + timedelta(days=3))) == [2, 1]
    assert days(created_from=iso(base + timedelta(days=3)), created_to=iso(base + timedelta(days=3))) == []


def test_scopes_by_account_contact_and_opportunity(v, api):
    a_domain, b_domain = unique_domain("scope-a"), unique_domain("scope-b")
    a, b = new_account(api, a_domain), new_account(api, b_domain)
    john, jane = f"{unique_name('john')}@example.com", f"{unique_name('jane')}@example.com"
    push_activities_ok(
        api,
        [
            activity(a_domain, contacts=[{"email": john}], callTitle="A call with John"),
            activity(b_domain, activity_type="email", contacts=[{"email": john}, {"email": jane}], subject="B mail"),
        ],
    )
    people = contact_ids_by_email(api)
    opportunity = new_deal(api)
    on_a = log(v, body(account_id=a["id"], contact_ids=[people[jane]]))
    on_deal = log(v, body(account_id=b["id"], opportunity_id=opportunity["id"]))

    def names(**scope: Any) -> set[str]:
        return {value(r, "display_name") for r in whole_timeline(v, **scope)}

    assert names(account_id=a["id"]) == {"A call with John", value(on_a, "display_name")}
    assert names(account_id=b["id"]) == {"B mail", value(on_deal, "display_name")}
    assert names(contact_id=people[john]) == {"A call with John", "B mail"}
    assert names(contact_id=people[jane]) == {"B mail", value(on_a, "display_name")}
    assert names(opportunity_id=opportunity["id"]) == {value(on_deal, "display_name")}
    # Several ids: all must hold.
    assert names(account_id=b["id"], contact_id=people[jane]) == {"B mail"}
    assert names(account_id=a["id"], opportunity_id=opportunity["id"]) == set()


def test_the_timeline_holds_the_calls_and_emails_pushed_on_surface_r(v, api):
    domain = unique_domain("cross")
    acct = new_account(api, domain)
    email = f"{unique_name('john')}@example.com"
    call = activity(
        domain,
        external_id=unique_name("call"),
        occurredAt="2026-04-22T10:30:00Z",
        contacts=[{"email": email, "name": "John Doe"}],
        accountName="Acme Corp",
        ownerName="Jane Smith",
        callTitle="Discovery call",
        subject="ignored for the name",
        durationMinutes=30,
        outcome="Connected",
        direction="outbound",
    )
    mail = activity(
        domain,
        external_id=unique_name("mail"),
        activity_type="email",
        occurredAt="2026-04-23T08:15:00Z",
        subject="Follow up on our call",
        callTitle="a call-only field",
        openCount=3,
        clickCount=1,
    )
    bare_call = activity(domain, external_id=unique_name("bare"), occurredAt="2026-04-21T08:00:00Z")
    bare_mail = activity(
        domain, external_id=unique_name("bare"), activity_type="email", occurredAt="2026-04-20T08:00:00Z"
    )
    titled = activity(
        domain, external_id=unique_name("subj"), occurredAt="2026-04-19T08:00:00Z", subject="Only a subject"
    )
    push_activities_ok(api, [call, mail, bare_call, bare_mail, titled])
    manual_record = log(v, body(activity_time="2026-04-22T12:00:00Z", subject="Lunch", account_id=acct["id"]))

    records = whole_timeline(v, account_id=acct["id"])
    assert_newest_first(records)
    shown = [(value(r, "type"), value(r, "display_name")) for r in records]
    assert shown == [
        ("EMAIL", "Follow up on our call"),
        ("MANUAL_ACTIVITY", "Lunch"),
        ("CALL", "Discovery call"),
        ("CALL", "Call"),
        ("EMAIL", "Email"),
        ("CALL", "Only a subject"),
    ]
    assert records[1]["id"] == manual_record["id"]
    pushed = {r["metadata"]["externalActivityId"]: r for r in records if r["metadata"] is not None}
    got_call, got_mail = pushed[call["externalActivityId"]], pushed[mail["externalActivityId"]]
    assert value(got_call, "sub_type") is None and value(got_mail, "sub_type") is None
    assert instant(value(got_call, "ended_at")) == datetime(2026, 4, 22, 10, 30, tzinfo=UTC)
    assert instant(value(got_mail, "ended_at")) == datetime(2026, 4, 23, 8, 15, tzinfo=UTC)
    meta = got_call["metadata"]
    assert meta["kind"] == "call"
    assert (meta["callTitle"], meta["durationMinutes"], meta["outcome"], meta["direction"]) == (
        "Discovery call",
        30,
        "Connected",
        "outbound",
    )
    assert (meta["domain"], meta["accountName"], meta["ownerName"]) == (domain, "Acme Corp", "Jane Smith")
    assert [c["email"] for c in meta["contacts"]] == [email]
    assert got_mail["metadata"]["kind"] == "email"
    assert (got_mail["metadata"]["openCount"], got_mail["metadata"]["clickCount"]) == (3, 1)
    # The same activity has the same UUID on both surfaces.
    r_ids = {a["externalActivityId"]: a["id"] for a in all_activities(api, domain=domain)}
    assert {ext: rec["id"] for ext, rec in pushed.items()} == r_ids
    # Surface R's own list stays calls and emails only.
    assert manual_record["id"] not in r_ids.values()


def test_a_call_pushed_before_its_account_joins_the_timeline_when_the_account_arrives(v, api):
    domain = unique_domain("late")
    push_activities_ok(api, [activity(domain, callTitle="Early call")])
    acct = new_account(api, domain)
    assert [value(r, "display_name") for r in whole_timeline(v, account_id=acct["id"])] == ["Early call"]


# --------------------------------------------------------------------------- UUIDs on Surface R (§1.7)


def test_surface_r_records_carry_stable_uuids_that_surface_v_accepts(v, api):
    domain = unique_domain("ids")
    acct = new_account(api, domain)
    assert UUID_RE.match(acct["id"])
    r = api.put(f"/accounts/{acct['rtp_aid']}", json={"name": "Renamed"})
    ok(r)
    assert push(api, [account(domain, name="Again")], upsert=True)["results"][0]["status"] == "updated"
    assert get_account(api, domain)["id"] == acct["id"], "an account keeps its UUID"
    email = f"{unique_name('c')}@example.com"
    push_activities_ok(api, [activity(domain, contacts=[{"email": email}])])
    (pushed,) = all_activities(api, domain=domain)
    assert UUID_RE.match(pushed["id"]) and UUID_RE.match(pushed["contacts"][0]["id"])
    opportunity = new_deal(api)
    assert UUID_RE.match(opportunity["id"])
    log(v, body(account_id=acct["id"], opportunity_id=opportunity["id"], contact_ids=[pushed["contacts"][0]["id"]]))
    push_deals_ok(api, [deal(opportunity["externalDealId"], name="Renamed deal")])
    assert [d["id"] for d in all_deals(api) if d["externalDealId"] == opportunity["externalDealId"]] == [
        opportunity["id"]
    ]


# --------------------------------------------------------------------------- scoring (§4.2, §6.23)


def test_manual_activities_raise_the_accounts_engagement(v, api, cli, workspace):
    logged, quiet = new_account(api), new_account(api)
    run_score(cli, workspace.name)
    for days in (0, 1, 2):
        log(v, body(activity_time=iso_days_ago(days), account_id=logged["id"], category="EVENT"))
    run_score(cli, workspace.name)
    explained = ok(api.get(f"/accounts/{logged['rtp_aid']}/score"))
    assert explained["engagement"]["activities"] == 3, explained
    assert explained["engagement"]["score"] > 0, explained
    silent = ok(api.get(f"/accounts/{quiet['rtp_aid']}/score"))
    assert silent["engagement"]["score"] == 0, silent
    assert (
        get_account(api, logged["domain"])["rtp_account_score"] > get_account(api, quiet["domain"])["rtp_account_score"]
    )


# --------------------------------------------------------------------------- OpenAPI (§5)


def test_the_openapi_document_describes_surface_v(server):
    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    paths = doc["paths"]
    for path, method in (
        ("/api/v2/activity", "post"),
        ("/api/v2/activity/_query", "post"),
        ("/api/v2/activity/{activity_id}", "get"),
        ("/api/v2/health", "get"),
    ):
        assert method in paths.get(path, {}), f"{method.upper()} {path} is documented"
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    log_op = paths["/api/v2/activity"]["post"]
    request = resolve(log_op["requestBody"]["content"]["application/json"]["schema"])
    assert "attributes" in request["properties"], request
    created = resolve(log_op["responses"]["201"]["content"]["application/json"]["schema"])
    record = resolve(created["properties"]["data"])
    assert set(record["properties"]) >= RECORD_KEYS, record
    query_op = paths["/api/v2/activity/_query"]["post"]
    request = resolve(query_op["requestBody"]["content"]["application/json"]["schema"])
    assert {"account_id", "contact_id", "opportunity_id", "created_from", "created_to", "cursor", "limit"} <= set(
        request["properties"]
    )
    assert "422" in query_op["responses"] and "401" in query_op["responses"]
