"""Webhooks (API.md §8) against a running server, with a real receiver on 127.0.0.1.

The session's servers run with `--webhook-allow-private-targets` (the receivers are local);
the SSRF refusals are checked on an application without it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from contract_helpers import account, assert_constraint, client_for, error, ok, push_ok, run_score
from fastapi.testclient import TestClient

from abmhub.app import create_app
from abmhub.client import WebhookVerificationError, verify_webhook
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy
from abmhub.webhooks import targets
from tests.support.receiver import Receiver, running_receiver

RECORD_KEYS = {
    "webhookId",
    "url",
    "events",
    "description",
    "format",
    "minScoreDelta",
    "status",
    "createdAt",
    "updatedAt",
}
DELIVERY_KEYS = {
    "deliveryId",
    "eventId",
    "eventType",
    "status",
    "attempts",
    "lastStatusCode",
    "lastError",
    "nextAttemptAt",
    "createdAt",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def create(api, url: str, events: list[str], **extra) -> dict:
    return ok(api.post("/webhooks", json={"url": url, "events": events, **extra}))


# --- subscriptions ----------------------------------------------------------------------------


def test_create_returns_the_secret_once(api, receiver):
    created = create(api, receiver.url, ["account.created"], description="CRM sync")
    assert set(created) == RECORD_KEYS | {"secret"}
    assert re.fullmatch(r"whsec_[A-Za-z0-9_\-]{32,}", created["secret"]), created["secret"]
    assert created["status"] == "active" and created["format"] == "json" and created["minScoreDelta"] == 10
    assert created["events"] == ["account.created"] and created["description"] == "CRM sync"
    shown = ok(api.get(f"/webhooks/{created['webhookId']}"))
    assert set(shown) == RECORD_KEYS, "the secret is shown only when created"
    listed = ok(api.get("/webhooks"))
    assert [w["webhookId"] for w in listed["data"]] == [created["webhookId"]]
    assert "secret" not in listed["data"][0] and listed["hasNextPage"] is False


def test_patch_changes_only_what_it_names_and_pauses(api, receiver):
    created = create(api, receiver.url, ["account.created"], format="slack", minScoreDelta=5)
    changed = ok(
        api.patch(
            f"/webhooks/{created['webhookId']}",
            json={"events": ["account.score_changed"], "minScoreDelta": 20, "status": "paused"},
        )
    )
    assert (changed["events"], changed["minScoreDelta"], changed["status"]) == (["account.score_changed"], 20, "paused")
    assert (changed["url"], changed["format"]) == (receiver.url, "slack")
    resumed = ok(api.patch(f"/webhooks/{created['webhookId']}", json={"status": "active"}))
    assert resumed["status"] == "active"


def test_delete_and_unknown_ids(api, receiver):
    created = create(api, receiver.url, ["ping"])
    ok(api.delete(f"/webhooks/{created['webhookId']}"))
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/test"),
        ("GET", "/deliveries"),
    ):
        response = api.request(
            method, f"/webhooks/{created['webhookId']}{path}", json={} if method == "PATCH" else None
        )
        error(response, 404, f"Webhook '{created['webhookId']}' not found")


def test_another_workspace_cannot_see_or_touch_a_webhook(api, receiver, server, new_workspace):
    created = create(api, receiver.url, ["ping"])
    with client_for(server, new_workspace().key) as other:
        assert ok(other.get("/webhooks"))["data"] == []
        error(other.get(f"/webhooks/{created['webhookId']}"), 404, f"Webhook '{created['webhookId']}' not found")
        error(other.delete(f"/webhooks/{created['webhookId']}"), 404, f"Webhook '{created['webhookId']}' not found")
    assert ok(api.get(f"/webhooks/{created['webhookId']}"))["status"] == "active"


@pytest.mark.parametrize(
    ("body", "path", "constraint"),
    [
        ({"url": "ftp://example.com/x", "events": ["ping"]}, "url", "isUrl"),
        ({"url": "not a url", "events": ["ping"]}, "url", "isUrl"),
        ({"url": "javascript:alert(1)", "events": ["ping"]}, "url", "isUrl"),
        ({"events": ["ping"]}, "url", "isNotEmpty"),
        ({"url": "https://example.com/hook", "events": ["account.deleted"]}, "events", "isIn"),
        ({"url": "https://example.com/hook", "events": []}, "events", "arrayMinSize"),
        ({"url": "https://example.com/hook"}, "events", "isArray"),
        ({"url": "https://example.com/hook", "events": ["ping"], "minScoreDelta": 0}, "minScoreDelta", "min"),
        ({"url": "https://example.com/hook", "events": ["ping"], "minScoreDelta": 101}, "minScoreDelta", "max"),
        ({"url": "https://example.com/hook", "events": ["ping"], "minScoreDelta": 2.5}, "minScoreDelta", "isInt"),
        ({"url": "https://example.com/hook", "events": ["ping"], "format": "xml"}, "format", "isIn"),
    ],
)
def test_bad_subscriptions_are_validation_errors(api, body, path, constraint):
    assert_constraint(api.post("/webhooks", json=body), path, constraint, None)


def test_bad_patches_are_validation_errors(api, receiver):
    created = create(api, receiver.url, ["ping"])
    path = f"/webhooks/{created['webhookId']}"
    assert_constraint(api.patch(path, json={"status": "disabled"}), "status", "isIn", None)
    assert_constraint(api.patch(path, json={"events": []}), "events", "arrayMinSize", None)
    assert_constraint(api.patch(path, json={"url": "gopher://x"}), "url", "isUrl", None)


# --- deliveries -------------------------------------------------------------------------------


def test_a_pushed_account_is_delivered_signed(api, receiver):
    created = create(api, receiver.url, ["account.created"])
    pushed = push_ok(api, [account(name="Acme <script>")])[0]
    [got] = receiver.wait_for_count(1, timeout=10)
    event = verify_webhook(created["secret"], got.headers, got.body)
    assert event["type"] == "account.created" and event["id"].startswith("evt_")
    assert event["data"]["rtp_aid"] == pushed["rtp_aid"] and event["data"]["name"] == "Acme <script>"
    assert got.header("X-Abmhub-Event-Id") == event["id"]
    assert got.header("X-Abmhub-Event-Type") == "account.created"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", got.header("X-Abmhub-Signature") or "")
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_" + "x" * 43, got.headers, got.body)
    deliveries = wait_for_delivery_status(api, created["webhookId"], "succeeded")
    assert set(deliveries[0]) == DELIVERY_KEYS
    assert (deliveries[0]["eventId"], deliveries[0]["attempts"], deliveries[0]["lastStatusCode"]) == (
        event["id"],
        1,
        200,
    )


def wait_for_delivery_status(api, webhook_id: str, status: str, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = ok(api.get(f"/webhooks/{webhook_id}/deliveries"))["data"]
        if found and all(d["status"] == status for d in found):
            return found
        assert time.monotonic() < deadline, f"deliveries not {status}: {found}"
        time.sleep(0.1)


def test_a_stage_change_of_a_scoring_run_arrives_within_2_s(api, cli, workspace, receiver):
    create(api, receiver.url, ["account.journey_stage_changed"])
    pushed = push_ok(api, [account()])[0]
    run_score(cli, workspace.name)  # returns after the run committed
    committed = time.monotonic()
    [got] = receiver.wait_for_count(1, timeout=10)
    assert got.at - committed <= 2.0, f"arrived {got.at - committed:.2f} s after the run"
    data = got.json()["data"]
    assert (data["rtp_aid"], data["from"], data["to"]) == (pushed["rtp_aid"], "", "Unaware")
    assert data["rtp_account_score"] == 0 and data["domain"] == pushed["domain"]


def test_slack_format_posts_one_readable_line(api, receiver):
    create(api, receiver.url, ["account.created"], format="slack")
    pushed = push_ok(api, [account(name="Globex <Corp>")])[0]
    [got] = receiver.wait_for_count(1, timeout=10)
    assert got.json() == {"text": f"New account: Globex &lt;Corp&gt; ({pushed['domain']})"}


def test_ping_then_redeliver(api, receiver):
    created = create(api, receiver.url, ["account.created"])
    queued = ok(api.post(f"/webhooks/{created['webhookId']}/test"))
    assert set(queued) == DELIVERY_KEYS and queued["eventType"] == "ping" and queued["status"] == "pending"
    [got] = receiver.wait_for_count(1, timeout=10)
    assert got.json()["type"] == "ping" and got.json()["id"] == queued["eventId"]
    wait_for_delivery_status(api, created["webhookId"], "succeeded")
    again = ok(api.post(f"/webhooks/{created['webhookId']}/deliveries/{queued['deliveryId']}/redeliver"))
    assert again["status"] == "pending" and again["deliveryId"] == queued["deliveryId"]
    received = receiver.wait_for_count(2, timeout=10)
    assert received[1].json()["id"] == queued["eventId"], "the same event, with its id, for de-duplication"
    error(
        api.post(f"/webhooks/{created['webhookId']}/deliveries/{'0' * 24}/redeliver"),
        404,
        f"Delivery '{'0' * 24}' not found",
    )


def test_a_failing_receiver_shows_in_the_deliveries(api, receiver):
    receiver.default = 500
    created = create(api, receiver.url, ["ping"])
    ok(api.post(f"/webhooks/{created['webhookId']}/test"))
    receiver.wait_for_count(1, timeout=10)
    deadline = time.monotonic() + 5
    while True:
        [shown] = ok(api.get(f"/webhooks/{created['webhookId']}/deliveries"))["data"]
        if shown["attempts"] == 1:
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.1)
    assert (shown["status"], shown["lastStatusCode"]) == ("pending", 500)
    assert shown["nextAttemptAt"] is not None, "retried later (the server's retry base is 10 s)"


# --- SSRF -------------------------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path) -> Iterator[TestClient]:
    """An application with the default settings: private targets refused."""
    db = Database(f"sqlite:///{tmp_path / 'guarded.db'}")
    upgrade(db)
    tenancy.create_workspace(db, name="w")
    key = tenancy.create_key(db, workspace="w", user_email="u@example.com")
    app = create_app(Settings(database_url=db.url), db)
    with TestClient(app, base_url="http://testserver/api/v1", headers={"X-Api-Key": key}) as client:
        yield client
    db.dispose()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://[::1]/", "http://localhost:8000/hook", "http://169.254.169.254/latest"]
)
def test_private_targets_are_refused(guarded, url):
    response = guarded.post("/webhooks", json={"url": url, "events": ["ping"]})
    error(response, 400, f"Webhook URL '{url}' points to a private address")


def test_a_hostname_resolving_to_a_private_address_is_refused(guarded, monkeypatch):
    monkeypatch.setattr(targets, "resolver", lambda host, port: [targets.ipaddress.ip_address("10.0.0.1")])
    url = "https://hooks.internal.example/abm"
    error(
        guarded.post("/webhooks", json={"url": url, "events": ["ping"]}),
        400,
        f"Webhook URL '{url}' points to a private address",
    )
    created = guarded.post("/webhooks", json={"url": "https://hooks.example.com/x", "events": ["ping"]})
    assert created.status_code == 400, "the same resolver answers 10.0.0.1 for any host"
    monkeypatch.setattr(targets, "resolver", lambda host, port: [targets.ipaddress.ip_address("93.184.215.14")])
    assert guarded.post("/webhooks", json={"url": "https://hooks.example.com/x", "events": ["ping"]}).status_code == 200
