"""POST /sales-activities and GET /sales-activities (API.md §1.4–§1.6, §2.11, §6.1, §6.2, §6.28,
§6.29, §6.33, §6.34; vendor page seeds/recotap-push-sales-activities.txt)."""

from __future__ import annotations

import copy
import threading

import pytest
from contract_helpers import (
    ACTIVITY_KEYS,
    CONTACT_KEYS,
    SKIPPED_REASON,
    UUID_RE,
    account,
    activities_by_ext,
    activity,
    activity_exists_error,
    all_activities,
    assert_constraint,
    assert_write_route_conventions,
    check_activity_results,
    client_for,
    error,
    list_pass,
    not_found_route,
    page,
    parse_ts,
    push_activities,
    push_activities_ok,
    push_activities_raw,
    push_ok,
    unique_domain,
    unique_name,
    validation_errors,
)

# The vendor page's examples, verbatim.
VENDOR_CALL = {
    "externalActivityId": "call-001",
    "activityType": "call",
    "occurredAt": "2026-04-22T10:30:00Z",
    "domain": "acme.com",
    "accountName": "Acme Corp",
    "ownerEmail": "jane@yourcompany.com",
    "ownerName": "Jane Smith",
    "ownerId": "rep-123",
    "callTitle": "Discovery call",
    "durationMinutes": 30,
    "outcome": "Connected",
    "direction": "outbound",
    "from": {"name": "Jane Smith", "email": "jane@yourcompany.com"},
    "contacts": [
        {
            "email": "john@acme.com",
            "externalContactId": "contact-456",
            "name": "John Doe",
            "title": "VP of Engineering",
            "department": "Engineering",
            "seniority": "VP",
            "phone": "+1 415 555 0101",
            "linkedinUrl": "https://linkedin.com/in/johndoe",
        }
    ],
}
VENDOR_EMAIL = {
    "externalActivityId": "email-001",
    "activityType": "email",
    "occurredAt": "2026-04-23T08:15:00Z",
    "domain": "acme.com",
    "accountName": "Acme Corp",
    "ownerEmail": "jane@yourcompany.com",
    "ownerName": "Jane Smith",
    "ownerId": "rep-123",
    "subject": "Follow up on our call",
    "openCount": 3,
    "clickCount": 1,
    "from": {"name": "Jane Smith", "email": "jane@yourcompany.com"},
    "contacts": copy.deepcopy(VENDOR_CALL["contacts"]),
}
CALL_ONLY = ("callTitle", "durationMinutes", "outcome", "direction")
EMAIL_ONLY = ("openCount", "clickCount")


def assert_activity_record(rec: dict) -> None:
    """§6.28: every key present (unset ones null), UUID ids, ms-Z times."""
    missing = ACTIVITY_KEYS - set(rec)
    assert not missing, f"activity record lacks keys {sorted(missing)}: {rec}"
    assert isinstance(rec["id"], str) and UUID_RE.match(rec["id"]), f"activity id must be a UUID: {rec}"
    assert isinstance(rec["contacts"], list) and rec["contacts"], rec
    for c in rec["contacts"]:
        lacking = CONTACT_KEYS - set(c)
        assert not lacking, f"contact lacks keys {sorted(lacking)}: {c}"
        assert isinstance(c["id"], str) and UUID_RE.match(c["id"]), f"contact id must be a UUID (§1.7): {c}"
    parse_ts(rec["occurredAt"])
    parse_ts(rec["createdAt"])
    parse_ts(rec["updatedAt"])


def assert_nothing_written(api) -> None:
    rows = all_activities(api)
    assert rows == [], f"a rejected request must write nothing, found {[r['externalActivityId'] for r in rows]}"


# --------------------------------------------------------------------------- the vendor examples


def test_vendor_call_and_email_examples_are_created(api):
    data = push_activities(api, [copy.deepcopy(VENDOR_CALL), copy.deepcopy(VENDOR_EMAIL)])
    assert [(r["externalActivityId"], r["status"]) for r in data["results"]] == [
        ("call-001", "created"),
        ("email-001", "created"),
    ]
    assert {k: data["summary"][k] for k in ("total", "created", "failed", "skipped")} == {
        "total": 2,
        "created": 2,
        "failed": 0,
        "skipped": 0,
    }


