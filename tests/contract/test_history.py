"""History endpoints (API.md §7): GET /accounts/:rtp_aid/history and GET /accounts/stage-changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from contract_helpers import (
    account,
    assert_constraint,
    client_for,
    error,
    ok,
    push_ok,
    run_score,
    unique_name,
)

SCORE_KEYS = {
    "date",
    "rtp_account_score",
    "rtp_website_intent_score",
    "rtp_g2_intent_score",
    "rtp_bombora_intent_score",
    "rtp_advertising_activity_score",
    "rtp_journey_stage",
}


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def open_deal_for(api, domain: str) -> None:
    pipeline = unique_name("pipe")
    ok(
        api.post(
            "/deal-stages",
            json={
                "pipelines": [
                    {
                        "pipelineId": pipeline,
                        "pipelineLabel": "Sales",
                        "stages": [{"stageId": "demo", "stageLabel": "Demo"}, {"stageId": "won", "stageLabel": "Won"}],
                    }
                ]
            },
        )
    )
    deal = {
        "externalDealId": unique_name("deal"),
        "name": "Deal",
        "pipelineId": pipeline,
        "stageId": "demo",
        "associatedAccounts": [{"domain": domain}],
    }
    ok(api.post("/deals", json={"deals": [deal]}))


@pytest.fixture
def moved(api, cli, workspace):
    """Two accounts scored once (Unaware), then one of them moved to Opportunity by an open deal."""
    a, b = account(), account()
    results = push_ok(api, [a, b])
    run_score(cli, workspace.name)
    open_deal_for(api, a["domain"])
    run_score(cli, workspace.name)
    return {"a": results[0], "b": results[1]}


def test_an_accounts_history_has_its_stage_changes_and_todays_scores(api, moved):
    data = ok(api.get(f"/accounts/{moved['a']['rtp_aid']}/history"))
    assert set(data) == {"rtp_aid", "stageChanges", "daily"}
    assert data["rtp_aid"] == moved["a"]["rtp_aid"]
    changes = [(c["from"], c["to"]) for c in data["stageChanges"]]
    assert changes == [("", "Unaware"), ("Unaware", "Opportunity")], "oldest first; '' for the first stage"
    assert all(c["at"].endswith("Z") and len(c["at"]) == 24 for c in data["stageChanges"])
    [day] = data["daily"]
    assert set(day) == SCORE_KEYS and day["date"] == today()
    record = ok(api.get("/accounts", params={"domains": f'["{moved["a"]["domain"]}"]'}))["data"][0]
    assert day["rtp_journey_stage"] == record["rtp_journey_stage"] == "Opportunity"
    assert day["rtp_account_score"] == record["rtp_account_score"], "the day's last scores are the account's"


def test_stage_changes_are_listed_newest_first_with_their_account(api, moved):
    data = ok(api.get("/accounts/stage-changes", params={"limit": 1000}))
    assert set(data) == {"data", "nextCursor", "hasNextPage", "syncTimestamp"}
    mine = [c for c in data["data"] if c["rtp_aid"] in (moved["a"]["rtp_aid"], moved["b"]["rtp_aid"])]
    assert len(mine) == 3
    newest = mine[0]
    assert set(newest) == {"rtp_aid", "domain", "name", "from", "to", "at", "daysInPreviousStage"}
    assert (newest["rtp_aid"], newest["from"], newest["to"]) == (moved["a"]["rtp_aid"], "Unaware", "Opportunity")
    assert newest["daysInPreviousStage"] == 0 and newest["domain"] == moved["a"]["domain"]
    assert all(c["daysInPreviousStage"] is None for c in mine if c["from"] == "")
    ats = [c["at"] for c in data["data"]]
    assert ats == sorted(ats, reverse=True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "progressed"}, [("Unaware", "Opportunity")]),
        ({"direction": "regressed"}, []),
        ({"to": "Unaware"}, [("", "Unaware"), ("", "Unaware")]),
        ({"to": "Opportunity", "direction": "progressed"}, [("Unaware", "Opportunity")]),
    ],
)
def test_stage_changes_filter_by_direction_and_target(api, moved, params, expected):
    data = ok(api.get("/accounts/stage-changes", params=params))
    assert [(c["from"], c["to"]) for c in data["data"]] == expected


def test_since_is_inclusive_and_until_exclusive(api, moved):
    newest = ok(api.get("/accounts/stage-changes", params={"limit": 1}))["data"][0]
    at = newest["at"]
    assert newest["rtp_aid"] in {
        c["rtp_aid"] for c in ok(api.get("/accounts/stage-changes", params={"since": at}))["data"]
    }
    until = ok(api.get("/accounts/stage-changes", params={"until": at}))["data"]
    assert all(c["at"] < at for c in until)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert ok(api.get("/accounts/stage-changes", params={"since": later}))["data"] == []


def test_stage_changes_page_by_cursor_without_repeats(api, cli, workspace):
    push_ok(api, [account() for _ in range(5)])
    run_score(cli, workspace.name)
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        data = ok(api.get("/accounts/stage-changes", params=params))
        seen.extend((c["rtp_aid"], c["at"]) for c in data["data"])
        assert data["nextCursor"] is not None or not data["data"]
        if not data["hasNextPage"]:
            break
        cursor = data["nextCursor"]
    assert len(seen) == len(set(seen)) == 5


def test_history_of_an_unknown_account_is_404(api):
    error(api.get("/accounts/0123456789abcdef01234567/history"), 404, "Account '0123456789abcdef01234567' not found")


def test_history_of_another_workspaces_account_is_404(api, moved, server, new_workspace):
    with client_for(server, new_workspace().key) as other:
        rtp_aid = moved["a"]["rtp_aid"]
        error(other.get(f"/accounts/{rtp_aid}/history"), 404, f"Account '{rtp_aid}' not found")
        assert ok(other.get("/accounts/stage-changes"))["data"] == []


def test_days_bounds_the_window(api, moved):
    rtp_aid = moved["a"]["rtp_aid"]
    assert len(ok(api.get(f"/accounts/{rtp_aid}/history", params={"days": 1}))["daily"]) == 1
    assert len(ok(api.get(f"/accounts/{rtp_aid}/history", params={"days": 730}))["daily"]) == 1


@pytest.mark.parametrize(
    ("value", "constraint", "text"),
    [
        ("0", "min", "days must not be less than 1"),
        ("731", "max", "days must not be greater than 730"),
        ("x", "isInt", "days must be an integer number"),
    ],
)
def test_days_out_of_range_is_a_validation_error(api, moved, value, constraint, text):
    r = api.get(f"/accounts/{moved['a']['rtp_aid']}/history", params={"days": value})
    assert_constraint(r, "days", constraint, text)


@pytest.mark.parametrize(
    ("params", "path", "constraint"),
    [
        ({"since": "yesterday"}, "since", "isIso8601"),
        ({"until": "2026-13-01"}, "until", "isIso8601"),
        ({"direction": "sideways"}, "direction", "isIn"),
        ({"to": "Churned"}, "to", "isIn"),
        ({"limit": "0"}, "limit", "min"),
    ],
)
def test_bad_stage_change_filters_are_validation_errors(api, params, path, constraint):
    assert_constraint(api.get("/accounts/stage-changes", params=params), path, constraint, None)


def test_a_cursor_of_another_list_is_refused(api, moved):
    accounts_cursor = ok(api.get("/accounts", params={"limit": 1}))["nextCursor"]
    error(api.get("/accounts/stage-changes", params={"cursor": accounts_cursor}), 400, "Invalid cursor")


def test_history_needs_a_key(server):
    import httpx

    r = httpx.get(f"{server.base_url}/api/v1/accounts/stage-changes")
    error(r, 401, "X-Api-Key header is required", "Unauthorized access")
