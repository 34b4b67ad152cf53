"""`abmhub sync push|pull` as a user runs it, against a real server on both databases."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from abmhub.client import RecotapClient


def sync(server, workspace, *args: str, env_auth: bool = False) -> subprocess.CompletedProcess[str]:
    """`abmhub sync ...` with the server's URL and the workspace's key (as flags, or in the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABMHUB_")}
    env["COLUMNS"] = "200"
    auth: list[str] = []
    if env_auth:
        env.update(ABMHUB_BASE_URL=server.base_url, ABMHUB_API_KEY=workspace.key)
    else:
        auth = ["--base-url", server.base_url, "--api-key", workspace.key]
    return subprocess.run(
        [sys.executable, "-m", "abmhub", "sync", *args, *auth],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def summary(stdout: str) -> dict[str, str]:
    """The rows of the summary table: `│ created │ 3 │` → {"created": "3"}."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0]:
            rows[cells[0]] = cells[1]
    return rows


@pytest.fixture
def client(server, workspace):
    with RecotapClient(server.base_url, workspace.key) as c:
        yield c


def test_push_a_csv_with_a_mapping_reports_counts_and_failed_lines(server, workspace, client, tmp_path: Path):
    client.create_custom_field("Employees", "number")
    source = tmp_path / "crm-export.csv"
    source.write_text(
        "Website,Company Name,Segment Tags,Headcount,Owner Notes\n"
        "https://www.acme.com/about,Acme Corp,enterprise;q2-target,1200,call back\n"  # line 2
        "globex.com,Globex,,,\n"  # line 3
        ",No Domain,,,\n"  # line 4: refused before sending
        '"initech.com","Initech\nHoldings",smb,15,\n'  # lines 5-6: a quoted newline
        "not-a-domain,Broken,,,\n"  # line 7: refused by the server
        "hooli.com,Hooli,,many,\n"  # line 8: not a number
    )
    failures = tmp_path / "failures.csv"
    proc = sync(
        server, workspace, "push", "accounts", str(source),
        "--map", "Website=domain", "--map", "Company Name=name", "--map", "Segment Tags=tags",
        "--map", "Headcount=customFields.EMPLOYEES_C", "--failures", str(failures),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # some rows failed
    counts = summary(proc.stdout)
    assert (counts["rows read"], counts["created"], counts["updated"], counts["failed"]) == ("6", "3", "0", "3")
    assert "Owner Notes" in proc.stderr, "an unmapped column is reported as ignored"
    assert "Traceback" not in proc.stderr and workspace.key not in proc.stdout + proc.stderr
    rows = list(csv.DictReader(failures.open()))
    assert [(r["line"], r["item"]) for r in rows] == [("4", ""), ("7", "not-a-domain"), ("8", "")]
    assert (
        "domain" in rows[0]["error"]
        and "Invalid domain" in rows[1]["error"]
        and "'many' is not a number" in rows[2]["error"]
    )
    for line in ("4", "7", "8"):
        assert f"│ {line}" in proc.stderr, "failed lines are listed on stderr"

    stored = {a.domain: a for a in client.iter_accounts()}
    assert set(stored) == {"acme.com", "globex.com", "initech.com"}
    assert stored["acme.com"].tags == ["enterprise", "q2-target"]
    assert stored["acme.com"].customFields["EMPLOYEES_C"] == 1200
    assert stored["initech.com"].name == "Initech\nHoldings"

    again = sync(server, workspace, "push", "accounts", str(source), "--upsert", "--map", "Website=domain",
                 "--map", "Company Name=name", "--map", "Owner Notes=", env_auth=True)  # fmt: skip
    assert summary(again.stdout)["updated"] == "3" and "Owner Notes" not in again.stderr


def test_push_jsonl_signals_and_activities_with_a_mapping(server, workspace, client, tmp_path: Path):
    client.push_accounts([{"domain": "jsonl.com", "name": "JSONL"}])
    signals = tmp_path / "signals.jsonl"
    lines = [
        {"source": "g2", "kind": "pricing_view", "company": "jsonl.com", "at": "2026-04-29T09:00:00Z", "id": "g2-1"},
        {"source": "g2", "kind": "pricing_view", "company": "jsonl.com", "at": "2026-04-29T09:00:00Z", "id": "g2-1"},
        {"source": "bombora", "kind": "surge", "company": "jsonl.com", "at": "2026-04-27", "topic": "ABM", "score": 72},
    ]
    signals.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n{broken\n")
    mapping = [
        "--map",
        "kind=type",
        "--map",
        "company=domain",
        "--map",
        "at=occurredAt",
        "--map",
        "id=externalSignalId",
    ]
    proc = sync(server, workspace, "push", "signals", str(signals), *mapping)
    counts = summary(proc.stdout)
    assert (counts["rows read"], counts["created"], counts["skipped"], counts["failed"]) == ("4", "2", "1", "1")
    assert proc.returncode == 1 and "│ 5 " in proc.stderr and "not valid JSON" in proc.stderr

    activities = tmp_path / "calls.jsonl"
    activities.write_text(
        json.dumps({"externalActivityId": "c-1", "activityType": "call", "occurredAt": "2026-04-22T10:30:00Z",
                    "domain": "jsonl.com", "ownerEmail": "jane@yourcompany.com", "contact.email": "john@jsonl.com",
                    "contact.name": "John"}) + "\n"
    )  # fmt: skip
    proc = sync(server, workspace, "push", "activities", str(activities), "--map", "contact.email=contacts.0.email",
                "--map", "contact.name=contacts.0.name")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (stored,) = client.iter_sales_activities(domain="jsonl.com")
    assert stored.contacts[0].email == "john@jsonl.com" and stored.contacts[0].name == "John"


def test_pull_writes_everything_first_then_only_changes(server, workspace, client, tmp_path: Path):
    client.create_custom_field("Tier", "singleLineText")
    client.push_accounts(
        {"domain": f"pull-{i}.com", "name": f"Pull {i}", "tags": ["a", "b"], "customFields": {"TIER_C": "gold"}}
        for i in range(30)
    )
    state, first_out = tmp_path / "state.json", tmp_path / "accounts.csv"
    proc = sync(server, workspace, "pull", "accounts", "--state", str(state), "--out", str(first_out), "--limit", "7")
    assert proc.returncode == 0, proc.stderr
    assert summary(proc.stdout)["records written"] == "30" and summary(proc.stdout)["pages"] == "5"
    rows = list(csv.DictReader(first_out.open()))
    assert len(rows) == 30 and rows[0]["domain"] == "pull-0.com"
    assert rows[0]["tags"] == "a;b" and rows[0]["customFields.TIER_C"] == "gold" and len(rows[0]["rtp_aid"]) == 24
    saved = json.loads(state.read_text())["accounts"]
    assert saved["records"] == 30

    changed = next(client.iter_accounts(domains=["pull-4.com"]))
    client.update_account(changed.rtp_aid, name="Pull Four")
    client.push_accounts([{"domain": "pull-new.com", "name": "Pull New"}])
    second_out = tmp_path / "changes.jsonl"
    proc = sync(server, workspace, "pull", "accounts", "--state", str(state), "--out", str(second_out), env_auth=True)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in second_out.read_text().splitlines()]
    assert sorted((r["domain"], r["name"]) for r in records) == [
        ("pull-4.com", "Pull Four"),
        ("pull-new.com", "Pull New"),
    ]
    assert f"changes since {saved['lastSync']}" in proc.stdout
    assert json.loads(state.read_text())["accounts"]["lastSync"] > saved["lastSync"]

    # A pull that fails changes neither the output nor the state.
    before = state.read_text(), second_out.read_text()
    workspace_with_bad_key = type(workspace)(workspace.name, "x" * 64, workspace.user_email)
    proc = sync(server, workspace_with_bad_key, "pull", "accounts", "--state", str(state), "--out", str(second_out))
    assert proc.returncode == 1 and "Invalid API key" in proc.stderr
    assert (state.read_text(), second_out.read_text()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")], "no temporary file left behind"
