"""Run the reliability tests and print their figures (docs/reliability.md).

    python -m tests.reliability            # the CI profile (what ./scripts/test runs too)
    python -m tests.reliability --long     # the long profile: more fuzzing, kills, races, load
    python -m tests.reliability --long -k fuzzing   # extra arguments go to pytest

Runs pytest on tests/reliability with ABMHUB_RELIABILITY_PROFILE set, collects the figures
each test records (requests fuzzed, races run, kills survived, records checked) and prints
them as a Markdown table. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.support import FIGURES_ENV, PROFILE_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def figures_table(lines: list[dict]) -> str:
    rows = ["| test | database | figures |", "| --- | --- | --- |"]
    for entry in sorted(lines, key=lambda e: (e["test"], e["backend"])):
        shown = {k: v for k, v in entry.items() if k not in ("test", "backend", "profile")}
        text = ", ".join(
            f"{k.replace('_', ' ')}: {json.dumps(v) if isinstance(v, dict) else v}" for k, v in shown.items()
        )
        rows.append(f"| {entry['test']} | {entry['backend']} | {text} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="the long profile (tens of minutes)")
    parser.add_argument("--figures", type=Path, help="keep the figures (JSON lines) in this file")
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers (default: auto)")
    args, pytest_args = parser.parse_known_args()

    figures = args.figures or Path(tempfile.mkstemp(prefix="abmhub-figures-", suffix=".jsonl")[1])
    figures.write_text("")
    env = {**os.environ, PROFILE_ENV: "long" if args.long else "ci", FIGURES_ENV: str(figures)}
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", str(HERE), "-n", args.workers, "-p", "no:cacheprovider", *pytest_args]
    status = subprocess.call(command, cwd=ROOT, env=env)
    lines = [json.loads(line) for line in figures.read_text().splitlines() if line.strip()]
    print(f"\nProfile {env[PROFILE_ENV]}, {time.monotonic() - started:.0f} s; figures in {figures}:\n")
    print(figures_table(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
