"""Limits and hygiene: request size, item counts and JSON depth on both surfaces; per-key rate
limiting (API.md §5.1, §6 items 30 and 34); keys checked in constant time; no key or body in
the server log; security headers on every response; a graceful shutdown that finishes the
requests in flight.
"""

from __future__ import annotations

import hmac
import json
import signal
import socket
import time
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy
from abmhub.web.ratelimit import RateLimited, RateLimiter
from tests.reliability.support import new_tenant, prepared_database, serve, stop, wait_for_exit

MiB = 1024 * 1024


def surface_v(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base_url}/api/v2", headers={"Authorization": f"Bearer {key}"}, timeout=60)


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth - 1):
        value = [value]
    return value


# --- size, items, depth ------------------------------------------------------------------------


def test_a_body_over_5_mib_is_refused_with_413_on_both_surfaces(server, workspace, api):
    big = json.dumps({"accounts": [{"domain": "a.com", "name": "x" * (5 * MiB)}]}).encode()
    r = api.post("/accounts", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text[:300]
    assert (r.json()["message"], r.json()["customMessage"]) == ("Payload Too Large", "Request body exceeds 5 MiB")

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(6):
            yield b" " * MiB

    r = api.post("/accounts", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, f"a chunked body over the limit answered {r.status_code}"
    with surface_v(server, workspace.key) as v:
        r = v.post("/activity", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json() == {"detail": "Request body exceeds 5 MiB"}, r.text[:300]


@pytest.mark.parametrize(
    "method, path, field, limit, item",
    [
        ("post", "/accounts", "accounts", 100, {"domain": "a.com", "name": "A"}),
        ("post", "/deals", "deals", 100, {"externalDealId": "d", "name": "D"}),
        ("post", "/sales-activities", "activities", 50, {"externalActivityId": "x"}),
        ("patch", "/accounts/external-ids", "mappings", 100, {"domain": "a.com", "externalId": "x"}),
        ("post", "/deal-stages", "pipelines", 20, {"pipelineId": "p"}),
        ("post", "/signals", "signals", 1000, {"source": "g2"}),
    ],
)
def test_one_item_over_each_bulk_limit_rejects_the_whole_request(api, method, path, field, limit, item):
    r = getattr(api, method)(path, json={field: [item] * (limit + 1)})
    assert r.status_code == 400, f"{limit + 1} {field} answered {r.status_code}"
    assert {
        "property": field,
        "path": field,
        "constraints": {"arrayMaxSize": f"{field} must contain no more than {limit} elements"},
    } in r.json()["data"]
    assert api.get("/accounts").json()["data"]["data"] == [], "nothing was written"


def test_list_and_filter_limits(server, workspace, api):
    r = api.get("/accounts", params={"domains": json.dumps([f"d{i}.com" for i in range(101)])})
    assert r.status_code == 400 and r.json()["data"][0]["constraints"] == {
        "arrayMaxSize": "domains must contain no more than 100 elements"
    }
    assert api.get("/accounts", params={"limit": 1001}).json()["data"][0]["constraints"] == {
        "max": "limit must not be greater than 1000"
    }
    with surface_v(server, workspace.key) as v:
        r = v.post("/activity/_query", json={"account_id": str(uuid.uuid4()), "limit": 201})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "limit"], r.text
        r = v.post(
            "/activity",
            json={
                "attributes": {
                    "metadata": {"activity_time": "2026-01-01T00:00:00Z", "subject": "s", "description": "d"},
                    "contact_ids": [str(uuid.uuid4())] * 1001,
                }
            },
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "attributes", "contact_ids"], r.text


def test_json_nested_deeper_than_64_levels_is_refused_on_both_surfaces(server, workspace, api):
    r = api.post("/accounts", json={"accounts": nested(64)})
    assert r.status_code == 400 and r.json()["customMessage"] == "Request body nests deeper than 64 levels", r.text
    r = api.post("/accounts", json={"accounts": nested(62)})
    assert r.status_code == 400 and "customMessage" not in r.json(), "64 levels parse; the shape is then wrong"
    deep = "[" * 100_000 + "]" * 100_000  # a hostile body must not recurse the server to death
    r = api.post("/accounts", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:200]
    with surface_v(server, workspace.key) as v:
        r = v.post("/activity", json={"attributes": nested(64)})
        assert r.status_code == 422 and "nests deeper than 64 levels" in r.json()["detail"][0]["msg"], r.text
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


# --- rate limiting -------------------------------------------------------------------------------


def test_the_token_bucket_refills_at_its_rate_and_says_when_to_retry():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.retry_after == 1
    limiter.take("other")  # buckets are per key
    now[0] += 0.5  # half a second refills one token at 2/s
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")
    slow = RateLimiter(0.1, clock=lambda: now[0])  # one request per 10 s, burst 1
    slow.take("k")
    with pytest.raises(RateLimited) as refused:
        slow.take("k")
    assert refused.value.retry_after == 10
    slower = RateLimiter(0.001, clock=lambda: now[0])
    slower.take("k")
    with pytest.raises(RateLimited) as refused:
        slower.take("k")
    assert refused.value.retry_after == 60, "Retry-After is capped at 60 s (§6 item 30)"


@pytest.fixture
def limited_server(backend, new_database_url, tmp_path):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenants = (new_tenant(database, "rl"), new_tenant(database, "rl"))
    server = serve(backend, url, tmp_path / "server.log", "--rate-limit", "5")
    yield server, tenants
    stop(server)
    database.dispose()


def test_rate_limit_per_key_answers_429_with_retry_after_on_both_surfaces(limited_server):
    server, (first, second) = limited_server
    base = f"{server.base_url}/api/v1"
    with httpx.Client(base_url=base, headers={"X-Api-Key": first.key}, timeout=30) as client:
        answers = [client.get("/journey-stages") for _ in range(12)]
        codes = [r.status_code for r in answers]
        assert codes[:5] == [200] * 5, f"the burst of 5 passes: {codes}"
        assert 429 in codes, f"12 requests at once exceed 5 per second: {codes}"
        refused = next(r for r in answers if r.status_code == 429)
        retry_after = refused.headers.get("Retry-After", "")
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, f"Retry-After: {retry_after!r}"
        body = refused.json()
        assert body["statusCode"] == 429 and body["message"] == "Too Many Requests" and body["data"] is None
        assert body["customMessage"] == f"Rate limit exceeded; retry after {retry_after} s", body

        # The order of checks (§6 item 30): 404 and 401 before 429; health is never limited.
        assert client.get("/no-such-route").status_code == 404
        assert httpx.get(f"{base}/accounts", headers={"X-Api-Key": "wrong" * 13}).status_code == 401
        assert all(httpx.get(f"{server.base_url}/healthz").status_code == 200 for _ in range(10))
        assert all(httpx.get(f"{server.base_url}/api/v2/health").status_code == 200 for _ in range(10))

        # Another key has its own bucket.
        assert httpx.get(f"{base}/journey-stages", headers={"X-Api-Key": second.key}).status_code == 200

        with surface_v(server, first.key) as v:
            answers = [v.get(f"/activity/{uuid.uuid4()}") for _ in range(12)]  # the bucket refilled meanwhile
            assert {r.status_code for r in answers} == {404, 429}, [r.status_code for r in answers]
            r = next(r for r in answers if r.status_code == 429)
            assert r.json() == {"detail": "Too Many Requests"} and r.headers["Retry-After"].isdigit(), r.text

        time.sleep(int(retry_after))
        assert client.get("/journey-stages").status_code == 200, "after Retry-After the key may call again"


def test_rate_limiting_is_off_by_default(server, api):
    codes = {api.get("/journey-stages").status_code for _ in range(60)}
    assert codes == {200}, f"no --rate-limit: no 429 ({codes})"


# --- keys ------------------------------------------------------------------------------------------


def test_keys_are_stored_as_hashes_and_checked_in_constant_time(tmp_path, monkeypatch):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'keys.db'}")
    database = prepared_database(settings.database_url)
    tenancy.create_workspace(database, name="w")
    key = tenancy.create_key(database, workspace="w", user_email="u@example.com")
    with database.read() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT key_hash FROM api_keys")]
    assert key not in stored and all(len(h) == 64 for h in stored), "only a SHA-256 hex digest is stored"
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("abmhub.tenancy.service.hmac.compare_digest", spy)
    assert tenancy.authenticate(database, key) is not None
    assert compared, "a found key is confirmed with hmac.compare_digest, not =="
    database.dispose()


# --- logs ------------------------------------------------------------------------------------------


def test_the_log_holds_neither_keys_nor_request_bodies(backend, new_database_url, tmp_path):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenant = new_tenant(database, "log")
    server = serve(backend, url, tmp_path / "server.log", "--log-level", "debug")
    marker = f"body-marker-{uuid.uuid4().hex}"
    try:
        with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": tenant.key}) as api:
            api.post("/accounts", json={"accounts": [{"domain": f"{marker}.com", "name": marker}]})
            api.post("/accounts", json={"accounts": [{"domain": "x.com", "name": marker, "bogus": marker}]})
            api.post("/accounts", content=f'{{"accounts": "{marker}', headers={"Content-Type": "application/json"})
            api.post("/signals", json={"signals": [{"source": marker}]})
        with surface_v(server, tenant.key) as v:
            v.post("/activity", json={"attributes": {"metadata": {"subject": marker}}})
        httpx.get(f"{server.base_url}/api/v1/accounts", headers={"X-Api-Key": f"wrong-{marker}"})
        httpx.get(f"{server.base_url}/api/v2/activity/x", headers={"Authorization": f"Bearer wrong-{marker}"})
    finally:
        stop(server)
        database.dispose()
    log = server.log()
    assert "POST /api/v1/accounts" in log, "the log does show the requests"
    assert tenant.key not in log, "a key was written to the server log"
    assert marker not in log, "request content (a body, or a wrong key) was written to the server log"


# --- security headers --------------------------------------------------------------------------------


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def assert_secure(response: httpx.Response, *, cacheable: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name} is {response.headers.get(name)!r}"
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), where
    if not cacheable:
        assert response.headers.get("cache-control") == "no-store", f"{where}: may be cached"


