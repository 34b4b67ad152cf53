"""Delta sync benchmark: 1,000 changed accounts among N, over HTTP.

    python -m benchmarks delta [--backend sqlite|postgresql] [--accounts N] [--quick]

On a fresh database: N accounts pushed (untimed); a first page gives the pass's
`syncTimestamp`; 1,000 accounts spread over the whole set are changed (upsert pushes with a
new name); then a delta pass `GET /api/v1/accounts?lastSync=<stamp>&limit=1000` is timed:
time to first byte (the first byte of the first page's answer received), first page
complete, and the whole pass. The pass must return exactly the 1,000 changed accounts.
Repeated REPEATS times (the changes stay the same; every pass reads them again). Baseline:
a full pass of the N accounts with the same page size, in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.accounts import PUSH_PATH, account_item, check_list, push_bodies
from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    http_client,
    log,
    percentile,
    serve_supports,
)
from benchmarks.wire import WireClient

DEFAULT_ACCOUNTS = 100_000
QUICK_ACCOUNTS = 10_000
CHANGED = 1_000
LIMIT = 1000
REPEATS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        metavar="N",
        help=f"accounts in the workspace (default {DEFAULT_ACCOUNTS:,})",
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases, server logs)")


def timed_pass(client: WireClient, last_sync: str | None) -> dict[str, Any]:
    """One pass with page size LIMIT: time to first byte, first page, whole pass; rows seen."""
    base = f"{PUSH_PATH}?limit={LIMIT}" + (f"&lastSync={last_sync}" if last_sync else "")
    started = time.perf_counter()
    response = client.get(base)
    first_page = time.perf_counter() - started
    ttfb = response.first_byte_s - started  # the first byte of the answer (status line) arrived
    data = check_list(response)
    seen = [row["domain"] for row in data["data"]]
    while data["hasNextPage"]:
        data = check_list(client.get(f"{base}&cursor={data['nextCursor']}"))
        seen.extend(row["domain"] for row in data["data"])
    total = time.perf_counter() - started
    return {"ttfb_s": ttfb, "first_page_s": first_page, "total_s": total, "rows": len(seen), "_domains": seen}


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    if n < 2 * CHANGED:
        raise SystemExit(f"--accounts must be at least {2 * CHANGED}")
    serve_args = ["--score-interval", "0"] if serve_supports("--score-interval") else []
    report = Report("delta", args.backend, {"accounts": n, "changed": CHANGED, "limit": LIMIT, "repeats": REPEATS})
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        url = run.databases.new("delta")
        server = run.server(url, name="server-delta", extra_args=serve_args)
        if server.key is None:
            raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{server.log_tail()}")
        with contextlib.closing(http_client(server.base_url, server.key, timeout=120.0)) as client:
            log(f"push {n:,} accounts (untimed)")
            for body in push_bodies("acme", n):
                response = client.post(PUSH_PATH, content=body.content)
                if response.status_code != 200:
                    raise BenchmarkError(f"push → HTTP {response.status_code}: {response.text[:300]}")
            stamp = check_list(client.get(f"{PUSH_PATH}?limit=1"))["syncTimestamp"]
            step = n // CHANGED
            changed = [i * step for i in range(CHANGED)]
            log(f"change {CHANGED:,} accounts spread over the set")
            for start in range(0, CHANGED, 100):
                items = [{**account_item("acme", i), "name": f"Renamed {i}"} for i in changed[start : start + 100]]
                response = client.post(PUSH_PATH, content=orjson.dumps({"accounts": items, "upsert": True}))
                if response.status_code != 200:
                    raise BenchmarkError(f"change → HTTP {response.status_code}: {response.text[:300]}")
            expected = {account_item("acme", i)["domain"] for i in changed}
            timed_pass(client, stamp)  # warm-up
            meter = run.cpu_meter(server)
            meter.start()
            deltas = []
            for _ in range(REPEATS):
                result = timed_pass(client, stamp)
                if set(result.pop("_domains")) != expected or result["rows"] != CHANGED:
                    raise BenchmarkError(f"delta pass returned {result['rows']} rows, expected the {CHANGED} changed")
                deltas.append(result)
            log("full pass (baseline)")
            full = timed_pass(client, None)
            full.pop("_domains")
            if full["rows"] != n:
                raise BenchmarkError(f"full pass returned {full['rows']} rows, expected {n}")
            cpu = meter.stop()
        server.stop()
    report.details.update({"delta_passes": deltas, "full_pass": full, "cpu": cpu})
    report.machine["other_load_cores_avg"] = cpu["other_cpu_s"] / cpu["wall_s"] if cpu["wall_s"] else None
    median = {k: percentile([d[k] for d in deltas], 50) * 1000 for k in ("ttfb_s", "first_page_s", "total_s")}
    report.add("delta_ttfb_ms", f"delta pass, {CHANGED:,} changed of {n:,}: time to first byte (median)",
               median["ttfb_s"], "ms", baseline=full["ttfb_s"] * 1000, baseline_label="full pass")  # fmt: skip
    report.add("delta_first_page_ms", "delta pass: first page of 1,000 complete (median)", median["first_page_s"], "ms",
               baseline=full["first_page_s"] * 1000, baseline_label="full pass")  # fmt: skip
    report.add("delta_total_ms", "delta pass: all changed accounts (median)", median["total_s"], "ms",
               baseline=full["total_s"] * 1000, baseline_label=f"full pass of {n:,}")  # fmt: skip
    path = report.write(args.results_dir)
    print(report.markdown())
    print(f"Other processes kept {report.machine['other_load_cores_avg']:.2f} cores busy on average during the passes.")
    print(f"results: {path}")
    return 0