def test_vendor_examples_read_back_with_the_contract_shape(api):
    push_activities_ok(api, [copy.deepcopy(VENDOR_CALL), copy.deepcopy(VENDOR_EMAIL)])
    got = activities_by_ext(api)
    assert set(got) == {"call-001", "email-001"}
    call, email = got["call-001"], got["email-001"]
    for rec in (call, email):
        assert_activity_record(rec)
        assert rec["rtp_aid"] is None, "no account with that domain yet"
    assert call["id"] != email["id"]

    for k in (
        "externalActivityId",
        "activityType",
        "domain",
        "accountName",
        "ownerEmail",
        "ownerName",
        "ownerId",
        "from",
        *CALL_ONLY,
    ):
        assert call[k] == VENDOR_CALL[k], (k, call[k], VENDOR_CALL[k])
    assert parse_ts(call["occurredAt"]) == parse_ts("2026-04-22T10:30:00.000Z")
    for k in ("subject", *EMAIL_ONLY):
        assert call[k] is None, f"unset {k} must be null on the call: {call}"

    for k in (
        "externalActivityId",
        "activityType",
        "domain",
        "accountName",
        "ownerEmail",
        "ownerName",
        "ownerId",
        "from",
        "subject",
        *EMAIL_ONLY,
    ):
        assert email[k] == VENDOR_EMAIL[k], (k, email[k], VENDOR_EMAIL[k])
    assert parse_ts(email["occurredAt"]) == parse_ts("2026-04-23T08:15:00.000Z")
    for k in CALL_ONLY:
        assert email[k] is None, f"unset {k} must be null on the email: {email}"

    [c1], [c2] = call["contacts"], email["contacts"]
    assert c1["id"] == c2["id"], "one contact per workspace and email"
    for k, v in VENDOR_CALL["contacts"][0].items():
        assert c1[k] == v, (k, c1)


def test_minimal_activity_has_nulls_for_unset_fields(api):
    item = activity()
    push_activities_ok(api, [item])
    [rec] = all_activities(api)
    assert_activity_record(rec)
    for k in ("accountName", "subject", "ownerName", "ownerId", "from", *CALL_ONLY, *EMAIL_ONLY):
        assert rec[k] is None, f"unset {k} must be null: {rec}"
    [c] = rec["contacts"]
    assert c["email"] == item["contacts"][0]["email"]
    for k in ("externalContactId", "name", "title", "department", "seniority", "phone", "linkedinUrl"):
        assert c[k] is None, f"unset contact {k} must be null: {c}"


# --------------------------------------------------------------------------- create-only, skipped


def test_known_external_activity_id_fails(api):
    ext = unique_name("dup")
    push_activities_ok(api, [activity(external_id=ext, subject="Original", activity_type="email")])
    data = push_activities(api, [activity(external_id=ext, subject="Changed", activity_type="email"), activity()])
    r_dup, r_new = data["results"]
    assert r_dup["status"] == "failed" and r_dup["error"] == activity_exists_error(ext), r_dup
    assert r_new["status"] == "created"
    assert data["summary"]["failed"] == 1 and data["summary"]["created"] == 1
    got = activities_by_ext(api)
    assert got[ext]["subject"] == "Original", "create-only: a duplicate changes nothing"
    assert len(got) == 2


def test_external_activity_id_repeated_in_one_request(api):
    """§6.33: items are processed in order, so the second one meets the first."""
    ext = unique_name("rep")
    data = push_activities(
        api, [activity(external_id=ext, outcome="First"), activity(external_id=ext, outcome="Second")]
    )
    r1, r2 = data["results"]
    assert r1["status"] == "created", r1
    assert r2["status"] == "failed" and r2["error"] == activity_exists_error(ext), r2
    [rec] = all_activities(api)
    assert rec["outcome"] == "First"


