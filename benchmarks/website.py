"""Website collector: `POST /collect` under load from a separate process, against a bare endpoint.

    python -m benchmarks website [--backend sqlite|postgresql] [--seconds S] [--quick]
                                 [--processes P] [--connections C]

Two phases in one run, each driven for S seconds by the same load generator:

1. the baseline: `bare_app` below (reads the body, answers 202 with no body) on the same
   uvicorn as abmhub (`python -m uvicorn benchmarks.website:bare_app`, httptools and uvloop);
2. `abmhub serve` (one process, no scoring, no webhook workers) on a fresh database, with a
   site for `www.bench.example` and an IP range `198.18.0.0/16,bench-corp.com` (RFC 2544's
   benchmarking network) so that every event is attributed.

The load generator is P processes (multiprocessing, spawn) with C keep-alive connections each,
one thread per connection, one request in flight per connection. Every request is what the
tracking script's `fetch` sends through a first-party proxy: Chrome's headers, `Content-Type:
text/plain`, `Origin: https://www.bench.example`, `X-Forwarded-For` one of 4,096 addresses of
the /16 (the server trusts 127.0.0.1 as proxy), and one page view a request with its path
varying. Requests are built before the clock starts; each thread walks the 4,096 addresses
from its own offset, so an address sends about events/s ÷ 4,096 a second, far below the
per-address limit (20 a second, bursts of 100): 429 answers are counted apart and must be 0.

Why 1 process × 16 connections by default (2 cores): a load process costs ~30 µs of CPU a
request, so one keeps even the bare endpoint's server core busy with about half a core of its
own; a second process only competes with the server for the same two cores (2 × 8 measured
within noise of 1 × 16, against both endpoints). Throughput plateaus from 8 connections (4:
about 15 % less); 16 leave headroom, and every connection more only adds queueing to latency.

Figures: events/s (= requests/s) of both, their ratio (target ≥ 0.5), events/s against the
target of 5,000, events per second of server CPU (what one busy core takes, whatever else the
machine did), client-side p50/p99, the server's CPU and peak RSS, the load generator's CPU.
After the abmhub phase, `GET /sites/:id/stats` must count every 202 as accepted (the buffer
is written every second); a lost event, an error or a 429 fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import httpx

from benchmarks.harness import (
    BACKENDS,
    REPO_ROOT,
    RESULTS_DIR,
    BenchmarkError,
    CpuMeter,
    Report,
    Run,
    free_port,
    latency_summary,
    log,
    proc_status_mb,
    python_env,
)
from benchmarks.wire import WireClient

DEFAULT_SECONDS = 15.0
QUICK_SECONDS = 4.0
DEFAULT_PROCESSES = 1
DEFAULT_CONNECTIONS = 16
WARMUP_REQUESTS = 50  # per connection, before the clock starts (counted among the 202s)
SETTLE_S = 2.0  # the collector writes its buffer every second
SETTLE_MAX_S = 10.0
TARGET_EVENTS_PER_S = 5_000
TARGET_RATIO = 0.5
BUSY_MACHINE_CORES = 0.25  # other processes' average load above which the report warns

HOSTNAME = "www.bench.example"
ORIGIN = f"https://{HOSTNAME}"
DOMAIN = "bench-corp.com"
NETWORK = "198.18.0.0/16"
ADDRESSES = 4096  # 198.18.0.0 - 198.18.15.255
# 13 paths (prime to 4,096), so that an address sees every path in turn.
PATHS = (
    "/",
    "/pricing",
    "/docs/getting-started",
    "/docs/api/accounts",
    "/blog/why-abm-works",
    "/blog/intent-data-in-2026",
    "/case-studies/acme",
    "/product/scoring",
    "/compare/bench-vs-others",
    "/contact",
    "/careers/backend-engineer",
    "/integrations/salesforce",
    "/about",
)
# What Chrome 126 on Windows sends with the script's `fetch(…, {keepalive: true})`.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
BROWSER_HEADERS = (
    ("Connection", "keep-alive"),
    ("sec-ch-ua", '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"'),
    ("Content-Type", "text/plain"),
    ("sec-ch-ua-mobile", "?0"),
    ("User-Agent", USER_AGENT),
    ("sec-ch-ua-platform", '"Windows"'),
    ("Accept", "*/*"),
    ("Origin", ORIGIN),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Dest", "empty"),
    ("Referer", f"{ORIGIN}/"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds of load per phase (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_SECONDS:g} s per phase")
    parser.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        metavar="P",
        help=f"load generator processes (default {DEFAULT_PROCESSES})",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        metavar="C",
        help=f"keep-alive connections (one thread each) per process (default {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (database, server log)")


# --- the baseline -----------------------------------------------------------------------------


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least any collector can do: read the request body, answer 202 with no body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


# --- the requests ---------------------------------------------------------------------------


def visitor_address(index: int) -> str:
    return f"198.18.{(index >> 8) & 255}.{index & 255}"


def collect_requests(host: str, site_key: str) -> list[bytes]:
    """Every request the load generator sends, whole (head and body): one per address."""
    head = "".join(f"{name}: {value}\r\n" for name, value in BROWSER_HEADERS)
    requests = []
    for index in range(ADDRESSES):
        body = b'{"k":"%s","n":"pageview","u":"%s%s"}' % (
            site_key.encode(),
            ORIGIN.encode(),
            PATHS[index % len(PATHS)].encode(),
        )
        requests.append(
            (
                f"POST /collect HTTP/1.1\r\nHost: {host}\r\n{head}"
                f"X-Forwarded-For: {visitor_address(index)}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            + body
        )
    return requests


class PreparedClient(WireClient):
    """WireClient sending a request built beforehand: each request has its own
    `X-Forwarded-For`, which WireClient's fixed headers cannot say. The answer is read by
    WireClient's own parser."""

    def send_prepared(self, raw: bytes) -> int:
        """Send one whole request and read its answer; its status."""
        for attempt in (1, 2):
            reused = self._sock is not None
            if not reused:
                self.connect()
            assert self._sock is not None
            self._buf.clear()
            self._pos = 0
            self._first_byte_s = None
            try:
                self._sock.sendall(raw)
                response, keep = self._read_response("POST")
            except OSError as exc:
                self.close()
                # As WireClient.request: the server closed an idle connection as we reused it.
                if attempt == 1 and reused and self._first_byte_s is None and not isinstance(exc, TimeoutError):
                    continue
                raise
            if not keep:
                self.close()
            return response.status_code
        raise AssertionError("unreachable")


