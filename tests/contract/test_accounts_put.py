"""PUT /accounts/:rtp_aid (API.md §2.3, §6.11, §6.14)."""

from __future__ import annotations

import pytest
from contract_helpers import (
    account,
    assert_constraint,
    create_field,
    error,
    error_prefix,
    get_account,
    ok,
    push_ok,
    random_hex24,
    unique_name,
    validation_errors,
)

UPDATED = {"message": "Account updated successfully"}


@pytest.fixture
def acct(api):
    """One freshly pushed account: (push item, rtp_aid)."""
    item = account(
        name="Before",
        shortName="B",
        linkedinUrl="https://www.linkedin.com/company/before",
        tags=["one", "two"],
        externalId=unique_name("ext"),
    )
    [res] = push_ok(api, [item])
    return item, res["rtp_aid"]


def put(api, aid, body):
    return api.put(f"/accounts/{aid}", json=body)


@pytest.mark.parametrize(
    "bad",
    ["nothex", "123", "z" * 24, "0123456789abcdef0123456", "0123456789abcdef012345678", "0123456789abcdef0123456g"],
)
def test_malformed_rtp_aid_is_400(api, bad):
    error(put(api, bad, {"name": "x"}), 400, f"Invalid rtp_aid '{bad}'", "Bad Request")


def test_unknown_rtp_aid_is_404(api):
    aid = random_hex24()
    error(put(api, aid, {"name": "x"}), 404, f"Account '{aid}' not found", "Not Found")


def test_put_updates_all_six_fields(api, acct):
    item, aid = acct
    field = create_field(api, unique_name("Put Field"), "singleLineText")["key"]
    new_ext = unique_name("ext-new")
    body = {
        "name": "After Corp",
        "shortName": "After",
        "linkedinUrl": "https://www.linkedin.com/company/after",
        "tags": ["three"],
        "externalId": new_ext,
        "customFields": {field: "value"},
    }
    r = put(api, aid, body)
    assert ok(r, f"/api/v1/accounts/{aid}") == UPDATED
    rec = get_account(api, item["domain"])
    assert rec["rtp_aid"] == aid
    for k in ("name", "shortName", "linkedinUrl", "tags", "externalId"):
        assert rec[k] == body[k], (k, rec)
    assert rec["customFields"][field] == "value"
    assert rec["domain"] == item["domain"]


def test_put_changes_only_the_given_fields(api, acct):
    item, aid = acct
    ok(put(api, aid, {"name": "Only Name"}))
    rec = get_account(api, item["domain"])
    assert rec["name"] == "Only Name"
    assert rec["shortName"] == item["shortName"] and rec["linkedinUrl"] == item["linkedinUrl"]
    assert rec["tags"] == item["tags"] and rec["externalId"] == item["externalId"]


def test_put_merges_custom_fields_per_key_and_replaces_tags(api):
    f1 = create_field(api, unique_name("Merge One"), "singleLineText")["key"]
    f2 = create_field(api, unique_name("Merge Two"), "number")["key"]
    item = account(tags=["a", "b"], customFields={f1: "keep", f2: 1})
    [res] = push_ok(api, [item])
    ok(put(api, res["rtp_aid"], {"customFields": {f2: 2}, "tags": ["c"]}))
    rec = get_account(api, item["domain"])
    assert rec["customFields"][f1] == "keep" and rec["customFields"][f2] == 2, rec["customFields"]
    assert rec["tags"] == ["c"]


def test_put_keeps_name_casing(api, acct):
    item, aid = acct
    ok(put(api, aid, {"name": "MiXeD CaSe GmbH"}))
    assert get_account(api, item["domain"])["name"] == "MiXeD CaSe GmbH"


@pytest.mark.parametrize(
    "key,value",
    [("domain", "x.com"), ("foo", 1), ("rtp_aid", "0" * 24), ("id", "x"), ("segmentIds", []), ("upsert", True)],
)
def test_put_with_other_keys_is_400_property_should_not_exist(api, acct, key, value):
    item, aid = acct
    r = put(api, aid, {"name": "Changed", key: value})
    assert_constraint(r, key, None, f"property {key} should not exist")
    assert get_account(api, item["domain"])["name"] == "Before", "a rejected PUT changes nothing"


@pytest.mark.parametrize(
    "key,value,constraint,text",
    [
        ("name", 5, "isString", "name must be a string"),
        ("shortName", 5, "isString", "shortName must be a string"),
        ("linkedinUrl", False, "isString", "linkedinUrl must be a string"),
        ("externalId", 5, "isString", "externalId must be a string"),
        ("tags", "x", "isArray", "tags must be an array"),
        ("customFields", "x", "isObject", "customFields must be an object"),
    ],
)
def test_put_with_wrong_json_types_is_400_validation(api, acct, key, value, constraint, text):
    item, aid = acct
    assert_constraint(
        put(api, aid, {key: value, "name": "Changed"} if key != "name" else {key: value}), key, constraint, text
    )
    rec = get_account(api, item["domain"])
    assert rec["name"] == "Before" and rec["tags"] == item["tags"], "a rejected PUT changes nothing"


def test_put_unknown_custom_field_keys_is_400_and_changes_nothing(api, acct):
    item, aid = acct
    known = create_field(api, unique_name("Known"), "singleLineText")["key"]
    r = put(api, aid, {"name": "Changed", "customFields": {"ZZZ_C": 1, known: "v", "AAA_C": 2}})
    error(r, 400, "Custom field key(s) not found: ZZZ_C, AAA_C", "Bad Request")
    rec = get_account(api, item["domain"])
    assert rec["name"] == "Before" and rec["customFields"][known] is None


def test_put_wrong_typed_custom_field_value_is_400_business(api, acct):
    item, aid = acct
    key = create_field(api, unique_name("Seats"), "number")["key"]
    r = put(api, aid, {"name": "Changed", "customFields": {key: "many"}})
    body = error_prefix(r, 400, f"Invalid value for custom field '{key}': ")
    assert body["message"] == "Bad Request"
    assert get_account(api, item["domain"])["name"] == "Before"


def test_put_wrong_selection_value_is_400_business(api, acct):
    _, aid = acct
    key = create_field(api, unique_name("Tier"), "singleSelection", options=["Gold"])["key"]
    error_prefix(put(api, aid, {"customFields": {key: "Silver"}}), 400, f"Invalid value for custom field '{key}': ")
    ok(put(api, aid, {"customFields": {key: "Gold"}}))


def test_put_external_id_of_another_account_is_409(api, acct):
    item, aid = acct
    other_ext = unique_name("other")
    [other] = push_ok(api, [account(externalId=other_ext)])
    r = put(api, aid, {"name": "Changed", "externalId": other_ext})
    error(r, 409, f"externalId '{other_ext}' already belongs to account {other['rtp_aid']}", "Conflict")
    rec = get_account(api, item["domain"])
    assert rec["externalId"] == item["externalId"] and rec["name"] == "Before"


def test_put_own_external_id_again_is_fine(api, acct):
    item, aid = acct
    assert ok(put(api, aid, {"externalId": item["externalId"]})) == UPDATED


def test_put_validation_error_paths_are_the_property_names(api, acct):
    _, aid = acct
    errors = validation_errors(put(api, aid, {"name": 1, "domain": "x.com"}))
    paths = {e["path"] for e in errors}
    assert {"name", "domain"} <= paths, errors
