"""`abmhub scoring-settings show|set|reset` against a real database (both backends)."""

from __future__ import annotations

import json


def test_settings_round_trip_through_the_cli(cli, workspace):
    name = workspace.name
    shown = cli("scoring-settings", "show", "--workspace", name)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sources"]["bombora"]["surge_baseline"] == 50, "the defaults"

    stored = cli("scoring-settings", "set", "-", "--workspace", name, input='{"aware_threshold": 10}')
    assert stored.returncode == 0, stored.stderr
    assert "next scoring run rescores every account" in stored.stdout
    assert json.loads(cli("scoring-settings", "show", "--workspace", name).stdout)["aware_threshold"] == 10

    refused = cli("scoring-settings", "set", "-", "--workspace", name, input='{"weights": {"g2": 2}, "x": 1}')
    assert refused.returncode == 1
    assert "x is not a setting" in refused.stderr, f"the problem is named: {refused.stderr}"
    assert json.loads(cli("scoring-settings", "show", "--workspace", name).stdout)["aware_threshold"] == 10, (
        "refused settings change nothing"
    )

    assert cli("scoring-settings", "reset", "--workspace", name).returncode == 0
    assert json.loads(cli("scoring-settings", "show", "--workspace", name).stdout)["aware_threshold"] == 5