# --- the load generator (runs in spawned processes) -----------------------------------------


def load_process(
    number: int,
    base_url: str,
    site_key: str,
    connections: int,
    total_connections: int,
    seconds: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One load generator process: `connections` threads, each on its own connection; warms
    up, says it is ready, waits for `go`, sends for `seconds`, puts its result on `results`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    host = base_url.removeprefix("http://")
    pool = collect_requests(host, site_key)
    clients = [PreparedClient(base_url, timeout=30) for _ in range(connections)]
    outcomes: list[dict[str, Any]] = [{} for _ in range(connections)]
    warmed = threading.Barrier(connections + 1)
    start = threading.Event()
    window: dict[str, float] = {}

    def drive(slot: int) -> None:
        client = clients[slot]
        size = len(pool)
        # Threads of all processes start spread evenly over the addresses.
        position = (number * connections + slot) * size // total_connections
        warm: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        try:
            for _ in range(WARMUP_REQUESTS):
                warm[client.send_prepared(pool[position])] += 1
                position = (position + 1) % size
        except OSError as exc:
            errors[_describe(exc)] += 1
        finally:
            warmed.wait()  # even on an error: the others must not wait for this thread forever
        start.wait()
        deadline = window["deadline"]
        latencies = array("d")
        statuses: Counter[int] = Counter()
        clock = time.perf_counter
        last = clock()
        while True:
            began = clock()
            if began >= deadline:
                break
            raw = pool[position]
            position = position + 1 if position + 1 < size else 0
            try:
                status = client.send_prepared(raw)
            except OSError as exc:  # counted; the next request opens a new connection
                errors[_describe(exc)] += 1
                continue
            last = clock()
            latencies.append(last - began)
            statuses[status] += 1
        client.close()
        outcomes[slot] = {"warmup": warm, "statuses": statuses, "errors": errors, "latencies": latencies, "last": last}

    threads = [threading.Thread(target=drive, args=(slot,), daemon=True) for slot in range(connections)]
    for thread in threads:
        thread.start()
    warmed.wait()
    ready.put(number)
    go.wait()
    started = time.perf_counter()
    window["deadline"] = started + seconds
    start.set()
    for thread in threads:
        thread.join()
    latencies = array("d")
    for outcome in outcomes:
        latencies.extend(outcome.get("latencies", ()))
    results.put(
        {
            "process": number,
            "connections": connections,
            "started": started,
            "finished": max((o["last"] for o in outcomes if o), default=started),
            "warmup": dict(sum((o.get("warmup", Counter()) for o in outcomes), Counter())),
            "statuses": dict(sum((o.get("statuses", Counter()) for o in outcomes), Counter())),
            "errors": dict(sum((o.get("errors", Counter()) for o in outcomes), Counter())),
            "latencies": latencies.tobytes(),
            "failed_threads": sum(1 for o in outcomes if not o),
        }
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _next(queue: Any, workers: list[Any], timeout: float, failure: str) -> Any:
    """The next item of `queue`; BenchmarkError as soon as a worker has died or `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return queue.get(timeout=0.5)
        except Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise BenchmarkError(
                    f"a load generator process {failure} (exit codes {[w.exitcode for w in workers]})"
                ) from None


def drive_load(
    base_url: str,
    site_key: str,
    *,
    processes: int,
    connections: int,
    seconds: float,
    groups: dict[str, Callable[[], list[int]]],
) -> dict[str, Any]:
    """Run the load generator against `base_url` for `seconds`. The CPU of `groups` (the server,
    PostgreSQL) and of the load generator's processes ("load") is metered over that window."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(
            target=load_process,
            args=(n, base_url, site_key, connections, processes * connections, seconds, ready, go, results),
            daemon=True,
        )
        for n in range(processes)
    ]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:
            _next(ready, workers, 120, "did not get ready")
        meter = CpuMeter({**groups, "load": lambda: [w.pid for w in workers if w.pid is not None]})
        go.set()
        meter.start()
        time.sleep(seconds)
        cpu = meter.stop()
        parts = [_next(results, workers, seconds + 60, "gave no result") for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=10)
    latencies = array("d")
    for part in parts:
        latencies.frombytes(part["latencies"])
    statuses: Counter[int] = Counter()
    warmup: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
        warmup.update(part["warmup"])
        errors.update(part["errors"])
    started = min(p["started"] for p in parts)
    elapsed = max(p["finished"] for p in parts) - started
    answered = sum(statuses.values())
    accepted = statuses.get(202, 0)
    return {
        "processes": processes,
        "connections_per_process": connections,
        "seconds": seconds,
        "elapsed_s": elapsed,
        "requests": answered,
        "requests_per_s": answered / elapsed if elapsed > 0 else 0.0,
        "accepted_per_s": accepted / elapsed if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "warmup_statuses": {str(k): v for k, v in sorted(warmup.items())},
        "errors": dict(errors),
        "error_count": sum(errors.values()) + sum(v for k, v in (statuses + warmup).items() if k not in (202, 429)),
        "rate_limited": statuses.get(429, 0),
        "failed_threads": sum(p["failed_threads"] for p in parts),
        "latency": latency_summary(latencies),
        "cpu": cpu,
        "load_cpu_s": cpu["load_cpu_s"],
        "load_cores": cpu["load_cpu_s"] / cpu["wall_s"],
    }


