"""`python -m benchmarks <suite> [options]` — run from the repository root.

Suites register in SUITES (name → module with `add_arguments` and `main`); a later suite
(deals, activities, signals, scoring, multi-process) is one module and one line here.
Exit status: 0 on success, 1 when a benchmark failed (HTTP error, failed item, server
that would not start), 130 on Ctrl-C. Servers, clusters and temp files are cleaned up in
every case.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

SUITES = {
    "accounts": ("benchmarks.accounts", "push and pull of accounts over HTTP vs in-process ceilings"),
    "dashboard": (
        "benchmarks.dashboard",
        "the dashboard's pages at scale (1M accounts): p50/p95 per page against /healthz and the API's page of 50",
    ),
    "delta": ("benchmarks.delta", "delta sync of 1,000 changed accounts among N: time to first byte and total"),
    "ingest": (
        "benchmarks.ingest",
        "push accounts, activities, deals, signals over HTTP vs in-process service calls; latency at half load, server RSS",
    ),
    "predictions": (
        "benchmarks.predictions",
        "model training on 100,000 accounts × 12 snapshots; a full scoring run of 1M accounts with vs without a model",
    ),
    "processes": ("benchmarks.processes", "1 vs 2 server processes on one database: throughput, locked answers"),
    "scoring": ("benchmarks.scoring", "full and incremental scoring runs on a generated data set"),
    "stack": ("benchmarks.stack", "abmhub's FastAPI routes vs bare Starlette doing the same work, in-process (ASGI)"),
    "sync": ("benchmarks.sync", "abmhub sync push and pull of N accounts: time, client peak RSS, server throughput"),
    "webhooks": (
        "benchmarks.webhooks",
        "push throughput with 5 webhook subscriptions vs none; events/s delivered to a local receiver",
    ),
    "website": ("benchmarks.website", "POST /collect events/s from a separate load generator vs a bare 202 endpoint"),
}


# What `python -m benchmarks all` runs, in this order.
ALL_SUITES = (
    "accounts",
    "delta",
    "ingest",
    "processes",
    "sync",
    "stack",
    "webhooks",
    "website",
    "scoring",
    "predictions",
    "dashboard",
)


def run_all(args: argparse.Namespace) -> int:
    """Every suite in ALL_SUITES with the same backend (and --quick); exit 1 if any failed."""
    from benchmarks.harness import BenchmarkError, log

    failed = []
    for name in ALL_SUITES:
        argv = [name, "--backend", args.backend] + (["--quick"] if args.quick else [])
        log(f"all: python -m benchmarks {' '.join(argv)}")
        suite_args = build_parser().parse_args(argv)
        try:
            code = suite_args.run(suite_args)
        except BenchmarkError as exc:
            print(f"benchmark {name} failed: {exc}", file=sys.stderr)
            code = 1
        if code:
            failed.append(name)
        print()
    if failed:
        print(f"failed suites: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="abmhub benchmarks")
    sub = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
    every = sub.add_parser("all", help=f"every suite in turn: {', '.join(ALL_SUITES)}")
    every.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    every.add_argument("--quick", action="store_true", help="each suite's quick profile")
    every.set_defaults(run=run_all)
    for name, (module_name, help_text) in SUITES.items():
        module = importlib.import_module(module_name)
        suite = sub.add_parser(
            name, help=help_text, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(suite)
        suite.set_defaults(run=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    # tests/support/postgres.py is imported as `tests.support.postgres`: the repo root must be importable.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.harness import BenchmarkError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
