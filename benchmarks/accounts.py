"""Account API benchmark: push and pull over HTTP against in-process ceilings.

    python -m benchmarks accounts [--backend sqlite|postgresql] [--accounts N] [--quick]

Phases (each HTTP phase is warmed up first; warm-up traffic goes to a separate `warmup`
workspace, so the measured workspace holds exactly N accounts):

A. fresh database, server A: push N accounts, 100 per request, 1 client
   → pull: full keyset scans with limit 100 and limit 1000; page latency at depth
   → server stopped; in-process scan ceiling on the same data (SQLAlchemy + orjson, the JSON
     columns fetched as text and embedded unparsed, as the server fetches them)
B. fresh database, server B: push N accounts with 4 concurrent clients
C. fresh database: in-process insert ceiling — `conn.execute(insert(accounts), rows)`,
   one transaction per 100 rows, rows prepared before timing, no HTTP, no validation
D. fresh database: the same insert inside `Database.write(workspace)` (ticks the
   workspace's sync clock like every abmhub write) — separates the clock's cost

Each database is dropped as soon as its phase is over, so that PostgreSQL's autovacuum does
not work on it while a later phase is timed.

Every HTTP error and every item not `created` fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    CpuMeter,
    PySpy,
    Report,
    Run,
    Server,
    abmhub_cli,
    chunks,
    create_workspace_key,
    free_port,
    http_client,
    latency_summary,
    log,
    percentile,
    python_env,
    serve_supports,
    summarize_collapsed,
    utc_stamp,
)
from benchmarks.wire import WireClient, WireResponse

DEFAULT_ACCOUNTS = 100_000
QUICK_ACCOUNTS = 5_000
BATCH = 100
SERVICE_SAMPLE = 20_000  # accounts per kind in service_vs_insert
CONCURRENT_CLIENTS = 4
PULL_LIMITS = (100, 1000)
DEEP_FRACTION = 0.95
SHALLOW_FRACTION = 0.05
LATENCY_SAMPLES = 30
PASSES = 3  # whole scans of each kind, the median reported
LATENCY_WARMUP = 5
FLOOR_REQUESTS = 1000
PUSH_PATH = "/api/v1/accounts"
LIST_PATH = "/api/v1/accounts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts", type=int, default=None, metavar="N", help=f"accounts per phase (default {DEFAULT_ACCOUNTS:,})"
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--clients", type=int, default=CONCURRENT_CLIENTS, help="concurrent push clients (default 4)")
    parser.add_argument(
        "--server-log-level", default="warning", help="abmhub serve --log-level (default warning: no access log)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy during the 1-client push and the limit-100 scan "
        "(adds sampling overhead; the figures are marked as profiled)",
    )
    parser.add_argument(
        "--server-command",
        default=None,
        metavar="CMD",
        help="run the server as CMD serve ... instead of `python -m abmhub serve ...` "
        "(for A/B experiments with a patched server)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases, server logs)")


# --- workload ------------------------------------------------------------------------------


def account_item(prefix: str, i: int) -> dict[str, Any]:
    return {
        "domain": f"{prefix}-{i}.com",
        "name": f"{prefix.capitalize()} {i}",
        "externalId": f"crm-{prefix}-{i}",
        "tags": ["t1"],
    }


@dataclass(frozen=True, slots=True)
class PushBody:
    content: bytes
    count: int


def push_bodies(prefix: str, n: int, batch: int = BATCH) -> list[PushBody]:
    """Request bodies, encoded before any timing so that the client spends little CPU."""
    bodies = []
    for start in range(0, n, batch):
        items = [account_item(prefix, i) for i in range(start, min(n, start + batch))]
        bodies.append(PushBody(orjson.dumps({"accounts": items}), len(items)))
    return bodies


def check_push(response: WireResponse, expected: int) -> None:
    if response.status_code != 200:
        raise BenchmarkError(f"POST {PUSH_PATH} → HTTP {response.status_code}: {response.text[:500]}")
    data = orjson.loads(response.content)["data"]
    results = data["results"]
    if len(results) != expected or data["summary"].get("created") != expected:
        failed = next((r for r in results if r.get("status") != "created"), None)
        raise BenchmarkError(f"push: {data['summary']} for {expected} items; first not created: {failed}")
    for result in results:
        if result["status"] != "created":
            raise BenchmarkError(f"push: item not created: {result}")


def check_list(response: WireResponse) -> dict[str, Any]:
    if response.status_code != 200:
        raise BenchmarkError(f"GET {LIST_PATH} → HTTP {response.status_code}: {response.text[:500]}")
    return orjson.loads(response.content)["data"]


def list_url(limit: int, cursor: str | None) -> str:
    # Cursors are base64url: no quoting needed, and no per-request params encoding in the client.
    return f"{LIST_PATH}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")


# --- HTTP phases ---------------------------------------------------------------------------


def push_http(base_url: str, key: str, bodies: Sequence[PushBody], clients: int, meter: CpuMeter | None) -> dict:
    """Push `bodies` with `clients` threads, each its own keep-alive connection (WireClient).

    Threads take the next body from a shared counter, so a slow thread does not leave a
    tail of work behind. The clock starts when all clients are connected and released.
    """
    lock = threading.Lock()
    position = iter(range(len(bodies)))
    latencies: list[list[tuple[float, float]]] = [[] for _ in range(clients)]  # (start, seconds)
    errors: list[BaseException] = []
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1)
    sessions = [http_client(base_url, key) for _ in range(clients)]

    def worker(slot: int) -> None:
        client = sessions[slot]
        mine = latencies[slot]
        try:
            barrier.wait()
            while not stop.is_set():
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                body = bodies[index]
                started = time.perf_counter()
                response = client.post(PUSH_PATH, content=body.content)
                mine.append((started, time.perf_counter() - started))
                check_push(response, body.count)
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            with contextlib.suppress(Exception):
                barrier.abort()

    threads = [
        threading.Thread(target=worker, args=(slot,), daemon=True, name=f"push-{slot}") for slot in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        if meter:
            meter.start()
        with contextlib.suppress(threading.BrokenBarrierError):  # a client failed at once
            barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
        elapsed = time.perf_counter() - started
        cpu = meter.stop() if meter else {}
    finally:
        stop.set()
        if not any(thread.is_alive() for thread in threads):
            for session in sessions:
                session.close()
    if errors:
        first = errors[0]
        raise first if isinstance(first, BenchmarkError) else BenchmarkError(f"push client failed: {first!r}")
    accounts = sum(body.count for body in bodies)
    in_order = sorted(sample for per_client in latencies for sample in per_client)
    every = [seconds for _, seconds in in_order]
    return {
        "accounts": accounts,
        "requests": len(bodies),
        "clients": clients,
        "elapsed_s": elapsed,
        "accounts_per_s": accounts / elapsed,
        "requests_per_s": len(bodies) / elapsed,
        "latency": latency_summary(every),
        # Mean latency per tenth of the requests, in the order they were sent: a rising
        # series means a request's cost grows with the number of stored accounts.
        "latency_by_decile_ms": deciles(every),
        "cpu": cpu,
    }


def wait_for_search_index(url: str, timeout: float = 300.0) -> float:
    """Seconds until the server's background search indexing (SQLite, accounts/search.py) has
    caught up with the pushes: the scans are timed after it, not while it shares the cores."""
    from abmhub.accounts import search
    from abmhub.db.engine import Database

    db = Database(url)
    started = time.perf_counter()
    try:
        while db.is_sqlite:
            with db.read() as conn:
                highest = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM accounts").scalar()
                if search.indexed_through(conn) >= highest:
                    break
            if time.perf_counter() - started > timeout:
                raise BenchmarkError(f"the search index did not catch up within {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        db.dispose()
    waited = time.perf_counter() - started
    log(f"A: search index caught up {waited:.1f} s after the push")
    return waited


def deciles(seconds: Sequence[float]) -> list[float]:
    size = max(1, len(seconds) // 10)
    parts = [seconds[i : i + size] for i in range(0, len(seconds), size)][:10]
    return [round(sum(part) / len(part) * 1000, 2) for part in parts if part]


def pull_scan(client: WireClient, limit: int, expected: int | None, meter: CpuMeter | None = None) -> dict:
    """A full keyset pass (first page, then nextCursor until hasNextPage is false)."""
    cursors: list[str] = []  # cursors[k]: the cursor returned with page k (leads to page k+1)
    latencies: list[float] = []
    total = 0
    last_aid = ""
    cursor: str | None = None
    sync_stamps = set()
    if meter:
        meter.start()
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        response = client.get(list_url(limit, cursor))
        latencies.append(time.perf_counter() - t0)
        data = check_list(response)
        rows = data["data"]
        if rows:
            if rows[0]["rtp_aid"] <= last_aid:
                raise BenchmarkError(f"pull: page out of order at {total} ({rows[0]['rtp_aid']} after {last_aid})")
            last_aid = rows[-1]["rtp_aid"]
        total += len(rows)
        sync_stamps.add(data["syncTimestamp"])
        cursor = data["nextCursor"]
        if cursor is not None:
            cursors.append(cursor)
        if not data["hasNextPage"]:
            break
        if cursor is None:
            raise BenchmarkError("pull: hasNextPage true without nextCursor")
    elapsed = time.perf_counter() - started
    cpu = meter.stop() if meter else {}
    if expected is not None and total != expected:
        raise BenchmarkError(f"pull (limit {limit}): {total} accounts, expected {expected}")
    if len(sync_stamps) != 1:
        raise BenchmarkError(f"pull (limit {limit}): {len(sync_stamps)} different syncTimestamps in one pass")
    return {
        "limit": limit,
        "accounts": total,
        "pages": len(latencies),
        "elapsed_s": elapsed,
        "accounts_per_s": total / elapsed,
        "latency": latency_summary(latencies),
        "cpu": cpu,
        "_cursors": cursors,
    }


def page_latency(client: WireClient, cursors: list[str], limit: int) -> dict:
    """Median/p90 of LATENCY_SAMPLES requests each: first page, a page at ~5 % and at ~95 % depth.

    The three kinds are interleaved, so drift on the shared machine hits them alike. The first
    page of a pass ticks the workspace clock (a short write transaction, §1.5); pages reached
    through a cursor are plain reads — hence the ~5 % page as a like-for-like reference.
    """
    pages = len(cursors) + 1
    deep_index = max(0, min(len(cursors) - 2, round(DEEP_FRACTION * pages) - 1))
    shallow_index = max(0, round(SHALLOW_FRACTION * pages) - 1)
    kinds = {"first": None, "shallow": cursors[shallow_index], "deep": cursors[deep_index]}
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_no in range(LATENCY_WARMUP + LATENCY_SAMPLES):
        for kind, cursor in kinds.items():
            t0 = time.perf_counter()
            response = client.get(list_url(limit, cursor))
            took = time.perf_counter() - t0
            rows = check_list(response)["data"]
            if len(rows) != limit:
                raise BenchmarkError(f"page latency: {kind} page has {len(rows)} rows, expected {limit}")
            if round_no >= LATENCY_WARMUP:
                samples[kind].append(took)
    result: dict[str, Any] = {
        "limit": limit,
        "pages_in_scan": pages,
        "shallow_page": shallow_index + 2,  # 1-based page number reached with cursors[shallow_index]
        "deep_page": deep_index + 2,
        "deep_depth_fraction": (deep_index + 1) / pages,
    }
    for kind, values in samples.items():
        result[kind] = {
            "median_ms": percentile(values, 50) * 1000,
            "p90_ms": percentile(values, 90) * 1000,
            "samples_ms": [v * 1000 for v in values],
        }
    return result


def trivial_app_floor(requests: int = FLOOR_REQUESTS) -> dict:
    """The load generator's own ceiling: round trips to a bare ASGI app on uvicorn (floor_app.py).

    Measured with the load generator (WireClient, the top-level figures) and, for the record,
    with httpx (`httpx`): what the benchmarks' client cost before benchmarks/wire.py.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent.parent,
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=base_url, timeout=30) as old_client:
            while True:
                try:
                    old_client.get("/").raise_for_status()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise BenchmarkError("the trivial ASGI app (benchmarks/floor_app.py) did not start") from None
                    time.sleep(0.1)
            with WireClient(base_url, timeout=30) as client:
                result = _round_trips(client, requests)
            result["client"] = "benchmarks/wire.py (WireClient)"
            result["httpx"] = {**_round_trips(old_client, requests), "client": f"httpx {httpx.__version__}"}
    finally:
        process.terminate()
        process.wait(timeout=10)
    return result


