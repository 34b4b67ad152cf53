"""POST /deals and GET /deals (API.md §1.4, §1.5, §1.6, §2.8, §6.1, §6.2, §6.18, §6.29, §6.32, §6.33).

Written from the contract only. Accounts are set up through POST /accounts (tested elsewhere).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from contract_helpers import (
    ASSOCIATION_KEYS,
    DEAL_KEYS,
    STAGE_HISTORY_KEYS,
    UUID_RE,
    account,
    all_deals,
    assert_constraint,
    assert_write_route_conventions,
    client_for,
    deal,
    deals_by_ext,
    envelope,
    error,
    get_deal,
    list_pass,
    not_found_route,
    ok,
    page,
    parse_ts,
    push_deals,
    push_deals_ok,
    push_deals_raw,
    push_ok,
    unique_domain,
    unique_name,
    validation_errors,
)


def instant(value: str) -> datetime:
    """Parse any ISO 8601 timestamp the server returns (for comparing instants, not formats)."""
    assert isinstance(value, str), value
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def assert_deal_record(rec: dict) -> None:
    """§6.18: every key present (unset ones null), nested shapes, ISO 8601 ms-Z times."""
    missing = DEAL_KEYS - set(rec)
    assert not missing, f"deal record lacks keys {sorted(missing)}: {rec}"
    assert isinstance(rec["id"], str) and UUID_RE.match(rec["id"]), f"deal id must be a UUID (§1.7): {rec}"
    assert isinstance(rec["associatedAccounts"], list), rec
    for a in rec["associatedAccounts"]:
        assert set(a) >= ASSOCIATION_KEYS, f"association lacks keys {sorted(ASSOCIATION_KEYS - set(a))}: {a}"
    assert isinstance(rec["stageHistory"], list), rec
    for h in rec["stageHistory"]:
        assert set(h) >= STAGE_HISTORY_KEYS, (
            f"stage history entry lacks keys {sorted(STAGE_HISTORY_KEYS - set(h))}: {h}"
        )
        parse_ts(h["enteredAt"])
    parse_ts(rec["createdAt"])
    parse_ts(rec["updatedAt"])


def assert_nothing_written(api) -> None:
    rows = all_deals(api)
    assert rows == [], f"a rejected request must write nothing, found {[r['externalDealId'] for r in rows]}"


def rtp_aids_of(rec: dict) -> list:
    return [a["rtp_aid"] for a in rec["associatedAccounts"]]


FULL = {
    "amount": 125000.5,
    "dealCurrencyCode": "USD",
    "stageId": "st-discovery",
    "stageLabel": "Discovery",
    "pipelineId": "pl-sales",
    "pipelineLabel": "Sales Pipeline",
    "startDate": "2026-03-01T09:00:00.000Z",
    "closedDate": "2026-06-30T17:00:00.000Z",
    "ownerName": "Jane Smith",
    "ownerEmail": "jane@yourcompany.com",
    "ownerId": "rep-123",
}


# --------------------------------------------------------------------------- upsert and results


def test_push_stores_every_given_field_and_the_record_has_the_contract_shape(api):
    item = deal(name="Acme – Enterprise", **FULL)
    data = push_deals(api, [item])
    assert data["results"][0]["status"] == "upserted", data
    rows = all_deals(api)
    assert len(rows) == 1, rows
    rec = rows[0]
    assert_deal_record(rec)
    assert rec["externalDealId"] == item["externalDealId"]
    assert rec["name"] == "Acme – Enterprise"
    assert rec["amount"] == 125000.5
    for k in (
        "dealCurrencyCode",
        "stageId",
        "stageLabel",
        "pipelineId",
        "pipelineLabel",
        "ownerName",
        "ownerEmail",
        "ownerId",
    ):
        assert rec[k] == item[k], (k, rec)
    assert instant(rec["startDate"]) == instant(FULL["startDate"]), rec
    assert instant(rec["closedDate"]) == instant(FULL["closedDate"]), rec
    assert rec["associatedAccounts"] == []


def test_unset_fields_are_null(api):
    item = deal()
    push_deals_ok(api, [item])
    rec = get_deal(api, item["externalDealId"])
    assert_deal_record(rec)
    for k in (
        "amount",
        "dealCurrencyCode",
        "stageId",
        "stageLabel",
        "pipelineId",
        "pipelineLabel",
        "startDate",
        "closedDate",
        "ownerName",
        "ownerEmail",
        "ownerId",
    ):
        assert rec[k] is None, f"unset {k} must be null: {rec}"
    assert rec["associatedAccounts"] == []
    assert rec["stageHistory"] == [], "a deal that never had a stageId has no stage history"


def test_upsert_by_external_deal_id_keeps_omitted_keys(api):
    ext = unique_name("deal")
    first = push_deals(api, [deal(ext, name="Original", **FULL)])
    assert first["results"][0]["status"] == "upserted"
    before = get_deal(api, ext)

    second = push_deals(api, [deal(ext, name="Renamed", amount=99)])
    assert second["results"][0]["status"] == "upserted", "a known externalDealId is upserted again"
    after = get_deal(api, ext)
    assert len(all_deals(api)) == 1, "the same externalDealId must not create a second deal"
    assert after["id"] == before["id"], "the deal keeps its id across upserts"
    assert after["name"] == "Renamed" and after["amount"] == 99
    for k in (
        "dealCurrencyCode",
        "stageId",
        "stageLabel",
        "pipelineId",
        "pipelineLabel",
        "ownerName",
        "ownerEmail",
        "ownerId",
    ):
        assert after[k] == before[k], f"omitted key {k} must keep its stored value: {after}"
    assert instant(after["closedDate"]) == instant(before["closedDate"])
    assert instant(after["startDate"]) == instant(before["startDate"])
    assert after["createdAt"] == before["createdAt"], "createdAt does not move on update"
    assert parse_ts(after["updatedAt"]) >= parse_ts(before["updatedAt"])


def test_results_are_in_request_order_with_summary(api):
    items = [deal(), deal(), deal(), deal()]
    data = push_deals(api, items)
    assert [r["externalDealId"] for r in data["results"]] == [i["externalDealId"] for i in items]
    assert {k: data["summary"][k] for k in ("total", "upserted", "failed")} == {"total": 4, "upserted": 4, "failed": 0}
    assert set(deals_by_ext(api)) == {i["externalDealId"] for i in items}


def test_ids_are_distinct_uuids(api):
    items = [deal(), deal(), deal()]
    push_deals_ok(api, items)
    ids = [r["id"] for r in all_deals(api)]
    assert len(set(ids)) == 3 and all(UUID_RE.match(i) for i in ids), ids


def test_external_deal_id_repeated_in_one_request_is_processed_in_order(api):
    """§6.33: the second item upserts what the first one stored."""
    ext = unique_name("rep")
    items = [
        deal(ext, name="First", amount=10, stageId="s1", stageLabel="One", pipelineId="p"),
        deal(ext, name="Second", stageId="s2", stageLabel="Two", pipelineId="p"),
    ]
    data = push_deals(api, items)
    assert [r["status"] for r in data["results"]] == ["upserted", "upserted"], data["results"]
    assert data["summary"]["upserted"] == 2 and data["summary"]["total"] == 2
    rows = all_deals(api)
    assert len(rows) == 1, f"one deal for one externalDealId: {rows}"
    rec = rows[0]
    assert rec["name"] == "Second" and rec["amount"] == 10, (
        "later item wins; omitted amount is kept from the earlier one"
    )
    assert rec["stageId"] == "s2"
    assert [h["stageId"] for h in rec["stageHistory"]] == ["s1", "s2"], rec["stageHistory"]


def test_amount_accepts_integers_floats_and_zero(api):
    items = [deal(amount=0), deal(amount=42), deal(amount=0.25)]
    push_deals_ok(api, items)
    got = deals_by_ext(api)
    assert [got[i["externalDealId"]]["amount"] for i in items] == [0, 42, 0.25]


# --------------------------------------------------------------------------- validation (§1.4, §6.1, §6.2, §6.29)

VALIDATION_CASES = [
    ("deals-missing", {}, "deals", "isArray", "deals must be an array"),
    ("deals-string", {"deals": "x"}, "deals", "isArray", "deals must be an array"),
    ("deals-empty", {"deals": []}, "deals", "arrayMinSize", "deals must contain at least 1 elements"),
    (
        "extid-missing",
        {"deals": [{"name": "X"}]},
        "deals.0.externalDealId",
        "isNotEmpty",
        "externalDealId should not be empty",
    ),
    (
        "extid-empty",
        {"deals": [{"externalDealId": "", "name": "X"}]},
        "deals.0.externalDealId",
        "isNotEmpty",
        "externalDealId should not be empty",
    ),
    (
        "extid-null",
        {"deals": [{"externalDealId": None, "name": "X"}]},
        "deals.0.externalDealId",
        "isNotEmpty",
        "externalDealId should not be empty",
    ),
    (
        "extid-blank",
        {"deals": [{"externalDealId": "  ", "name": "X"}]},
        "deals.0.externalDealId",
        "isNotEmpty",
        "externalDealId should not be empty",
    ),
    (
        "extid-number",
        {"deals": [{"externalDealId": 7, "name": "X"}]},
        "deals.0.externalDealId",
        "isString",
        "externalDealId must be a string",
    ),
    ("name-missing", {"deals": [{"externalDealId": "d-1"}]}, "deals.0.name", "isNotEmpty", "name should not be empty"),
    (
        "name-empty",
        {"deals": [{"externalDealId": "d-1", "name": ""}]},
        "deals.0.name",
        "isNotEmpty",
        "name should not be empty",
    ),
    (
        "name-blank",
        {"deals": [{"externalDealId": "d-1", "name": " \t"}]},
        "deals.0.name",
        "isNotEmpty",
        "name should not be empty",
    ),
    (
        "owner-email",
        {"deals": [{"externalDealId": "d-1", "name": "X", "ownerEmail": "not-an-email"}]},
        "deals.0.ownerEmail",
        "isEmail",
        "ownerEmail must be an email",
    ),
    (
        "closed-date",
        {"deals": [{"externalDealId": "d-1", "name": "X", "closedDate": "next tuesday"}]},
        "deals.0.closedDate",
        "isIso8601",
        "closedDate must be a valid ISO 8601 date string",
    ),
    (
        "start-date",
        {"deals": [{"externalDealId": "d-1", "name": "X", "startDate": "31/12/2026"}]},
        "deals.0.startDate",
        "isIso8601",
        "startDate must be a valid ISO 8601 date string",
    ),
    (
        "amount-string",
        {"deals": [{"externalDealId": "d-1", "name": "X", "amount": "100"}]},
        "deals.0.amount",
        "isNumber",
        "amount must be a number conforming to the specified constraints",
    ),
    (
        "amount-bool",
        {"deals": [{"externalDealId": "d-1", "name": "X", "amount": True}]},
        "deals.0.amount",
        "isNumber",
        "amount must be a number conforming to the specified constraints",
    ),
    (
        "stageId-number",
        {"deals": [{"externalDealId": "d-1", "name": "X", "stageId": 3}]},
        "deals.0.stageId",
        "isString",
        "stageId must be a string",
    ),
    (
        "assoc-object",
        {"deals": [{"externalDealId": "d-1", "name": "X", "associatedAccounts": {"domain": "a.com"}}]},
        "deals.0.associatedAccounts",
        "isArray",
        "associatedAccounts must be an array",
    ),
]


@pytest.mark.parametrize("body,path,key,text", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_request_shape_errors_are_400_validation_and_write_nothing(api, body, path, key, text):
    body = dict(body)
    if isinstance(body.get("deals"), list) and body["deals"]:
        # A valid item first: the whole request is rejected, the valid item included.
        body["deals"] = [deal()] + body["deals"]
        path = path.replace("deals.0.", "deals.1.")
    r = api.post("/deals", json=body)
    assert_constraint(r, path, key, text)
    assert_nothing_written(api)


def test_too_many_deals_is_400_array_max_size(api):
    r = push_deals_raw(api, [deal() for _ in range(101)])
    assert_constraint(r, "deals", "arrayMaxSize", "deals must contain no more than 100 elements")
    assert_nothing_written(api)


def test_exactly_100_deals_are_accepted(api):
    data = push_deals(api, [deal() for _ in range(100)])
    assert data["summary"]["upserted"] == 100
    assert len(all_deals(api)) == 100


def test_validation_reports_every_bad_item_with_zero_based_paths(api):
    body = {"deals": [deal(), {"name": "No Id"}, deal(ownerEmail="bad"), deal(closedDate="2026-13-45")]}
    errors = validation_errors(api.post("/deals", json=body))
    assert_constraint(errors, "deals.1.externalDealId", "isNotEmpty", "externalDealId should not be empty")
    assert_constraint(errors, "deals.2.ownerEmail", "isEmail", "ownerEmail must be an email")
    assert_constraint(errors, "deals.3.closedDate", "isIso8601", "closedDate must be a valid ISO 8601 date string")
    prop = {e["path"]: e["property"] for e in errors}
    assert prop["deals.2.ownerEmail"] == "ownerEmail"
    assert_nothing_written(api)


def test_a_rejected_request_does_not_touch_an_existing_deal(api):
    ext = unique_name("keep")
    push_deals_ok(api, [deal(ext, name="Keep", amount=1)])
    validation_errors(push_deals_raw(api, [deal(ext, name="Changed", amount=2), deal(ownerEmail="x")]))
    rec = get_deal(api, ext)
    assert rec["name"] == "Keep" and rec["amount"] == 1


def test_bad_stage_history_entry_is_a_whole_request_400(api):
    body = [deal(stageId="s2", stageHistory=[{"stageId": "s1", "enteredAt": "not a date"}])]
    errors = validation_errors(push_deals_raw(api, body))
    assert any(e["path"].startswith("deals.0.stageHistory.0") for e in errors), errors
    assert_nothing_written(api)


# --------------------------------------------------------------------------- associated accounts (§2.8, §6.32)


@pytest.fixture
def accts(api):
    """A handful of accounts to associate deals with."""
    uid = unique_name("n")
    spec = {
        "A": account(unique_domain("assoc-a"), name=f"Alpha {uid}", externalId=unique_name("ext-a")),
        "B": account(unique_domain("assoc-b"), name=f"Beta {uid}", externalId=unique_name("ext-b")),
        "D": account(unique_domain("assoc-d"), name=f"Delta {uid}"),
        "T1": account(unique_domain("assoc-t1"), name=f"Twin {uid}"),
        "T2": account(unique_domain("assoc-t2"), name=f"Twin {uid}"),
    }
    results = push_ok(api, list(spec.values()))
    out = {}
    for (k, item), res in zip(spec.items(), results, strict=True):
        out[k] = {**item, "rtp_aid": res["rtp_aid"]}
    return out


def test_associations_resolve_by_domain_then_external_id_then_unique_exact_name(api, accts):
    A, B, D, T = accts["A"], accts["B"], accts["D"], accts["T1"]
    cases = {
        "domain-normalised": ({"domain": f"https://www.{A['domain'].upper()}/pricing?x=1"}, A["rtp_aid"]),
        "domain-beats-externalId": ({"domain": A["domain"], "externalId": B["externalId"]}, A["rtp_aid"]),
        "domain-beats-name": ({"domain": A["domain"], "name": B["name"]}, A["rtp_aid"]),
        "externalId-only": ({"externalId": B["externalId"]}, B["rtp_aid"]),
        "unknown-domain-falls-back-to-externalId": (
            {"domain": unique_domain("nobody"), "externalId": B["externalId"]},
            B["rtp_aid"],
        ),
        "externalId-beats-name": ({"externalId": B["externalId"], "name": A["name"]}, B["rtp_aid"]),
        "unknown-domain-and-externalId-fall-back-to-name": (
            {"domain": unique_domain("nobody"), "externalId": unique_name("nobody"), "name": D["name"]},
            D["rtp_aid"],
        ),
        "name-only": ({"name": D["name"]}, D["rtp_aid"]),
        "ambiguous-name-unresolved": ({"name": T["name"]}, None),
        "name-is-exact-case": ({"name": D["name"].upper()}, None),
        "nothing-matches": (
            {"domain": unique_domain("nobody"), "externalId": unique_name("nobody"), "name": unique_name("nobody")},
            None,
        ),
    }
    items = {label: deal(associatedAccounts=[assoc]) for label, (assoc, _) in cases.items()}
    push_deals_ok(api, list(items.values()))
    got = deals_by_ext(api)
    problems = []
    for label, (assoc, expected) in cases.items():
        rec = got[items[label]["externalDealId"]]
        assert_deal_record(rec)
        assert len(rec["associatedAccounts"]) == 1, rec
        if rec["associatedAccounts"][0]["rtp_aid"] != expected:
            problems.append((label, assoc, "expected", expected, "got", rec["associatedAccounts"][0]["rtp_aid"]))
    assert not problems, "association resolution (§2.8, §6.32):\n" + "\n".join(map(str, problems))


def test_unnormalisable_domain_leaves_the_association_unresolved_not_failed(api, accts):
    item = deal(associatedAccounts=[{"domain": "not a domain"}, {"domain": accts["A"]["domain"]}])
    data = push_deals(api, [item])
    assert data["results"][0]["status"] == "upserted", "an un-normalisable association domain is not a failure (§6.32)"
    rec = get_deal(api, item["externalDealId"])
    assert Counter(rtp_aids_of(rec)) == Counter([None, accts["A"]["rtp_aid"]]), rec["associatedAccounts"]


def test_several_associations_on_one_deal(api, accts):
    item = deal(
        associatedAccounts=[
            {"domain": accts["A"]["domain"]},
            {"externalId": accts["B"]["externalId"]},
            {"domain": unique_domain("later")},
        ]
    )
    push_deals_ok(api, [item])
    rec = get_deal(api, item["externalDealId"])
    assert Counter(rtp_aids_of(rec)) == Counter([accts["A"]["rtp_aid"], accts["B"]["rtp_aid"], None]), rec[
        "associatedAccounts"
    ]


def test_unresolved_associations_resolve_when_the_account_is_pushed(api):
    dom = unique_domain("late")
    ext = unique_name("late-ext")
    item = deal(associatedAccounts=[{"domain": f"https://WWW.{dom}/"}])
    item2 = deal(associatedAccounts=[{"externalId": ext}])
    push_deals_ok(api, [item, item2])
    got = deals_by_ext(api)
    assert rtp_aids_of(got[item["externalDealId"]]) == [None]
    assert rtp_aids_of(got[item2["externalDealId"]]) == [None]

    [by_domain, by_ext] = push_ok(api, [account(dom), account(unique_domain("late-x"), externalId=ext)])
    got = deals_by_ext(api)
    assert rtp_aids_of(got[item["externalDealId"]]) == [by_domain["rtp_aid"]], (
        "resolved when a matching account appears (domain)"
    )
    assert rtp_aids_of(got[item2["externalDealId"]]) == [by_ext["rtp_aid"]], (
        "resolved when a matching account appears (externalId)"
    )


def test_upsert_with_associated_accounts_replaces_them_and_omitting_keeps_them(api, accts):
    ext = unique_name("deal")
    push_deals_ok(api, [deal(ext, associatedAccounts=[{"domain": accts["A"]["domain"]}])])
    push_deals_ok(api, [deal(ext, name="Renamed")])
    assert rtp_aids_of(get_deal(api, ext)) == [accts["A"]["rtp_aid"]], "omitted associatedAccounts keep the stored ones"
    push_deals_ok(api, [deal(ext, associatedAccounts=[{"domain": accts["B"]["domain"]}])])
    assert rtp_aids_of(get_deal(api, ext)) == [accts["B"]["rtp_aid"]], (
        "given associatedAccounts replace the stored ones"
    )


# --------------------------------------------------------------------------- stage history (§2.8)


def test_stage_history_records_first_stage_and_each_change(api):
    ext = unique_name("stage")
    t0 = datetime.now(UTC) - timedelta(seconds=5)
    push_deals_ok(api, [deal(ext, stageId="s1", stageLabel="Discovery", pipelineId="p1")])
    rec = get_deal(api, ext)
    assert [(h["stageId"], h["stageLabel"], h["pipelineId"]) for h in rec["stageHistory"]] == [
        ("s1", "Discovery", "p1")
    ]
    entered1 = parse_ts(rec["stageHistory"][0]["enteredAt"])
    assert t0 <= entered1 <= datetime.now(UTC) + timedelta(seconds=5), "enteredAt is when the stage was entered"

    # Same stage again (even with other changes): nothing is appended.
    push_deals_ok(api, [deal(ext, name="Same stage", stageId="s1", stageLabel="Discovery", pipelineId="p1", amount=5)])
    # No stageId: the stage is kept, nothing is appended.
    push_deals_ok(api, [deal(ext, name="No stage given")])
    rec = get_deal(api, ext)
    assert rec["stageId"] == "s1"
    assert len(rec["stageHistory"]) == 1, f"re-pushing the same stage adds nothing: {rec['stageHistory']}"

    push_deals_ok(api, [deal(ext, stageId="s2", stageLabel="Proposal", pipelineId="p1")])
    push_deals_ok(api, [deal(ext, stageId="s3", stageLabel="Closed Won", pipelineId="p1")])
    rec = get_deal(api, ext)
    hist = rec["stageHistory"]
    assert [(h["stageId"], h["stageLabel"], h["pipelineId"]) for h in hist] == [
        ("s1", "Discovery", "p1"),
        ("s2", "Proposal", "p1"),
        ("s3", "Closed Won", "p1"),
    ], hist
    times = [parse_ts(h["enteredAt"]) for h in hist]
    assert times == sorted(times), "stage history is oldest first"
    assert times[0] == entered1, "earlier entries do not change"
    assert rec["stageId"] == "s3" and rec["stageLabel"] == "Closed Won"


def test_going_back_to_an_earlier_stage_is_a_change(api):
    ext = unique_name("back")
    for sid in ("s1", "s2", "s1"):
        push_deals_ok(api, [deal(ext, stageId=sid, stageLabel=sid.upper(), pipelineId="p")])
    assert [h["stageId"] for h in get_deal(api, ext)["stageHistory"]] == ["s1", "s2", "s1"]


def test_stage_set_on_a_deal_created_without_one(api):
    ext = unique_name("late-stage")
    push_deals_ok(api, [deal(ext)])
    assert get_deal(api, ext)["stageHistory"] == []
    push_deals_ok(api, [deal(ext, stageId="s1", stageLabel="Qualified", pipelineId="p")])
    hist = get_deal(api, ext)["stageHistory"]
    assert [h["stageId"] for h in hist] == ["s1"], "the first stage is recorded"


def test_stage_history_backfill_oldest_first(api):
    ext = unique_name("backfill")
    item = deal(
        ext,
        stageId="s3",
        stageLabel="Negotiation",
        pipelineId="p",
        stageHistory=[
            # Deliberately not in time order.
            {"stageId": "s2", "stageLabel": "Demo", "enteredAt": "2026-02-10T12:00:00Z"},
            {"stageId": "s1", "enteredAt": "2026-01-05T08:30:00.000Z"},
        ],
    )
    push_deals_ok(api, [item])
    rec = get_deal(api, ext)
    assert_deal_record(rec)
    hist = rec["stageHistory"]
    assert [h["stageId"] for h in hist] == ["s1", "s2", "s3"], (
        f"backfilled entries, oldest first, then the current stage: {hist}"
    )
    assert parse_ts(hist[0]["enteredAt"]) == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert parse_ts(hist[1]["enteredAt"]) == datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    assert hist[1]["stageLabel"] == "Demo"
    times = [parse_ts(h["enteredAt"]) for h in hist]
    assert times == sorted(times), "oldest first"


# --------------------------------------------------------------------------- GET /deals: pagination and delta sync (§1.5)


def test_empty_workspace_has_no_deals(api):
    p = page(api, "/deals")
    assert p["data"] == [] and p["nextCursor"] is None and p["hasNextPage"] is False


def test_deals_are_paginated(api):
    items = [deal() for _ in range(5)]
    push_deals_ok(api, items)
    rows, pages = list_pass(api, "/deals", limit=2)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert len({p["syncTimestamp"] for p in pages}) == 1, "all pages of one pass share the syncTimestamp"
    got = [r["externalDealId"] for r in rows]
    assert sorted(got) == sorted(i["externalDealId"] for i in items), "no duplicates, no gaps"
    for r in rows:
        assert_deal_record(r)
    tail = page(api, "/deals", limit=2, cursor=pages[-1]["nextCursor"])
    assert tail["data"] == [] and tail["nextCursor"] is None


def test_limit_cursor_and_last_sync_are_validated(api):
    assert_constraint(api.get("/deals", params={"limit": 0}), "limit", None, "limit must not be less than 1")
    assert_constraint(api.get("/deals", params={"limit": 1001}), "limit", None, "limit must not be greater than 1000")
    error(api.get("/deals", params={"cursor": "definitely-not-a-cursor"}), 400, "Invalid cursor", "Bad Request")
    error(
        api.get("/deals", params={"lastSync": "yesterday"}),
        400,
        "lastSync must be a valid ISO 8601 date string",
        "Bad Request",
    )


def test_delta_sync_returns_changed_deals_only(api):
    changed, untouched, ext_new = deal(), deal(), unique_name("new")
    push_deals_ok(api, [changed, untouched])
    first = page(api, "/deals", limit=1000)
    sync = first["syncTimestamp"]
    before = {r["externalDealId"]: r for r in first["data"]}

    push_deals_ok(api, [deal(changed["externalDealId"], name="Changed after sync")])
    push_deals_ok(api, [deal(ext_new)])

    rows, pages = list_pass(api, "/deals", lastSync=sync, limit=1)
    assert len({p["syncTimestamp"] for p in pages}) == 1
    got = {r["externalDealId"]: r for r in rows}
    assert changed["externalDealId"] in got, "a deal changed after syncTimestamp must come back"
    assert got[changed["externalDealId"]]["name"] == "Changed after sync"
    assert ext_new in got, "a deal created after syncTimestamp must come back"
    if parse_ts(before[untouched["externalDealId"]]["updatedAt"]) < parse_ts(sync):
        assert untouched["externalDealId"] not in got, "an unchanged deal must not come back with lastSync"
    assert parse_ts(got[changed["externalDealId"]]["updatedAt"]) >= parse_ts(sync)

    p = page(api, "/deals", lastSync="2999-01-01T00:00:00.000Z")
    assert p["data"] == []


# --------------------------------------------------------------------------- isolation (§0)


@pytest.fixture
def other_api(server, new_workspace):
    with client_for(server, new_workspace().key) as c:
        yield c


def test_deals_do_not_cross_workspaces(api, other_api):
    ext = unique_name("iso")
    dom = unique_domain("iso")
    push_ok(api, [account(dom)])
    push_deals_ok(api, [deal(ext, name="Mine", amount=1)])
    assert all_deals(other_api) == [], "another workspace sees none of our deals"

    # The same externalDealId in another workspace is a separate deal; an association there
    # does not resolve to our account.
    push_deals_ok(other_api, [deal(ext, name="Theirs", associatedAccounts=[{"domain": dom}])])
    theirs = get_deal(other_api, ext)
    assert theirs["name"] == "Theirs" and theirs["amount"] is None
    assert rtp_aids_of(theirs) == [None], "associations never resolve to another workspace's account"
    mine = get_deal(api, ext)
    assert mine["name"] == "Mine" and mine["amount"] == 1
    assert mine["id"] != theirs["id"]


# --------------------------------------------------------------------------- later resolution, more ways (§2.8)


def test_unresolved_name_association_resolves_when_a_uniquely_named_account_appears(api):
    name = unique_name("Gamma Corp")
    item = deal(associatedAccounts=[{"name": name}])
    push_deals_ok(api, [item])
    assert rtp_aids_of(get_deal(api, item["externalDealId"])) == [None]
    [acct] = push_ok(api, [account(name=name)])
    assert rtp_aids_of(get_deal(api, item["externalDealId"])) == [acct["rtp_aid"]]


def test_unresolved_external_id_association_resolves_when_an_account_gets_that_external_id(api):
    ext = unique_name("mapped")
    item = deal(associatedAccounts=[{"externalId": ext}])
    acct_item = account()
    [acct] = push_ok(api, [acct_item])
    push_deals_ok(api, [item])
    assert rtp_aids_of(get_deal(api, item["externalDealId"])) == [None]
    r = api.patch("/accounts/external-ids", json={"mappings": [{"domain": acct_item["domain"], "externalId": ext}]})
    assert r.status_code == 200, r.text
    assert rtp_aids_of(get_deal(api, item["externalDealId"])) == [acct["rtp_aid"]], (
        "an account that comes to match (here: gains the externalId) resolves the association"
    )


def test_a_resolution_after_sync_reaches_the_next_delta_pass(api):
    """§1.5: a client that passes syncTimestamp as the next lastSync never misses a change; the
    association's rtp_aid going from null to the account is a change of the deal record."""
    dom = unique_domain("sync-late")
    item = deal(associatedAccounts=[{"domain": dom}])
    push_deals_ok(api, [item])
    sync = page(api, "/deals", limit=1000)["syncTimestamp"]
    [acct] = push_ok(api, [account(dom)])
    rows, _ = list_pass(api, "/deals", lastSync=sync, limit=1000)
    got = {r["externalDealId"]: r for r in rows}
    assert item["externalDealId"] in got, "the deal whose association was resolved must come back with lastSync"
    assert rtp_aids_of(got[item["externalDealId"]]) == [acct["rtp_aid"]]


