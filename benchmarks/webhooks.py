"""Webhooks: what the outbox costs a push, and how fast the workers deliver.

    python -m benchmarks webhooks [--backend sqlite|postgresql] [--accounts N] [--quick]

On one fresh database, one client, 100 accounts per request, `account.created` events:

1. a server with no delivery workers (`--webhook-workers 0`) and two workspaces: one without
   subscriptions (the baseline), one with 5 active subscriptions, where every account pushed
   becomes an event written in the push's transaction. The client pushes N accounts to each,
   alternating between them in rounds of ROUND accounts (so that the database's growth
   weighs on both alike). The figure is the subscribed workspace's throughput ÷ the
   baseline's (target ≥ 0.9).
2. that server stopped, one with the default workers started on the same database: a local
   receiver (a threaded HTTP server in this process, answering 204 with keep-alive) gets all
   5·N deliveries: events/s from its first arrival to its last, checked for none missing
   and none twice.
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.accounts import PUSH_PATH, push_bodies
from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    create_workspace_key,
    http_client,
    log,
)

DEFAULT_ACCOUNTS = 20_000
QUICK_ACCOUNTS = 4_000
ROUND = 2_000
SUBSCRIPTIONS = 5
FLAGS = ["--score-interval", "0", "--webhook-allow-private-targets"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        metavar="N",
        help=f"accounts per push phase (default {DEFAULT_ACCOUNTS:,})",
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (database, server logs)")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up mid-answer (a timeout) is expected here, not a traceback."""


class Receiver:
    """Counts deliveries by event id and subscription path; answers 204 at once."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.lock = threading.Lock()
        self.first_at: float | None = None
        self.last_at: float | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the workers reuse their connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = orjson.loads(body)["id"]
                now = time.perf_counter()
                with receiver.lock:
                    receiver.counts[(self.path, event_id)] += 1
                    receiver.first_at = receiver.first_at or now
                    receiver.last_at = now
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def push_rounds(base_url: str, keys: dict[str, str], n: int, prefix: str) -> dict[str, dict[str, Any]]:
    """Push n accounts to each workspace of `keys`, alternating every ROUND accounts; the time
    of each workspace's requests only."""
    clients = {name: http_client(base_url, key) for name, key in keys.items()}
    bodies = {name: push_bodies(f"{prefix}-{name}", n) for name in keys}
    spent = dict.fromkeys(keys, 0.0)
    per_round = ROUND // 100
    for start in range(0, len(next(iter(bodies.values()))), per_round):
        for name, client in clients.items():
            for body in bodies[name][start : start + per_round]:
                began = time.perf_counter()
                response = client.post(PUSH_PATH, content=body.content)
                spent[name] += time.perf_counter() - began
                if response.status_code != 200:
                    raise BenchmarkError(f"push answered {response.status_code}: {response.text[:300]}")
                created = orjson.loads(response.content)["data"]["summary"]["created"]
                if created != body.count:
                    raise BenchmarkError(f"push created {created} of {body.count}")
    for client in clients.values():
        client.close()
    return {name: {"accounts": n, "elapsed_s": spent[name], "accounts_per_s": n / spent[name]} for name in keys}


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    report = Report("webhooks", args.backend, {"accounts": n, "subscriptions": SUBSCRIPTIONS, "batch": 100})
    receiver = Receiver()
    try:
        with Run(args.backend, keep_temp=args.keep_temp) as run:
            url = run.databases.new("bench_webhooks")
            writer = run.server(url, name="api-only", extra_args=[*FLAGS, "--webhook-workers", "0"])
            keys = {"plain": create_workspace_key(url, "plain"), "hooked": create_workspace_key(url, "hooked")}
            with httpx.Client(base_url=f"{writer.base_url}/api/v1", headers={"X-Api-Key": keys["hooked"]}) as api:
                for number in range(SUBSCRIPTIONS):
                    created = api.post(
                        "/webhooks", json={"url": f"{receiver.url}/hook-{number}", "events": ["account.created"]}
                    )
                    if created.status_code != 200:
                        raise BenchmarkError(f"webhook not created: {created.text}")
            push_rounds(writer.base_url, keys, 10 * 100, "warm")
            log(f"push {n:,} accounts to each workspace: none / {SUBSCRIPTIONS} subscriptions, alternating")
            pushed = push_rounds(writer.base_url, keys, n, "timed")
            baseline, subscribed = pushed["plain"], pushed["hooked"]
            writer.stop()
            expected = (n + 10 * 100) * SUBSCRIPTIONS  # the warm-up's events too
            log(f"deliver {expected:,} events with the default workers")
            started = time.perf_counter()
            deliverer = run.server(url, name="delivering", extra_args=FLAGS)
            deadline = started + max(600.0, expected / 50)
            while receiver.received() < expected and time.perf_counter() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # anything delivered twice would arrive by now
            deliverer.stop()
            got = receiver.received()
            distinct = len(receiver.counts)
            twice = sum(1 for count in receiver.counts.values() if count > 1)
            span = (receiver.last_at or started) - started
            flowing = (receiver.last_at or started) - (receiver.first_at or started)
            delivery = {
                "expected": expected,
                "received": got,
                "distinct": distinct,
                "twice": twice,
                "elapsed_s_from_server_start": span,
                "elapsed_s_from_first_delivery": flowing,
                "events_per_s": distinct / flowing if flowing > 0 else None,
            }
    finally:
        receiver.close()
    report.details.update(baseline=baseline, subscribed=subscribed, delivery=delivery)
    report.add(
        "push_no_subscription", "push, a workspace without subscriptions", baseline["accounts_per_s"], "accounts/s"
    )
    report.add(
        "push_5_subscriptions",
        f"push, a workspace with {SUBSCRIPTIONS} active subscriptions (events written; no delivery meanwhile)",
        subscribed["accounts_per_s"],
        "accounts/s",
        baseline=baseline["accounts_per_s"],
        baseline_label="without (target ratio ≥ 0.9)",
    )
    report.add(
        "delivered_events_per_s",
        f"events delivered to a local receiver ({expected:,}, first to last arrival)",
        delivery["events_per_s"] or 0.0,
        "events/s",
    )
    path = report.write(args.results_dir)
    print(report.markdown())
    print(f"results: {path}")
    if distinct != expected or twice:
        raise BenchmarkError(f"delivery: {distinct:,} of {expected:,} events arrived, {twice} more than once")
    return 0