# --- the two servers --------------------------------------------------------------------------


def start_bare_app(run: Run) -> tuple[subprocess.Popen[bytes], str]:
    """`bare_app` on uvicorn, started as benchmarks/accounts.py starts floor_app; stopped by the run."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.website:bare_app", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT,
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    run.stack.callback(stop)
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=base_url, timeout=5) as probe:
        while True:
            try:
                if probe.post("/collect", content=b"{}").status_code == 202:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise BenchmarkError("the bare endpoint (benchmarks.website:bare_app) did not start")
            time.sleep(0.1)
    return process, base_url


def set_up_site(api: httpx.Client) -> dict[str, str]:
    """A site for HOSTNAME and an IP range for the visitors' /16; its id and key."""
    created = api.post("/sites", json={"name": "Bench site", "hostnames": [HOSTNAME]})
    if created.status_code != 200:
        raise BenchmarkError(f"POST /sites answered {created.status_code}: {created.text[:300]}")
    site = created.json()["data"]
    ranges = api.put("/ip-ranges", content=f"cidr,domain\n{NETWORK},{DOMAIN}\n", headers={"Content-Type": "text/csv"})
    if ranges.status_code != 200:
        raise BenchmarkError(f"PUT /ip-ranges answered {ranges.status_code}: {ranges.text[:300]}")
    return {"site_id": site["siteId"], "site_key": site["siteKey"]}


