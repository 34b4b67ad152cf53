"""POST /accounts (API.md §1.4, §1.6, §2.2, §6.1, §6.2, §6.9–§6.11, §6.29, §6.33)."""

from __future__ import annotations

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
    push,
    push_ok,
    push_raw,
    random_hex24,
    unique_domain,
    unique_name,
    validation_errors,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def dup_error(domain: str, rtp_aid: str) -> str:
    return f"Account with domain '{domain}' already exists. Use PUT /accounts/{rtp_aid} to update it."


def assert_nothing_written(api) -> None:
    rows = all_accounts(api)
    assert rows == [], f"a rejected request must write nothing, found {[r['domain'] for r in rows]}"


# --------------------------------------------------------------------------- creation and results


def test_push_creates_accounts_with_results_in_request_order(api):
    items = [account(name="Acme Corp"), account(name="Globex"), account(name="Initech")]
    data = push(api, items)
    assert [r["domain"] for r in data["results"]] == [i["domain"] for i in items]
    assert [r["status"] for r in data["results"]] == ["created"] * 3
    aids = [r["rtp_aid"] for r in data["results"]]
    assert len(set(aids)) == 3, aids
    stored = accounts_by_domain(api, [i["domain"] for i in items])
    for item, aid in zip(items, aids, strict=True):
        assert stored[item["domain"]]["rtp_aid"] == aid
        assert stored[item["domain"]]["name"] == item["name"]


def test_push_stores_all_given_fields(api):
    item = account(
        name="Acme Corp",
        externalId=unique_name("crm"),
        shortName="Acme",
        linkedinUrl="https://www.linkedin.com/company/acme-corp",
        tags=["enterprise", "q2-target"],
    )
    push_ok(api, [item])
    rec = get_account(api, item["domain"])
    for k in ("name", "externalId", "shortName", "linkedinUrl", "tags"):
        assert rec[k] == item[k], (k, rec)


def test_result_items_carry_the_normalised_domain(api):
    bases = [unique_domain("norm") for _ in range(8)]
    sent = [
        f"https://www.{bases[0].upper()}/foo",
        f"  HTTP://WWW.{bases[1]}:8080/path?q=1#frag  ",
        f"{bases[2]}.",
        f"{bases[3]}?utm=1",
        f"{bases[4]}#top",
        f"http://{bases[5]}:443",
        f"www.{bases[6]}/",
        f"{bases[7].upper()}./x",
    ]
    data = push(api, [account(d) for d in sent])
    assert [r["domain"] for r in data["results"]] == bases
    assert all(r["status"] == "created" for r in data["results"]), data["results"]
    assert set(accounts_by_domain(api, bases)) == set(bases), "stored domains must be the normalised ones"


DECORATIONS = st.fixed_dictionaries(
    {
        "lead": st.sampled_from(["", " ", "\t"]),
        "scheme": st.sampled_from(["", "http://", "https://", "HTTPS://", "Http://"]),
        "www": st.sampled_from(["", "www.", "WWW."]),
        "case": st.sampled_from(["lower", "upper", "title"]),
        "port_or_dot": st.sampled_from(["", ":8080", ":1", "."]),
        "tail": st.sampled_from(["", "/", "/a/b", "?q=1", "#f", "/x?y=z#w", "?a/b", "#a?b/c"]),
        "trail": st.sampled_from(["", " ", "  "]),
    }
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decorations=st.lists(DECORATIONS, min_size=1, max_size=20))
def test_normalisation_property(api, decorations):
    bases, sent = [], []
    for d in decorations:
        base = unique_domain("prop")
        host = {"lower": base, "upper": base.upper(), "title": base.title()}[d["case"]]
        bases.append(base)
        sent.append(f"{d['lead']}{d['scheme']}{d['www']}{host}{d['port_or_dot']}{d['tail']}{d['trail']}")
    data = push(api, [account(s) for s in sent])
    got = [(s, r["domain"], r["status"]) for s, r in zip(sent, data["results"], strict=True)]
    assert [g[1] for g in got] == bases, got
    assert all(g[2] == "created" for g in got), got