@pytest.mark.parametrize("activity_type", ["meeting", "linkedin", "sms", "note"])
def test_other_activity_types_are_skipped_and_not_stored(api, activity_type):
    skipped = activity(activity_type=activity_type)
    kept = activity()
    data = push_activities(api, [skipped, kept])
    r_skip, r_kept = data["results"]
    assert r_skip["status"] == "skipped" and r_skip["reason"] == SKIPPED_REASON, r_skip
    assert r_kept["status"] == "created"
    assert {k: data["summary"][k] for k in ("total", "created", "failed", "skipped")} == {
        "total": 2,
        "created": 1,
        "failed": 0,
        "skipped": 1,
    }
    assert set(activities_by_ext(api)) == {kept["externalActivityId"]}, "a skipped item is not stored"


def test_a_skipped_item_stores_no_contact_and_does_not_reserve_its_id(api):
    email = f"{unique_name('skip')}@example.com"
    ext = unique_name("skip")
    skipped = activity(
        external_id=ext, activity_type="meeting", contacts=[{"email": email, "name": "From Skipped", "title": "CEO"}]
    )
    assert push_activities(api, [skipped])["results"][0]["status"] == "skipped"
    # The same id, now as a call: nothing was stored for the skipped item, so this is new.
    data = push_activities(api, [activity(external_id=ext, contacts=[{"email": email}])])
    assert data["results"][0]["status"] == "created", data["results"]
    [c] = activities_by_ext(api)[ext]["contacts"]
    assert c["name"] is None and c["title"] is None, f"the skipped item must not have upserted its contact: {c}"


def test_mixed_results_in_request_order(api):
    ext = unique_name("mix")
    push_activities_ok(api, [activity(external_id=ext)])
    items = [
        activity(activity_type="email", subject="a"),
        activity(external_id=ext),
        activity(activity_type="meeting"),
        activity(domain="not a domain"),
        activity(),
    ]
    data = push_activities(api, items)
    assert [r["status"] for r in data["results"]] == ["created", "failed", "skipped", "failed", "created"]
    assert {k: data["summary"][k] for k in ("total", "created", "failed", "skipped")} == {
        "total": 5,
        "created": 2,
        "failed": 2,
        "skipped": 1,
    }


# --------------------------------------------------------------------------- domains and linking (§1.6, §2.11)


def test_unnormalisable_domain_is_a_per_item_failure(api):
    bad_values = ["not a domain", "localhost", "exa$mple.com", "https://"]
    good = activity()
    items = [activity(domain=b) for b in bad_values] + [good]
    data = push_activities(api, items)
    for bad, res in zip(bad_values, data["results"], strict=False):
        assert res["status"] == "failed" and res["error"] == f"Invalid domain '{bad}'", (bad, res)
    assert data["results"][-1]["status"] == "created"
    assert set(activities_by_ext(api)) == {good["externalActivityId"]}, "failed items are not stored"


def test_activity_links_to_the_account_with_the_normalised_domain(api):
    dom = unique_domain("linked")
    [acct] = push_ok(api, [account(dom)])
    item = activity(domain=f"  https://www.{dom.upper()}/contact-us?x=1 ")
    push_activities_ok(api, [item])
    [rec] = all_activities(api)
    assert rec["domain"] == dom, "the record carries the normalised domain"
    assert rec["rtp_aid"] == acct["rtp_aid"]


def test_activity_pushed_before_its_account_is_linked_later(api):
    dom = unique_domain("early")
    early = activity(domain=dom)
    other = activity()
    push_activities_ok(api, [early, other])
    assert activities_by_ext(api)[early["externalActivityId"]]["rtp_aid"] is None
    [acct] = push_ok(api, [account(f"http://{dom}/")])
    got = activities_by_ext(api)
    assert got[early["externalActivityId"]]["rtp_aid"] == acct["rtp_aid"], "linked once the account is pushed"
    assert got[other["externalActivityId"]]["rtp_aid"] is None, "other domains stay unlinked"


# --------------------------------------------------------------------------- contacts (§2.11, §6.34)


