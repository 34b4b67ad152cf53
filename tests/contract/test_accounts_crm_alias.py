"""The legacy `/api/v1/crm/...` alias (API.md §1.1, §2.2 "Under the /crm alias", §2.3, §6.1, §6.13)."""

from __future__ import annotations

import json

import httpx
import pytest
from contract_helpers import (
    account,
    accounts_by_domain,
    all_accounts,
    assert_constraint,
    create_field,
    create_segment,
    error,
    get_account,
    not_found_route,
    ok,
    page,
    push,
    push_ok,
    push_raw,
    random_hex24,
    unique_domain,
    unique_name,
    validation_errors,
)

CRM = "/crm"


def crm_account(domain: str | None = None, external_id: str | None = None, **fields):
    return account(domain, externalId=external_id or unique_name("crm"), **fields)


def crm_push(api, items, **extra):
    return push(api, items, prefix=CRM, **extra)


# --------------------------------------------------------------------------- validation


def test_missing_external_id_is_400_with_is_string_and_is_not_empty(api):
    r = push_raw(api, [crm_account(), account()], prefix=CRM)
    errors = validation_errors(r)
    assert_constraint(errors, "accounts.1.externalId", "isString", "externalId must be a string")
    assert_constraint(errors, "accounts.1.externalId", "isNotEmpty", "externalId should not be empty")
    assert all_accounts(api) == [], "a rejected request writes nothing"


@pytest.mark.parametrize(
    "value,key,text",
    [
        ("", "isNotEmpty", "externalId should not be empty"),
        ("   ", "isNotEmpty", "externalId should not be empty"),
        (None, "isNotEmpty", "externalId should not be empty"),
        (5, "isString", "externalId must be a string"),
    ],
    ids=["empty", "blank", "null", "number"],
)
def test_bad_external_id_under_crm_is_400(api, value, key, text):
    r = push_raw(api, [account(externalId=value)], prefix=CRM)
    assert_constraint(r, "accounts.0.externalId", key, text)


def test_other_validation_rules_apply_under_crm(api):
    r = push_raw(api, [crm_account(domain="")], prefix=CRM)
    assert_constraint(r, "accounts.0.domain", "isNotEmpty", "domain should not be empty")
    r = push_raw(api, [crm_account() for _ in range(101)], prefix=CRM)
    assert_constraint(r, "accounts", "arrayMaxSize", "accounts must contain no more than 100 elements")


def test_external_id_is_not_required_outside_the_alias(api):
    data = push(api, [account()])
    assert data["results"][0]["status"] == "created"


# --------------------------------------------------------------------------- push semantics


def test_create_under_crm_results_carry_external_id_first(api):
    item = crm_account(f"https://www.{unique_domain('crm').upper()}/x")
    data = crm_push(api, [item])
    [res] = data["results"]
    assert res["status"] == "created", res
    assert res["externalId"] == item["externalId"]
    assert next(iter(res)) == "externalId", f"result items carry externalId first: {list(res)}"
    rec = get_account(api, res["domain"])
    assert rec["externalId"] == item["externalId"] and rec["rtp_aid"] == res["rtp_aid"]


def test_known_external_id_is_updated(api):
    ext = unique_name("crm")
    domain = unique_domain("crm-upd")
    [first] = push_ok(api, [crm_account(domain, ext, name="Old", tags=["a"])], prefix=CRM)
    data = crm_push(api, [crm_account(domain, ext, name="New", tags=["b"])])
    [res] = data["results"]
    assert res["status"] == "updated" and res["rtp_aid"] == first["rtp_aid"] and res["externalId"] == ext, res
    rec = get_account(api, domain)
    assert rec["name"] == "New" and rec["tags"] == ["b"]
    assert len(all_accounts(api)) == 1


def test_domain_held_by_another_external_id_fails(api):
    domain = unique_domain("crm-held")
    owner = unique_name("owner")
    push_ok(api, [crm_account(domain, owner)], prefix=CRM)
    other = unique_name("other")
    data = crm_push(api, [crm_account(f"http://{domain}/", other)])
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["error"] == f"Account with domain '{domain}' already exists with externalId '{owner}'"
    assert res["externalId"] == other and res["domain"] == domain
    assert get_account(api, domain)["externalId"] == owner


def test_domain_held_by_an_account_without_external_id_fails(api):
    domain = unique_domain("crm-noext")
    push_ok(api, [account(domain)])
    data = crm_push(api, [crm_account(domain)])
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["error"] == f"Account with domain '{domain}' already exists"
    assert get_account(api, domain)["externalId"] is None


