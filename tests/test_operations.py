"""Operating promises: health, metrics, offline docs, a real OpenAPI document, no stack
traces to clients, no keys in logs."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.migrate import upgrade


def test_health_metrics_and_docs_need_no_key(server):
    health = httpx.get(f"{server.base_url}/healthz")
    assert health.status_code == 200 and health.json()["database"] == "reachable"
    metrics = httpx.get(f"{server.base_url}/metrics")
    assert metrics.status_code == 200 and "abmhub_http_requests_total" in metrics.text
    docs = httpx.get(f"{server.base_url}/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    asset = httpx.get(f"{server.base_url}/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200, "the docs page works offline: its assets are served locally"


def test_openapi_describes_the_real_request_and_response_shapes(server):
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    push = document["paths"]["/api/v1/accounts"]["post"]
    assert push["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PushAccountsRequest"
    }
    body = document["components"]["schemas"]["PushAccountsRequest"]
    assert body["required"] == ["accounts"]
    assert body["properties"]["accounts"]["maxItems"] == 100
    item = document["components"]["schemas"]["AccountItem"]
    assert set(item["required"]) == {"domain", "name"}
    assert item["properties"]["domain"]["type"] == "string"
    record = document["components"]["schemas"]["AccountRecord"]
    assert {"rtp_aid", "rtp_account_score", "rtp_journey_stage", "customFields"} <= set(record["properties"])
    assert document["components"]["securitySchemes"]["ApiKey"]["name"] == "X-Api-Key"
    listed = document["paths"]["/api/v1/accounts"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in listed] == [
        (name, "query")
        for name in ("domains", "journeyStage", "minScore", "segmentId", "tag", "limit", "cursor", "lastSync")
    ], "GET /accounts reads its parameters itself; the document still lists all of them"
    assert next(p for p in listed if p["name"] == "limit")["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
    }


def test_keys_never_reach_the_server_log(server, workspace, api):
    api.get("/accounts")
    httpx.get(f"{server.base_url}/api/v1/accounts", headers={"X-Api-Key": "not-a-real-key-" * 4})
    log = server.log()
    assert workspace.key not in log, "a valid key was written to the server log"
    assert "not-a-real-key-" not in log, "an invalid key was written to the server log"


def test_a_server_fault_answers_the_envelope_without_a_stack_trace(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fault.db'}")
    app = create_app(settings)
    upgrade(app.state.database)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/abmhub/very/private.py line 42")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["message"] == "Internal server error" and body["data"] is None and body["statusCode"] == 500
    assert "secret internals" not in r.text and "Traceback" not in r.text
