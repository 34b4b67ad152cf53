"""Regression tests for the bugs the fuzzer and the isolation walk found (docs/reliability.md).

Each one answered a 500 (on one database or both) before it was fixed.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from abmhub.web.responses import plain_number


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def surface_v(server, workspace) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v2", headers={"Authorization": f"Bearer {workspace.key}"}, timeout=30
    )


# --- NUL characters: PostgreSQL cannot store them (the driver raised, a 500) -----------------


@pytest.mark.parametrize(
    "path, body",
    [
        ("/accounts", {"accounts": [{"domain": "nul.example.com", "name": "A\u0000B"}]}),
        ("/crm/accounts", {"accounts": [{"domain": "nul.example.com", "name": "A", "externalId": "x\u0000"}]}),
        ("/accounts/external-ids", {"mappings": [{"domain": "nul.example.com", "externalId": "\u0000"}]}),
        ("/deals", {"deals": [{"externalDealId": "d", "name": "x", "associatedAccounts": [{"name": "\u0000"}]}]}),
        ("/accounts", {"accounts": [{"domain": "nul.example.com", "name": "A", "customFields": {"K\u0000": 1}}]}),
    ],
)
def test_a_nul_character_in_a_body_is_a_400_and_stores_nothing(api, path, body):
    method = api.patch if path.endswith("external-ids") else api.post
    r = method(path, json=body)
    assert r.status_code == 400, f"{path} with a NUL character answered {r.status_code}: {r.text}"
    assert r.json()["customMessage"] == "Request body must not contain NUL characters (\\u0000)"
    assert api.get("/accounts").json()["data"]["data"] == [], "nothing was stored"


@pytest.mark.parametrize(
    "path, params",
    [
        ("/accounts", {"tag": "a\u0000"}),
        ("/accounts", {"segmentId": "\u0000"}),
        ("/sales-activities", {"domain": "a\u0000.com"}),
        ("/segments/%00abc", None),
        ("/accounts/custom-fields/%00", None),
    ],
)
def test_a_nul_character_in_the_url_is_a_400(api, path, params):
    method = api.delete if "custom-fields" in path else api.get
    r = method(path, params=params)
    assert r.status_code == 400, f"{path} {params} answered {r.status_code}: {r.text}"
    assert r.json()["customMessage"] == "Request URL must not contain NUL characters (%00)"


def test_a_nul_character_on_surface_v_is_a_422(server, workspace):
    with surface_v(server, workspace) as v:
        r = v.post(
            "/activity",
            json={
                "attributes": {
                    "metadata": {"activity_time": "2026-04-22T10:30:00Z", "subject": "a\u0000", "description": "d"}
                }
            },
        )
    assert r.status_code == 422, r.text
    [item] = r.json()["detail"]
    assert item["loc"] == ["body"] and "NUL" in item["msg"], item


# --- numbers ---------------------------------------------------------------------------------


def test_a_deal_amount_beyond_64_bit_integers_is_listed_as_a_float(api):
    deals = [
        {"externalDealId": unique("big"), "name": "Big", "amount": 1e30},
        {"externalDealId": unique("bigint"), "name": "Big int", "amount": 10**30},
        {"externalDealId": unique("plain"), "name": "Plain", "amount": 30},
    ]
    r = api.post("/deals", json={"deals": deals})
    assert r.status_code == 200, r.text
    listed = api.get("/deals")
    assert listed.status_code == 200, f"GET /deals failed after storing a huge amount: {listed.text}"
    amounts = {d["externalDealId"]: d["amount"] for d in listed.json()["data"]["data"]}
    assert amounts[deals[0]["externalDealId"]] == 1e30
    assert amounts[deals[1]["externalDealId"]] == 1e30
    assert amounts[deals[2]["externalDealId"]] == 30 and isinstance(amounts[deals[2]["externalDealId"]], int)


def test_plain_number_keeps_whole_values_beyond_exact_integers_as_floats():
    assert plain_number(30.0) == 30 and isinstance(plain_number(30.0), int)
    assert plain_number(2.0**53) == 2**53
    assert isinstance(plain_number(2.0**64), float)
    assert isinstance(plain_number(-1e300), float)
    assert plain_number(None) is None and plain_number(2.5) == 2.5


@pytest.mark.parametrize(
    "field, value, constraint, text",
    [
        ("count", 2**31, "max", "count must not be greater than 2147483647"),
        ("count", 1e30, "max", "count must not be greater than 2147483647"),
        ("weight", 1_000_001, "max", "weight must not be greater than 1000000"),
    ],
)
def test_signal_numbers_beyond_what_is_stored_are_a_400(api, field, value, constraint, text):
    signal = {
        "source": "linkedin_ads",
        "type": "click",
        "domain": "big.example.com",
        "occurredAt": "2026-04-22T10:30:00Z",
        field: value,
    }
    r = api.post("/signals", json={"signals": [signal]})
    assert r.status_code == 400, f"{field}={value} answered {r.status_code}: {r.text}"
    [issue] = r.json()["data"]
    assert issue["path"] == f"signals.0.{field}" and issue["constraints"] == {constraint: text}, issue


def test_the_largest_signal_numbers_are_accepted(api):
    signal = {
        "source": "linkedin_ads",
        "type": "click",
        "domain": "big.example.com",
        "occurredAt": "2026-04-22T10:30:00Z",
        "count": 2**31 - 1,
        "weight": 1_000_000,
    }
    r = api.post("/signals", json={"signals": [signal]})
    assert r.status_code == 200 and r.json()["data"]["results"][0]["status"] == "created", r.text


# --- cursors of another list: PostgreSQL compared a number with a text (a 500) --------------


def test_a_cursor_of_another_list_is_an_invalid_cursor(api):
    assert api.post("/accounts", json={"accounts": [{"domain": f"{unique('c')}.com", "name": "A"}]}).status_code == 200
    assert api.post("/deals", json={"deals": [{"externalDealId": unique("d"), "name": "D"}]}).status_code == 200
    account_cursor = api.get("/accounts", params={"limit": 1}).json()["data"]["nextCursor"]
    deal_cursor = api.get("/deals", params={"limit": 1}).json()["data"]["nextCursor"]
    for path, cursor in (
        ("/deals", account_cursor),
        ("/sales-activities", account_cursor),
        ("/accounts", deal_cursor),
        ("/segments", deal_cursor),
    ):
        r = api.get(path, params={"cursor": cursor})
        assert r.status_code == 400, f"{path} with another list's cursor answered {r.status_code}: {r.text}"
        assert r.json()["customMessage"] == "Invalid cursor", r.text
    assert api.get("/accounts", params={"cursor": account_cursor}).status_code == 200, "a list's own cursor works"
    assert json.loads(api.get("/deals", params={"cursor": deal_cursor}).text)["statusCode"] == 200


# --- the scoring job's statistics refresh under concurrent writers (SQLite) -----------------


def test_refreshing_statistics_waits_for_a_writer_of_another_process_instead_of_failing(tmp_path):
    """`abmhub score --all` ends with Database.refresh_statistics; next to a busy server it
    failed with "database is locked". It now queues for the write lock like any writer."""
    import threading
    import time

    from tests.reliability.support import prepared_database

    url = f"sqlite:///{tmp_path / 'stats.db'}"
    scorer = prepared_database(url)
    server = prepared_database(url)  # another engine: as another process would hold it
    holding = threading.Event()

    def busy_writer() -> None:
        with server.engine.connect().execution_options(abmhub_write=True) as conn, conn.begin():
            conn.exec_driver_sql("INSERT INTO workspaces (name, created_us, clock_us) VALUES ('w', 0, 0)")
            holding.set()
            time.sleep(1.0)

    thread = threading.Thread(target=busy_writer)
    thread.start()
    holding.wait(10)
    started = time.monotonic()
    scorer.refresh_statistics()
    waited = time.monotonic() - started
    thread.join()
    scorer.dispose()
    server.dispose()
    assert waited >= 0.5, f"refresh_statistics did not wait for the writer ({waited:.2f} s)"
