"""Signals intake: POST /signals (API.md §3.1, §1.3, §1.4, §1.6, §6.1, §6.21, §6.29, §6.33).

Written from the contract only. Nothing here runs the scoring job: what a whole-request 400
"writes nothing" means is checked through idempotency (an `externalSignalId` that was not
stored is `created` when sent again). Effects of signals on scores are in test_scoring_*.py.
"""

from __future__ import annotations

import uuid

import pytest
from contract_helpers import (
    SIGNAL_TYPES,
    assert_constraint,
    assert_write_route_conventions,
    client_for,
    describe,
    error,
    errors_at,
    push_signals,
    push_signals_raw,
    signal,
    unique_domain,
    validation_errors,
)


def sid() -> str:
    return f"sig-{uuid.uuid4().hex[:12]}"


def statuses(data: dict) -> list[str]:
    return [i["status"] for i in data["results"]]


def one_of_each(domain: str) -> list[dict]:
    """One signal of every type of every source (§3.1)."""
    return [
        signal(source, type_, domain, externalSignalId=sid())
        for source, types in SIGNAL_TYPES.items()
        for type_ in types
    ]


# --------------------------------------------------------------------------- success


def test_every_source_and_type_is_accepted(api):
    items = one_of_each(unique_domain("sig"))
    assert len(items) == 9
    data = push_signals(api, items)
    assert statuses(data) == ["created"] * 9, data["results"]
    assert data["summary"] == {
        **data["summary"],
        "total": 9,
        "created": 9,
        "skipped": 0,
        "failed": 0,
    }


def test_optional_fields_are_accepted(api):
    d = unique_domain("sig")
    items = [
        signal("website", "page_view", d),  # no externalSignalId
        signal("g2", "pricing_view", d, weight=0.5),
        signal("bombora", "surge", d, score=0, topic="Zero Trust"),
        signal("bombora", "surge", d, score=100, topic="SASE"),
        signal("linkedin_ads", "impression", d, count=2000, weight=2),
        signal("website", "page_view", d, occurredAt="2026-01-15T08:00:00Z"),
    ]
    data = push_signals(api, items)
    assert statuses(data) == ["created"] * len(items), data["results"]


def test_signals_for_a_domain_without_an_account_are_created(api):
    """§3.1: signals for a domain with no account are kept (their effect on scores: test_scoring_*)."""
    data = push_signals(
        api,
        [signal("g2", "comparison", unique_domain("nobody"), externalSignalId=sid())],
    )
    assert statuses(data) == ["created"], data["results"]


def test_one_thousand_signals_in_one_request(api):
    d = unique_domain("sig")
    items = [signal("website", "page_view", d, externalSignalId=sid()) for _ in range(1000)]
    data = push_signals(api, items)
    assert data["summary"] == {
        **data["summary"],
        "total": 1000,
        "created": 1000,
        "skipped": 0,
        "failed": 0,
    }


# --------------------------------------------------------------------------- per-item results


def test_mixed_request_reports_created_skipped_failed_in_order(api):
    d = unique_domain("sig")
    a, b = sid(), sid()
    items = [
        signal("website", "page_view", d, externalSignalId=a),
        signal("g2", "profile_view", d, externalSignalId=a),  # same id as an earlier item → skipped
        signal("bombora", "surge", "not a domain", externalSignalId=sid()),
        signal("bombora", "surge", d),
        signal("linkedin_ads", "click", d, externalSignalId=b),
    ]
    data = push_signals(api, items)
    assert statuses(data) == ["created", "skipped", "failed", "created", "created"], data["results"]
    assert data["results"][2]["error"] == "Invalid domain 'not a domain'", data["results"][2]
    assert data["summary"] == {
        **data["summary"],
        "total": 5,
        "created": 3,
        "skipped": 1,
        "failed": 1,
    }

    # A known externalSignalId is skipped in a later request too, whatever the rest of the item.
    again = [
        signal("website", "page_view", d, externalSignalId=a),
        signal("linkedin_ads", "click", unique_domain("other"), externalSignalId=b),
        signal("g2", "comparison", d, externalSignalId=sid()),
    ]
    data = push_signals(api, again)
    assert statuses(data) == ["skipped", "skipped", "created"], data["results"]
    assert data["summary"] == {
        **data["summary"],
        "total": 3,
        "created": 1,
        "skipped": 2,
        "failed": 0,
    }


@pytest.mark.parametrize("bad", ["localhost", "exa mple.com", "http://", "bad_domain!.com", "-"])
def test_an_implausible_domain_fails_only_its_item(api, bad):
    d = unique_domain("sig")
    items = [
        signal("website", "page_view", d),
        signal("website", "page_view", bad),
        signal("g2", "category_view", d),
    ]
    data = push_signals(api, items)
    assert statuses(data) == ["created", "failed", "created"], data["results"]
    assert data["results"][1]["error"] == f"Invalid domain '{bad}'", data["results"][1]