def _round_trips(client: WireClient | httpx.Client, requests: int) -> dict:
    """`GET /` back to back on one keep-alive connection, after 100 untimed ones."""
    for _ in range(100):
        client.get("/").raise_for_status()
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        client.get("/")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {"requests": requests, "requests_per_s": requests / elapsed, "latency": latency_summary(latencies)}


def round_trip_floor(client: WireClient, meter: CpuMeter, requests: int = FLOOR_REQUESTS) -> dict:
    """The smallest request through the whole stack, back to back: `GET /healthz`.

    It crosses the same client, HTTP parser, middleware and threadpool as a page and runs one
    `SELECT 1`. With one sequential client no page can cost less than this plus the server's
    own work for the page: this is the load generator's ceiling for a keyset scan.
    """
    for _ in range(50):
        client.get("/healthz").raise_for_status()
    latencies = []
    meter.start()
    started = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get("/healthz")
        latencies.append(time.perf_counter() - t0)
        response.raise_for_status()
    elapsed = time.perf_counter() - started
    return {
        "requests": requests,
        "elapsed_s": elapsed,
        "requests_per_s": requests / elapsed,
        "latency": latency_summary(latencies),
        "cpu": meter.stop(),
    }


# --- in-process ceilings ------------------------------------------------------------------------


