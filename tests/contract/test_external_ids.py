"""PATCH /accounts/external-ids and GET /accounts/missing-external-ids
(API.md §2.5, §2.6, §6.11, §6.12, §6.16, §6.32)."""

from __future__ import annotations

import pytest
from contract_helpers import (
    account,
    accounts_by_domain,
    assert_constraint,
    create_accounts,
    error,
    ok,
    push_ok,
    unique_domain,
    unique_name,
)


def patch(api, mappings):
    return api.patch("/accounts/external-ids", json={"mappings": mappings})


def patch_ok(api, mappings) -> dict:
    data = ok(patch(api, mappings), "/api/v1/accounts/external-ids")
    assert set(data) >= {"matched", "updated", "notFound"}, data
    return data


def m(domain: str, external_id: str) -> dict:
    return {"domain": domain, "externalId": external_id}


# --------------------------------------------------------------------------- PATCH semantics


def test_mappings_normalise_count_and_report_not_found_in_order(api):
    a, b, c = account(), account(), account(externalId="old-c-" + unique_name())
    push_ok(api, [a, b, c])
    unknown = unique_domain("unknown")
    mappings = [
        m(f"https://www.{a['domain'].upper()}/x", "ext-a"),
        m(f"HTTPS://{unknown.upper()}", "ext-u"),
        m(c["domain"], "new-c"),
        m(b["domain"], "first-b"),
        m(unknown, "ext-u2"),
        m("not a domain", "ext-z"),
        m(b["domain"].upper(), "second-b"),
    ]
    data = patch_ok(api, mappings)
    assert data["matched"] == 3, "matched counts distinct domains found"
    assert data["updated"] == 3, "updated counts accounts whose externalId changed"
    assert data["notFound"] == [unknown, "not a domain"], "notFound: normalised, once each, in request order"
    found = accounts_by_domain(api, [a["domain"], b["domain"], c["domain"]])
    assert found[a["domain"]]["externalId"] == "ext-a"
    assert found[b["domain"]]["externalId"] == "second-b", "a repeated domain: the last mapping wins"
    assert found[c["domain"]]["externalId"] == "new-c", "existing externalIds are overwritten"


def test_resending_the_same_mappings_updates_nothing(api):
    a, b = account(), account()
    push_ok(api, [a, b])
    mappings = [m(a["domain"], "same-a-" + a["domain"]), m(b["domain"], "same-b-" + b["domain"])]
    assert patch_ok(api, mappings)["updated"] == 2
    again = patch_ok(api, mappings)
    assert (again["matched"], again["updated"], again["notFound"]) == (2, 0, [])


def test_repeated_unknown_domain_keeps_its_first_position_in_not_found(api):
    # "once each, in request order": a domain's place is where the request first names it.
    u1, u2 = unique_domain("u1"), unique_domain("u2")
    data = patch_ok(api, [m(u1, "x1"), m(f"www.{u2}", "x2"), m(u1, "x3")])
    assert (data["matched"], data["updated"], data["notFound"]) == (0, 0, [u1, u2])


def test_conflicting_external_id_is_409_for_the_first_conflict_and_writes_nothing(api):
    ea, ec = unique_name("ea"), unique_name("ec")
    a, b, c, d, e = account(externalId=ea), account(), account(externalId=ec), account(), account()
    results = push_ok(api, [a, b, c, d, e])
    aid = {item["domain"]: res["rtp_aid"] for item, res in zip([a, b, c, d, e], results, strict=True)}
    r = patch(api, [m(b["domain"], unique_name("fresh")), m(d["domain"], ec), m(e["domain"], ea)])
    error(r, 409, f"externalId '{ec}' already belongs to account {aid[c['domain']]}", "Conflict")
    found = accounts_by_domain(api, [b["domain"], d["domain"], e["domain"]])
    assert all(found[x]["externalId"] is None for x in found), "a 409 mapping request writes nothing"


def test_mapping_an_account_to_its_own_external_id_is_not_a_conflict(api):
    ext = unique_name("own")
    a = account(externalId=ext)
    push_ok(api, [a])
    data = patch_ok(api, [m(a["domain"], ext)])
    assert (data["matched"], data["updated"]) == (1, 0)


def test_100_mappings_are_accepted(api):
    data = patch_ok(api, [m(unique_domain("many"), f"e{i}") for i in range(100)])
    assert data["matched"] == 0 and len(data["notFound"]) == 100