def test_a_failed_item_stores_nothing(api):
    """§1.4: an item is stored completely or not at all — a failed item's externalSignalId stays free."""
    x = sid()
    data = push_signals(api, [signal("g2", "pricing_view", "nodot", externalSignalId=x)])
    assert statuses(data) == ["failed"], data["results"]
    data = push_signals(api, [signal("g2", "pricing_view", unique_domain("sig"), externalSignalId=x)])
    assert statuses(data) == ["created"], (
        f"the failed item must not have stored its externalSignalId: {data['results']}"
    )


def test_the_same_external_signal_id_in_two_workspaces(api, server, new_workspace):
    """§0: nothing crosses workspaces, idempotency keys included."""
    x = sid()
    d = unique_domain("sig")
    assert statuses(push_signals(api, [signal("website", "page_view", d, externalSignalId=x)])) == ["created"]
    other = new_workspace()
    with client_for(server, other.key) as api2:
        data = push_signals(api2, [signal("website", "page_view", d, externalSignalId=x)])
        assert statuses(data) == ["created"], (
            f"another workspace's externalSignalId must not make this one skipped: {data['results']}"
        )
        assert statuses(push_signals(api2, [signal("website", "page_view", d, externalSignalId=x)])) == ["skipped"]
    assert statuses(push_signals(api, [signal("website", "page_view", d, externalSignalId=x)])) == ["skipped"]


# --------------------------------------------------------------------------- whole-request validation


def assert_nothing_written(api, items: list[dict]) -> None:
    """After a rejected request, every item carrying an externalSignalId is new again."""
    keep = [i for i in items if i.get("externalSignalId")]
    if keep:
        data = push_signals(api, keep)
        assert statuses(data) == ["created"] * len(keep), f"a rejected request must write nothing: {data['results']}"


def test_signals_array_bounds(api):
    d = unique_domain("sig")
    r = push_signals_raw(api, [])
    assert_constraint(r, "signals", "arrayMinSize", "signals must contain at least 1 elements")
    items = [signal("website", "page_view", d, externalSignalId=sid()) for _ in range(1001)]
    r = push_signals_raw(api, items)
    assert_constraint(r, "signals", "arrayMaxSize", "signals must contain no more than 1000 elements")
    assert_nothing_written(api, items[:3])


@pytest.mark.parametrize(
    "body",
    [{}, {"signals": "x"}, {"signals": {"source": "website"}}, {"signals": None}],
    ids=["missing", "string", "object", "null"],
)
def test_signals_must_be_an_array(api, body):
    r = api.post("/signals", json=body)
    assert_constraint(r, "signals", "isArray", "signals must be an array")


def _set(item: dict, key: str, value) -> dict:
    item = dict(item)
    if value is _MISSING:
        item.pop(key, None)
    else:
        item[key] = value
    return item


_MISSING = object()

# (id, field, value, path leaf, constraint key or None, constraint text or None)
ITEM_VALIDATION = [
    (
        "source-missing",
        "source",
        _MISSING,
        "source",
        "isNotEmpty",
        "source should not be empty",
    ),
    ("source-unknown", "source", "twitter", "source", "isIn", None),
    ("source-uppercase", "source", "Website", "source", "isIn", None),
    ("source-number", "source", 3, "source", None, None),
    (
        "type-missing",
        "type",
        _MISSING,
        "type",
        "isNotEmpty",
        "type should not be empty",
    ),
    ("type-unknown", "type", "download", "type", None, None),
    (
        "domain-missing",
        "domain",
        _MISSING,
        "domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-empty",
        "domain",
        "",
        "domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-blank",
        "domain",
        "   ",
        "domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    (
        "domain-null",
        "domain",
        None,
        "domain",
        "isNotEmpty",
        "domain should not be empty",
    ),
    ("domain-number", "domain", 42, "domain", "isString", "domain must be a string"),
    (
        "occurredAt-missing",
        "occurredAt",
        _MISSING,
        "occurredAt",
        "isNotEmpty",
        "occurredAt should not be empty",
    ),
    (
        "occurredAt-null",
        "occurredAt",
        None,
        "occurredAt",
        "isNotEmpty",
        "occurredAt should not be empty",
    ),
    (
        "occurredAt-bad",
        "occurredAt",
        "yesterday",
        "occurredAt",
        "isIso8601",
        "occurredAt must be a valid ISO 8601 date string",
    ),
    (
        "occurredAt-bad-date",
        "occurredAt",
        "2026-13-45T10:00:00Z",
        "occurredAt",
        "isIso8601",
        "occurredAt must be a valid ISO 8601 date string",
    ),
]


