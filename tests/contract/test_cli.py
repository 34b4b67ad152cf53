"""The operator CLI (API.md §0, §5): workspaces, keys, segments."""

from __future__ import annotations

import pytest
from contract_helpers import (
    HEX24_RE,
    account,
    all_accounts,
    client_for,
    create_key,
    create_segment,
    error,
    ok,
    push_ok,
    revoke_key,
    unique_name,
)


def run_ok(cli, *args):
    proc = cli(*args)
    assert proc.returncode == 0, (
        f"abmhub {' '.join(args)} failed: rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    )
    return proc


def create_workspace(cli, name: str):
    return run_ok(cli, "workspaces", "create", name)


def assert_clean_failure(proc, mention: str) -> None:
    assert proc.returncode != 0, f"expected a non-zero exit: stdout={proc.stdout!r} stderr={proc.stderr!r}"
    assert proc.stderr.strip(), "the error message goes to stderr"
    assert mention in proc.stderr, f"stderr should name {mention!r}: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr, f"no stack trace for an operator error: {proc.stderr!r}"


def test_workspaces_create_and_list(cli):
    name = unique_name("ws")
    create_workspace(cli, name)
    listed = run_ok(cli, "workspaces", "list")
    assert name in listed.stdout


def test_keys_create_quiet_prints_only_a_working_64_character_key(cli, server):
    name, email = unique_name("ws"), f"{unique_name('u')}@example.com"
    create_workspace(cli, name)
    key = create_key(cli, name, email)
    with client_for(server, key) as c:
        assert ok(c.get("/accounts"))["data"] == []


def test_keys_are_random_and_a_new_key_revokes_the_old_one(cli, server):
    name, email = unique_name("ws"), f"{unique_name('u')}@example.com"
    create_workspace(cli, name)
    k1 = create_key(cli, name, email)
    k2 = create_key(cli, name, email)
    assert k1 != k2
    with client_for(server, k1) as c:
        error(c.get("/accounts"), 401, "Invalid API key", "Unauthorized access")
    with client_for(server, k2) as c:
        ok(c.get("/accounts"))


def test_users_of_one_workspace_share_its_data_with_their_own_keys(cli, server):
    name = unique_name("ws")
    create_workspace(cli, name)
    k1 = create_key(cli, name, f"{unique_name('a')}@example.com")
    k2 = create_key(cli, name, f"{unique_name('b')}@example.com")
    with client_for(server, k1) as c1, client_for(server, k2) as c2:
        item = account()
        push_ok(c1, [item])
        assert [r["domain"] for r in all_accounts(c2)] == [item["domain"]], "one workspace, one data set"
        # A second user's key does not revoke the first user's.
        ok(c1.get("/accounts"))


def test_keys_revoke(cli, workspace, api):
    ok(api.get("/accounts"))
    run_ok_proc = revoke_key(cli, workspace.name, workspace.user_email)
    assert run_ok_proc.returncode == 0, run_ok_proc.stderr
    error(api.get("/accounts"), 401, "Invalid API key", "Unauthorized access")


def test_segments_create_quiet_prints_only_the_id(cli, workspace, api):
    name = unique_name("Seg")
    proc = run_ok(
        cli,
        "segments",
        "create",
        "--workspace",
        workspace.name,
        "--name",
        name,
        "--type",
        "static",
        "--status",
        "active",
        "--quiet",
    )
    seg = proc.stdout.strip()
    assert proc.stdout in (seg, seg + "\n"), f"only the id on stdout: {proc.stdout!r}"
    assert HEX24_RE.match(seg), seg
    listed = ok(api.get("/segments"))["data"]
    assert [(s["segmentId"], s["name"], s["status"]) for s in listed] == [(seg, name, "active")]


def test_segment_ids_are_distinct(cli, workspace):
    ids = {create_segment(cli, workspace.name) for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--workspace", "{ws}", "--user", "nobody@example.com", "--quiet"),
        ("keys", "revoke", "--workspace", "{ws}", "--user", "nobody@example.com"),
        (
            "segments",
            "create",
            "--workspace",
            "{ws}",
            "--name",
            "S",
            "--type",
            "static",
            "--status",
            "active",
            "--quiet",
        ),
    ],
    ids=["keys-create", "keys-revoke", "segments-create"],
)
def test_unknown_workspace_fails_with_a_clear_message(cli, args):
    ws = unique_name("no-such-workspace")
    proc = cli(*[a.replace("{ws}", ws) for a in args])
    assert_clean_failure(proc, ws)
    assert proc.stdout.strip() == "", f"nothing on stdout when the command fails: {proc.stdout!r}"


@pytest.mark.parametrize("option,value", [("--type", "weird"), ("--status", "deleted")])
def test_segments_create_rejects_bad_choices(cli, workspace, api, option, value):
    args = {"--type": "static", "--status": "active", option: value}
    proc = cli(
        "segments",
        "create",
        "--workspace",
        workspace.name,
        "--name",
        "Bad",
        "--type",
        args["--type"],
        "--status",
        args["--status"],
        "--quiet",
    )
    assert proc.returncode != 0, proc.stdout
    assert ok(api.get("/segments"))["data"] == []