def _workspace_id(db: Any, name: str) -> int:
    from sqlalchemy import select

    from abmhub.db.tables import workspaces

    with db.engine.connect() as conn:
        found = conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar_one_or_none()
    if found is None:
        raise BenchmarkError(f"workspace {name!r} not found")
    return found


def account_rows(workspace_id: int, prefix: str, n: int) -> list[dict[str, Any]]:
    """Rows as abmhub stores a pushed account (same ids, same JSON columns)."""
    from abmhub.ids import new_object_id, new_uuid7
    from abmhub.timefmt import now_us

    now = now_us()
    rows = []
    for i in range(n):
        item = account_item(prefix, i)
        rows.append(
            {
                "workspace_id": workspace_id,
                "rtp_aid": new_object_id(),
                "uuid": new_uuid7(),
                "external_id": item["externalId"],
                "name": item["name"],
                "domain": item["domain"],
                "short_name": None,
                "linkedin_url": None,
                "tags": item["tags"],
                "custom_fields": {},
                "created_us": now,
                "change_us": now,
            }
        )
    return rows


def insert_ceiling(url: str, n: int, warmup_n: int, *, with_clock: bool, meter: CpuMeter) -> dict:
    """Insert n rows, one transaction per BATCH rows, with the storage layer's bulk INSERT.

    `insert_rows` is what the server's push uses (one driver-level executemany, JSON as
    text): the fastest way abmhub has to write these rows, so the baseline is never weaker
    than the server's own write path.
    """
    from abmhub.db.engine import Database
    from abmhub.db.queries import insert_rows, json_text
    from abmhub.db.tables import accounts

    db = Database(url)
    try:
        bench_ws, warm_ws = _workspace_id(db, "bench"), _workspace_id(db, "warmup")
        columns = list(account_rows(bench_ws, "acme", 1)[0])

        def as_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            json_columns = {"tags", "custom_fields"}
            return [tuple(json_text(row[c]) if c in json_columns else row[c] for c in columns) for row in rows]

        rows = as_tuples(account_rows(bench_ws, "acme", n))
        warm_rows = as_tuples(account_rows(warm_ws, "warm", warmup_n))

        def write(batch: Sequence[tuple[Any, ...]], workspace_id: int) -> None:
            if with_clock:
                with db.write(workspace_id) as tx:
                    insert_rows(tx.conn, accounts, columns, batch)
            else:
                with db.engine.begin() as conn:
                    insert_rows(conn, accounts, columns, batch)

        for batch in chunks(warm_rows, BATCH):
            write(batch, warm_ws)
        latencies = []
        meter.start()
        started = time.perf_counter()
        for batch in chunks(rows, BATCH):
            t0 = time.perf_counter()
            write(batch, bench_ws)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
    finally:
        db.dispose()
    return {
        "accounts": n,
        "transactions": len(latencies),
        "with_clock_tick": with_clock,
        "elapsed_s": elapsed,
        "accounts_per_s": n / elapsed,
        "latency": latency_summary(latencies),
        "cpu": cpu,
    }


