"""Signals intake in-process, on both databases (API.md §3.1, §6.21, §6.29, §6.33): push
outcomes, idempotency by externalSignalId, dirty marking for the scoring job, batched
statements, validation errors in class-validator's shape, and the HTTP endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, update

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.tables import accounts, signals
from abmhub.signals import service
from abmhub.signals.router import build_router
from abmhub.signals.schemas import PushSignalsRequest, SignalItem
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import parse_iso8601
from abmhub.web.validation import validation_issues
from tests.support.statements import StatementCounter


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


def signal_body(**fields: Any) -> dict[str, Any]:
    return {
        "source": "website",
        "type": "page_view",
        "domain": "acme.com",
        "occurredAt": "2026-04-30T10:00:00Z",
        **fields,
    }


def signal(**fields: Any) -> SignalItem:
    return SignalItem.model_validate(signal_body(**fields))


def push(db: Database, workspace_id: int, *items: SignalItem) -> service.PushOutcome:
    return service.push_signals(db, workspace_id=workspace_id, items=list(items))


def statuses(outcome: service.PushOutcome) -> list[str]:
    return [result["status"] for result in outcome.results]


def stored(db: Database, workspace_id: int) -> list[Any]:
    with db.read() as conn:
        return conn.execute(select(signals).where(signals.c.workspace_id == workspace_id).order_by(signals.c.id)).all()


# --- push outcomes -----------------------------------------------------------------------


def test_a_push_stores_each_source_with_its_fields(database, workspace_id):
    outcome = push(
        database,
        workspace_id,
        signal(domain="https://www.Acme.com/pricing", url="https://acme.example/pricing", externalSignalId="w-1"),
        signal(source="g2", type="comparison", occurredAt="2026-04-29", weight=2.5),
        signal(source="bombora", type="surge", topic="Intent Data", score=72),
        signal(source="linkedin_ads", type="impression", count=1234),
    )
    assert outcome.results == [
        {"externalSignalId": "w-1", "domain": "acme.com", "status": "created"},
        {"domain": "acme.com", "status": "created"},
        {"domain": "acme.com", "status": "created"},
        {"domain": "acme.com", "status": "created"},
    ]
    assert outcome.summary == {"total": 4, "created": 4, "skipped": 0, "failed": 0}
    website, g2, bombora, linkedin = stored(database, workspace_id)
    assert (website.source, website.type, website.domain) == ("website", "page_view", "acme.com")
    assert website.url == "https://acme.example/pricing"
    assert website.external_signal_id == "w-1"
    assert website.occurred_us == parse_iso8601("2026-04-30T10:00:00Z")
    assert (website.weight, website.count, website.score, website.topic) == (1.0, 1, None, None)
    assert (g2.type, g2.weight, g2.external_signal_id) == ("comparison", 2.5, None)
    assert (bombora.type, bombora.topic, bombora.score) == ("surge", "Intent Data", 72)
    assert (linkedin.type, linkedin.count) == ("impression", 1234)


@pytest.mark.parametrize(
    ("occurred_at", "day"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),  # floor, not truncation towards zero
        ("2026-04-30T00:00:00Z", 20573),
        ("2026-04-30T23:59:59.999Z", 20573),
        ("2026-04-30T23:30:00-02:00", 20574),  # 01:30 UTC the next day
    ],
)
def test_the_occurred_day_is_the_utc_day(database, workspace_id, occurred_at, day):
    push(database, workspace_id, signal(occurredAt=occurred_at))
    assert stored(database, workspace_id)[0].occurred_day == day


def test_a_known_external_signal_id_is_skipped_and_stores_nothing(database, workspace_id):
    push(database, workspace_id, signal(externalSignalId="s-1"))
    outcome = push(
        database, workspace_id, signal(externalSignalId="s-1", domain="other.com"), signal(externalSignalId="s-2")
    )
    assert outcome.results[0] == {
        "externalSignalId": "s-1",
        "domain": "other.com",
        "status": "skipped",
        "reason": "Signal with externalSignalId 's-1' already exists",
    }
    assert statuses(outcome) == ["skipped", "created"]
    assert outcome.summary == {"total": 2, "created": 1, "skipped": 1, "failed": 0}
    assert [row.external_signal_id for row in stored(database, workspace_id)] == ["s-1", "s-2"]


def test_an_earlier_item_of_the_same_request_makes_its_id_known(database, workspace_id):
    outcome = push(
        database,
        workspace_id,
        signal(externalSignalId="dup", url="https://a.example/1"),
        signal(externalSignalId="dup", url="https://a.example/2"),
        signal(),  # signals without an id are never duplicates of each other
        signal(),
    )
    assert statuses(outcome) == ["created", "skipped", "created", "created"]
    assert [row.url for row in stored(database, workspace_id)] == ["https://a.example/1", None, None]


def test_an_invalid_domain_fails_only_its_item_and_does_not_take_its_id(database, workspace_id):
    outcome = push(
        database,
        workspace_id,
        signal(domain="not a domain", externalSignalId="x"),
        signal(domain="www.Globex.com", externalSignalId="x"),
    )
    assert outcome.results == [
        {
            "externalSignalId": "x",
            "domain": "not a domain",
            "status": "failed",
            "error": "Invalid domain 'not a domain'",
        },
        {"externalSignalId": "x", "domain": "globex.com", "status": "created"},
    ]
    assert outcome.summary == {"total": 2, "created": 1, "skipped": 0, "failed": 1}
    assert [row.domain for row in stored(database, workspace_id)] == ["globex.com"]


def test_signals_of_a_domain_without_an_account_are_kept(database, workspace_id):
    outcome = push(database, workspace_id, signal(domain="nobody-yet.com"))
    assert statuses(outcome) == ["created"]
    assert stored(database, workspace_id)[0].domain == "nobody-yet.com"


def test_workspaces_do_not_share_external_signal_ids(database, workspace_id):
    other = tenancy.create_workspace(database, name="other")
    push(database, workspace_id, signal(externalSignalId="same"))
    assert statuses(push(database, other, signal(externalSignalId="same"))) == ["created"]


# --- dirty marking -----------------------------------------------------------------------


def _accounts(db: Database, workspace_id: int, *domains: str) -> None:
    items = [AccountItem.model_validate({"domain": d, "name": d}) for d in domains]
    accounts_service.push_accounts(db, workspace_id=workspace_id, items=items)


def _all_clean(db: Database) -> None:
    with db.write() as tx:
        tx.conn.execute(update(accounts).values(score_dirty=False))


def _dirty(db: Database) -> set[tuple[int, str]]:
    with db.read() as conn:
        rows = conn.execute(select(accounts.c.workspace_id, accounts.c.domain).where(accounts.c.score_dirty.is_(True)))
        return {tuple(row) for row in rows}


def test_a_created_signal_marks_only_its_accounts_for_rescoring(database, workspace_id):
    other = tenancy.create_workspace(database, name="other")
    _accounts(database, workspace_id, "acme.com", "globex.com", "initech.com")
    _accounts(database, other, "acme.com")
    _all_clean(database)

    outcome = push(
        database,
        workspace_id,
        signal(domain="https://www.acme.com/", externalSignalId="a"),
        signal(domain="initech.com", source="g2", type="pricing_view"),
        signal(domain="nobody.com"),
    )
    assert statuses(outcome) == ["created", "created", "created"]
    assert _dirty(database) == {(workspace_id, "acme.com"), (workspace_id, "initech.com")}


def test_skipped_and_failed_signals_mark_nothing(database, workspace_id):
    _accounts(database, workspace_id, "acme.com", "globex.com")
    push(database, workspace_id, signal(externalSignalId="a"))
    _all_clean(database)

    outcome = push(database, workspace_id, signal(externalSignalId="a"), signal(domain="globex"))
    assert statuses(outcome) == ["skipped", "failed"]
    assert _dirty(database) == set()


# --- statements --------------------------------------------------------------------------


def test_a_push_of_1000_signals_is_one_transaction_with_batched_statements(database, workspace_id):
    _accounts(database, workspace_id, *(f"co-{i}.com" for i in range(0, 1000, 7)))
    push(database, workspace_id, *(signal(domain=f"co-{i}.com", externalSignalId=f"s-{i}") for i in range(0, 1000, 2)))
    items = [
        signal(domain=f"co-{i}.com", externalSignalId=f"s-{i}" if i % 3 else None, url=f"https://x.example/{i}")
        for i in range(1000)
    ]
    counter = StatementCounter(database)
    outcome = push(database, workspace_id, *items)
    assert outcome.summary["total"] == 1000
    assert outcome.summary["skipped"] == len([i for i in range(0, 1000, 2) if i % 3])
    assert counter.commits == 1, "the whole push commits once"
    # BEGIN (SQLite), the clock tick, the lookup of known ids, the insert, the dirty marking.
    assert len(counter.statements) <= 5, f"statements are batched, not one per item: {counter.statements}"
    with database.read() as conn:
        assert len(conn.execute(select(signals.c.id)).all()) == 500 + outcome.summary["created"]


# --- validation --------------------------------------------------------------------------


def issues(*items: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        PushSignalsRequest.model_validate({"signals": list(items)})
    return validation_issues(caught.value)


def test_an_unknown_source_is_a_validation_error():
    assert issues(signal_body(), signal_body(source="hubspot")) == [
        {
            "property": "source",
            "path": "signals.1.source",
            "constraints": {"isIn": "source must be one of the following values: website, g2, bombora, linkedin_ads"},
        }
    ]


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("website", "page_view"),
        ("g2", "profile_view, comparison, pricing_view, category_view"),
        ("linkedin_ads", "impression, click, engagement"),
    ],
)
def test_a_type_of_another_source_is_a_validation_error_on_type(source, allowed):
    found = issues(signal_body(), signal_body(), signal_body(), signal_body(source=source, type="surge", topic=None))
    assert found == [
        {
            "property": "type",
            "path": "signals.3.type",
            "constraints": {"isIn": f"type must be one of the following values: {allowed}"},
        }
    ]


def test_a_surge_needs_a_score():
    assert issues(signal_body(source="bombora", type="surge", topic="CRM")) == [
        {
            "property": "score",
            "path": "signals.0.score",
            "constraints": {
                "isNotEmpty": "score should not be empty",
                "isNumber": "score must be a number conforming to the specified constraints",
            },
        }
    ]


@pytest.mark.parametrize(
    ("score", "constraint", "text"),
    [
        (101, "max", "score must not be greater than 100"),
        (-1, "min", "score must not be less than 0"),
        (55.5, "isInt", "score must be an integer number"),
        ("55", "isNumber", "score must be a number conforming to the specified constraints"),
    ],
)
def test_a_score_is_an_integer_from_0_to_100(score, constraint, text):
    assert issues(signal_body(source="bombora", type="surge", score=score)) == [
        {"property": "score", "path": "signals.0.score", "constraints": {constraint: text}}
    ]


def test_whole_number_floats_are_integers():
    request = PushSignalsRequest.model_validate(
        {
            "signals": [
                signal_body(source="bombora", type="surge", score=55.0),
                signal_body(source="linkedin_ads", type="click", count=3.0),
            ]
        }
    )
    assert (request.signals[0].score, request.signals[1].count) == (55, 3)
    assert isinstance(request.signals[0].score, int)


@pytest.mark.parametrize(
    ("fields", "path", "constraints"),
    [
        (
            {"count": 0, "source": "linkedin_ads", "type": "click"},
            "signals.0.count",
            {"min": "count must not be less than 1"},
        ),
        ({"weight": -0.5}, "signals.0.weight", {"min": "weight must not be less than 0"}),
        (
            {"occurredAt": "yesterday"},
            "signals.0.occurredAt",
            {"isIso8601": "occurredAt must be a valid ISO 8601 date string"},
        ),
        ({"domain": "  "}, "signals.0.domain", {"isNotEmpty": "domain should not be empty"}),
        (
            {"externalSignalId": ""},
            "signals.0.externalSignalId",
            {"isNotEmpty": "externalSignalId should not be empty"},
        ),
        ({"visitor": "x"}, "signals.0.visitor", {"whitelistValidation": "property visitor should not exist"}),
        # A field of another source is refused rather than silently ignored.
        ({"count": 3}, "signals.0.count", {"whitelistValidation": "property count should not exist"}),
        (
            {"source": "g2", "type": "pricing_view", "url": "https://g2.example"},
            "signals.0.url",
            {"whitelistValidation": "property url should not exist"},
        ),
    ],
)
def test_field_rules(fields, path, constraints):
    found = issues(signal_body(**fields))
    assert [(issue["path"], issue["constraints"]) for issue in found] == [(path, constraints)]


def test_the_array_size_is_checked():
    assert issues()[0]["constraints"] == {"arrayMinSize": "signals must contain at least 1 elements"}
    too_many = [signal_body()] * 1001
    assert issues(*too_many)[0]["constraints"] == {"arrayMaxSize": "signals must contain no more than 1000 elements"}


# --- HTTP --------------------------------------------------------------------------------


@pytest.fixture
def client(database: Database, workspace_id: int):
    app = create_app(Settings(database_url=database.url), database)
    if not any(getattr(route, "path", None) == "/api/v1/signals" for route in app.routes):
        app.include_router(build_router(), prefix="/api/v1")  # until app.py mounts it
    key = tenancy.create_key(database, workspace="acme", user_email="ops@acme.com")
    with TestClient(app, raise_server_exceptions=False, headers={"X-Api-Key": key}) as test_client:
        yield test_client


def test_the_endpoint_answers_results_and_summary_in_the_envelope(client):
    response = client.post(
        "/api/v1/signals",
        json={
            "signals": [
                signal_body(externalSignalId="e-1"),
                signal_body(externalSignalId="e-1"),
                signal_body(domain="nope"),
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["statusCode"], body["path"]) == (200, "/api/v1/signals")
    assert body["data"] == {
        "results": [
            {"externalSignalId": "e-1", "domain": "acme.com", "status": "created"},
            {
                "externalSignalId": "e-1",
                "domain": "acme.com",
                "status": "skipped",
                "reason": "Signal with externalSignalId 'e-1' already exists",
            },
            {"domain": "nope", "status": "failed", "error": "Invalid domain 'nope'"},
        ],
        "summary": {"total": 3, "created": 1, "skipped": 1, "failed": 1},
    }


def test_the_endpoint_refuses_a_bad_type_as_a_whole_and_stores_nothing(client, database, workspace_id):
    response = client.post(
        "/api/v1/signals", json={"signals": [signal_body(), signal_body(source="g2", type="page_view")]}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Bad Request"
    assert body["data"] == [
        {
            "property": "type",
            "path": "signals.1.type",
            "constraints": {
                "isIn": "type must be one of the following values: profile_view, comparison, pricing_view, category_view"
            },
        }
    ]
    assert stored(database, workspace_id) == []


def test_the_endpoint_needs_a_key(client):
    response = client.post("/api/v1/signals", json={"signals": [signal_body()]}, headers={"X-Api-Key": ""})
    assert response.status_code == 401