IMPLAUSIBLE = [
    "localhost",
    "not a domain.com",
    "exa$mple.com",
    "https://",
    "www.",
    "http://www./path",
    "a,b.com",
    "user@acme.com",
]


def test_implausible_domains_are_per_item_failures(api):
    good1, good2 = account(), account()
    data = push(api, [good1] + [account(bad) for bad in IMPLAUSIBLE] + [good2])
    results = data["results"]
    assert results[0]["status"] == "created" and results[-1]["status"] == "created", results
    for bad, res in zip(IMPLAUSIBLE, results[1:-1], strict=True):
        assert res["status"] == "failed", (bad, res)
        assert res["error"] == f"Invalid domain '{bad}'", (bad, res)
        assert res["rtp_aid"] is None, (bad, res)
        assert res["domain"] == bad, f"a domain that cannot be normalised is reported as sent: {res}"
    assert {r["domain"] for r in all_accounts(api)} == {good1["domain"], good2["domain"]}


# --------------------------------------------------------------------------- duplicates and upsert


@pytest.mark.parametrize("upsert_flag", [None, False], ids=["default", "upsert-false"])
def test_existing_domain_without_upsert_fails_with_existing_rtp_aid(api, upsert_flag):
    domain = unique_domain("dup")
    [first] = push_ok(api, [account(domain, name="Original")])
    extra = {} if upsert_flag is None else {"upsert": upsert_flag}
    data = push(api, [account(f"https://www.{domain.upper()}/x", name="Other")], **extra)
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["rtp_aid"] == first["rtp_aid"], "a duplicate-domain failure carries the existing rtp_aid"
    assert res["domain"] == domain
    assert res["error"] == dup_error(domain, first["rtp_aid"])
    assert get_account(api, domain)["name"] == "Original", "a failed item must not change the account"


def test_upsert_overwrites_given_fields_merges_custom_fields_and_replaces_tags(api):
    f_text = create_field(api, unique_name("Stage Text"), "singleLineText")["key"]
    f_num = create_field(api, unique_name("Seats"), "number")["key"]
    f_region = create_field(api, unique_name("Region"), "singleLineText")["key"]
    domain = unique_domain("ups")
    ext = unique_name("crm")
    [first] = push_ok(
        api,
        [
            account(
                domain,
                name="Old Name",
                externalId=ext,
                shortName="Old",
                linkedinUrl="https://www.linkedin.com/company/old",
                tags=["t1", "t2"],
                customFields={f_text: "a", f_num: 10},
            )
        ],
    )
    new_domain = unique_domain("ups-new")
    data = push(
        api,
        [
            account(
                f"https://{domain}/again",
                name="New Name",
                linkedinUrl="https://www.linkedin.com/company/new",
                tags=["t3"],
                customFields={f_num: 20, f_region: "eu"},
            ),
            account(new_domain, name="Brand New"),
        ],
        upsert=True,
    )
    r_upd, r_new = data["results"]
    assert r_upd["status"] == "updated" and r_upd["rtp_aid"] == first["rtp_aid"] and r_upd["domain"] == domain, r_upd
    assert r_new["status"] == "created", r_new
    rec = get_account(api, domain)
    assert rec["name"] == "New Name"
    assert rec["linkedinUrl"] == "https://www.linkedin.com/company/new"
    assert rec["shortName"] == "Old", "fields not given in the upsert are kept"
    assert rec["externalId"] == ext, "fields not given in the upsert are kept"
    assert rec["tags"] == ["t3"], "tags are replaced, not merged"
    assert rec["customFields"][f_text] == "a", "customFields merge per key"
    assert rec["customFields"][f_num] == 20
    assert rec["customFields"][f_region] == "eu"


def test_domain_repeated_in_one_request_without_upsert(api):
    domain = unique_domain("rep")
    data = push(api, [account(domain, name="First"), account(f"http://www.{domain}", name="Second")])
    r1, r2 = data["results"]
    assert r1["status"] == "created"
    assert r2["status"] == "failed" and r2["rtp_aid"] == r1["rtp_aid"], r2
    assert r2["error"] == dup_error(domain, r1["rtp_aid"])
    assert get_account(api, domain)["name"] == "First"


