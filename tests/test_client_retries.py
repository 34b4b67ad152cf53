"""Retries, backoff and the vendor's observed variants, against a small scripted HTTP server.

The server (http.server in a thread) answers from a script: 429 with Retry-After, then
503, then success; or 503 for ever; or pages shaped like the live vendor's. No database:
these tests are about the client alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

from abmhub.client import (
    AsyncRecotapClient,
    ConnectionFailed,
    RecotapClient,
    ReevoClient,
    RetriesExhausted,
    RetryPolicy,
    ServerError,
    Unauthorized,
)

KEY = "k3y-" + "s3cr3t" * 10  # looks nothing like any other text in the logs
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class ScriptedServer:
    """Answers each request with `script(seen) -> Answer`; records every request."""

    def __init__(self, script: Callable[[Seen], Answer]) -> None:
        self.script = script
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command, self.path, dict(self.headers), json.loads(raw) if raw else None, time.monotonic()
                )
                outer.seen.append(seen)
                answer = outer.script(seen)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = json.dumps(answer.body).encode() if answer.body is not None else b""
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def envelope(data: Any, status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "timestamp": "2026-04-30T10:00:00.000Z", "path": "/api/v1/x", "data": data}


def push_results(seen: Seen) -> Answer:
    items = seen.body["accounts"]
    results = [{"rtp_aid": f"{i:024x}", "domain": item["domain"], "status": "created"} for i, item in enumerate(items)]
    return Answer(
        200,
        envelope(
            {"results": results, "summary": {"total": len(items), "created": len(items), "updated": 0, "failed": 0}}
        ),
    )


def in_sequence(*answers: Answer, then: Callable[[Seen], Answer] | None = None) -> Callable[[Seen], Answer]:
    queue = list(answers)

    def script(seen: Seen) -> Answer:
        if queue:
            return queue.pop(0)
        assert then is not None, f"unexpected request {seen.method} {seen.path}"
        return then(seen)

    return script


TOO_MANY = Answer(
    429,
    {
        "statusCode": 429,
        "message": "Too Many Requests",
        "customMessage": "Rate limit exceeded; retry after 1 s",
        "data": None,
    },
    {"Retry-After": "1"},
)
UNAVAILABLE = Answer(503, {"statusCode": 503, "message": "Service Unavailable", "data": None})


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger (httpx and httpcore included), at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "abmhub.client"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def accounts(n: int) -> list[dict[str, str]]:
    return [{"domain": f"retry-{i}.com", "name": f"Retry {i}"} for i in range(n)]


def test_429_with_retry_after_then_503_then_success(logs):
    with ScriptedServer(in_sequence(TOO_MANY, UNAVAILABLE, then=push_results)) as server:
        started = time.monotonic()
        with RecotapClient(
            server.base_url, KEY, retry=RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.1)
        ) as client:
            report = client.push_accounts(accounts(3))
        elapsed = time.monotonic() - started
    assert report.summary.created == 3 and report.ok
    assert [s.method for s in server.seen] == ["POST"] * 3, "the request was tried three times"
    assert all(s.body == server.seen[0].body for s in server.seen), "every try sends the same body"
    assert server.seen[1].at - server.seen[0].at >= 1.0, "Retry-After: 1 is honoured"
    assert elapsed < 3.0
    assert all(s.headers.get("X-Api-Key") == KEY for s in server.seen)
    retries = [r.getMessage() for r in logs.records if r.name == "abmhub.client"]
    assert len(retries) == 2 and "HTTP 429" in retries[0] and "HTTP 503" in retries[1]
    assert KEY not in logs.text


def test_gives_up_after_the_cap_with_a_clear_error(logs):
    with ScriptedServer(lambda seen: UNAVAILABLE) as server:
        client = RecotapClient(server.base_url, KEY, retry=RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.1))
        with client, pytest.raises(RetriesExhausted) as gave_up:
            client.request("GET", "accounts")
    error = gave_up.value
    assert len(server.seen) == 3 and error.attempts == 3 and error.status == 503
    assert isinstance(error.last, ServerError)
    assert str(error).startswith("GET /api/v1/accounts: gave up after 3 attempts")
    shown = "".join(traceback.format_exception(error)) + repr(error) + repr(client) + logs.text
    assert KEY not in shown


def test_a_retry_after_longer_than_max_wait_is_not_waited_for():
    slow = Answer(429, {"statusCode": 429, "message": "Too Many Requests", "data": None}, {"Retry-After": "600"})
    with (
        ScriptedServer(lambda seen: slow) as server,
        RecotapClient(server.base_url, KEY, retry=RetryPolicy(max_wait=5)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(RetriesExhausted, match="asked to retry after 600 s"):
            client.request("GET", "accounts")
    assert time.monotonic() - started < 1.0 and len(server.seen) == 1


def test_connection_failures_and_timeouts_are_retried():
    with ScriptedServer(lambda seen: Answer(200, envelope([]))) as server:
        port = server.httpd.server_address[1]
    # Nothing listens on the port any more: connection refused, every time.
    with (
        RecotapClient(f"http://127.0.0.1:{port}", KEY, retry=FAST) as client,
        pytest.raises(RetriesExhausted) as refused,
    ):
        client.journey_stages()
    assert isinstance(refused.value.last, ConnectionFailed) and refused.value.attempts == 3
    assert KEY not in "".join(traceback.format_exception(refused.value))

    slow_then_fast = in_sequence(Answer(200, envelope([]), delay=1.0), then=lambda seen: Answer(200, ["Unaware"]))
    with (
        ScriptedServer(slow_then_fast) as server,
        RecotapClient(server.base_url, KEY, timeout=0.3, retry=FAST) as client,
    ):
        assert client.journey_stages() == ["Unaware"]
    assert len(server.seen) == 2


def test_a_chunk_whose_retries_run_out_is_recorded_and_the_rest_continue():
    def script(seen: Seen) -> Answer:
        if seen.body["accounts"][0]["domain"] == "retry-100.com":
            return UNAVAILABLE
        return push_results(seen)

    with ScriptedServer(script) as server, RecotapClient(server.base_url, KEY, retry=FAST) as client:
        report = client.push_accounts(accounts(250))
    assert len(server.seen) == 2 + 3  # chunks 1 and 3 once, chunk 2 three times
    assert [r.status for r in report.results] == ["created"] * 100 + ["failed"] * 100 + ["created"] * 50
    (failure,) = report.failed_chunks
    assert (failure.start, failure.size) == (100, 100) and isinstance(failure.error, RetriesExhausted)
    assert report.results[150].domain == "retry-150.com" and "gave up after 3 attempts" in report.results[150].error
    assert report.summary.failed == 100 and report.summary.created == 150


def test_vendor_variants_a_cursor_on_the_last_page_and_bare_arrays():
    pages = {
        None: {"data": [{"rtp_aid": "a" * 24, "name": "A", "domain": "a.com"}], "nextCursor": "c1", "hasNextPage": True, "syncTimestamp": "2026-04-30T10:00:00.000Z"},
        "c1": {"data": [{"rtp_aid": "b" * 24, "name": "B", "domain": "b.com"}], "nextCursor": "c2", "hasNextPage": False, "syncTimestamp": "2026-04-30T10:00:00.000Z"},
    }  # fmt: skip

    def script(seen: Seen) -> Answer:
        if seen.path.startswith("/api/v1/accounts"):
            cursor = seen.path.partition("cursor=")[2] or None
            return Answer(200, envelope(pages[cursor]))
        if seen.path == "/api/v1/deal-stages":
            return Answer(
                200, [{"pipelineId": "p", "pipelineLabel": "P", "stages": [{"stageId": "s", "stageLabel": "S"}]}]
            )
        return Answer(200, ["Unaware", "Aware"])

    with ScriptedServer(script) as server, RecotapClient(server.base_url + "/api/v1/", KEY) as client:
        names = [a.name for a in client.iter_accounts()]
        assert names == ["A", "B"]
        assert [s.path.split("?")[0] for s in server.seen] == ["/api/v1/accounts"] * 2, "stopped on hasNextPage: false"
        account = next(client.iter_accounts())
        assert account.tags == [] and account.rtp_account_score == 0, "keys the vendor does not send get defaults"
        assert client.deal_stages()[0].stages[0].stageId == "s"
        assert client.journey_stages() == ["Unaware", "Aware"]


def test_async_client_honours_retry_after_too(logs):
    async def scenario(base_url: str) -> float:
        async with AsyncRecotapClient(base_url, KEY, retry=FAST) as client:
            started = time.monotonic()
            report = await client.push_accounts(accounts(2))
            assert report.summary.created == 2
            return time.monotonic() - started

    with ScriptedServer(in_sequence(TOO_MANY, then=push_results)) as server:
        elapsed = asyncio.run(scenario(server.base_url))
    assert len(server.seen) == 2 and elapsed >= 1.0
    assert KEY not in logs.text


def test_reevo_client_sends_a_bearer_key_and_never_shows_it(logs):
    answer = Answer(401, {"detail": "Invalid API key"})
    with (
        ScriptedServer(lambda seen: answer) as server,
        ReevoClient(server.base_url, KEY) as reevo,
        pytest.raises(Unauthorized) as refused,
    ):
        reevo.get_activity("3c90c3cc-0d44-4b50-8888-8dd25736052a")
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert server.seen[0].path == "/api/v2/activity/3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert "Invalid API key" in str(refused.value) and refused.value.status == 401
    assert KEY not in "".join(traceback.format_exception(refused.value)) + repr(reevo) + logs.text


def test_read_ahead_keeps_results_in_order_and_raises_the_iterables_errors():
    def rows(fail_at: int | None = None) -> Iterator[dict[str, str]]:
        for i, row in enumerate(accounts(450)):
            if i == fail_at:
                raise ValueError("the source broke")
            yield row

    with ScriptedServer(push_results) as server, RecotapClient(server.base_url, KEY) as client:
        report = client.push_accounts(rows(), read_ahead=2)
        assert [r.domain for r in report.results] == [f"retry-{i}.com" for i in range(450)]
        assert len(server.seen) == 5
        with pytest.raises(ValueError, match="the source broke"):
            client.push_accounts(rows(fail_at=220), read_ahead=2)
        assert len(server.seen) == 5 + 2, "the chunks before the error were sent"
        outcomes = client.iter_push_accounts(rows(), read_ahead=1)
        next(outcomes)
        outcomes.close()  # stopping early releases the read-ahead thread
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "abmhub-read-ahead"]


def test_a_real_server_with_a_rate_limit_is_ridden_out(new_database_url, tmp_path, logs):
    """`abmhub serve --rate-limit 2`: pushes beyond the burst get 429 + Retry-After; the client waits."""
    from abmhub.db.engine import Database
    from abmhub.db.migrate import upgrade
    from abmhub.tenancy import service as tenancy
    from tests.conftest import start_server, stop_server

    url = new_database_url("sqlite")
    database = Database(url)
    upgrade(database)
    tenancy.create_workspace(database, name="limited")
    key = tenancy.create_key(database, workspace="limited", user_email="dev@example.com")
    database.dispose()
    server = start_server("sqlite", url, tmp_path / "server.log", "--rate-limit", "2", "--score-interval", "0")
    try:
        with RecotapClient(server.base_url, key) as client:
            started = time.monotonic()
            report = client.push_accounts(accounts(6), chunk_size=1)
            elapsed = time.monotonic() - started
    finally:
        stop_server(server)
    assert report.summary.created == 6 and not report.failed_chunks
    waits = [r.getMessage() for r in logs.records if r.name == "abmhub.client"]
    assert waits and all("HTTP 429" in w for w in waits)
    assert elapsed >= 1.0, "the client waited as Retry-After said"
    assert key not in logs.text