def test_every_kind_of_response_carries_the_security_headers(server, workspace, api):
    base = server.base_url
    assert_secure(api.get("/accounts"))
    assert_secure(api.post("/accounts", json={"accounts": []}))
    assert_secure(api.get("/nope"))
    assert_secure(httpx.get(f"{base}/api/v1/accounts"))
    assert_secure(api.post("/accounts", content=b"x" * (6 * MiB), headers={"Content-Type": "application/json"}))
    with surface_v(server, workspace.key) as v:
        assert_secure(v.get(f"/activity/{uuid.uuid4()}"))
        assert_secure(v.post("/activity", json={}))
    assert_secure(httpx.get(f"{base}/api/v2/health"))
    for path in ("/healthz", "/metrics", "/openapi.json", "/somewhere-else"):
        assert_secure(httpx.get(f"{base}{path}"))


def test_the_docs_page_may_load_only_its_own_local_assets(server):
    docs = httpx.get(f"{server.base_url}/docs")
    assert docs.status_code == 200
    assert_secure(docs)
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy, f"the docs page needs nothing from another origin: {policy}"
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in docs.text
        r = httpx.get(f"{server.base_url}{asset}")
        assert r.status_code == 200, f"{asset} is served locally"
        assert_secure(r, cacheable=True)