def test_domain_repeated_in_one_request_with_upsert(api):
    domain = unique_domain("rep")
    data = push(
        api,
        [account(domain, name="First", tags=["a"]), account(domain.upper(), name="Second", tags=["b"])],
        upsert=True,
    )
    r1, r2 = data["results"]
    assert r1["status"] == "created" and r2["status"] == "updated", data["results"]
    assert r1["rtp_aid"] == r2["rtp_aid"]
    rec = get_account(api, domain)
    assert rec["name"] == "Second" and rec["tags"] == ["b"], rec
    assert len(all_accounts(api)) == 1


# --------------------------------------------------------------------------- custom fields on push


def test_unknown_custom_field_keys_fail_the_item_listing_keys_in_request_order(api):
    known = create_field(api, unique_name("Known"), "singleLineText")["key"]
    good = account(customFields={known: "ok"})
    bad_domain = unique_domain("cf")
    bad = account(f"https://www.{bad_domain}/x", customFields={"ZED_C": 1, known: "x", "ALPHA_C": 2})
    single = account(customFields={"ONLY_C": "v"})
    data = push(api, [bad, good, single])
    r_bad, r_good, r_single = data["results"]
    assert r_bad["status"] == "failed" and r_bad["rtp_aid"] is None, r_bad
    assert r_bad["domain"] == bad_domain, "failed items also carry the normalised domain"
    assert r_bad["error"] == "Custom field key(s) not found: ZED_C, ALPHA_C. Unable to add this account."
    assert r_single["error"] == "Custom field key(s) not found: ONLY_C. Unable to add this account."
    assert r_good["status"] == "created"
    assert {r["domain"] for r in all_accounts(api)} == {good["domain"]}, "failed items are not stored"


def test_unknown_custom_field_on_upsert_leaves_the_account_unchanged(api):
    domain = unique_domain("cfu")
    push_ok(api, [account(domain, name="Before", tags=["x"])])
    before = get_account(api, domain)
    data = push(api, [account(domain, name="After", tags=["y"], customFields={"NOPE_C": 1})], upsert=True)
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["error"] == "Custom field key(s) not found: NOPE_C. Unable to add this account."
    rec = get_account(api, domain)
    assert rec["name"] == "Before" and rec["tags"] == ["x"], "each item is atomic"
    assert rec["rtp_last_account_date"] == before["rtp_last_account_date"], "a failed item is not a change"


@pytest.fixture
def typed_fields(api):
    return {
        "number": create_field(api, unique_name("Revenue"), "number")["key"],
        "date": create_field(api, unique_name("Renewal"), "date")["key"],
        "single": create_field(api, unique_name("Tier"), "singleSelection", options=["Gold", "Silver"])["key"],
        "multi": create_field(api, unique_name("Products"), "multiSelection", options=["A", "B", "C"])["key"],
    }


WRONG_VALUES = [
    ("number", "lots"),
    ("number", True),
    ("number", ["1"]),
    ("date", "not-a-date"),
    ("date", "2026-02-30"),
    ("single", "Bronze"),
    ("single", ["Gold"]),
    ("multi", ["A", "Z"]),
    ("multi", ["Z"]),
]


def test_wrong_typed_custom_field_values_fail_their_items(api, typed_fields):
    good = account()
    items = [account(customFields={typed_fields[kind]: value}) for kind, value in WRONG_VALUES]
    data = push(api, [*items, good])
    for (kind, value), res in zip(WRONG_VALUES, data["results"], strict=False):
        key = typed_fields[kind]
        prefix = f"Invalid value for custom field '{key}': "
        assert res["status"] == "failed" and res["rtp_aid"] is None, (kind, value, res)
        assert res["error"].startswith(prefix), (kind, value, res)
        assert len(res["error"]) > len(prefix), f"the error says why: {res}"
    assert data["results"][-1]["status"] == "created"
    assert {r["domain"] for r in all_accounts(api)} == {good["domain"]}


