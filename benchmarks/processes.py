"""One vs two server processes on one database: throughput and "database is locked".

    python -m benchmarks processes [--backend sqlite|postgresql] [--accounts N] [--quick]

Three phases, each on a fresh database, each pushing N accounts (100 per request) from two
client threads of this process:

1. one `abmhub serve` process, both clients on it;
2. two `abmhub serve` processes on the same database (the same SQLite file), one client
   on each;
3. one `abmhub serve --workers 2` (two server processes sharing one port), both clients on
   it: the kernel hands each connection to one of them.

Every response is kept: the run counts HTTP errors and answers that mention "database is
locked" instead of stopping at the first one, and fails (exit 1) at the end if there was
any. The figures are phase 2's and phase 3's accounts/s ÷ phase 1's.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.accounts import BATCH, PUSH_PATH, push_bodies
from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    CpuMeter,
    Report,
    Run,
    http_client,
    latency_summary,
    log,
    serve_supports,
)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a `serve --workers` parent and its server processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


DEFAULT_ACCOUNTS = 50_000
QUICK_ACCOUNTS = 4_000
CLIENTS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts", type=int, default=None, metavar="N", help=f"accounts per phase (default {DEFAULT_ACCOUNTS:,})"
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases, server logs)")


def push_two_clients(base_urls: list[str], key: str, n: int, prefix: str) -> dict[str, Any]:
    """Client k pushes every CLIENTS-th body to base_urls[k % len(base_urls)]; nothing stops on an error."""
    bodies = push_bodies(prefix, n)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    locked = 0
    failed_items = 0
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)
    sessions = [http_client(base_urls[k % len(base_urls)], key) for k in range(CLIENTS)]

    def worker(k: int) -> None:
        nonlocal locked, failed_items
        client = sessions[k]
        barrier.wait()
        for body in bodies[k::CLIENTS]:
            t0 = time.perf_counter()
            response = client.post(PUSH_PATH, content=body.content)
            took = time.perf_counter() - t0
            text = response.text
            bad_items = 0
            if response.status_code == 200:
                summary = orjson.loads(response.content)["data"]["summary"]
                bad_items = body.count - summary.get("created", 0)
            with lock:
                latencies.append(took)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                locked += "database is locked" in text
                failed_items += bad_items

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    return {
        "accounts": n,
        "servers": len(base_urls),
        "clients": CLIENTS,
        "elapsed_s": elapsed,
        "accounts_per_s": n / elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "locked_answers": locked,
        "failed_items": failed_items,
        "latency": latency_summary(latencies),
    }


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    serve_args = ["--score-interval", "0"] if serve_supports("--score-interval") else []
    report = Report("processes", args.backend, {"accounts": n, "batch": BATCH, "clients": CLIENTS})
    phases = [("servers_1", 1, 1), ("servers_2", 2, 1)]
    if serve_supports("--workers"):
        phases.append(("workers_2", 1, 2))
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        for phase, servers, workers in phases:
            url = run.databases.new(f"processes_{phase}")
            extra = [*serve_args, "--workers", str(workers)] if workers > 1 else serve_args
            first = run.server(url, name=f"{phase}-a", extra_args=extra)
            if first.key is None:
                raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{first.log_tail()}")
            started = [first]
            if servers == 2:
                started.append(run.server(url, name=f"{phase}-b", extra_args=serve_args))
            urls = [s.base_url for s in started]
            push_two_clients(urls, first.key, 10 * BATCH, "warm")
            what = f"{servers} server process(es)" if workers == 1 else f"serve --workers {workers}"
            log(f"{what}: push {n:,} accounts, {CLIENTS} clients")
            groups = {"server": lambda started=started: [p for s in started for p in process_tree(s.pid)]}
            if args.backend == "postgresql":
                groups["postgres"] = run.databases.postgres_pids
            meter = CpuMeter(groups)
            meter.start()
            result = push_two_clients(urls, first.key, n, "acme")
            result["cpu"] = meter.stop()
            result["workers"] = workers
            log(f"{result['accounts_per_s']:,.0f} accounts/s; statuses {result['statuses']}")
            report.details[phase] = result
            for server in started:
                server.stop()
            run.databases.drop(url)
    one, two = report.details["servers_1"], report.details["servers_2"]
    report.add(
        "push_1_server_accounts_per_s", f"push, 1 server process, {CLIENTS} clients", one["accounts_per_s"],
        "accounts/s",
    )  # fmt: skip
    report.add(
        "push_2_servers_accounts_per_s", f"push, 2 server processes on one database, {CLIENTS} clients",
        two["accounts_per_s"], "accounts/s", baseline=one["accounts_per_s"], baseline_label="1 process",
    )  # fmt: skip
    results = [("1", "1 process", one), ("2", "2 processes", two)]
    if "workers_2" in report.details:
        workers = report.details["workers_2"]
        report.add(
            "push_workers_2_accounts_per_s", f"push, serve --workers 2 (one port), {CLIENTS} clients",
            workers["accounts_per_s"], "accounts/s", baseline=one["accounts_per_s"], baseline_label="1 process",
        )  # fmt: skip
        results.append(("workers_2", "serve --workers 2", workers))
    for key, label, result in results:
        report.add(f"p99_{key}", f"push latency p99, {label}", result["latency"]["p99_ms"], "ms")
        report.add(f"locked_{key}", f'"database is locked" answers, {label}', result["locked_answers"], "")
        errors = sum(v for k, v in result["statuses"].items() if k != "200")
        report.add(f"errors_{key}", f"non-200 answers, {label}", errors, "")
    other = sum(r["cpu"]["other_cpu_s"] for _, _, r in results)
    wall = sum(r["cpu"]["wall_s"] for _, _, r in results)
    report.machine["other_load_cores_avg"] = other / wall if wall else None
    path = report.write(args.results_dir)
    print(report.markdown())
    print(f"Other processes kept {report.machine['other_load_cores_avg']:.2f} cores busy on average during the pushes.")
    print(f"results: {path}")
    bad = [
        (key, r) for key, _, r in results if r["locked_answers"] or r["failed_items"] or set(r["statuses"]) != {"200"}
    ]
    if bad:
        raise BenchmarkError(f"errors under load: {[(key, r['statuses'], r['failed_items']) for key, r in bad]}")
    return 0