def test_date_only_and_offset_timestamps_are_iso_8601(api):
    item = deal(startDate="2026-03-01", closedDate="2026-06-30T19:00:00+02:00")
    push_deals_ok(api, [item])
    rec = get_deal(api, item["externalDealId"])
    assert instant(rec["startDate"]) == datetime(2026, 3, 1, tzinfo=UTC), rec
    assert instant(rec["closedDate"]) == datetime(2026, 6, 30, 17, 0, tzinfo=UTC), rec


# --------------------------------------------------------------------------- conventions on these routes (§1.3, §6.3, §6.5)


def test_write_conventions_on_post_deals(server, workspace, api):
    assert_write_route_conventions(server, workspace.key, "POST", "/deals", {"deals": [deal()]})
    assert_nothing_written(api)


def test_get_deals_envelope_path_keeps_the_query_string(api):
    body = envelope(api.get("/deals", params={"limit": 1}), 200, "/api/v1/deals?limit=1")
    assert body["data"]["data"] == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_methods_deals_does_not_serve_are_404(api, method):
    not_found_route(api.request(method, "/deals", json={"deals": [deal()]}), method, "/api/v1/deals")


def test_a_failing_item_is_atomic_and_does_not_affect_the_others(api):
    """§1.4: each item is stored completely or not at all; one failing item never affects the
    others. The contract names no per-item failure for deals, so this uses an association that
    names no key at all and accepts either outcome the contract allows for it: a whole-request
    400, or a per-item result (`failed` → nothing of it stored)."""
    ext = unique_name("atomic")
    push_deals_ok(api, [deal(ext, name="Keep", amount=1)])
    fresh = deal()
    items = [deal(ext, name="Changed", amount=2, associatedAccounts=[{}]), fresh]
    r = push_deals_raw(api, items)
    if r.status_code == 400:
        validation_errors(r)
        assert set(deals_by_ext(api)) == {ext} and get_deal(api, ext)["name"] == "Keep"
        return
    data = ok(r, "/api/v1/deals")
    bad, good = data["results"]
    assert bad["status"] in ("upserted", "failed") and bad["externalDealId"] == ext, bad
    if bad["status"] == "failed":
        assert isinstance(bad.get("error"), str) and bad["error"], bad
        assert {k: data["summary"][k] for k in ("total", "upserted", "failed")} == {
            "total": 2,
            "upserted": 1,
            "failed": 1,
        }
    assert good["status"] == "upserted", "one failing item never affects the others"
    assert fresh["externalDealId"] in deals_by_ext(api)
    if bad["status"] == "failed":
        rec = get_deal(api, ext)
        assert (rec["name"], rec["amount"]) == ("Keep", 1), f"a failed item changes nothing: {rec}"
