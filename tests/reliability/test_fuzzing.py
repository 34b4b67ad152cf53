"""Fuzzing: garbage in never gives a 500, and every answer is the one the OpenAPI document shows.

Schemathesis reads abmhub's own /openapi.json from a real server and sends each operation of
both surfaces examples it derives from the document: boundary values and wrong types for
every field (its coverage phase), random valid and invalid bodies and parameters (fuzzing),
and chains of calls that feed one response's ids into the next request (stateful). Each
response is checked: no server error, a documented status code, content type and headers,
a body that matches the documented schema, invalid input refused, requests without a key or
with a wrong key refused (both auth schemes), and deleted or created resources behave.

Two of schemathesis's checks do not apply and are switched off, each for a reason the
contract gives:
- `positive_data_acceptance`: a request can match the schema and still be refused on
  purpose, by rules a JSON schema cannot state (a domain must be a plausible host name,
  a cursor must be one we issued, a referenced id must exist in the workspace).
- `unsupported_method`: an undeclared method is a 404 "Cannot <METHOD> <path>" on
  Surface R (API.md §6 item 3), not the 405 schemathesis expects.

Afterwards the scoring job runs over everything the fuzzer stored: it must not fail either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.reliability.support import (
    log_problems,
    new_tenant,
    pick,
    prepared_database,
    profile,
    record_figures,
    serve,
    stop,
)

CI_SEED = 20260430  # fixed in CI so that a red run can be replayed; ABMHUB_FUZZ_SEED overrides


def schemathesis_config(key: str) -> str:
    return f"""
[auth.openapi.ApiKey]
api_key = "{key}"

[auth.openapi.BearerAuth]
bearer = "{key}"

[checks]
positive_data_acceptance.enabled = false
unsupported_method.enabled = false
"""


def fuzz(base_url: str, key: str, workdir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run schemathesis against the server; returns its process result and NDJSON report."""
    config = workdir / "schemathesis.toml"
    config.write_text(schemathesis_config(key))
    report = workdir / "fuzz.ndjson"
    seed = os.environ.get("ABMHUB_FUZZ_SEED") or (str(CI_SEED) if profile() == "ci" else None)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--max-examples",
        str(pick(ci=8, long=300)),
        "--workers",
        str(pick(ci=1, long=2)),
        "--continue-on-failure",
        "--generation-database",
        "none",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
        *(["--seed", seed] if seed else []),
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=pick(ci=300, long=7200))
    (workdir / "schemathesis.out").write_text(result.stdout + result.stderr)
    return result, report


def interactions(report: Path) -> Counter[str]:
    """Requests sent, by phase and by status code, read from schemathesis's event log."""
    counts: Counter[str] = Counter()
    with report.open() as events:
        for line in events:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            for interaction in (finished["recorder"].get("interactions") or {}).values():
                counts["requests"] += 1
                counts[f"phase {finished['phase']}"] += 1
                response = interaction.get("response")
                counts[f"status {response['status_code']}" if response else "no response"] += 1
    return counts


def failures_of(output: str) -> str:
    """The FAILURES part of schemathesis's report (what went wrong and a curl to replay it)."""
    start = output.find("FAILURES")
    return output[start : start + 8000] if start >= 0 else output[-8000:]


def test_fuzzing_every_operation_finds_no_server_error_and_no_undocumented_answer(backend, new_database_url, tmp_path):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenant = new_tenant(database, "fuzz")
    server = serve(backend, url, tmp_path / "server.log")
    started = time.monotonic()
    try:
        result, report = fuzz(server.base_url, tenant.key, tmp_path)
    finally:
        stop(server)
    seconds = time.monotonic() - started
    assert result.returncode == 0, (
        f"schemathesis found problems on {backend} (exit {result.returncode}); replay with "
        f"ABMHUB_FUZZ_SEED and the curl commands below:\n{failures_of(result.stdout + result.stderr)}"
    )
    counts = interactions(report)
    assert counts["requests"] >= pick(ci=1000, long=20000), f"too few requests were fuzzed: {dict(counts)}"
    assert counts["status 500"] == 0, f"server errors: {dict(counts)}"
    problems = log_problems(server)
    assert not problems, f"the server log shows unexpected errors: {problems[:5]}"

    # The scoring job reads everything the fuzzer managed to store: it must cope too.
    scoring = subprocess.run(
        [sys.executable, "-m", "abmhub", "score", "--all", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert scoring.returncode == 0, f"the scoring job failed on fuzzed data:\n{scoring.stderr[-3000:]}"
    database.dispose()
    record_figures(
        "fuzzing",
        backend,
        requests=counts["requests"],
        by_phase={k[6:]: v for k, v in counts.items() if k.startswith("phase ")},
        by_status={k[7:]: v for k, v in counts.items() if k.startswith("status ")},
        seconds=round(seconds, 1),
    )