def settled_stats(api: httpx.Client, site_id: str, expected: int) -> dict[str, Any]:
    """The site's stats once `accepted` reaches `expected` (or SETTLE_MAX_S has passed)."""
    time.sleep(SETTLE_S)
    waited = SETTLE_S
    while True:
        answer = api.get(f"/sites/{site_id}/stats")
        if answer.status_code != 200:
            raise BenchmarkError(f"GET /sites/{site_id}/stats answered {answer.status_code}: {answer.text[:300]}")
        stats = answer.json()["data"]
        if stats["events"].get("accepted", 0) >= expected or waited >= SETTLE_MAX_S:
            stats["waited_s"] = waited
            return stats
        time.sleep(0.5)
        waited += 0.5


# --- the run ----------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    seconds = args.seconds if args.seconds is not None else (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    if args.processes < 1 or args.connections < 1:
        raise BenchmarkError("--processes and --connections must be at least 1")
    config = {
        "seconds": seconds,
        "load_processes": args.processes,
        "connections_per_process": args.connections,
        "addresses": ADDRESSES,
        "paths": len(PATHS),
        "events_per_request": 1,
        "warmup_requests_per_connection": WARMUP_REQUESTS,
    }
    report = Report("website", args.backend, config)
    load = {"processes": args.processes, "connections": args.connections, "seconds": seconds}
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        log(f"bare endpoint: {args.processes} load process(es) × {args.connections} connections, {seconds:g} s")
        bare_process, bare_url = start_bare_app(run)
        bare = drive_load(bare_url, "bare", **load, groups={"server": lambda: [bare_process.pid]})
        bare["server_memory"] = {
            "rss_mb": proc_status_mb(bare_process.pid, "VmRSS"),
            "peak_mb": proc_status_mb(bare_process.pid, "VmHWM"),
        }
        log(f"bare: {bare['requests_per_s']:,.0f} requests/s; statuses {bare['statuses']}")
        bare_process.terminate()
        bare_process.wait(timeout=10)

        url = run.databases.new("bench_website")
        server = run.server(url, name="abmhub", extra_args=["--score-interval", "0", "--webhook-workers", "0"])
        if server.key is None:
            raise BenchmarkError(f"abmhub serve printed no API key on an empty database:\n{server.log_tail()}")
        with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": server.key}, timeout=60) as api:
            site = set_up_site(api)
            log(
                f"abmhub POST /collect: {args.processes} load process(es) × {args.connections} connections, {seconds:g} s"
            )
            groups = {"server": lambda: [server.pid]}
            if args.backend == "postgresql":
                groups["postgres"] = run.databases.postgres_pids
            abmhub = drive_load(server.base_url, site["site_key"], **load, groups=groups)
            abmhub["server_memory"] = server.memory_mb()
            log(f"abmhub: {abmhub['requests_per_s']:,.0f} events/s; statuses {abmhub['statuses']}")
            sent_202 = abmhub["statuses"].get("202", 0) + abmhub["warmup_statuses"].get("202", 0)
            sent_429 = abmhub["statuses"].get("429", 0) + abmhub["warmup_statuses"].get("429", 0)
            stats = settled_stats(api, site["site_id"], sent_202)
        abmhub["stats"] = {k: stats.get(k) for k in ("events", "visitors", "matched", "unmatched", "waited_s")}
        abmhub["answered_202"] = sent_202
        abmhub["answered_429"] = sent_429
        report.details["database"] = run.databases.info
        server.stop()
        run.databases.drop(url)
    report.details["bare"] = bare
    report.details["abmhub"] = abmhub
    add_figures(report, bare, abmhub)
    wall = bare["cpu"]["wall_s"] + abmhub["cpu"]["wall_s"]
    report.machine["other_load_cores_avg"] = (bare["cpu"]["other_cpu_s"] + abmhub["cpu"]["other_cpu_s"]) / wall
    path = report.write(args.results_dir)
    print(report.markdown())
    print(
        f"Load generator: {args.processes} process(es) × {args.connections} keep-alive connections (a thread each); "
        f"it used {bare['load_cores']:.2f} cores against the bare endpoint, {abmhub['load_cores']:.2f} against abmhub. "
        f"Other processes kept {report.machine['other_load_cores_avg']:.2f} cores busy on average."
    )
    if report.machine["other_load_cores_avg"] > BUSY_MACHINE_CORES:
        print(
            "The machine was busy with other work: events/s and latencies are understated; the events per server "
            "CPU-second are not."
        )
    print(f"results: {path}")
    check(bare, abmhub)
    return 0


