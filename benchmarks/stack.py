"""What the web framework costs: abmhub's FastAPI routes vs bare Starlette routes doing the same work.

Both applications are called in-process through ASGI (no network, no client), on the same
database, request after request, in interleaved rounds:

- a keyset page of 100 and of 1,000 accounts (by cursor), and a push of 100 new accounts;
- the FastAPI side is abmhub's application as `abmhub serve` runs it (middleware, dependencies,
  error handlers); the Starlette side is one route per request kind that authenticates the key,
  parses the query or body, validates with the same Pydantic models, calls the same service
  function and writes the same envelope, with the one threadpool hand-off it needs.

The ratio FastAPI ÷ Starlette is what a switch of framework could save at most; the absolute
times are what the server spends on a request before the network. docs/decisions.md §7.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    create_workspace_key,
    log,
)

DEFAULT_ACCOUNTS = 20_000
QUICK_ACCOUNTS = 3_000
ROUNDS = 5
REQUESTS = {100: 200, 1000: 30, "push": 50}  # requests per round


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument("--accounts", type=int, default=None, metavar="N", help="accounts in the workspace")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts, 1 round")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")


def _push_body(prefix: str, batch: int) -> bytes:
    items = [
        {"domain": f"{prefix}{batch}-{i}.example.com", "name": f"{prefix} {batch} {i}", "externalId": f"{prefix}-{batch}-{i}", "tags": ["a", "b"]}
        for i in range(100)
    ]  # fmt: skip
    return orjson.dumps({"accounts": items})


def _starlette_app(db: Any) -> Any:
    """Bare Starlette: the same auth, validation, service calls and envelopes, nothing else."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    from abmhub.accounts import service
    from abmhub.accounts.router import account_page_body
    from abmhub.accounts.schemas import PushAccountsRequest
    from abmhub.tenancy.service import authenticate
    from abmhub.web.paging import page_request
    from abmhub.web.responses import envelope

    def caller(request: Any) -> Any:
        with db.read() as conn:
            found = authenticate(conn, request.headers["x-api-key"])
        if found is None:
            raise BenchmarkError("bare Starlette app: key refused")
        return found

    def list_page(request: Any) -> Any:
        who = caller(request)
        q = request.query_params
        page = page_request(q.get("limit"), q.get("cursor"), q.get("lastSync"))
        found, extras = service.list_accounts(db, workspace_id=who.workspace_id, page=page)
        return envelope(request, account_page_body(found, extras))

    def push(request: Any, raw: bytes) -> Any:
        who = caller(request)
        body = PushAccountsRequest.model_validate(orjson.loads(raw))
        outcome = service.push_accounts(db, workspace_id=who.workspace_id, items=body.accounts)
        return envelope(request, {"results": outcome.results, "summary": outcome.summary})

    async def accounts(request: Any) -> Any:
        if request.method == "GET":
            return await run_in_threadpool(list_page, request)
        return await run_in_threadpool(push, request, await request.body())

    return Starlette(routes=[Route("/api/v1/accounts", accounts, methods=["GET", "POST"])])


async def _call(app: Any, key: bytes, method: str, query: bytes = b"", body: bytes = b"") -> dict[str, Any]:
    """One request straight into the ASGI app; the decoded response body."""
    headers = [(b"host", b"bench"), (b"x-api-key", key)]
    if method == "POST":
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": "/api/v1/accounts", "raw_path": b"/api/v1/accounts", "query_string": query, "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise BenchmarkError(
            f"{method} /api/v1/accounts answered {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}"
        )
    return orjson.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


async def _measure(apps: dict[str, Any], key: bytes, rounds: int, cursor: str) -> dict[str, dict[str, list[float]]]:
    batches = itertools.count()
    times: dict[str, dict[str, list[float]]] = {str(kind): {name: [] for name in apps} for kind in REQUESTS}

    def request_for(kind: Any) -> Callable[[Any], Any]:
        if kind == "push":
            return lambda app: _call(app, key, "POST", body=_push_body("stack", next(batches)))
        query = f"limit={kind}&cursor={cursor}".encode()
        return lambda app: _call(app, key, "GET", query=query)

    # The same records from both: the comparison is of like with like.
    for limit in (100, 1000):
        pages = [(await request_for(limit)(app))["data"]["data"] for app in apps.values()]
        if pages[0] != pages[1]:
            raise BenchmarkError(f"the two apps answered different pages of {limit}")
    for kind, count in REQUESTS.items():
        for app in apps.values():  # warm-up
            for _ in range(5):
                await request_for(kind)(app)
        for _ in range(rounds):
            for name, app in apps.items():
                started = time.perf_counter()
                for _ in range(count):
                    await request_for(kind)(app)
                times[str(kind)][name].append((time.perf_counter() - started) / count * 1000)
    return times


def main(args: argparse.Namespace) -> int:
    from abmhub.app import create_app
    from abmhub.config import Settings
    from abmhub.db.engine import Database

    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    rounds = 1 if args.quick else ROUNDS
    report = Report(
        "stack",
        args.backend,
        {"accounts": n, "rounds": rounds, "requests_per_round": {str(k): v for k, v in REQUESTS.items()}},
    )
    started = time.perf_counter()
    with Run(args.backend) as run:
        url = run.databases.new("stack")
        key = create_workspace_key(url, "bench").encode()
        db = Database(url)
        try:
            fastapi_app = create_app(Settings(database_url=url), db)
            apps = {"fastapi": fastapi_app, "starlette": _starlette_app(db)}

            async def go() -> dict[str, dict[str, list[float]]]:
                log(f"stack: {n:,} accounts pushed through abmhub's app")
                for batch in range(n // 100):
                    await _call(fastapi_app, key, "POST", body=_push_body("seed", batch))
                first = await _call(fastapi_app, key, "GET", query=b"limit=100")
                log(f"stack: {rounds} round(s) of pages of 100 and 1,000 and pushes of 100, both apps")
                return await _measure(apps, key, rounds, first["data"]["nextCursor"])

            times = asyncio.run(go())
        finally:
            db.dispose()
        report.details["ms_per_request"] = times
        report.details["databases"] = run.databases.info
    labels = {
        "100": "keyset page of 100 accounts",
        "1000": "keyset page of 1,000 accounts",
        "push": "push of 100 new accounts",
    }
    for kind, label in labels.items():
        fastapi_ms = sorted(times[kind]["fastapi"])[len(times[kind]["fastapi"]) // 2]
        starlette_ms = sorted(times[kind]["starlette"])[len(times[kind]["starlette"]) // 2]
        report.add(
            f"{kind}_fastapi_ms", f"{label}, abmhub's FastAPI app (ASGI, in-process)", fastapi_ms, "ms",
            baseline=starlette_ms, baseline_label="bare Starlette, same work",
        )  # fmt: skip
    report.details["total_runtime_s"] = time.perf_counter() - started
    path = report.write(args.results_dir)
    print(report.markdown())
    print(f"results: {path}")
    log(f"done in {report.details['total_runtime_s']:.0f} s")
    return 0