def test_well_typed_custom_field_values_are_stored(api, typed_fields):
    item = account(
        customFields={
            typed_fields["number"]: 42,
            typed_fields["date"]: "2026-01-31",
            typed_fields["single"]: "Gold",
            typed_fields["multi"]: ["A", "C"],
        }
    )
    push_ok(api, [item])
    cf = get_account(api, item["domain"])["customFields"]
    assert cf[typed_fields["number"]] == 42
    assert cf[typed_fields["date"]] is not None
    assert cf[typed_fields["date"]].startswith("2026-01-31"), cf
    assert cf[typed_fields["single"]] == "Gold"
    assert cf[typed_fields["multi"]] == ["A", "C"]


def test_wrong_typed_value_on_upsert_leaves_the_account_unchanged(api, typed_fields):
    domain = unique_domain("cft")
    push_ok(api, [account(domain, name="Before", customFields={typed_fields["number"]: 1})])
    data = push(api, [account(domain, name="After", customFields={typed_fields["number"]: "NaN-ish"})], upsert=True)
    assert data["results"][0]["status"] == "failed"
    rec = get_account(api, domain)
    assert rec["name"] == "Before" and rec["customFields"][typed_fields["number"]] == 1


# --------------------------------------------------------------------------- externalId uniqueness (§6.11, §6.33)


def test_external_id_of_another_account_fails_the_item(api):
    ext = unique_name("crm")
    [a] = push_ok(api, [account(externalId=ext)])
    other = account()
    data = push(api, [account(other["domain"], externalId=ext)])
    [res] = data["results"]
    assert res["status"] == "failed" and res["rtp_aid"] is None, res
    assert res["error"] == f"externalId '{ext}' already belongs to account {a['rtp_aid']}"
    assert other["domain"] not in accounts_by_domain(api, [other["domain"]])


def test_external_id_repeated_in_one_request(api):
    ext = unique_name("crm")
    data = push(api, [account(externalId=ext), account(externalId=ext)])
    r1, r2 = data["results"]
    assert r1["status"] == "created"
    assert (
        r2["status"] == "failed" and r2["error"] == f"externalId '{ext}' already belongs to account {r1['rtp_aid']}"
    ), r2


def test_upsert_taking_another_accounts_external_id_fails(api):
    ext_a, ext_b = unique_name("a"), unique_name("b")
    a_item, b_item = account(externalId=ext_a), account(externalId=ext_b)
    a, _b = push_ok(api, [a_item, b_item])
    data = push(api, [account(b_item["domain"], name="Renamed", externalId=ext_a)], upsert=True)
    [res] = data["results"]
    assert res["status"] == "failed", res
    assert res["error"] == f"externalId '{ext_a}' already belongs to account {a['rtp_aid']}"
    rec = get_account(api, b_item["domain"])
    assert rec["externalId"] == ext_b and rec["name"] == b_item["name"]


# --------------------------------------------------------------------------- validation (§1.4, §6.1, §6.2, §6.29)

