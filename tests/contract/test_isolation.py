"""Nothing crosses workspaces (API.md §0)."""

from __future__ import annotations

import json

import pytest
from contract_helpers import (
    account,
    all_accounts,
    client_for,
    create_field,
    create_segment,
    error,
    get_account,
    ok,
    page,
    push,
    push_ok,
    push_raw,
    unique_name,
)


@pytest.fixture
def other(new_workspace):
    return new_workspace()


@pytest.fixture
def other_api(server, other):
    with client_for(server, other.key) as c:
        yield c


def test_accounts_are_invisible_to_another_workspace(api, other_api):
    item = account()
    push_ok(api, [item])
    assert all_accounts(other_api) == []
    p = page(other_api, domains=json.dumps([item["domain"]]))
    assert p["data"] == []
    assert ok(other_api.get("/accounts/missing-external-ids")) == []
    assert ok(other_api.get("/crm/accounts"))["data"] == []


def test_put_on_another_workspaces_account_is_404(api, other_api):
    item = account(externalId=unique_name("iso"))
    [res] = push_ok(api, [item])
    aid = res["rtp_aid"]
    error(other_api.put(f"/accounts/{aid}", json={"name": "Hijack"}), 404, f"Account '{aid}' not found", "Not Found")
    error(
        other_api.put(f"/crm/accounts/{item['externalId']}", json={"name": "Hijack"}),
        404,
        f"Account with externalId '{item['externalId']}' not found",
        "Not Found",
    )
    assert get_account(api, item["domain"])["name"] == item["name"]


def test_same_domain_and_external_id_are_allowed_in_both_workspaces(api, other_api):
    ext = unique_name("shared")
    item = account(externalId=ext)
    [mine] = push_ok(api, [item])
    [theirs] = push_ok(other_api, [account(item["domain"], name="Theirs", externalId=ext)])
    assert theirs["rtp_aid"] != mine["rtp_aid"]
    [crm] = push_ok(other_api, [account(name="Crm", externalId=unique_name("c"))], prefix="/crm")
    assert crm["status"] == "created"
    assert get_account(api, item["domain"])["name"] == item["name"]
    assert get_account(other_api, item["domain"])["name"] == "Theirs"


def test_upsert_and_mappings_do_not_reach_another_workspace(api, other_api):
    item = account(name="Mine")
    push_ok(api, [item])
    data = push(other_api, [account(item["domain"], name="Theirs")], upsert=True)
    assert data["results"][0]["status"] == "created"
    r = ok(
        other_api.patch(
            "/accounts/external-ids", json={"mappings": [{"domain": item["domain"], "externalId": "x-other"}]}
        )
    )
    assert r["matched"] == 1
    mine = get_account(api, item["domain"])
    assert mine["name"] == "Mine" and mine["externalId"] is None
    only_mine = account()
    push_ok(api, [only_mine])
    r = ok(
        other_api.patch(
            "/accounts/external-ids", json={"mappings": [{"domain": only_mine["domain"], "externalId": "x"}]}
        )
    )
    assert (r["matched"], r["notFound"]) == (0, [only_mine["domain"]])


def test_external_id_conflicts_are_per_workspace(api, other_api):
    ext = unique_name("conf")
    push_ok(api, [account(externalId=ext)])
    theirs = account()
    push_ok(other_api, [theirs])
    r = ok(
        other_api.patch("/accounts/external-ids", json={"mappings": [{"domain": theirs["domain"], "externalId": ext}]})
    )
    assert r["updated"] == 1


def test_custom_fields_are_per_workspace(api, other_api):
    key = create_field(api, "Only Here", "singleLineText")["key"]
    assert ok(other_api.get("/accounts/custom-fields")) == []
    theirs = account(customFields={key: "x"})
    data = push(other_api, [theirs])
    assert data["results"][0]["error"] == f"Custom field key(s) not found: {key}. Unable to add this account."
    plain = account()
    push_ok(other_api, [plain])
    assert get_account(other_api, plain["domain"])["customFields"] == {}
    # The same label may be created in the other workspace without a conflict.
    assert create_field(other_api, "Only Here", "number")["key"] == key
    ok(other_api.delete(f"/accounts/custom-fields/{key}"))
    assert [f["key"] for f in ok(api.get("/accounts/custom-fields"))] == [key]


def test_segments_are_per_workspace(api, other_api, cli, workspace):
    seg = create_segment(cli, workspace.name)
    assert ok(other_api.get("/segments"))["data"] == []
    error(push_raw(other_api, [account()], segmentId=seg), 400, f"Segment '{seg}' not found", "Bad Request")
    assert all_accounts(other_api) == []
    member = account()
    push_ok(api, [member], segmentId=seg)
    assert all_accounts(other_api, segmentId=seg) == []
    assert [r["domain"] for r in all_accounts(api, segmentId=seg)] == [member["domain"]]


def test_keys_of_one_workspace_do_not_see_another(api, other, other_api):
    push_ok(api, [account()])
    push_ok(other_api, [account(), account()])
    assert len(all_accounts(api)) == 1
    assert len(all_accounts(other_api)) == 2
    assert other.name and other.key


def test_a_cursor_from_another_workspace_reveals_nothing(api, other_api):
    push_ok(api, [account(), account(), account()])
    mine = page(api, limit=1)
    push_ok(other_api, [account()])
    r = other_api.get("/accounts", params={"limit": 1000, "cursor": mine["nextCursor"]})
    if r.status_code == 200:
        theirs = {x["domain"] for x in all_accounts(other_api)}
        assert {x["domain"] for x in ok(r)["data"]} <= theirs
    else:
        error(r, 400, "Invalid cursor", "Bad Request")