# --------------------------------------------------------------------------- PATCH validation

MAPPING_VALIDATION = [
    ("missing", {}, "mappings", "isArray", "mappings must be an array"),
    ("string", {"mappings": "x"}, "mappings", "isArray", "mappings must be an array"),
    ("empty", {"mappings": []}, "mappings", "arrayMinSize", "mappings must contain at least 1 elements"),
    (
        "too-many",
        {"mappings": [m(f"d{i}.com", f"e{i}") for i in range(101)]},
        "mappings",
        "arrayMaxSize",
        "mappings must contain no more than 100 elements",
    ),
    (
        "domain-missing",
        {"mappings": [{"externalId": "x"}]},
        "mappings.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    ("domain-empty", {"mappings": [m("", "x")]}, "mappings.0.domain", "isNotEmpty", "domain should not be empty"),
    (
        "domain-number",
        {"mappings": [{"domain": 5, "externalId": "x"}]},
        "mappings.0.domain",
        "isString",
        "domain must be a string",
    ),
    (
        "externalId-missing",
        {"mappings": [{"domain": "a.com"}]},
        "mappings.0.externalId",
        "isNotEmpty",
        "externalId should not be empty",
    ),
    (
        "externalId-blank",
        {"mappings": [m("a.com", "  ")]},
        "mappings.0.externalId",
        "isNotEmpty",
        "externalId should not be empty",
    ),
    (
        "externalId-number",
        {"mappings": [{"domain": "a.com", "externalId": 7}]},
        "mappings.0.externalId",
        "isString",
        "externalId must be a string",
    ),
    (
        "second-item",
        {"mappings": [m("a.com", "x"), m("b.com", "")]},
        "mappings.1.externalId",
        "isNotEmpty",
        "externalId should not be empty",
    ),
]


@pytest.mark.parametrize(
    "body,path,key,text", [c[1:] for c in MAPPING_VALIDATION], ids=[c[0] for c in MAPPING_VALIDATION]
)
def test_mapping_request_shape_errors_are_400(api, body, path, key, text):
    item = account()
    push_ok(api, [item])
    if isinstance(body.get("mappings"), list) and body["mappings"] and path.startswith("mappings."):
        body = {"mappings": [m(item["domain"], "should-not-be-written")] + body["mappings"]}
        idx = int(path.split(".")[1])
        path = path.replace(f"mappings.{idx}.", f"mappings.{idx + 1}.")
    r = api.patch("/accounts/external-ids", json=body)
    assert_constraint(r, path, key, text)
    assert accounts_by_domain(api, [item["domain"]])[item["domain"]]["externalId"] is None


# --------------------------------------------------------------------------- missing external ids


def test_missing_external_ids_lists_name_and_domain_in_rtp_aid_order(api):
    items = [
        account(),
        account(externalId=unique_name("has")),
        account(),
        account(),
        account(externalId=unique_name("has")),
    ]
    results = push_ok(api, items)
    expected = sorted(
        ((res["rtp_aid"], item) for item, res in zip(items, results, strict=True) if "externalId" not in item),
        key=lambda t: t[0],
    )
    data = ok(api.get("/accounts/missing-external-ids"), "/api/v1/accounts/missing-external-ids")
    assert isinstance(data, list), "data is a plain array inside the envelope"
    assert [(x["name"], x["domain"]) for x in data] == [(i["name"], i["domain"]) for _, i in expected]

    limited = ok(api.get("/accounts/missing-external-ids", params={"limit": 2}))
    assert [x["domain"] for x in limited] == [i["domain"] for _, i in expected][:2]


def test_missing_external_ids_shrinks_after_mapping(api):
    a, b = account(), account()
    push_ok(api, [a, b])
    patch_ok(api, [m(a["domain"], unique_name("mapped"))])
    data = ok(api.get("/accounts/missing-external-ids"))
    assert [x["domain"] for x in data] == [b["domain"]]


def test_missing_external_ids_default_limit_is_100_and_max_is_1000(api):
    create_accounts(api, 101)
    assert len(ok(api.get("/accounts/missing-external-ids"))) == 100
    assert len(ok(api.get("/accounts/missing-external-ids", params={"limit": 1000}))) == 101
    assert len(ok(api.get("/accounts/missing-external-ids", params={"limit": 1}))) == 1