def test_known_external_id_with_a_free_domain_moves_the_account(api):
    ext = unique_name("mover")
    old, new = unique_domain("crm-old"), unique_domain("crm-new")
    [first] = push_ok(api, [crm_account(old, ext)], prefix=CRM)
    data = crm_push(api, [crm_account(f"https://www.{new}", ext)])
    [res] = data["results"]
    assert res["status"] == "updated" and res["rtp_aid"] == first["rtp_aid"] and res["domain"] == new, res
    found = accounts_by_domain(api, [old, new])
    assert old not in found, "the account left its old domain"
    assert found[new]["rtp_aid"] == first["rtp_aid"]


def test_known_external_id_cannot_move_onto_a_taken_domain(api):
    ext_a, ext_b = unique_name("a"), unique_name("b")
    dom_a, dom_b = unique_domain("crm-a"), unique_domain("crm-b")
    push_ok(api, [crm_account(dom_a, ext_a), crm_account(dom_b, ext_b)], prefix=CRM)
    data = crm_push(api, [crm_account(dom_b, ext_a)])
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["error"] == f"Account with domain '{dom_b}' already exists with externalId '{ext_b}'"
    found = accounts_by_domain(api, [dom_a, dom_b])
    assert found[dom_a]["externalId"] == ext_a and found[dom_b]["externalId"] == ext_b


def test_external_id_repeated_in_one_crm_request_behaves_sequentially(api):
    ext = unique_name("seq")
    d1, d2 = unique_domain("seq1"), unique_domain("seq2")
    data = crm_push(api, [crm_account(d1, ext, name="One"), crm_account(d2, ext, name="Two")])
    r1, r2 = data["results"]
    assert (r1["status"], r2["status"]) == ("created", "updated"), data["results"]
    assert r1["rtp_aid"] == r2["rtp_aid"]
    found = accounts_by_domain(api, [d1, d2])
    assert set(found) == {d2} and found[d2]["name"] == "Two"


def test_per_item_failures_under_crm(api):
    known = create_field(api, unique_name("Crm Field"), "singleLineText", prefix=CRM)["key"]
    bad_domain = crm_account("localhost")
    unknown_cf = crm_account(customFields={"NOPE_C": 1, known: "x"})
    good = crm_account(customFields={known: "ok"})
    data = crm_push(api, [bad_domain, unknown_cf, good])
    r1, r2, r3 = data["results"]
    assert (
        r1["status"] == "failed"
        and r1["error"] == "Invalid domain 'localhost'"
        and r1["externalId"] == bad_domain["externalId"]
    )
    assert (
        r2["status"] == "failed" and r2["error"] == "Custom field key(s) not found: NOPE_C. Unable to add this account."
    )
    assert r3["status"] == "created"


def test_segment_rules_apply_under_crm(api, cli, workspace):
    missing = random_hex24()
    error(push_raw(api, [crm_account()], prefix=CRM, segmentId=missing), 400, f"Segment '{missing}' not found")
    seg = create_segment(cli, workspace.name)
    item = crm_account()
    push_ok(api, [item], prefix=CRM, segmentId=seg)
    assert get_account(api, item["domain"])["segmentIds"] == [seg]


# --------------------------------------------------------------------------- PUT by externalId (§2.3, §6.13)


def test_put_under_crm_addresses_the_account_by_external_id(api):
    ext = unique_name("put")
    item = crm_account(external_id=ext, name="Before")
    push_ok(api, [item], prefix=CRM)
    r = api.put(f"{CRM}/accounts/{ext}", json={"name": "After", "tags": ["x"]})
    data = ok(r, f"/api/v1/crm/accounts/{ext}")
    assert data == {"message": "Account updated successfully"}
    rec = get_account(api, item["domain"])
    assert rec["name"] == "After" and rec["tags"] == ["x"]


def test_put_under_crm_unknown_external_id_is_404(api):
    error(
        api.put(f"{CRM}/accounts/no-such-id", json={"name": "x"}),
        404,
        "Account with externalId 'no-such-id' not found",
        "Not Found",
    )


def test_put_under_crm_does_not_take_an_rtp_aid(api):
    [res] = push_ok(api, [account()])
    aid = res["rtp_aid"]
    error(
        api.put(f"{CRM}/accounts/{aid}", json={"name": "x"}),
        404,
        f"Account with externalId '{aid}' not found",
        "Not Found",
    )


def test_put_under_crm_rejects_other_keys(api):
    ext = unique_name("put")
    push_ok(api, [crm_account(external_id=ext)], prefix=CRM)
    r = api.put(f"{CRM}/accounts/{ext}", json={"domain": "x.com"})
    assert_constraint(r, "domain", None, "property domain should not exist")


