"""Smoke test of the benchmark harness (no timing assertions: figures are not checked).

`python -m benchmarks processes` with a few hundred accounts: it starts two real servers on
one SQLite file and fails on any error answer, so this also guards the harness itself
(server start and stop, keys, report JSON) against rot.
"""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_processes_benchmark_runs_and_reports_no_locked_answers(tmp_path, capsys):
    code = main(["processes", "--backend", "sqlite", "--accounts", "400", "--results-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    [path] = tmp_path.glob("processes-sqlite-*.json")
    report = json.loads(path.read_text())
    for phase in ("servers_1", "servers_2"):
        assert report["details"][phase]["statuses"] == {"200": 4}
        assert report["details"][phase]["locked_answers"] == 0
        assert report["details"][phase]["failed_items"] == 0
