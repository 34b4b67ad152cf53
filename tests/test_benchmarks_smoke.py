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
    for phase in ("servers_1", "servers_2", "workers_2"):
        assert report["details"][phase]["statuses"] == {"200": 4}
        assert report["details"][phase]["locked_answers"] == 0
        assert report["details"][phase]["failed_items"] == 0


def test_accounts_benchmark_runs_every_phase_and_reports_ratios(tmp_path, capsys):
    code = main(["accounts", "--backend", "sqlite", "--accounts", "2000", "--results-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    [path] = tmp_path.glob("accounts-sqlite-*.json")
    report = json.loads(path.read_text())
    figures = {figure["key"]: figure for figure in report["figures"]}
    for key in (
        "push_1_client_accounts_per_s",
        "pull_limit_100_accounts_per_s",
        "pull_limit_1000_vs_wire",
        "trivial_app_requests_per_s",
        "server_peak_rss_push_mb",
        "deep_page_median_ms",
    ):
        assert key in figures, f"the accounts report lacks {key}: {sorted(figures)}"
    assert figures["pull_limit_100_accounts_per_s"]["ratio"] > 0, "a scan ratio is measured against its ceiling"
    assert report["details"]["pull"]["100"]["accounts"] == 2000, "the HTTP scan returned every account once"


def test_stack_benchmark_compares_the_same_answers_of_both_apps(tmp_path, capsys):
    code = main(["stack", "--quick", "--accounts", "1200", "--results-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    [path] = tmp_path.glob("stack-sqlite-*.json")
    figures = {figure["key"]: figure for figure in json.loads(path.read_text())["figures"]}
    assert set(figures) == {"100_fastapi_ms", "1000_fastapi_ms", "push_fastapi_ms"}
    assert all(figure["baseline"] > 0 for figure in figures.values()), "each figure has the Starlette baseline"


def test_dashboard_benchmark_signs_in_and_times_every_page(tmp_path, capsys):
    code = main(
        ["dashboard", "--accounts", "400", "--signals", "4000", "--requests", "2", "--warmup", "1",
         "--breakdown-repeats", "1", "--explain", "--results-dir", str(tmp_path)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [path] = tmp_path.glob("dashboard-sqlite-*.json")
    report = json.loads(path.read_text())
    pages = {page["key"]: page for page in report["details"]["pages"]}
    assert set(pages) >= {"overview", "accounts", "accounts_search", "accounts_deep", "account", "export_csv"}
    assert all(page["n"] == 2 and page["p50_vs_healthz"] > 0 for page in pages.values()), pages
    assert pages["accounts"]["listed_total"] == 400, "the list was the signed-in workspace's, not the sign-in page"
    assert report["details"]["scoring"]["score_change"]["up"] > 0, "the back-dated run gave accounts a 7-day change"
    breakdown = report["details"]["breakdown"]
    assert all(call["plans"] for call in breakdown if call["statements"]), "--explain: a plan for every call"


def test_predictions_benchmark_trains_and_times_scoring_with_and_without_a_model(tmp_path, capsys):
    code = main(
        ["predictions", "--quick", "--accounts", "1500", "--serving-accounts", "5000", "--serving-signals", "50000",
         "--results-dir", str(tmp_path)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [path] = tmp_path.glob("predictions-sqlite-*.json")
    report = json.loads(path.read_text())
    figures = {figure["key"]: figure for figure in report["figures"]}
    assert {
        "training_s",
        "training_peak_rss_mib",
        "serving_full_with_model_s",
        "serving_first_run_with_model_s",
    } <= set(figures)
    training = report["details"]["training"]["run"]
    assert training["report"]["trainedOn"]["snapshots"] == 12, "465 days of history give 12 monthly snapshots"
    runs = report["details"]["serving"]["runs"]
    assert [runs[key]["predictions_stored"] for key in ("B", "C1", "C2")] == [0, 5000, 5000], "C runs predict"
    assert figures["serving_full_with_model_s"]["ratio"] > 0, "the with-model run is measured against run B"