VALIDATION_CASES = [
    ("no-accounts", {}, "accounts", "isArray", "accounts must be an array"),
    ("accounts-string", {"accounts": "x"}, "accounts", "isArray", "accounts must be an array"),
    ("accounts-object", {"accounts": {"domain": "a.com"}}, "accounts", "isArray", "accounts must be an array"),
    ("accounts-empty", {"accounts": []}, "accounts", "arrayMinSize", "accounts must contain at least 1 elements"),
    ("domain-missing", {"accounts": [{"name": "X"}]}, "accounts.0.domain", "isNotEmpty", "domain should not be empty"),
    (
        "domain-empty",
        {"accounts": [{"domain": "", "name": "X"}]},
        "accounts.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-null",
        {"accounts": [{"domain": None, "name": "X"}]},
        "accounts.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-blank",
        {"accounts": [{"domain": "   ", "name": "X"}]},
        "accounts.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-number",
        {"accounts": [{"domain": 5, "name": "X"}]},
        "accounts.0.domain",
        "isString",
        "domain must be a string",
    ),
    ("name-missing", {"accounts": [{"domain": "a.com"}]}, "accounts.0.name", "isNotEmpty", "name should not be empty"),
    (
        "name-empty",
        {"accounts": [{"domain": "a.com", "name": ""}]},
        "accounts.0.name",
        "isNotEmpty",
        "name should not be empty",
    ),
    (
        "name-null",
        {"accounts": [{"domain": "a.com", "name": None}]},
        "accounts.0.name",
        "isNotEmpty",
        "name should not be empty",
    ),
    (
        "name-blank",
        {"accounts": [{"domain": "a.com", "name": " \t "}]},
        "accounts.0.name",
        "isNotEmpty",
        "name should not be empty",
    ),
    (
        "name-number",
        {"accounts": [{"domain": "a.com", "name": 5}]},
        "accounts.0.name",
        "isString",
        "name must be a string",
    ),
    (
        "shortName-number",
        {"accounts": [{"domain": "a.com", "name": "X", "shortName": 5}]},
        "accounts.0.shortName",
        "isString",
        "shortName must be a string",
    ),
    (
        "linkedinUrl-bool",
        {"accounts": [{"domain": "a.com", "name": "X", "linkedinUrl": True}]},
        "accounts.0.linkedinUrl",
        "isString",
        "linkedinUrl must be a string",
    ),
    (
        "externalId-number",
        {"accounts": [{"domain": "a.com", "name": "X", "externalId": 5}]},
        "accounts.0.externalId",
        "isString",
        "externalId must be a string",
    ),
    (
        "tags-string",
        {"accounts": [{"domain": "a.com", "name": "X", "tags": "x"}]},
        "accounts.0.tags",
        "isArray",
        "tags must be an array",
    ),
    (
        "customFields-string",
        {"accounts": [{"domain": "a.com", "name": "X", "customFields": "x"}]},
        "accounts.0.customFields",
        "isObject",
        "customFields must be an object",
    ),
    (
        "customFields-array",
        {"accounts": [{"domain": "a.com", "name": "X", "customFields": [1]}]},
        "accounts.0.customFields",
        "isObject",
        "customFields must be an object",
    ),
    ("upsert-string", {"upsert": "yes"}, "upsert", "isBoolean", "upsert must be a boolean value"),
    ("upsert-number", {"upsert": 1}, "upsert", "isBoolean", "upsert must be a boolean value"),
    ("segmentId-number", {"segmentId": 5}, "segmentId", "isString", "segmentId must be a string"),
]