def add_figures(report: Report, bare: dict[str, Any], abmhub: dict[str, Any]) -> None:
    events, floor = abmhub["accepted_per_s"], bare["requests_per_s"]
    report.add(
        "collect_events_per_s", "POST /collect, events/s (1 event a request)", events, "events/s",
        baseline=floor, baseline_label="bare 202 endpoint", target_ratio=TARGET_RATIO,
    )  # fmt: skip
    report.add("bare_requests_per_s", "bare 202 endpoint, requests/s (same uvicorn, same load)", floor, "requests/s")
    report.add(
        "collect_events_per_s_vs_target", "POST /collect, events/s against the target", events, "events/s",
        baseline=TARGET_EVENTS_PER_S, baseline_label="target",
    )  # fmt: skip
    server_cpu = abmhub["cpu"]["server_cpu_s"]
    report.add(
        "collect_events_per_server_cpu_s", "POST /collect, events per server CPU-second (one core's capacity)",
        abmhub["requests"] / server_cpu if server_cpu else 0.0, "events/s", baseline=TARGET_EVENTS_PER_S,
        baseline_label="target", note="independent of how much CPU the server got on a shared machine",
    )  # fmt: skip
    for q in ("p50", "p99"):
        report.add(
            f"collect_latency_{q}", f"POST /collect latency {q} (client-side)", abmhub["latency"][f"{q}_ms"], "ms",
            baseline=bare["latency"][f"{q}_ms"], baseline_label="bare",
        )  # fmt: skip
    for name, result in (("collect", abmhub), ("bare", bare)):
        cpu = result["cpu"]
        report.add(
            f"{name}_server_cores", f"{'abmhub' if name == 'collect' else 'bare endpoint'} server CPU, cores busy",
            cpu["server_cpu_s"] / cpu["wall_s"], "cores",
        )  # fmt: skip
    report.add(
        "collect_server_cpu_us_per_event", "abmhub server CPU per event", 1e6 * abmhub["cpu"]["server_cpu_s"] /
        max(1, abmhub["requests"]), "µs", baseline=1e6 * bare["cpu"]["server_cpu_s"] / max(1, bare["requests"]),
        baseline_label="bare",
    )  # fmt: skip
    if "postgres_cpu_s" in abmhub["cpu"]:
        report.add(
            "collect_postgres_cores", "PostgreSQL CPU during the abmhub phase, cores busy",
            abmhub["cpu"]["postgres_cpu_s"] / abmhub["cpu"]["wall_s"], "cores",
        )  # fmt: skip
    report.add("collect_server_peak_mb", "abmhub server peak RSS", abmhub["server_memory"]["peak_mb"] or 0.0, "MiB")
    report.add("collect_load_cores", "load generator CPU (abmhub phase), cores", abmhub["load_cores"], "cores")
    report.add("collect_rate_limited", "429 answers (abmhub phase; must be 0)", abmhub["rate_limited"], "")
    report.add("collect_errors", "errors (abmhub phase)", abmhub["error_count"], "")
    report.add("bare_errors", "errors (bare phase)", bare["error_count"], "")
    report.add(
        "collect_events_stored", "events counted accepted in GET /sites/:id/stats",
        abmhub["stats"]["events"].get("accepted", 0), "events", baseline=abmhub["answered_202"],
        baseline_label="202 answers",
    )  # fmt: skip


def check(bare: dict[str, Any], abmhub: dict[str, Any]) -> None:
    """Fail the run (exit 1) on errors, 429s or lost events: the figures would not mean what they say."""
    problems = []
    for name, result in (("bare", bare), ("abmhub", abmhub)):
        if result["error_count"] or result["failed_threads"]:
            problems.append(
                f"{name}: {result['error_count']} errors, {result['failed_threads']} failed threads "
                f"(statuses {result['statuses']}, {result['errors']})"
            )
    if abmhub["answered_429"]:
        problems.append(f"abmhub: {abmhub['answered_429']} answers 429: the rate limit was measured, not /collect")
    events = abmhub["stats"]["events"]
    if events.get("accepted", 0) != abmhub["answered_202"]:
        problems.append(
            f"abmhub: {abmhub['answered_202']:,} answers 202 but {events.get('accepted', 0):,} events accepted "
            f"after {abmhub['stats']['waited_s']:g} s (stats {events})"
        )
    if problems:
        raise BenchmarkError("; ".join(problems))
