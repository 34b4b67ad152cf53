"""Ingest benchmark: push accounts, activities, deals and signals over HTTP vs in-process.

    python -m benchmarks ingest [--backend sqlite|postgresql] [--items N] [--quick]
                                [--kinds accounts,activities,deals,signals]

For each kind, on a fresh database:

1. server up; 1,000 accounts pushed first (untimed) so that activities, deals and signals
   resolve to accounts, as in a real sync; a warm-up push goes to a separate workspace;
2. push N items over HTTP, 1 client, keep-alive (accounts 100/request, activities 50/request
   with one contact each, deals 100/request with one associated account, signals
   100/request): items/s, request latency p50/p99;
3. paced push at half of that throughput (requests sent on a fixed schedule): latency
   p50/p99 at ~50 % load;
4. the server's peak RSS (VmHWM) after those phases; server stopped.

Ceiling (same run, fresh database, same 1,000 accounts): the same items, validated before
the clock starts, written by calling the service (`push_accounts`, `push_activities`, ...)
in-process, one transaction per 100 items — the storage layer with abmhub's own per-item
logic (lookups, dedup, links), no HTTP, no JSON, no validation. The ratio is HTTP ÷ that.

Every HTTP error and every item not stored (`created`; deals: `upserted`) fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    Server,
    abmhub_cli,
    chunks,
    create_workspace_key,
    http_client,
    latency_summary,
    log,
    proc_status_mb,
    serve_supports,
)
from benchmarks.wire import WireClient, WireResponse

KINDS = ("accounts", "activities", "deals", "signals")
DEFAULT_ITEMS = 20_000
QUICK_ITEMS = 2_000
ACCOUNTS = 1_000
CEILING_BATCH = 100
WARMUP_REQUESTS = 10


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    path: str
    key: str  # the request body's array
    batch: int
    item: Callable[[str, int], dict[str, Any]]


def account_item(prefix: str, i: int) -> dict[str, Any]:
    return {
        "domain": f"{prefix}-{i}.com",
        "name": f"{prefix.capitalize()} {i}",
        "externalId": f"crm-{prefix}-{i}",
    }


def activity_item(prefix: str, i: int) -> dict[str, Any]:
    account = i % ACCOUNTS
    return {
        "externalActivityId": f"{prefix}-act-{i}",
        "activityType": "call" if i % 2 else "email",
        "occurredAt": "2026-04-22T10:30:00Z",
        "domain": f"acme-{account}.com",
        "ownerEmail": "rep@yourcompany.com",
        "subject": f"Follow-up {i}",
        "contacts": [
            {
                "email": f"person{i % (3 * ACCOUNTS)}@acme-{account}.com",
                "name": f"Person {i}",
            }
        ],
    }


def deal_item(prefix: str, i: int) -> dict[str, Any]:
    return {
        "externalDealId": f"{prefix}-deal-{i}",
        "name": f"Deal {i}",
        "amount": 1000 + i,
        "ownerEmail": "rep@yourcompany.com",
        "associatedAccounts": [{"domain": f"acme-{i % ACCOUNTS}.com"}],
    }


def signal_item(prefix: str, i: int) -> dict[str, Any]:
    return {
        "source": "website",
        "type": "page_view",
        "domain": f"acme-{i % ACCOUNTS}.com",
        "occurredAt": "2026-04-22T10:30:00Z",
        "externalSignalId": f"{prefix}-sig-{i}",
        "url": f"https://example.com/page/{i % 50}",
    }


KIND_SPECS = {
    "accounts": Kind("accounts", "/api/v1/accounts", "accounts", 100, account_item),
    "activities": Kind("activities", "/api/v1/sales-activities", "activities", 50, activity_item),
    "deals": Kind("deals", "/api/v1/deals", "deals", 100, deal_item),
    "signals": Kind("signals", "/api/v1/signals", "signals", 100, signal_item),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sqlite",
        help="database backend (default sqlite)",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=None,
        metavar="N",
        help=f"items per kind (default {DEFAULT_ITEMS:,})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_ITEMS:,} items per kind",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"comma-separated subset of {','.join(KINDS)}",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument(
        "--keep-temp",
        action="store_true",
        help="keep the temp dir (databases, server logs)",
    )


# --- HTTP ------------------------------------------------------------------------------------


def bodies(kind: Kind, prefix: str, n: int) -> list[tuple[bytes, int]]:
    out = []
    for start in range(0, n, kind.batch):
        items = [kind.item(prefix, i) for i in range(start, min(n, start + kind.batch))]
        out.append((orjson.dumps({kind.key: items}), len(items)))
    return out


def check_push(kind: Kind, response: WireResponse, expected: int) -> None:
    if response.status_code != 200:
        raise BenchmarkError(f"POST {kind.path} → HTTP {response.status_code}: {response.text[:500]}")
    data = orjson.loads(response.content)["data"]
    if not stored_all(data["summary"], expected):
        failed = next((r for r in data["results"] if r.get("status") not in STORED), None)
        raise BenchmarkError(f"{kind.name}: {data['summary']} for {expected} items; first not stored: {failed}")


STORED = ("created", "upserted")  # deals are upserted by externalDealId


def stored_all(summary: dict[str, Any], expected: int) -> bool:
    """Every item stored: none failed or skipped (deals report `upserted`, the others `created`)."""
    return sum(summary.get(status, 0) for status in STORED) == expected


def push(
    kind: Kind,
    client: WireClient,
    payloads: Sequence[tuple[bytes, int]],
    interval_s: float = 0.0,
) -> dict:
    """Send every payload in order; with `interval_s`, on a fixed schedule (open loop, paced)."""
    latencies = []
    started = time.perf_counter()
    for index, (content, count) in enumerate(payloads):
        if interval_s:
            delay = started + index * interval_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        response = client.post(kind.path, content=content)
        latencies.append(time.perf_counter() - t0)
        check_push(kind, response, count)
    elapsed = time.perf_counter() - started
    items = sum(count for _, count in payloads)
    return {
        "items": items,
        "requests": len(payloads),
        "elapsed_s": elapsed,
        "items_per_s": items / elapsed,
        "requests_per_s": len(payloads) / elapsed,
        "latency": latency_summary(latencies),
    }


# --- in-process ceiling -------------------------------------------------------------------------


def _validated(kind: Kind, prefix: str, n: int) -> list[Any]:
    from abmhub.accounts.schemas import AccountItem
    from abmhub.activities.schemas import ActivityItem
    from abmhub.deals.schemas import DealItem
    from abmhub.signals.schemas import SignalItem

    model = {
        "accounts": AccountItem,
        "activities": ActivityItem,
        "deals": DealItem,
        "signals": SignalItem,
    }[kind.name]
    return [model.model_validate(kind.item(prefix, i)) for i in range(n)]


def _service(kind: Kind) -> Callable[..., Any]:
    from abmhub.accounts.service import push_accounts
    from abmhub.activities.service import push_activities
    from abmhub.deals.service import push_deals
    from abmhub.signals.service import push_signals

    return {
        "accounts": push_accounts,
        "activities": push_activities,
        "deals": push_deals,
        "signals": push_signals,
    }[kind.name]


def ceiling(kind: Kind, url: str, n: int) -> dict:
    from sqlalchemy import select

    from abmhub.db.engine import Database
    from abmhub.db.tables import workspaces

    for workspace in ("bench", "warmup"):
        abmhub_cli(["workspaces", "create", workspace, "--quiet"], url)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            ids = dict(conn.execute(select(workspaces.c.name, workspaces.c.id)).all())
        service = _service(kind)
        accounts_spec = KIND_SPECS["accounts"]
        for ws in ("bench", "warmup"):
            for batch in chunks(_validated(accounts_spec, "acme", ACCOUNTS), 100):
                _service(accounts_spec)(db, workspace_id=ids[ws], items=batch)
        items = _validated(kind, "bench", n)
        for batch in chunks(_validated(kind, "warm", WARMUP_REQUESTS * CEILING_BATCH), CEILING_BATCH):
            service(db, workspace_id=ids["warmup"], items=batch)
        latencies = []
        started = time.perf_counter()
        for batch in chunks(items, CEILING_BATCH):
            t0 = time.perf_counter()
            outcome = service(db, workspace_id=ids["bench"], items=batch)
            latencies.append(time.perf_counter() - t0)
            if not stored_all(outcome.summary, len(batch)):
                raise BenchmarkError(f"in-process {kind.name}: {outcome.summary}")
        elapsed = time.perf_counter() - started
    finally:
        db.dispose()
    return {"items": n, "transactions": len(latencies), "elapsed_s": elapsed, "items_per_s": n / elapsed,
            "latency": latency_summary(latencies)}  # fmt: skip


# --- the run ----------------------------------------------------------------------------------


def run_kind(run: Run, kind: Kind, n: int, serve_args: list[str]) -> dict[str, Any]:
    dbs = run.databases
    url = dbs.new(f"ingest_{kind.name}")
    server: Server = run.server(url, name=f"server-{kind.name}", extra_args=serve_args)
    if server.key is None:
        raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{server.log_tail()}")
    warm_key = create_workspace_key(url, "warmup")
    accounts = KIND_SPECS["accounts"]
    result: dict[str, Any] = {"kind": kind.name, "batch": kind.batch}
    with (
        contextlib.closing(http_client(server.base_url, warm_key)) as warm,
        contextlib.closing(http_client(server.base_url, server.key)) as client,
    ):
        for c in (warm, client):
            push(accounts, c, bodies(accounts, "acme", ACCOUNTS))
        push(kind, warm, bodies(kind, "warm", WARMUP_REQUESTS * kind.batch))
        log(f"{kind.name}: push {n:,} over HTTP, {kind.batch}/request, 1 client")
        meter = run.cpu_meter(server)
        meter.start()
        result["http"] = push(kind, client, bodies(kind, "bench", n))
        result["http"]["cpu"] = meter.stop()
        rate = result["http"]["requests_per_s"]
        log(f"{kind.name}: {result['http']['items_per_s']:,.0f} items/s; paced at half ({rate / 2:,.0f} requests/s)")
        paced = bodies(kind, "paced", max(kind.batch * 20, n // 2))
        result["paced_half"] = push(kind, client, paced, interval_s=2.0 / rate)
        result["paced_half"]["target_requests_per_s"] = rate / 2
    result["server_peak_rss_mb"] = proc_status_mb(server.pid, "VmHWM")
    server.stop()
    dbs.drop(url)
    url = dbs.new(f"ingest_{kind.name}_ceiling")
    log(f"{kind.name}: in-process ceiling (service call, {CEILING_BATCH} per transaction)")
    result["ceiling"] = ceiling(kind, url, n)
    dbs.drop(url)
    log(f"{kind.name}: ceiling {result['ceiling']['items_per_s']:,.0f} items/s")
    return result


def main(args: argparse.Namespace) -> int:
    n = args.items if args.items is not None else (QUICK_ITEMS if args.quick else DEFAULT_ITEMS)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KIND_SPECS]
    if unknown:
        raise SystemExit(f"unknown kinds: {unknown}; choose from {','.join(KINDS)}")
    serve_args = ["--score-interval", "0"] if serve_supports("--score-interval") else []
    report = Report("ingest", args.backend, {"items_per_kind": n, "kinds": kinds, "accounts_first": ACCOUNTS,
                                             "ceiling_batch": CEILING_BATCH, "quick": bool(args.quick)})  # fmt: skip
    started = time.perf_counter()
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        for name in kinds:
            report.details[name] = run_kind(run, KIND_SPECS[name], n, serve_args)
        report.details["databases"] = run.databases.info
    report.details["total_runtime_s"] = time.perf_counter() - started
    other = sum(report.details[k]["http"]["cpu"]["other_cpu_s"] for k in kinds)
    wall = sum(report.details[k]["http"]["cpu"]["wall_s"] for k in kinds)
    report.machine["other_load_cores_avg"] = other / wall if wall else None
    for name in kinds:
        d = report.details[name]
        batch = KIND_SPECS[name].batch
        report.add(
            f"{name}_push_items_per_s", f"push {name} ({batch}/request), 1 client", d["http"]["items_per_s"],
            f"{name}/s", baseline=d["ceiling"]["items_per_s"], baseline_label="in-process service, 100/tx",
        )  # fmt: skip
        report.add(
            f"{name}_push_p50_ms",
            f"push {name}: latency p50 at full speed",
            d["http"]["latency"]["p50_ms"],
            "ms",
        )
        report.add(
            f"{name}_push_p99_ms",
            f"push {name}: latency p99 at full speed",
            d["http"]["latency"]["p99_ms"],
            "ms",
        )
        paced = d["paced_half"]
        report.add(
            f"{name}_paced_p50_ms", f"push {name}: latency p50 at ~50 % load ({paced['requests_per_s']:.0f} req/s)",
            paced["latency"]["p50_ms"], "ms",
        )  # fmt: skip
        report.add(
            f"{name}_paced_p99_ms",
            f"push {name}: latency p99 at ~50 % load",
            paced["latency"]["p99_ms"],
            "ms",
        )
        if d["server_peak_rss_mb"] is not None:
            report.add(
                f"{name}_server_peak_rss_mb",
                f"server peak RSS after the {name} phases",
                d["server_peak_rss_mb"],
                "MiB",
            )
    path = report.write(args.results_dir)
    print(report.markdown())
    print()
    other_avg = report.machine["other_load_cores_avg"]
    print(
        f"Other processes kept {other_avg:.2f} of {report.machine['nproc']} cores busy on average during the HTTP pushes"
        + (" — a busy machine: treat the figures with care." if other_avg > 0.2 else ".")
    )
    print(f"results: {path}")
    log(f"done in {report.details['total_runtime_s']:.0f} s")
    return 0