@pytest.mark.parametrize("body,path,key,text", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_request_shape_errors_are_400_validation_and_write_nothing(api, body, path, key, text):
    body = dict(body)
    if "accounts" not in body and path in ("upsert", "segmentId"):
        body["accounts"] = [account()]
    elif isinstance(body.get("accounts"), list) and body["accounts"]:
        # A valid item first: the whole request is rejected, the valid item included.
        body["accounts"] = [account()] + body["accounts"]
        path = path.replace("accounts.0.", "accounts.1.")
    r = api.post("/accounts", json=body)
    assert_constraint(r, path, key, text)


def test_rejected_requests_write_nothing(api):
    for body in (
        {"accounts": [account(), {"domain": "", "name": "X"}]},
        {"accounts": [account(), account(tags="x")]},
        {"accounts": [account()], "upsert": "yes"},
        {"accounts": [account(), account(customFields=[1])]},
    ):
        validation_errors(api.post("/accounts", json=body))
    assert_nothing_written(api)


def test_too_many_accounts_is_400_array_max_size(api):
    r = push_raw(api, [account() for _ in range(101)])
    assert_constraint(r, "accounts", "arrayMaxSize", "accounts must contain no more than 100 elements")
    assert_nothing_written(api)


def test_exactly_100_accounts_is_accepted(api):
    data = push(api, [account() for _ in range(100)])
    assert data["summary"]["created"] == 100


def test_validation_paths_use_zero_based_indexes_and_report_every_item(api):
    body = {"accounts": [account(), {"domain": "", "name": "X"}, account(), {"domain": "b.com"}]}
    errors = validation_errors(api.post("/accounts", json=body))
    assert_constraint(errors, "accounts.1.domain", "isNotEmpty", "domain should not be empty")
    assert_constraint(errors, "accounts.3.name", "isNotEmpty", "name should not be empty")
    prop = {e["path"]: e["property"] for e in errors}
    assert prop["accounts.1.domain"] == "domain" and prop["accounts.3.name"] == "name"
    assert_nothing_written(api)


def test_bad_tag_element_is_a_whole_request_400(api):
    r = api.post("/accounts", json={"accounts": [account(), account(tags=["ok", 5])]})
    errors = validation_errors(r)
    assert any(e["path"].startswith("accounts.1.tags") for e in errors), errors
    assert_nothing_written(api)


# --------------------------------------------------------------------------- segmentId (§2.2)


def unusable_segment(cli, workspace, kind: str) -> tuple[str, str]:
    """A segment id that POST /accounts must refuse, and the expected customMessage."""
    if kind == "missing":
        seg = random_hex24()
        return seg, f"Segment '{seg}' not found"
    if kind == "malformed":
        return "nope", "Segment 'nope' not found"
    if kind == "dynamic":
        seg = create_segment(cli, workspace.name, "dynamic", "active")
        return seg, f"Segment '{seg}' is not a static segment"
    if kind == "archived":
        seg = create_segment(cli, workspace.name, "static", "archived")
        return seg, f"Segment '{seg}' is not active or draft and cannot accept new members"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing", "malformed", "dynamic", "archived"])
def test_unusable_segment_rejects_the_whole_request_before_any_item(api, cli, workspace, kind):
    seg_id, message = unusable_segment(cli, workspace, kind)
    existing = unique_domain("seg-existing")
    push_ok(api, [account(existing, name="Keep")])
    items = [
        account(name="Would Be Created"),
        account(existing, name="Would Be Updated"),
        account("not a domain"),
        account(customFields={"NOPE_C": 1}),
    ]
    r = push_raw(api, items, segmentId=seg_id, upsert=True)
    error(r, 400, message, "Bad Request")
    rows = all_accounts(api)
    assert [(x["domain"], x["name"]) for x in rows] == [(existing, "Keep")], "nothing may be written"
    assert rows[0]["segmentIds"] == []


@pytest.mark.parametrize("status", ["active", "draft"])
def test_created_and_updated_items_become_segment_members(api, cli, workspace, status):
    seg = create_segment(cli, workspace.name, "static", status)
    existing, dup = unique_domain("seg-upd"), unique_domain("seg-dup")
    push_ok(api, [account(existing), account(dup)])
    new1, new2 = account(), account()
    data = push(
        api, [new1, account(existing, name="Updated"), account("not a domain"), new2], segmentId=seg, upsert=True
    )
    assert [r["status"] for r in data["results"]] == ["created", "updated", "failed", "created"]
    # A failed item (duplicate without upsert) does not join.
    data = push(api, [account(dup, name="Dup")], segmentId=seg)
    assert data["results"][0]["status"] == "failed"

    recs = accounts_by_domain(api, [existing, dup, new1["domain"], new2["domain"]])
    for d in (existing, new1["domain"], new2["domain"]):
        assert recs[d]["segmentIds"] == [seg], (d, recs[d]["segmentIds"])
    assert recs[dup]["segmentIds"] == []
    members = {r["domain"] for r in all_accounts(api, segmentId=seg)}
    assert members == {existing, new1["domain"], new2["domain"]}


def test_pushing_a_member_again_does_not_duplicate_membership(api, cli, workspace):
    seg = create_segment(cli, workspace.name)
    domain = unique_domain("seg-again")
    push_ok(api, [account(domain)], segmentId=seg)
    data = push(api, [account(domain, name="Again")], segmentId=seg, upsert=True)
    assert data["results"][0]["status"] == "updated"
    assert get_account(api, domain)["segmentIds"] == [seg]
