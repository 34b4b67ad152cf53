"""Account custom fields (API.md §2.7, §2.1 `customFields`, §6.8, §6.29)."""

from __future__ import annotations

import pytest
from contract_helpers import (
    account,
    all_accounts,
    assert_constraint,
    create_field,
    envelope,
    error,
    errors_at,
    get_account,
    ok,
    push,
    push_ok,
    validation_errors,
)

LABEL_TYPES = ["singleLineText", "multiLineText", "singleSelection", "multiSelection", "number", "date"]
FIELD_KEYS = {"key", "label", "labelType", "description", "options", "objectType", "status"}


def list_fields(api) -> list[dict]:
    data = ok(api.get("/accounts/custom-fields"), "/api/v1/accounts/custom-fields")
    assert isinstance(data, list)
    for f in data:
        assert set(f) >= FIELD_KEYS, f
        assert f["objectType"] == "accounts" and f["status"] == "active", f
    return data


def keys(api) -> set[str]:
    return {f["key"] for f in list_fields(api)}


def test_a_new_workspace_has_no_custom_fields(api):
    assert list_fields(api) == []


@pytest.mark.parametrize(
    "label,key",
    [
        ("Net-Revenue", "NET-REVENUE_C"),
        ("Contract Value", "CONTRACT_VALUE_C"),
        ("crm stage", "CRM_STAGE_C"),
        ("a  b", "A__B_C"),
        ("Renewal.Date 2", "RENEWAL.DATE_2_C"),
        ("x", "X_C"),
    ],
)
def test_key_is_derived_from_the_label(api, label, key):
    field = create_field(api, label, "singleLineText")
    assert field["key"] == key
    assert field["label"] == label, "the label is kept as given"


def test_created_field_shape_and_listing(api):
    field = create_field(api, "Tier", "singleSelection", description="Tier of the account", options=["Gold", "Silver"])
    assert set(field) >= FIELD_KEYS, field
    assert field["key"] == "TIER_C"
    assert field["labelType"] == "singleSelection"
    assert field["description"] == "Tier of the account"
    assert field["options"] == ["Gold", "Silver"]
    assert field["objectType"] == "accounts" and field["status"] == "active"
    [listed] = list_fields(api)
    assert listed == field


@pytest.mark.parametrize("label_type", LABEL_TYPES)
def test_every_label_type_is_accepted(api, label_type):
    extra = {"options": ["One", "Two"]} if "Selection" in label_type else {}
    field = create_field(api, f"Field {label_type}", label_type, **extra)
    assert field["labelType"] == label_type
    assert field["key"] in keys(api)


@pytest.mark.parametrize("second", ["Tier", "TIER", "tier"])
def test_an_active_field_with_the_same_key_is_409(api, second):
    create_field(api, "Tier", "number")
    r = api.post("/accounts/custom-field", json={"label": second, "labelType": "singleLineText"})
    error(r, 409, "Custom field with key 'TIER_C' already exists", "Conflict")
    assert [f["labelType"] for f in list_fields(api)] == ["number"], "the existing field is unchanged"


MISSING = object()
NOT_AN_ARRAY = {"isArray": "options must be an array", "arrayMinSize": "options must contain at least 1 elements"}


@pytest.mark.parametrize("label_type", ["singleSelection", "multiSelection"])
@pytest.mark.parametrize(
    "options,constraints",
    [
        (MISSING, NOT_AN_ARRAY),
        (None, NOT_AN_ARRAY),
        ("Gold", NOT_AN_ARRAY),
        ({"a": "Gold"}, NOT_AN_ARRAY),
        ([], {"arrayMinSize": "options must contain at least 1 elements"}),
    ],
    ids=["missing", "null", "string", "object", "empty"],
)
def test_selection_types_need_an_array_of_at_least_one_option(api, label_type, options, constraints):
    """§2.7 and §6 rule 1: a selection's options are a required array; missing or not an array
    is `isArray` (with `arrayMinSize`, as class-validator reports), empty is `arrayMinSize`."""
    body = {"label": "Pick", "labelType": label_type}
    if options is not MISSING:
        body["options"] = options
    r = api.post("/accounts/custom-field", json=body)
    assert envelope(r, 400)["message"] == "Bad Request", r.text
    assert errors_at(validation_errors(r), "options") == constraints
    assert list_fields(api) == []


