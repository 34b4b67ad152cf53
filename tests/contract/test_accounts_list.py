"""GET /accounts (API.md §1.5, §2.1, §2.4, §6.15, §6.16, §6.32): record shape, `domains`
filter, keyset paging, delta sync and the extension filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from contract_helpers import (
    SCORE_KEYS,
    account,
    all_accounts,
    assert_account_record,
    create_accounts,
    create_field,
    create_segment,
    envelope,
    get_account,
    list_pass,
    ok,
    page,
    parse_ts,
    push,
    push_ok,
    unique_domain,
    unique_name,
    validation_errors,
)


def domains_of(rows) -> list[str]:
    return [r["domain"] for r in rows]


# --------------------------------------------------------------------------- record shape (§2.1, §6.15)


def test_new_account_record_has_every_key_with_defaults(api):
    before = datetime.now(UTC)
    item = account(name="AcMe Corp")
    [res] = push_ok(api, [item])
    rec = get_account(api, item["domain"])
    assert_account_record(rec)
    assert rec["rtp_aid"] == res["rtp_aid"]
    assert rec["name"] == "AcMe Corp", "name keeps the casing it was pushed with"
    assert rec["domain"] == item["domain"]
    assert rec["externalId"] is None and rec["shortName"] is None and rec["linkedinUrl"] is None, rec
    assert rec["tags"] == [] and rec["customFields"] == {} and rec["segmentIds"] == [], rec
    for k in SCORE_KEYS:
        assert rec[k] == 0, f"a new account has {k} 0: {rec}"
    assert rec["rtp_journey_stage"] == ""
    changed = parse_ts(rec["rtp_last_account_date"])
    assert before - timedelta(seconds=120) <= changed <= datetime.now(UTC) + timedelta(seconds=120)


def test_ids_are_distinct_per_account(api):
    create_accounts(api, 3)
    rows = all_accounts(api)
    assert len({r["id"] for r in rows}) == 3 and len({r["rtp_aid"] for r in rows}) == 3
    for r in rows:
        assert_account_record(r)


def test_rtp_aids_are_time_ordered(api):
    aids = [push_ok(api, [account()])[0]["rtp_aid"] for _ in range(3)]
    assert aids == sorted(aids) and len(set(aids)) == 3, f"later accounts get larger rtp_aids: {aids}"


def test_custom_fields_list_every_active_field_with_null(api):
    item = account()
    push_ok(api, [item])
    k1 = create_field(api, unique_name("Later One"), "singleLineText")["key"]
    k2 = create_field(api, unique_name("Later Two"), "number")["key"]
    rec = get_account(api, item["domain"])
    assert rec["customFields"] == {k1: None, k2: None}
    other = account(customFields={k2: 7})
    push_ok(api, [other])
    assert get_account(api, other["domain"])["customFields"] == {k1: None, k2: 7}


# --------------------------------------------------------------------------- domains filter (§2.4, §6.32)


def test_domains_filter_normalises_and_matches(api):
    a, b, c = account(), account(), account()
    push_ok(api, [a, b, c])
    filt = json.dumps([a["domain"].upper(), f"https://www.{b['domain']}/x", unique_domain("absent"), a["domain"]])
    p = page(api, domains=filt)
    assert sorted(domains_of(p["data"])) == sorted([a["domain"], b["domain"]])
    assert p["hasNextPage"] is False


def test_domains_filter_with_no_match_is_an_empty_page(api):
    push_ok(api, [account()])
    p = page(api, domains=json.dumps([unique_domain("absent")]))
    assert p["data"] == [] and p["nextCursor"] is None and p["hasNextPage"] is False


def test_domains_filter_accepts_100_and_rejects_101(api):
    ok(api.get("/accounts", params={"domains": json.dumps([unique_domain("d") for _ in range(100)])}))
    r = api.get("/accounts", params={"domains": json.dumps([unique_domain("d") for _ in range(101)])})
    errors = validation_errors(r)
    assert any(e["path"] == "domains" for e in errors), errors


@pytest.mark.parametrize(
    "raw", ['["acme.com"', "acme.com", "[acme.com]", "{"], ids=["unterminated", "bare", "unquoted", "brace"]
)
def test_domains_filter_bad_json_is_400(api, raw):
    body = envelope(api.get("/accounts", params={"domains": raw}), 400)
    assert body["message"] == "Bad Request", body


@pytest.mark.parametrize("bad", ["localhost", "not a domain.com", "https://"])
def test_domains_filter_unnormalisable_domain_is_400_on_domains(api, bad):
    errors = validation_errors(api.get("/accounts", params={"domains": json.dumps(["acme.com", bad])}))
    assert any(e["path"] == "domains" for e in errors), errors


# --------------------------------------------------------------------------- keyset paging (§1.5, §2.4)


def test_keyset_paging_over_250_accounts(api):
    created = {r["rtp_aid"] for r in create_accounts(api, 250)}
    rows, pages = list_pass(api, limit=100)
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert all(p["nextCursor"] for p in pages), "nextCursor is non-null on every page with rows, also the last"
    assert len({p["syncTimestamp"] for p in pages}) == 1, "one pass, one syncTimestamp"

    aids = [r["rtp_aid"] for r in rows]
    assert len(aids) == len(set(aids)) == 250, "no duplicates"
    assert set(aids) == created, "no gaps"
    assert aids == sorted(aids), "ordered by rtp_aid ascending"

    tail = page(api, limit=100, cursor=pages[-1]["nextCursor"])
    assert tail["data"] == [] and tail["nextCursor"] is None and tail["hasNextPage"] is False
    assert tail["syncTimestamp"] == pages[0]["syncTimestamp"], (
        "pages reached through the pass's cursors share its syncTimestamp"
    )

    default = page(api)
    assert len(default["data"]) == 100 and default["hasNextPage"] is True, "default limit is 100"
    assert [r["rtp_aid"] for r in default["data"]] == aids[:100]

    everything = page(api, limit=1000)
    assert [r["rtp_aid"] for r in everything["data"]] == aids
    assert everything["hasNextPage"] is False and everything["nextCursor"]


def test_small_pages_follow_rtp_aid_order(api):
    create_accounts(api, 5)
    rows, pages = list_pass(api, limit=2)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    aids = [r["rtp_aid"] for r in rows]
    assert aids == sorted(aids) and len(set(aids)) == 5


def test_inserts_during_a_pass_cause_no_duplicates(api):
    create_accounts(api, 5)
    first = page(api, limit=2)
    push_ok(api, [account(), account()])
    rows = list(first["data"])
    cursor = first["nextCursor"]
    while True:
        p = page(api, limit=2, cursor=cursor)
        rows.extend(p["data"])
        if not p["hasNextPage"]:
            break
        cursor = p["nextCursor"]
    aids = [r["rtp_aid"] for r in rows]
    assert len(aids) == len(set(aids)), "keyset paging never repeats a row"
    assert len(aids) >= 5


# --------------------------------------------------------------------------- delta sync (§1.5)


def assert_untouched_absent(rows, untouched: dict[str, dict], sync_ts: str) -> None:
    """Accounts whose last change is strictly before `sync_ts` must not be in a delta pass.

    Re-delivery is allowed (§1.5), so only accounts that changed at an earlier millisecond than
    the syncTimestamp are certainly outside the `lastSync` filter.
    """
    cut = parse_ts(sync_ts)
    seen = set(domains_of(rows))
    for domain, rec in untouched.items():
        if parse_ts(rec["rtp_last_account_date"]) < cut:
            assert domain not in seen, f"{domain} did not change after lastSync={sync_ts} but was returned"


def test_delta_sync_returns_the_changed_accounts(api):
    a, b, c, d, e = (account(name=n) for n in "ABCDE")
    push_ok(api, [a, b, c, d, e])

    started = datetime.now(UTC)
    first_rows, first_pages = list_pass(api, limit=1000)
    sync = first_pages[0]["syncTimestamp"]
    s = parse_ts(sync)
    assert s >= started - timedelta(seconds=11), "a syncTimestamp is at most 10 s older than its pass"
    assert s <= datetime.now(UTC) + timedelta(seconds=2), "a syncTimestamp is not in the future"
    before = {r["domain"]: r for r in first_rows}

    aid = {r["domain"]: r["rtp_aid"] for r in first_rows}
    ok(api.put(f"/accounts/{aid[a['domain']]}", json={"name": "A2"}))  # PUT
    assert push(api, [account(b["domain"], name="B2")], upsert=True)["results"][0]["status"] == "updated"  # upsert
    assert push(api, [account(c["domain"], name="C2")])["results"][0]["status"] == "failed"  # no change
    ok(
        api.patch(
            "/accounts/external-ids", json={"mappings": [{"domain": d["domain"], "externalId": unique_name("d")}]}
        )
    )
    new = account(name="N")
    push_ok(api, [new])

    rows, pages = list_pass(api, lastSync=sync, limit=2)
    assert len({p["syncTimestamp"] for p in pages}) == 1
    got = {r["domain"]: r for r in rows}
    changed = {a["domain"], b["domain"], d["domain"], new["domain"]}
    assert changed <= set(got), f"delta pass missed changes: {changed - set(got)}"
    assert got[a["domain"]]["name"] == "A2" and got[b["domain"]]["name"] == "B2"
    assert got[d["domain"]]["externalId"] is not None
    assert_untouched_absent(rows, {c["domain"]: before[c["domain"]], e["domain"]: before[e["domain"]]}, sync)
    now = {r["domain"]: r for r in all_accounts(api)}
    for dom in (c["domain"], e["domain"]):
        assert now[dom]["rtp_last_account_date"] == before[dom]["rtp_last_account_date"], f"{dom} did not change"
    for dom in (a["domain"], b["domain"]):
        assert parse_ts(got[dom]["rtp_last_account_date"]) >= s, "rtp_last_account_date moves with a change"

    # A further pass with nothing changed returns nothing older than its lastSync.
    sync2 = pages[0]["syncTimestamp"]
    assert parse_ts(sync2) >= s
    rows3, _ = list_pass(api, lastSync=sync2, limit=1000)
    assert_untouched_absent(rows3, {r["domain"]: r for r in all_accounts(api)}, sync2)


def test_changes_during_a_pass_are_delivered_by_the_next_pass(api):
    x, y, z = account(), account(), account()
    push_ok(api, [x, y, z])
    first = page(api, limit=1)
    sync = first["syncTimestamp"]
    delivered = first["data"][0]
    # While the pass is under way: change a row it already delivered, and add a new one.
    ok(api.put(f"/accounts/{delivered['rtp_aid']}", json={"tags": ["changed-mid-pass"]}))
    late = account()
    push_ok(api, [late])
    cursor, stamps = first["nextCursor"], {sync}
    while True:
        p = page(api, limit=1, cursor=cursor)
        stamps.add(p["syncTimestamp"])
        if not p["hasNextPage"]:
            break
        cursor = p["nextCursor"]
    assert stamps == {sync}, "every page of a pass carries the first page's syncTimestamp"

    rows, _ = list_pass(api, lastSync=sync, limit=1000)
    got = {r["rtp_aid"]: r for r in rows}
    assert delivered["rtp_aid"] in got, "a change made during the pass must reach the next pass"
    assert got[delivered["rtp_aid"]]["tags"] == ["changed-mid-pass"]
    assert late["domain"] in domains_of(rows)


def test_last_sync_in_the_future_is_an_empty_page(api):
    push_ok(api, [account()])
    p = page(api, lastSync="2999-01-01T00:00:00.000Z")
    assert p["data"] == [] and p["nextCursor"] is None and p["hasNextPage"] is False


def test_last_sync_in_the_past_returns_everything(api):
    push_ok(api, [account(), account()])
    assert len(page(api, lastSync="2000-01-01T00:00:00Z")["data"]) == 2


def test_put_custom_field_change_counts_for_delta_sync(api):
    key = create_field(api, unique_name("Delta Field"), "singleLineText")["key"]
    item = account()
    [res] = push_ok(api, [item])
    sync = page(api, limit=1000)["syncTimestamp"]
    ok(api.put(f"/accounts/{res['rtp_aid']}", json={"customFields": {key: "v"}}))
    rows, _ = list_pass(api, lastSync=sync, limit=1000)
    assert item["domain"] in domains_of(rows)


# --------------------------------------------------------------------------- extension filters (§2.4, §6.16)


def test_tag_filter(api):
    a, b, c = account(tags=["t1", "t2"]), account(tags=["t2"]), account()
    push_ok(api, [a, b, c])
    assert set(domains_of(all_accounts(api, tag="t1"))) == {a["domain"]}
    assert set(domains_of(all_accounts(api, tag="t2"))) == {a["domain"], b["domain"]}
    assert all_accounts(api, tag="nope") == []
    rows, pages = list_pass(api, tag="t2", limit=1)
    assert len(rows) == 2 and len(pages) == 2


def test_segment_filter(api, cli, workspace):
    seg = create_segment(cli, workspace.name)
    other = create_segment(cli, workspace.name, status="draft")
    inside, outside = account(), account()
    push_ok(api, [inside], segmentId=seg)
    push_ok(api, [outside])
    assert domains_of(all_accounts(api, segmentId=seg)) == [inside["domain"]]
    assert all_accounts(api, segmentId=other) == []


def test_min_score_is_inclusive(api):
    push_ok(api, [account(), account()])
    assert len(all_accounts(api, minScore=0)) == 2, "minScore is inclusive: score 0 >= 0"
    assert all_accounts(api, minScore=1) == []


def test_journey_stage_filter(api):
    push_ok(api, [account()])
    assert all_accounts(api, journeyStage="Consideration") == [], "new accounts have no journey stage yet"


def test_filters_combine(api):
    a, b = account(tags=["k"]), account(tags=["k"])
    push_ok(api, [a, b])
    rows = all_accounts(api, tag="k", minScore=0, domains=json.dumps([a["domain"]]))
    assert domains_of(rows) == [a["domain"]]
    assert all_accounts(api, tag="k", minScore=1) == []