def service_vs_insert(url: str, workspace: str, n: int, meter: CpuMeter) -> dict:
    """The push's service in-process against the bare INSERT, side by side, on the full table.

    After the HTTP push, in the same database (so both write into a table of N accounts):
    alternately a push of 100 new accounts through `accounts.service.push_accounts` (the
    server's whole push minus HTTP and validation: lookup by domain and externalId, per-item
    decisions, clock tick, results) and the bare INSERT of 100 other rows as the insert ceiling
    writes them. Their ratio bounds any HTTP figure: a server whose HTTP stack cost nothing
    would still reach only this share of the bare INSERT.
    """
    from abmhub.accounts import service
    from abmhub.accounts.schemas import PushAccountsRequest
    from abmhub.db.engine import Database
    from abmhub.db.queries import insert_rows, json_text
    from abmhub.db.tables import accounts

    db = Database(url)
    try:
        workspace_id = _workspace_id(db, workspace)
        columns = list(account_rows(workspace_id, "svc-insert", 1)[0])
        json_columns = {"tags", "custom_fields"}
        rows = [
            tuple(json_text(row[c]) if c in json_columns else row[c] for c in columns)
            for row in account_rows(workspace_id, "svc-insert", n)
        ]
        pushes = [PushAccountsRequest.model_validate(orjson.loads(body.content)) for body in push_bodies("svc-push", n)]
        times: dict[str, list[float]] = {"service": [], "insert": []}
        meter.start()
        for index, (push, batch) in enumerate(zip(pushes, chunks(rows, BATCH), strict=True)):
            kinds = (("service", push), ("insert", batch)) if index % 2 == 0 else (("insert", batch), ("service", push))
            for kind, work in kinds:
                t0 = time.perf_counter()
                if kind == "service":
                    outcome = service.push_accounts(db, workspace_id=workspace_id, items=work.accounts)
                    if outcome.summary["created"] != len(work.accounts):
                        raise BenchmarkError(f"in-process service push: {outcome.summary}")
                else:
                    with db.engine.begin() as conn:
                        insert_rows(conn, accounts, columns, work)
                times[kind].append(time.perf_counter() - t0)
        cpu = meter.stop()
    finally:
        db.dispose()
    result: dict[str, Any] = {"accounts_each": n, "cpu": cpu}
    for kind, seconds in times.items():
        result[kind] = {"accounts_per_s": n / sum(seconds), "latency": latency_summary(seconds)}
    return result


def scan_ceiling(url: str, workspace: str, limit: int, expected: int, meter: CpuMeter) -> dict:
    """The keyset query the server runs, read as the server reads it, + orjson.

    Read as the server reads a later page of its plain scan (`db.queries.DriverReader`: the
    driver's tuples, no SQLAlchemy Rows, one snapshot in one round trip to PostgreSQL, with
    the page's planner setting). The same columns as the server's page
    (`accounts.service.record_columns`): `tags` and `custom_fields` come as their stored JSON
    text, as the server fetches them, and go into the output unparsed (orjson.Fragment).
    Each row becomes a dict of its columns by name, unpacked by position (`row._asdict()`
    costs ~6 µs a row, more than the server's whole record). So the ceiling is never weaker
    than the server's own path: it is that path without the record shaping (time
    formatting, custom-field parsing and filtering) and without the segment memberships and
    custom-field keys (the server's second round trip).
    """
    from sqlalchemy import bindparam, select

    from abmhub.accounts.service import record_columns
    from abmhub.db.engine import Database
    from abmhub.db.queries import DriverQuery, DriverReader
    from abmhub.db.tables import accounts

    c = accounts.c
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            columns = record_columns(conn.dialect.name)
        statement = DriverQuery(
            select(*columns)
            .where(c.workspace_id == bindparam("ws"), c.rtp_aid > bindparam("after"))
            .order_by(c.rtp_aid)
            .limit(limit),
            settings={"enable_sort": "off"},  # as the server's plain scan (PostgreSQL only)
        )
        workspace_id = _workspace_id(db, workspace)
        fragment = orjson.Fragment

        def records(rows: Sequence[Any]) -> list[dict]:
            return [
                {
                    "id": id_,
                    "rtp_aid": rtp_aid,
                    "uuid": uuid_,
                    "external_id": external_id,
                    "name": name,
                    "domain": domain,
                    "short_name": short_name,
                    "linkedin_url": linkedin_url,
                    "tags": fragment(tags),
                    "custom_fields": fragment(custom_fields),
                    "account_score": account_score,
                    "journey_stage": journey_stage,
                    "advertising_score": advertising_score,
                    "website_score": website_score,
                    "g2_score": g2_score,
                    "bombora_score": bombora_score,
                    "change_us": change_us,
                }
                for (
                    id_,
                    rtp_aid,
                    uuid_,
                    external_id,
                    name,
                    domain,
                    short_name,
                    linkedin_url,
                    tags,
                    custom_fields,
                    account_score,
                    journey_stage,
                    advertising_score,
                    website_score,
                    g2_score,
                    bombora_score,
                    change_us,
                ) in rows
            ]

        def scan(max_pages: int | None = None) -> tuple[int, int]:
            after, total, pages = "", 0, 0
            while max_pages is None or pages < max_pages:
                with DriverReader(db.engine) as reader:
                    (rows,) = reader.snapshot([(statement, {"ws": workspace_id, "after": after})])
                orjson.dumps(records(rows), option=orjson.OPT_NON_STR_KEYS)
                total += len(rows)
                pages += 1
                if len(rows) < limit:
                    break
                after = rows[-1][1]  # (id, rtp_aid, ...)
            return total, pages

        return _timed_scan(scan, meter, f"in-process scan (limit {limit})", limit, expected)
    finally:
        db.dispose()