def test_contacts_are_upserted_by_lowercased_email_and_shown_as_they_are_now(api):
    email = f"{unique_name('pat')}@example.com"
    first = activity(contacts=[{"email": email, "name": "Pat Doe", "title": "Engineer", "phone": "+1 555 0100"}])
    push_activities_ok(api, [first])
    old_contact = activities_by_ext(api)[first["externalActivityId"]]["contacts"][0]

    second = activity(
        activity_type="email",
        contacts=[{"email": email.upper(), "title": "CTO", "seniority": "C-Level", "externalContactId": "crm-pat"}],
    )
    push_activities_ok(api, [second])
    got = activities_by_ext(api)
    [c_old] = got[first["externalActivityId"]]["contacts"]
    [c_new] = got[second["externalActivityId"]]["contacts"]
    assert c_old["id"] == c_new["id"] == old_contact["id"], "the same contact (email compared lowercased)"
    assert c_old["email"].lower() == email
    for c in (c_old, c_new):
        assert c["title"] == "CTO", f"given fields overwrite, and older activities show the current contact: {c}"
        assert c["seniority"] == "C-Level" and c["externalContactId"] == "crm-pat", c
        assert c["name"] == "Pat Doe" and c["phone"] == "+1 555 0100", f"fields not given are kept: {c}"


def test_several_contacts_on_one_activity(api):
    emails = [f"{unique_name('m')}@example.com" for _ in range(3)]
    item = activity(contacts=[{"email": e, "name": f"N{i}"} for i, e in enumerate(emails)])
    push_activities_ok(api, [item])
    [rec] = all_activities(api)
    assert sorted(c["email"] for c in rec["contacts"]) == sorted(emails)
    assert len({c["id"] for c in rec["contacts"]}) == 3


# --------------------------------------------------------------------------- validation (§1.4, §6.1, §6.2, §6.29)


def without(key: str) -> dict:
    item = activity()
    del item[key]
    return item


def contact_case(**contact) -> dict:
    return activity(contacts=[contact])


VALIDATION_CASES = [
    ("activities-missing", {}, "activities", "isArray", "activities must be an array"),
    ("activities-object", {"activities": {"a": 1}}, "activities", "isArray", "activities must be an array"),
    (
        "activities-empty",
        {"activities": []},
        "activities",
        "arrayMinSize",
        "activities must contain at least 1 elements",
    ),
    (
        "extid-missing",
        {"activities": [without("externalActivityId")]},
        "activities.0.externalActivityId",
        "isNotEmpty",
        "externalActivityId should not be empty",
    ),
    (
        "extid-blank",
        {"activities": [activity(external_id="  ")]},
        "activities.0.externalActivityId",
        "isNotEmpty",
        "externalActivityId should not be empty",
    ),
    (
        "type-missing",
        {"activities": [without("activityType")]},
        "activities.0.activityType",
        "isNotEmpty",
        "activityType should not be empty",
    ),
    (
        "occurredAt-missing",
        {"activities": [without("occurredAt")]},
        "activities.0.occurredAt",
        "isNotEmpty",
        "occurredAt should not be empty",
    ),
    (
        "occurredAt-bad",
        {"activities": [activity(occurredAt="22/04/2026 10:30")]},
        "activities.0.occurredAt",
        "isIso8601",
        "occurredAt must be a valid ISO 8601 date string",
    ),
    (
        "domain-missing",
        {"activities": [without("domain")]},
        "activities.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-empty",
        {"activities": [activity(domain="")]},
        "activities.0.domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "ownerEmail-missing",
        {"activities": [without("ownerEmail")]},
        "activities.0.ownerEmail",
        "isNotEmpty",
        "ownerEmail should not be empty",
    ),
    (
        "ownerEmail-bad",
        {"activities": [activity(ownerEmail="jane-at-company")]},
        "activities.0.ownerEmail",
        "isEmail",
        "ownerEmail must be an email",
    ),
    (
        "contacts-missing",
        {"activities": [without("contacts")]},
        "activities.0.contacts",
        "isArray",
        "contacts must be an array",
    ),
    (
        "contacts-empty",
        {"activities": [activity(contacts=[])]},
        "activities.0.contacts",
        "arrayMinSize",
        "contacts must contain at least 1 elements",
    ),
    (
        "contact-no-email",
        {"activities": [contact_case(name="No Email")]},
        "activities.0.contacts.0.email",
        "isNotEmpty",
        "email should not be empty",
    ),
    (
        "contact-email-blank",
        {"activities": [contact_case(email=" ")]},
        "activities.0.contacts.0.email",
        "isNotEmpty",
        "email should not be empty",
    ),
    (
        "direction-bad",
        {"activities": [activity(direction="sideways")]},
        "activities.0.direction",
        "isIn",
        "direction must be one of the following values: inbound, outbound",
    ),
    (
        "duration-string",
        {"activities": [activity(durationMinutes="30")]},
        "activities.0.durationMinutes",
        "isNumber",
        "durationMinutes must be a number conforming to the specified constraints",
    ),
    (
        "openCount-string",
        {"activities": [activity(activity_type="email", openCount="3")]},
        "activities.0.openCount",
        "isNumber",
        "openCount must be a number conforming to the specified constraints",
    ),
    (
        "from-string",
        {"activities": [activity(**{"from": "jane@yourcompany.com"})]},
        "activities.0.from",
        "isObject",
        "from must be an object",
    ),
    (
        "subject-number",
        {"activities": [activity(subject=5)]},
        "activities.0.subject",
        "isString",
        "subject must be a string",
    ),
]


