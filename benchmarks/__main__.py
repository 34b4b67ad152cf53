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
    "ingest": (
        "benchmarks.ingest",
        "push accounts, activities, deals, signals over HTTP vs in-process service calls; latency at half load, server RSS",
    ),
    "processes": ("benchmarks.processes", "1 vs 2 server processes on one database: throughput, locked answers"),
    "scoring": ("benchmarks.scoring", "full and incremental scoring runs on a generated data set"),
    "sync": ("benchmarks.sync", "abmhub sync push and pull of N accounts: time, client peak RSS, server throughput"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="abmhub benchmarks")
    sub = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")
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