@pytest.mark.parametrize("case", ITEM_VALIDATION, ids=[c[0] for c in ITEM_VALIDATION])
def test_a_bad_item_rejects_the_whole_request(api, case):
    _, key, value, leaf, constraint, text = case
    d = unique_domain("sig")
    items = [
        signal("g2", "pricing_view", d, externalSignalId=sid()),
        _set(signal("g2", "comparison", d, externalSignalId=sid()), key, value),
        signal("website", "page_view", d, externalSignalId=sid()),
    ]
    r = push_signals_raw(api, items)
    errors = validation_errors(r)
    assert_constraint(errors, f"signals.1.{leaf}", constraint, text)
    assert not any(e["path"].startswith(("signals.0.", "signals.2.")) for e in errors), (
        f"only item 1 is at fault: {errors}"
    )
    assert_nothing_written(api, [items[0], items[2]])


def test_unknown_source_names_the_valid_ones(api):
    """§6.29: `isIn` — "<f> must be one of the following values: a, b" with §3.1's four sources."""
    item = signal("g2", "comparison", unique_domain("sig"))
    item["source"] = "twitter"
    r = push_signals_raw(api, [item])
    cons = validation_errors(r)
    text = {e["path"]: e["constraints"] for e in cons}["signals.0.source"].get("isIn", "")
    assert text.startswith("source must be one of the following values: "), text
    named = {v.strip() for v in text.split(": ", 1)[1].split(",")}
    assert named == {"website", "g2", "bombora", "linkedin_ads"}, f"the message names the four sources: {text!r}"


# A type that exists, but for another source (§6.21: "a `type` not valid for its source").
WRONG_TYPE = [
    ("website", "pricing_view"),
    ("website", "surge"),
    ("g2", "page_view"),
    ("g2", "click"),
    ("bombora", "impression"),
    ("bombora", "profile_view"),
    ("linkedin_ads", "surge"),
    ("linkedin_ads", "category_view"),
]


@pytest.mark.parametrize("source,type_", WRONG_TYPE, ids=[f"{s}-{t}" for s, t in WRONG_TYPE])
def test_a_type_of_another_source_rejects_the_whole_request(api, source, type_):
    d = unique_domain("sig")
    good = signal("website", "page_view", d, externalSignalId=sid())
    bad = signal(source, SIGNAL_TYPES[source][0], d, externalSignalId=sid())
    bad["type"] = type_
    r = push_signals_raw(api, [good, bad])
    errors = validation_errors(r)
    assert any(e["path"] == "signals.1.type" for e in errors), (
        f"expected a validation error at signals.1.type: {errors}"
    )
    assert_nothing_written(api, [good, bad | {"type": SIGNAL_TYPES[source][0]}])


@pytest.mark.parametrize("score", [101, -1, 250])
def test_a_bombora_score_outside_0_to_100_is_refused(api, score):
    """§3.1: bombora `score` is 0–100. The contract does not say whether a range violation is a
    request-shape 400 or a per-item failure; either is accepted, but the signal is not stored."""
    x = sid()
    r = push_signals_raw(
        api,
        [
            signal(
                "bombora",
                "surge",
                unique_domain("sig"),
                score=score,
                externalSignalId=x,
            )
        ],
    )
    if r.status_code == 400:
        errors = validation_errors(r)
        assert any(e["path"] == "signals.0.score" for e in errors), f"the error names signals.0.score: {errors}"
    else:
        assert r.status_code == 200, describe(r)
        assert r.json()["data"]["results"][0]["status"] == "failed", (
            f"bombora score {score} must not be accepted: {describe(r)}"
        )
    assert_nothing_written(api, [signal("bombora", "surge", unique_domain("sig"), externalSignalId=x)])


# --------------------------------------------------------------------------- conventions


def test_route_conventions(server, workspace):
    assert_write_route_conventions(
        server,
        workspace.key,
        "POST",
        "/signals",
        {"signals": [signal("website", "page_view", unique_domain("sig"))]},
    )


def test_invalid_key_is_refused_before_validation(server):
    with client_for(server, "x" * 64) as c:
        error(c.post("/signals", json={"signals": []}), 401, "Invalid API key")


def test_the_crm_alias_serves_signals_too(api):
    """§1.1: every Surface R path is also served under /crm."""
    items = [signal("g2", "pricing_view", unique_domain("sig"), externalSignalId=sid())]
    r = api.post("/crm/signals", json={"signals": items})
    assert r.status_code == 200, describe(r)
    assert [i["status"] for i in r.json()["data"]["results"]] == ["created"], describe(r)
    # The same store: the id is now known on the plain path.
    assert statuses(push_signals(api, items)) == ["skipped"]


@pytest.mark.parametrize("score", [_MISSING, None], ids=["missing", "null"])
def test_a_surge_without_its_score_is_reported_as_a_missing_required_number(api, score):
    """A conditionally required field gets the constraints of a required one: `isNotEmpty` and
    the wrong-type text of its type (§6 rule 1, §6 rule 29)."""
    item = signal("bombora", "surge", unique_domain("sig"))
    del item["score"]
    if score is not _MISSING:
        item["score"] = score
    r = api.post("/signals", json={"signals": [item]})
    assert errors_at(validation_errors(r), "signals.0.score") == {
        "isNotEmpty": "score should not be empty",
        "isNumber": "score must be a number conforming to the specified constraints",
    }