@pytest.mark.parametrize("body,path,key,text", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_request_shape_errors_are_400_validation_and_write_nothing(api, body, path, key, text):
    body = copy.deepcopy(body)
    if isinstance(body.get("activities"), list) and body["activities"]:
        # A valid item first: the whole request is rejected, the valid item included.
        body["activities"] = [activity()] + body["activities"]
        path = path.replace("activities.0.", "activities.1.")
    assert_constraint(api.post("/sales-activities", json=body), path, key, text)
    assert_nothing_written(api)


def test_more_than_50_activities_is_400(api):
    r = push_activities_raw(api, [activity() for _ in range(51)])
    assert_constraint(r, "activities", "arrayMaxSize", "activities must contain no more than 50 elements")
    assert_nothing_written(api)


def test_exactly_50_activities_are_accepted(api):
    data = push_activities(api, [activity() for _ in range(50)])
    assert data["summary"]["created"] == 50
    assert len(all_activities(api)) == 50


def test_validation_reports_every_bad_item_and_writes_no_contact(api):
    email = f"{unique_name('v')}@example.com"
    body = {
        "activities": [
            activity(contacts=[{"email": email, "name": "Would Be Stored"}]),
            activity(direction="up"),
            activity(contacts=[]),
        ]
    }
    errors = validation_errors(api.post("/sales-activities", json=body))
    assert_constraint(
        errors, "activities.1.direction", "isIn", "direction must be one of the following values: inbound, outbound"
    )
    assert_constraint(errors, "activities.2.contacts", "arrayMinSize", "contacts must contain at least 1 elements")
    assert_nothing_written(api)
    push_activities_ok(api, [activity(contacts=[{"email": email}])])
    [rec] = all_activities(api)
    assert rec["contacts"][0]["name"] is None, "a rejected request must not upsert contacts"


def test_direction_accepts_inbound_and_outbound(api):
    items = [activity(direction="inbound"), activity(direction="outbound")]
    push_activities_ok(api, items)
    got = activities_by_ext(api)
    assert [got[i["externalActivityId"]]["direction"] for i in items] == ["inbound", "outbound"]


# --------------------------------------------------------------------------- GET /sales-activities (§1.5, §2.11)


def test_empty_workspace_has_no_activities(api):
    p = page(api, "/sales-activities")
    assert p["data"] == [] and p["nextCursor"] is None and p["hasNextPage"] is False


def test_activities_are_paginated(api):
    items = [activity() for _ in range(5)]
    push_activities_ok(api, items)
    rows, pages = list_pass(api, "/sales-activities", limit=2)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert len({p["syncTimestamp"] for p in pages}) == 1, "all pages of one pass share the syncTimestamp"
    assert sorted(r["externalActivityId"] for r in rows) == sorted(i["externalActivityId"] for i in items)
    tail = page(api, "/sales-activities", limit=2, cursor=pages[-1]["nextCursor"])
    assert tail["data"] == [] and tail["nextCursor"] is None


def test_domain_filter_is_normalised(api):
    d1, d2 = unique_domain("f1"), unique_domain("f2")
    a1, a2, b1 = activity(domain=d1), activity(domain=f"www.{d1}"), activity(domain=d2)
    push_activities_ok(api, [a1, a2, b1])
    got = activities_by_ext(api, domain=f"HTTPS://WWW.{d1.upper()}/path")
    assert set(got) == {a1["externalActivityId"], a2["externalActivityId"]}
    assert all(r["domain"] == d1 for r in got.values())
    assert all_activities(api, domain=unique_domain("none")) == []
    rows, pages = list_pass(api, "/sales-activities", domain=d1, limit=1)
    assert len(rows) == 2 and len(pages) == 2


def test_limit_cursor_and_last_sync_are_validated(api):
    assert_constraint(api.get("/sales-activities", params={"limit": 0}), "limit", None, "limit must not be less than 1")
    assert_constraint(
        api.get("/sales-activities", params={"limit": 1001}), "limit", None, "limit must not be greater than 1000"
    )
    error(api.get("/sales-activities", params={"cursor": "garbage!!"}), 400, "Invalid cursor", "Bad Request")
    error(
        api.get("/sales-activities", params={"lastSync": "soon"}),
        400,
        "lastSync must be a valid ISO 8601 date string",
        "Bad Request",
    )


def test_delta_sync_returns_new_activities_only(api):
    old1, old2 = activity(), activity()
    push_activities_ok(api, [old1, old2])
    first = page(api, "/sales-activities", limit=1000)
    sync = first["syncTimestamp"]
    before = {r["externalActivityId"]: r for r in first["data"]}
    new = activity()
    push_activities_ok(api, [new])
    rows, pages = list_pass(api, "/sales-activities", lastSync=sync, limit=1)
    assert len({p["syncTimestamp"] for p in pages}) == 1
    got = {r["externalActivityId"] for r in rows}
    assert new["externalActivityId"] in got, "an activity created after syncTimestamp must come back"
    for old in (old1, old2):
        if parse_ts(before[old["externalActivityId"]]["updatedAt"]) < parse_ts(sync):
            assert old["externalActivityId"] not in got, "an unchanged activity must not come back with lastSync"
    assert page(api, "/sales-activities", lastSync="2999-01-01T00:00:00.000Z")["data"] == []


# --------------------------------------------------------------------------- isolation and concurrency


def test_activities_and_contacts_do_not_cross_workspaces(api, server, new_workspace):
    dom = unique_domain("iso")
    email = f"{unique_name('iso')}@example.com"
    ext = unique_name("iso")
    push_ok(api, [account(dom)])
    push_activities_ok(api, [activity(domain=dom, external_id=ext, contacts=[{"email": email, "name": "Mine"}])])
    mine = activities_by_ext(api)[ext]
    with client_for(server, new_workspace().key) as other:
        assert all_activities(other) == [], "another workspace sees none of our activities"
        data = push_activities(
            other, [activity(domain=dom, external_id=ext, contacts=[{"email": email, "title": "Theirs"}])]
        )
        assert data["results"][0]["status"] == "created", "externalActivityIds are unique per workspace only"
        theirs = activities_by_ext(other)[ext]
        assert theirs["rtp_aid"] is None, "never linked to another workspace's account"
        [tc] = theirs["contacts"]
        assert tc["id"] != mine["contacts"][0]["id"] and tc["name"] is None, "contacts are per workspace"
    [mc] = activities_by_ext(api)[ext]["contacts"]
    assert mc["name"] == "Mine" and mc["title"] is None, "the other workspace's upsert must not touch our contact"


def test_concurrent_pushes_of_one_external_activity_id_create_it_once(server, workspace, api):
    ids = [unique_name("race") for _ in range(4)]
    n_threads = 4
    barrier = threading.Barrier(n_threads)
    outcomes: list[list[tuple[str, str, str | None]]] = []
    problems: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        items = [activity(external_id=ext, subject=f"thread-{n}") for ext in ids]
        with client_for(server, workspace.key) as c:
            barrier.wait()
            try:
                r = push_activities_raw(c, items)
                data = check_activity_results(r, items)
                with lock:
                    outcomes.append([(x["externalActivityId"], x["status"], x.get("error")) for x in data["results"]])
            except Exception as exc:
                with lock:
                    problems.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not problems, problems
    assert len(outcomes) == n_threads
    for ext in ids:
        statuses = [s for res in outcomes for (e, s, _) in res if e == ext]
        assert statuses.count("created") == 1, (
            f"{ext} must be created exactly once across concurrent requests: {statuses}"
        )
        errors = [err for res in outcomes for (e, s, err) in res if e == ext and s == "failed"]
        assert errors == [activity_exists_error(ext)] * (n_threads - 1), errors
    rows = all_activities(api)
    assert sorted(r["externalActivityId"] for r in rows) == sorted(ids), "exactly one stored activity per id"


# --------------------------------------------------------------------------- more on linking and times


def test_linking_after_sync_reaches_the_next_delta_pass(api):
    """§1.5: never miss a change; an activity's rtp_aid going from null to its account is one."""
    dom = unique_domain("sync-link")
    item = activity(domain=dom)
    push_activities_ok(api, [item])
    sync = page(api, "/sales-activities", limit=1000)["syncTimestamp"]
    [acct] = push_ok(api, [account(dom)])
    rows, _ = list_pass(api, "/sales-activities", lastSync=sync, limit=1000)
    got = {r["externalActivityId"]: r for r in rows}
    assert item["externalActivityId"] in got, "the activity linked after syncTimestamp must come back with lastSync"
    assert got[item["externalActivityId"]]["rtp_aid"] == acct["rtp_aid"]


def test_occurred_at_with_an_offset_or_a_date_only_is_accepted(api):
    a = activity(occurredAt="2026-04-22T12:30:00+02:00")
    b = activity(occurredAt="2026-04-22")
    push_activities_ok(api, [a, b])
    got = activities_by_ext(api)
    assert got[a["externalActivityId"]]["occurredAt"] == "2026-04-22T10:30:00.000Z"
    assert got[b["externalActivityId"]]["occurredAt"] == "2026-04-22T00:00:00.000Z"


def test_a_contact_update_shown_on_an_older_activity_reaches_the_next_delta_pass(api):
    """§6.34 says older activities show their contacts as they are now; with §1.5 (never miss a
    change) the older activity's record changed, so a delta pass must deliver it again."""
    email = f"{unique_name('upd')}@example.com"
    old = activity(contacts=[{"email": email, "title": "Engineer"}])
    push_activities_ok(api, [old])
    sync = page(api, "/sales-activities", limit=1000)["syncTimestamp"]
    push_activities_ok(api, [activity(contacts=[{"email": email, "title": "CTO"}])])
    rows, _ = list_pass(api, "/sales-activities", lastSync=sync, limit=1000)
    got = {r["externalActivityId"]: r for r in rows}
    assert old["externalActivityId"] in got, "the older activity, whose contact changed, must come back with lastSync"
    assert got[old["externalActivityId"]]["contacts"][0]["title"] == "CTO"


# --------------------------------------------------------------------------- conventions on these routes (§1.3, §6.3, §6.5)


def test_write_conventions_on_post_sales_activities(server, workspace, api):
    assert_write_route_conventions(server, workspace.key, "POST", "/sales-activities", {"activities": [activity()]})
    assert_nothing_written(api)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_methods_sales_activities_does_not_serve_are_404(api, method):
    not_found_route(api.request(method, "/sales-activities", json={}), method, "/api/v1/sales-activities")


def test_one_contact_in_two_items_of_a_request_ends_with_the_later_fields(api):
    """§6.33: items are processed in request order, so the later item's contact fields win."""
    email = f"{unique_name('order')}@example.com"
    a = activity(contacts=[{"email": email, "title": "First", "name": "Kim"}])
    b = activity(activity_type="email", contacts=[{"email": email.upper(), "title": "Second"}])
    push_activities_ok(api, [a, b])
    got = activities_by_ext(api)
    [ca], [cb] = got[a["externalActivityId"]]["contacts"], got[b["externalActivityId"]]["contacts"]
    assert ca["id"] == cb["id"]
    assert (ca["title"], ca["name"]) == ("Second", "Kim"), ca