# --------------------------------------------------------------------------- everything else under /crm


def test_list_is_identical_under_crm(api):
    items = [account(), account()]
    push_ok(api, items)
    plain = page(api, "/accounts", limit=10)
    r = api.get(f"{CRM}/accounts", params={"limit": 10})
    aliased = ok(r, "/api/v1/crm/accounts?limit=10")
    assert aliased["data"] == plain["data"]
    assert aliased["hasNextPage"] is False and aliased["nextCursor"]
    domains = json.dumps([items[0]["domain"].upper()])
    only = ok(api.get(f"{CRM}/accounts", params={"domains": domains}))
    assert [x["domain"] for x in only["data"]] == [items[0]["domain"]]


def test_custom_fields_under_crm(api):
    label = unique_name("Alias Field")
    created = create_field(api, label, "number", prefix=CRM)
    listed = ok(api.get(f"{CRM}/accounts/custom-fields"), "/api/v1/crm/accounts/custom-fields")
    assert created["key"] in {f["key"] for f in listed}
    assert listed == ok(api.get("/accounts/custom-fields"))
    ok(api.delete(f"{CRM}/accounts/custom-fields/{created['key']}"))
    assert created["key"] not in {f["key"] for f in ok(api.get("/accounts/custom-fields"))}


def test_external_ids_under_crm(api):
    item = account()
    push_ok(api, [item])
    missing = ok(api.get(f"{CRM}/accounts/missing-external-ids"), "/api/v1/crm/accounts/missing-external-ids")
    assert [m["domain"] for m in missing] == [item["domain"]]
    r = api.patch(
        f"{CRM}/accounts/external-ids", json={"mappings": [{"domain": item["domain"], "externalId": "via-alias"}]}
    )
    data = ok(r, "/api/v1/crm/accounts/external-ids")
    assert (data["matched"], data["updated"], data["notFound"]) == (1, 1, [])
    assert get_account(api, item["domain"])["externalId"] == "via-alias"
    assert ok(api.get(f"{CRM}/accounts/missing-external-ids")) == []


def test_put_by_rtp_aid_path_outside_alias_still_uses_rtp_aid(api):
    ext = unique_name("plain")
    [res] = push_ok(api, [crm_account(external_id=ext)], prefix=CRM)
    error(api.put(f"/accounts/{ext}", json={"name": "x"}), 400, f"Invalid rtp_aid '{ext}'", "Bad Request")
    ok(api.put(f"/accounts/{res['rtp_aid']}", json={"name": "Renamed"}))


def test_segments_under_crm(api, cli, workspace):
    seg = create_segment(cli, workspace.name)
    data = ok(api.get(f"{CRM}/segments"), "/api/v1/crm/segments")
    assert [s["segmentId"] for s in data["data"]] == [seg]


def test_unknown_route_and_auth_under_crm(server, api):
    import httpx

    with httpx.Client(base_url=server.base_url) as anon:
        not_found_route(anon.get("/api/v1/crm/accounts/nope/deeper"), "GET", "/api/v1/crm/accounts/nope/deeper")
        not_found_route(anon.delete("/api/v1/crm/accounts"), "DELETE", "/api/v1/crm/accounts")
        error(anon.get("/api/v1/crm/accounts"), 401, "X-Api-Key header is required", "Unauthorized access")


def test_every_surface_r_operation_is_documented_under_the_alias_too(server):
    """§1.1: every Surface R path is also served under /crm, so /openapi.json lists each one
    (which is how the fuzzing and the workspace walk reach them), with the alias's own push and
    update bodies."""
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    operations = {(method, path) for path, methods in document["paths"].items() for method in methods}
    surface_r = {(m, p.removeprefix("/api/v1")) for m, p in operations if p.startswith("/api/v1/")}
    plain = {(m, p) for m, p in surface_r if not p.startswith("/crm/")}
    alias = {(m, p.removeprefix("/crm")) for m, p in surface_r if p.startswith("/crm/")}
    assert plain, "the document lists Surface R"
    assert alias == plain, f"only under /api/v1: {sorted(plain - alias)}; only under /crm: {sorted(alias - plain)}"
    push = document["paths"]["/api/v1/crm/accounts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert push["$ref"].endswith("/CrmPushAccountsRequest"), push
    put = document["paths"]["/api/v1/crm/accounts/{account_key}"]["put"]
    assert "externalId" in put["summary"], put["summary"]