@pytest.mark.parametrize("label_type", ["singleLineText", "multiLineText", "number", "date"])
def test_other_types_need_no_options(api, label_type):
    r = api.post("/accounts/custom-field", json={"label": f"Plain {label_type}", "labelType": label_type})
    assert envelope(r, 200)["data"][0]["options"] == [], r.text


def test_invalid_label_type_is_400_is_in(api):
    r = api.post("/accounts/custom-field", json={"label": "Colour", "labelType": "color"})
    assert_constraint(
        r,
        "labelType",
        "isIn",
        "labelType must be one of the following values: singleLineText, multiLineText, singleSelection, multiSelection, number, date",
    )


@pytest.mark.parametrize(
    "body,path,key,text",
    [
        ({"labelType": "number"}, "label", "isNotEmpty", "label should not be empty"),
        ({"label": "", "labelType": "number"}, "label", "isNotEmpty", "label should not be empty"),
        ({"label": "  ", "labelType": "number"}, "label", "isNotEmpty", "label should not be empty"),
        ({"label": 5, "labelType": "number"}, "label", "isString", "label must be a string"),
        ({"label": "X"}, "labelType", None, None),
        (
            {"label": "X", "labelType": "number", "description": 5},
            "description",
            "isString",
            "description must be a string",
        ),
        (
            {"label": "X", "labelType": "singleSelection", "options": "Gold"},
            "options",
            "isArray",
            "options must be an array",
        ),
    ],
    ids=[
        "label-missing",
        "label-empty",
        "label-blank",
        "label-number",
        "labelType-missing",
        "description-number",
        "options-string",
    ],
)
def test_custom_field_request_shape_errors(api, body, path, key, text):
    assert_constraint(api.post("/accounts/custom-field", json=body), path, key, text)
    assert list_fields(api) == []


def test_records_show_every_active_field_with_null(api):
    item = account()
    push_ok(api, [item])
    k1 = create_field(api, "First Field", "singleLineText")["key"]
    k2 = create_field(api, "Second Field", "date")["key"]
    assert get_account(api, item["domain"])["customFields"] == {k1: None, k2: None}


def test_delete_deactivates_and_recreating_brings_values_back(api):
    key = create_field(api, "Hidden", "singleLineText")["key"]
    keep = create_field(api, "Kept", "singleLineText")["key"]
    item = account(customFields={key: "secret", keep: "k"})
    push_ok(api, [item])

    ok(api.delete(f"/accounts/custom-fields/{key}"), f"/api/v1/accounts/custom-fields/{key}")
    assert keys(api) == {keep}, "a deleted field is no longer listed"
    assert get_account(api, item["domain"])["customFields"] == {keep: "k"}, "its values are hidden"

    data = push(api, [account(customFields={key: "x"})])
    assert data["results"][0]["status"] == "failed"
    assert data["results"][0]["error"] == f"Custom field key(s) not found: {key}. Unable to add this account."
    rtp_aid = get_account(api, item["domain"])["rtp_aid"]
    error(
        api.put(f"/accounts/{rtp_aid}", json={"customFields": {key: "y"}}), 400, f"Custom field key(s) not found: {key}"
    )

    again = create_field(api, "Hidden", "singleLineText")
    assert again["key"] == key and again["status"] == "active", "re-creating a deleted field is not a conflict"
    assert get_account(api, item["domain"])["customFields"] == {key: "secret", keep: "k"}, "kept values come back"
    assert len(all_accounts(api)) == 1