def _timed_scan(
    scan: Callable[..., tuple[int, int]], meter: CpuMeter, label: str, limit: int, expected: int
) -> dict[str, Any]:
    """Warm up with 10 pages, then time PASSES whole passes of `scan` (which returns rows,
    pages): the median pass."""
    scan(max_pages=10)
    passes = []
    for _ in range(PASSES):
        meter.start()
        started = time.perf_counter()
        total, pages = scan()
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        if total != expected:
            raise BenchmarkError(f"{label}: {total} rows, expected {expected}")
        passes.append(
            {
                "limit": limit,
                "accounts": total,
                "pages": pages,
                "elapsed_s": elapsed,
                "accounts_per_s": total / elapsed,
                "cpu": cpu,
            }
        )
    return median_pass(passes)


def median_pass(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The pass of median throughput, with every pass's throughput beside it: a scan of
    100,000 accounts takes about a second, which one stray wake-up can move by a tenth."""
    ordered = sorted(passes, key=lambda one: one["accounts_per_s"])
    return {**ordered[len(ordered) // 2], "passes_accounts_per_s": [one["accounts_per_s"] for one in passes]}


def wire_scan(url: str, workspace: str, limit: int, expected: int, meter: CpuMeter) -> dict:
    """The server's own page code in-process: the same wire bytes as over HTTP, without HTTP.

    `list_accounts` + `account_page_body` + the envelope, serialised as the server does, page
    after page by `nextCursor`. The HTTP scan divided by this is what the HTTP stack, the
    client and the loopback cost; this divided by `scan_ceiling` is what building the
    contract's records costs.
    """
    from abmhub.accounts.router import account_page_body
    from abmhub.accounts.service import list_accounts
    from abmhub.db.engine import Database
    from abmhub.timefmt import format_us, now_us
    from abmhub.web.paging import page_request

    db = Database(url)
    try:
        workspace_id = _workspace_id(db, workspace)

        def scan(max_pages: int | None = None) -> tuple[int, int]:
            cursor, total, pages = None, 0, 0
            while max_pages is None or pages < max_pages:
                found, extras = list_accounts(
                    db, workspace_id=workspace_id, page=page_request(str(limit), cursor, None)
                )
                body = account_page_body(found, extras)
                envelope = {"statusCode": 200, "timestamp": format_us(now_us()), "path": LIST_PATH, "data": body}
                orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS)
                total += len(body["data"])
                pages += 1
                if not body["hasNextPage"]:
                    break
                cursor = body["nextCursor"]
            return total, pages

        return _timed_scan(scan, meter, f"in-process wire scan (limit {limit})", limit, expected)
    finally:
        db.dispose()


# --- the run ----------------------------------------------------------------------------------


def _strip_private(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_private(v) for k, v in value.items() if not k.startswith("_")}
    return value


def _profile(args: argparse.Namespace, server: Server, name: str, stamp: str, *, enabled: bool = True) -> Any:
    """py-spy on the server for one phase with --profile, else a no-op context (yielding None)."""
    if not (args.profile and enabled):
        return contextlib.nullcontext(None)
    return PySpy(server.pid, args.results_dir / f"accounts-{args.backend}-{stamp}-{name}.pyspy.txt")


def _attach_profile(result: dict[str, Any], spy: PySpy | None) -> None:
    if spy is not None:
        result["profile"] = {"file": str(spy.output), **summarize_collapsed(spy.output)}


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    if n < 2 * max(PULL_LIMITS):
        raise SystemExit(f"--accounts must be at least {2 * max(PULL_LIMITS)}")
    clients = args.clients
    server_command = shlex.split(args.server_command) if args.server_command else None
    # The scoring schedule (when this abmhub has one) would rescore accounts in the middle of
    # a phase; this benchmark is about the account API, so it runs without it.
    serve_args = ["--score-interval", "0"] if serve_supports("--score-interval", server_command) else []
    warmup_requests = 10 if n <= QUICK_ACCOUNTS else 20
    warmup_n = warmup_requests * BATCH
    stamp = utc_stamp()
    config = {
        "accounts": n,
        "batch": BATCH,
        "concurrent_clients": clients,
        "pull_limits": list(PULL_LIMITS),
        "warmup_accounts": warmup_n,
        "latency_samples": LATENCY_SAMPLES,
        "server_log_level": args.server_log_level,
        "server_command": args.server_command or "python -m abmhub",
        "serve_extra_args": serve_args,
        "profiled": bool(args.profile),
        "http_client": "benchmarks/wire.py (minimal HTTP/1.1 client), one keep-alive connection per client thread",
        "quick": bool(args.quick),
    }
    report = Report("accounts", args.backend, config)
    details = report.details
    started = time.perf_counter()

    with Run(args.backend, keep_temp=args.keep_temp) as run:
        dbs = run.databases

        # A. push with 1 client, then everything that reads the same data.
        url_a = dbs.new("bench_push_1")
        server = run.server(
            url_a, name="server-a", log_level=args.server_log_level, command=server_command, extra_args=serve_args
        )
        if server.key is None:
            raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{server.log_tail()}")
        warm_key = create_workspace_key(url_a, "warmup")
        log(f"A: server on {server.base_url}; warm-up push ({warmup_n} accounts, workspace 'warmup')")
        push_http(server.base_url, warm_key, push_bodies("warm", warmup_n), 1, None)
        memory = {"after_warmup": server.memory_mb()}
        bodies = push_bodies("acme", n)
        log(f"A: push {n:,} accounts, 1 client")
        with _profile(args, server, "push1", stamp) as spy:
            push1 = push_http(server.base_url, server.key, bodies, 1, run.cpu_meter(server))
        _attach_profile(push1, spy)
        log(f"A: {push1['accounts_per_s']:,.0f} accounts/s, p50 {push1['latency']['p50_ms']:.1f} ms")
        details["push_1_client"] = push1
        memory["after_push"] = server.memory_mb()

        details["search_index_catch_up_s"] = wait_for_search_index(url_a)
        with contextlib.closing(http_client(server.base_url, server.key)) as client:
            # Warm-up of the read path: a few pages of each size (cursor and first-page paths).
            for limit in PULL_LIMITS:
                cursor = None
                for _ in range(5):
                    cursor = check_list(client.get(list_url(limit, cursor)))["nextCursor"]
            scans = {}
            for limit in PULL_LIMITS:
                log(f"A: pull scan, limit {limit}")
                with _profile(args, server, f"pull{limit}", stamp, enabled=limit == 100) as spy:
                    scans[limit] = median_pass(
                        [pull_scan(client, limit, n, run.cpu_meter(server)) for _ in range(PASSES)]
                    )
                _attach_profile(scans[limit], spy)
                log(f"A: {scans[limit]['accounts_per_s']:,.0f} accounts/s over {scans[limit]['pages']} pages")
            log("A: page latency at depth")
            depth = page_latency(client, scans[100]["_cursors"], 100)
            log("A: round-trip floor (GET /healthz)")
            floor = round_trip_floor(client, run.cpu_meter(server))
        log("A: load generator's ceiling (a bare ASGI app on uvicorn)")
        trivial = trivial_app_floor()
        details["pull"] = {str(limit): _strip_private(scan) for limit, scan in scans.items()}
        details["page_latency"] = depth
        details["round_trip_floor"] = floor
        details["trivial_app_floor"] = trivial
        memory["after_pulls"] = server.memory_mb()
        details["server_memory_mb"] = memory
        details["database_size_after_push_1"] = dbs.sizes(url_a)
        server.stop()

        log("A: in-process scan ceiling")
        scan_base = {limit: scan_ceiling(url_a, "default", limit, n, run.cpu_meter()) for limit in PULL_LIMITS}
        details["scan_ceiling"] = {str(limit): value for limit, value in scan_base.items()}
        log("A: in-process wire scan (the server's page code, no HTTP)")
        wire = {limit: wire_scan(url_a, "default", limit, n, run.cpu_meter()) for limit in PULL_LIMITS}
        details["wire_scan"] = {str(limit): value for limit, value in wire.items()}
        # Last on this database: it adds accounts the scans above must not see.
        sample = min(SERVICE_SAMPLE, n)
        log(f"A: in-process service push vs bare INSERT, {sample:,} accounts each, on the full table")
        details["service_vs_insert"] = service_vs_insert(url_a, "default", sample, run.cpu_meter())
        dbs.drop(url_a)

        # B. push with several clients, on a fresh database.
        url_b = dbs.new("bench_push_n")
        server_b = run.server(
            url_b, name="server-b", log_level=args.server_log_level, command=server_command, extra_args=serve_args
        )
        if server_b.key is None:
            raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{server_b.log_tail()}")
        warm_key = create_workspace_key(url_b, "warmup")
        push_http(server_b.base_url, warm_key, push_bodies("warm", warmup_n), clients, None)
        log(f"B: push {n:,} accounts, {clients} clients")
        push_n = push_http(server_b.base_url, server_b.key, bodies, clients, run.cpu_meter(server_b))
        log(f"B: {push_n['accounts_per_s']:,.0f} accounts/s, p50 {push_n['latency']['p50_ms']:.1f} ms")
        details[f"push_{clients}_clients"] = push_n
        server_b.stop()
        dbs.drop(url_b)

        # C/D. in-process insert ceilings, fresh databases migrated by the CLI.
        ceilings = {}
        for label, with_clock in (("plain", False), ("clock", True)):
            url = dbs.new(f"bench_ceiling_{label}")
            for workspace in ("bench", "warmup"):
                abmhub_cli(["workspaces", "create", workspace, "--quiet"], url)
            log(f"C: in-process insert ceiling ({'Database.write + clock tick' if with_clock else 'engine.begin'})")
            ceilings[label] = insert_ceiling(url, n, warmup_n, with_clock=with_clock, meter=run.cpu_meter())
            log(f"C: {ceilings[label]['accounts_per_s']:,.0f} accounts/s")
            dbs.drop(url)
        details["insert_ceiling"] = ceilings["plain"]
        details["insert_ceiling_with_clock"] = ceilings["clock"]
        details["databases"] = dbs.info

    details["total_runtime_s"] = time.perf_counter() - started
    # Average number of cores that processes other than this benchmark's kept busy during
    # the timed phases: on a 2-core machine anything above ~0.2 means a busy machine.
    timed_phases = [
        details["push_1_client"],
        details[f"push_{clients}_clients"],
        *details["pull"].values(),
        *details["scan_ceiling"].values(),
        ceilings["plain"],
        ceilings["clock"],
    ]
    other = sum(p["cpu"]["other_cpu_s"] for p in timed_phases)
    wall = sum(p["cpu"]["wall_s"] for p in timed_phases)
    report.machine["other_load_cores_avg"] = other / wall if wall else None

    # --- figures --------------------------------------------------------------------------
    ceiling = ceilings["plain"]["accounts_per_s"]
    ceiling_label = "in-process insert"
    report.add(
        "push_1_client_accounts_per_s",
        "push, 1 client (100/request)",
        push1["accounts_per_s"],
        "accounts/s",
        baseline=ceiling,
        baseline_label=ceiling_label,
    )
    report.add(
        f"push_{clients}_clients_accounts_per_s",
        f"push, {clients} clients (100/request)",
        push_n["accounts_per_s"],
        "accounts/s",
        baseline=ceiling,
        baseline_label=ceiling_label,
    )
    report.add(
        f"push_{clients}_vs_1",
        f"push, {clients} clients vs 1 client",
        push_n["accounts_per_s"],
        "accounts/s",
        baseline=push1["accounts_per_s"],
        baseline_label="1 client",
    )
    report.add(
        "insert_ceiling_with_clock_accounts_per_s",
        "in-process insert inside Database.write (clock tick)",
        ceilings["clock"]["accounts_per_s"],
        "accounts/s",
        baseline=ceiling,
        baseline_label=ceiling_label,
    )
    versus = details["service_vs_insert"]
    at_full = f"on the full table, {versus['accounts_each']:,} accounts each, alternating"
    report.add(
        "service_push_accounts_per_s",
        f"in-process service push (no HTTP, no validation), {at_full}",
        versus["service"]["accounts_per_s"],
        "accounts/s",
        baseline=versus["insert"]["accounts_per_s"],
        baseline_label="bare INSERT of 100 rows, same table, same time",
    )
    # The HTTP push's last tenth ran on a table of ~90-100 % of N accounts, like the sample.
    last_tenth_ms = push1["latency_by_decile_ms"][-1]
    report.add(
        "push_1_client_last_tenth_vs_service",
        "push over HTTP, 1 client, last tenth of the push",
        BATCH / (last_tenth_ms / 1000),
        "accounts/s",
        baseline=versus["service"]["accounts_per_s"],
        baseline_label="in-process service push on the full table",
    )
    for name, result in (("push_1_client", push1), (f"push_{clients}_clients", push_n)):
        who = "1 client" if result["clients"] == 1 else f"{result['clients']} clients"
        per_tx = ceilings["plain"]["latency"]
        report.add(
            f"{name}_p50_ms",
            f"push request latency p50, {who}",
            result["latency"]["p50_ms"],
            "ms",
            baseline=per_tx["p50_ms"],
            baseline_label="in-process 100-row tx p50",
        )
        report.add(
            f"{name}_p99_ms",
            f"push request latency p99, {who}",
            result["latency"]["p99_ms"],
            "ms",
            baseline=per_tx["p99_ms"],
            baseline_label="in-process 100-row tx p99",
        )
    for limit in PULL_LIMITS:
        report.add(
            f"pull_limit_{limit}_accounts_per_s",
            f"pull scan, limit {limit}, 1 client",
            scans[limit]["accounts_per_s"],
            "accounts/s",
            baseline=scan_base[limit]["accounts_per_s"],
            baseline_label=f"in-process scan, limit {limit}",
        )
    for limit in PULL_LIMITS:
        report.add(
            f"pull_limit_{limit}_vs_wire",
            f"pull scan, limit {limit}, 1 client, vs the same pages in-process",
            scans[limit]["accounts_per_s"],
            "accounts/s",
            baseline=wire[limit]["accounts_per_s"],
            baseline_label=f"server page code in-process, limit {limit}",
        )
        report.add(
            f"wire_scan_limit_{limit}_accounts_per_s",
            f"server page code in-process (records built), limit {limit}",
            wire[limit]["accounts_per_s"],
            "accounts/s",
            baseline=scan_base[limit]["accounts_per_s"],
            baseline_label=f"in-process scan, limit {limit}",
        )
    if memory["after_push"]["peak_mb"] is not None:
        report.add(
            "server_peak_rss_push_mb",
            f"server peak RSS after pushing {n:,} accounts (VmHWM)",
            memory["after_push"]["peak_mb"],
            "MiB",
            baseline=memory["after_warmup"]["peak_mb"],
            baseline_label="after the warm-up",
        )
        report.add(
            "server_peak_rss_pulls_mb",
            "server peak RSS after the scans (VmHWM)",
            memory["after_pulls"]["peak_mb"],
            "MiB",
            baseline=memory["after_warmup"]["peak_mb"],
            baseline_label="after the warm-up",
        )
    floor_s = trivial["latency"]["p50_ms"] / 1000
    report.add(
        "trivial_app_requests_per_s",
        "load generator's ceiling: bare ASGI app on uvicorn, 1 client",
        trivial["requests_per_s"],
        "requests/s",
        baseline=None,
        baseline_label=f"p50 {trivial['latency']['p50_ms']:.2f} ms",
    )
    old_floor = trivial["httpx"]
    report.add(
        "trivial_app_httpx_requests_per_s",
        f"for the record: the same with {old_floor['client']} (p50 {old_floor['latency']['p50_ms']:.2f} ms), "
        "the load generator before benchmarks/wire.py",
        old_floor["requests_per_s"],
        "requests/s",
        baseline=trivial["requests_per_s"],
        baseline_label="load generator (benchmarks/wire.py)",
    )
    report.add(
        "round_trip_floor_requests_per_s",
        "round-trip floor: GET /healthz, 1 client",
        floor["requests_per_s"],
        "requests/s",
        baseline=None,
        baseline_label=f"p50 {floor['latency']['p50_ms']:.2f} ms",
    )
    for limit in PULL_LIMITS:
        in_process_page_s = limit / scan_base[limit]["accounts_per_s"]
        report.add(
            f"pull_limit_{limit}_floor_bound_accounts_per_s",
            f"pull scan, limit {limit}: bound of 1 sequential client (bare-app round trip + in-process page)",
            limit / (floor_s + in_process_page_s),
            "accounts/s",
            baseline=scan_base[limit]["accounts_per_s"],
            baseline_label=f"in-process scan, limit {limit}",
        )
    first, shallow, deep = depth["first"], depth["shallow"], depth["deep"]
    report.add("first_page_median_ms", "first page (limit 100) median", first["median_ms"], "ms")
    report.add("first_page_p90_ms", "first page (limit 100) p90", first["p90_ms"], "ms")
    deep_label = f"page {depth['deep_page']} of {depth['pages_in_scan']} (~{depth['deep_depth_fraction']:.0%})"
    report.add(
        "deep_page_median_ms",
        f"{deep_label} median",
        deep["median_ms"],
        "ms",
        baseline=first["median_ms"],
        baseline_label="first page",
    )
    report.add(
        "deep_page_p90_ms",
        f"{deep_label} p90",
        deep["p90_ms"],
        "ms",
        baseline=first["p90_ms"],
        baseline_label="first page",
    )
    report.add(
        "deep_vs_shallow_cursor_page_median",
        f"{deep_label} median vs page {depth['shallow_page']} (both by cursor)",
        deep["median_ms"],
        "ms",
        baseline=shallow["median_ms"],
        baseline_label=f"page {depth['shallow_page']}",
    )

    path = report.write(args.results_dir)
    print(report.markdown())
    print()
    print(_cpu_table(details, clients))
    print()
    other = report.machine["other_load_cores_avg"]
    print(
        f"Other processes kept {other:.2f} of {report.machine['nproc']} cores busy on average during the run"
        + (" — a busy machine: treat the figures with care." if other > 0.2 else ".")
    )
    print(f"results: {path}")
    log(f"done in {details['total_runtime_s']:.0f} s")
    return 0


def _cpu_table(details: dict[str, Any], clients: int) -> str:
    """Who burnt the cores during each HTTP phase (CPU seconds per 1,000 accounts)."""
    phases = [
        ("push, 1 client", details["push_1_client"]),
        (f"push, {clients} clients", details[f"push_{clients}_clients"]),
        *((f"pull, limit {k}", v) for k, v in details["pull"].items()),
    ]
    has_pg = any("postgres_cpu_s" in p["cpu"] for _, p in phases)
    header = (
        "| phase | wall s | client CPU s | server CPU s |"
        + (" postgres CPU s |" if has_pg else "")
        + " cores busy (ours) | other processes CPU s |"
    )
    lines = [header, "|---|---:|---:|---:|" + ("---:|" if has_pg else "") + "---:|---:|"]
    for name, phase in phases:
        cpu = phase["cpu"]
        row = f"| {name} | {cpu['wall_s']:.2f} | {cpu['client_cpu_s']:.2f} | {cpu.get('server_cpu_s', 0):.2f} |"
        if has_pg:
            row += f" {cpu.get('postgres_cpu_s', 0):.2f} |"
        row += f" {cpu['cores_busy']:.2f} | {cpu.get('other_cpu_s', float('nan')):.2f} |"
        lines.append(row)
    lines.append("")
    for name, phase in phases[:2]:
        lines.append(
            f"{name}: mean request latency per tenth of the run (ms): "
            + ", ".join(f"{v:g}" for v in phase["latency_by_decile_ms"])
        )
    return "\n".join(lines)
