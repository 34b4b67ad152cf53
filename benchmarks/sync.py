"""`abmhub sync` benchmark: push and pull N accounts through the CLI, in constant memory.

    python -m benchmarks sync [--backend sqlite|postgresql] [--accounts N] [--quick]

What a user runs, timed end to end: `abmhub sync push accounts FILE.csv` (a generated CSV
of N accounts with tags and a custom field, streamed through the SDK in chunks of 100),
then `abmhub sync pull accounts --state S --out FILE.jsonl` (a full delta-sync pass), then
1% of the accounts change and a second pull fetches only those.

Each command is a child process; its peak RSS comes from the kernel (`wait4` rusage), its
CPU time too. The same steps run first with N/10 accounts: a peak RSS that does not grow
with N is the constant-memory claim, and the ratio column shows it (N run / N/10 run).
Server throughput is accounts per second of wall time while the command ran, with the
server's (and PostgreSQL's) CPU seconds beside it.

Every item not `created`, a wrong record count, or a non-zero exit fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    Server,
    log,
    proc_status_mb,
    python_env,
    serve_supports,
)

DEFAULT_ACCOUNTS = 100_000
QUICK_ACCOUNTS = 5_000
SMALL_FRACTION = 10  # the constant-memory comparison runs N / 10 first
CHANGED_FRACTION = 0.01


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts", type=int, default=None, metavar="N", help=f"accounts (default {DEFAULT_ACCOUNTS:,})"
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases, files, logs)")


def write_csv(path: Path, prefix: str, n: int) -> int:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Website", "Company", "CRM Id", "Tags", "Tier"])
        for i in range(n):
            writer.writerow([f"https://www.{prefix}-{i}.com/", f"{prefix.title()} {i}", f"crm-{prefix}-{i}", "bench;sync", ("gold", "silver", "bronze")[i % 3]])  # fmt: skip
    return path.stat().st_size


def run_cli(args: list[str], server: Server, workdir: Path, name: str, meter: Any) -> dict[str, Any]:
    """Run `python -m abmhub ARGS` to completion; wall time, peak RSS and CPU from the kernel."""
    env = {**python_env(), "ABMHUB_BASE_URL": server.base_url, "ABMHUB_API_KEY": server.key or "", "COLUMNS": "160"}
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        meter.start()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "abmhub", *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        # The peak RSS is the child's own VmHWM, polled while it runs: the kernel's ru_maxrss
        # survives exec, so it also counts the forked copy of this (large, under `all`) process.
        peak_kb = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, int((proc_status_mb(proc.pid, "VmHWM") or 0) * 1024))
            time.sleep(0.01)
        wall = time.perf_counter() - started
        cpu = meter.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchmarkError(
            f"abmhub {' '.join(args)} exited {proc.returncode}:\n{out_path.read_text()[-2000:]}\n{err_path.read_text()[-2000:]}"
        )
    return {
        "wall_s": wall,
        "peak_rss_mb": peak_kb / 1024,
        "cli_cpu_s": usage.ru_utime + usage.ru_stime,
        "server_cpu_s": cpu.get("server_cpu_s"),
        "postgres_cpu_s": cpu.get("postgres_cpu_s"),
        "other_cpu_s": cpu.get("other_cpu_s"),
        "stdout": out_path.read_text(),
    }


def table_value(stdout: str, row: str) -> str:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0] == row:
            return cells[1]
    raise BenchmarkError(f"no '{row}' in the summary:\n{stdout}")


def count(text: str) -> int:
    return int(text.replace(",", ""))


def one_size(run: Run, n: int, backend: str) -> dict[str, Any]:
    """Push n accounts, pull them all, change 1 %, pull the changes; on a fresh database."""
    from abmhub.client import RecotapClient

    workdir = run.workdir
    url = run.databases.new(f"sync_{n}")
    serve_args = ["--score-interval", "0"] if serve_supports("--score-interval") else []
    server = run.server(url, name=f"server-{n}", extra_args=serve_args)
    if server.key is None:
        raise BenchmarkError("the server printed no key")
    meter = run.cpu_meter(server)
    result: dict[str, Any] = {"accounts": n}
    with RecotapClient(server.base_url, server.key) as client:
        client.create_custom_field("Tier", "singleLineText")
        source = workdir / f"accounts-{n}.csv"
        result["csv_bytes"] = write_csv(source, "bench", n)
        log(f"{n:,}: sync push ({result['csv_bytes'] / 1e6:.1f} MB CSV)")
        mapping = ["--map", "Website=domain", "--map", "Company=name", "--map", "CRM Id=externalId",
                   "--map", "Tags=tags", "--map", "Tier=customFields.TIER_C"]  # fmt: skip
        push = run_cli(["sync", "push", "accounts", str(source), *mapping], server, workdir, f"push-{n}", meter)
        if count(table_value(push["stdout"], "created")) != n:
            raise BenchmarkError(f"push: {table_value(push['stdout'], 'created')} created, expected {n}")
        result["push"] = push

        state, full_out = workdir / f"state-{n}.json", workdir / f"accounts-{n}.jsonl"
        log(f"{n:,}: sync pull (full)")
        pull = run_cli(
            ["sync", "pull", "accounts", "--state", str(state), "--out", str(full_out)],
            server,
            workdir,
            f"pull-{n}",
            meter,
        )
        with full_out.open("rb") as handle:
            lines = sum(1 for _ in handle)
        if lines != n:
            raise BenchmarkError(f"pull: {lines} records, expected {n}")
        result["pull"] = pull
        result["pull_bytes"] = full_out.stat().st_size

        changed = max(1, int(n * CHANGED_FRACTION))
        step = n // changed
        report = client.push_accounts(
            ({"domain": f"bench-{i}.com", "name": f"Changed {i}"} for i in range(0, n, step)), upsert=True
        )
        if report.summary.updated != report.summary.total:
            raise BenchmarkError(f"changing accounts: {report.summary}")
        log(f"{n:,}: sync pull (delta after {report.summary.total:,} changes)")
        delta_out = workdir / f"changes-{n}.csv"
        delta = run_cli(
            ["sync", "pull", "accounts", "--state", str(state), "--out", str(delta_out)],
            server,
            workdir,
            f"delta-{n}",
            meter,
        )
        with delta_out.open() as handle:
            delivered = sum(1 for _ in csv.DictReader(handle))
        if delivered != report.summary.total:
            raise BenchmarkError(f"delta pull: {delivered} records, expected {report.summary.total}")
        result["delta"] = {**delta, "changed": report.summary.total, "delivered": delivered}
    server.stop()
    run.databases.drop(url)
    for part in ("push", "pull", "delta"):
        result[part].pop("stdout", None)
    return result


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    small = max(1000, n // SMALL_FRACTION)
    config = {
        "accounts": n,
        "small_run_accounts": small,
        "changed_fraction": CHANGED_FRACTION,
        "chunk": 100,
        "page_limit": 1000,
    }
    report = Report("sync", args.backend, config)
    load_before = os.getloadavg()
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        runs = {size: one_size(run, size, args.backend) for size in (small, n)}
        report.details["database"] = run.databases.info
    big, little = runs[n], runs[small]
    report.details["runs"] = {str(k): v for k, v in runs.items()}
    report.details["loadavg_before_after"] = [load_before, os.getloadavg()]

    def rss(kind: str, label: str) -> None:
        report.add(
            f"{kind}_peak_rss", f"{label}: client peak RSS ({n:,} vs {small:,} accounts)", big[kind]["peak_rss_mb"], "MB",
            baseline=little[kind]["peak_rss_mb"], baseline_label=f"{small:,} accounts",
        )  # fmt: skip

    report.add("push_rate", f"sync push of {n:,} accounts (CSV, 100 per request)", n / big["push"]["wall_s"], "accounts/s",
               note=f"{big['push']['wall_s']:.1f} s wall")  # fmt: skip
    report.add("push_wall", "sync push wall time", big["push"]["wall_s"], "s")
    rss("push", "push")
    report.add(
        "push_server_cpu",
        "push: server CPU per second of wall",
        big["push"]["server_cpu_s"] / big["push"]["wall_s"],
        "cores",
    )
    if big["push"].get("postgres_cpu_s") is not None:
        report.add(
            "push_postgres_cpu",
            "push: PostgreSQL CPU per second of wall",
            big["push"]["postgres_cpu_s"] / big["push"]["wall_s"],
            "cores",
        )
    report.add(
        "push_cli_cpu", "push: CLI CPU per second of wall", big["push"]["cli_cpu_s"] / big["push"]["wall_s"], "cores"
    )
    report.add("pull_rate", f"sync pull of {n:,} accounts (JSON Lines, 1000 per page)", n / big["pull"]["wall_s"], "accounts/s",
               note=f"{big['pull']['wall_s']:.1f} s wall")  # fmt: skip
    report.add("pull_wall", "sync pull wall time", big["pull"]["wall_s"], "s")
    rss("pull", "pull")
    report.add(
        "pull_server_cpu",
        "pull: server CPU per second of wall",
        big["pull"]["server_cpu_s"] / big["pull"]["wall_s"],
        "cores",
    )
    report.add(
        "pull_cli_cpu", "pull: CLI CPU per second of wall", big["pull"]["cli_cpu_s"] / big["pull"]["wall_s"], "cores"
    )
    report.add(
        "delta_wall", f"delta pull of {big['delta']['changed']:,} changed accounts (CSV)", big["delta"]["wall_s"], "s"
    )
    report.add("delta_rss", "delta pull: client peak RSS", big["delta"]["peak_rss_mb"], "MB")
    path = report.write(args.results_dir)
    print(report.markdown())
    print(f"\nmachine load (1/5/15 min) before: {load_before}, after: {os.getloadavg()}")
    print(
        f"other processes' CPU during the {n:,} push: {big['push']['other_cpu_s']:.1f} s, pull: {big['pull']['other_cpu_s']:.1f} s"
    )
    print(f"results: {path}")
    print(json.dumps({"push_s": big["push"]["wall_s"], "pull_s": big["pull"]["wall_s"]}))
    return 0