def test_a_server_fault_carries_the_security_headers_too(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'fault.db'}"))
    upgrade(app.state.database)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/boom")
    assert r.status_code == 500
    assert_secure(r)


# --- graceful shutdown -------------------------------------------------------------------------------


def test_sigterm_finishes_the_request_in_flight_then_exits_0(backend, new_database_url, tmp_path):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenant = new_tenant(database, "term")
    server = serve(backend, url, tmp_path / "server.log")
    port = int(server.base_url.rsplit(":", 1)[1])
    body = json.dumps({"accounts": [{"domain": f"term-{i}.example.com", "name": "T"} for i in range(100)]}).encode()
    head = (
        f"POST /api/v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {tenant.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            # A slow client: half the body now, the rest after the server was told to stop.
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.process.poll() is None, "the server waits for the request in flight"
            sock.sendall(body[len(body) // 2 :])
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line == b"HTTP/1.1 200 OK", f"the request in flight got {answer[:300]!r}"
        assert answer.count(b'"status":"created"') == 100, "all 100 accounts were pushed"
        code = wait_for_exit(server.process, 35)
        assert code == 0, f"after SIGTERM the server exited with {code}:\n{server.log()[-2000:]}"
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    with database.read() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM accounts WHERE domain LIKE :pattern"), {"pattern": "term-%"}
        ).scalar_one()
    database.dispose()
    assert stored == 100, f"{stored} of the 100 accounts of the last request were stored"
