"""GET /segments (API.md §2.12 list part, §1.5): only static segments that are active or draft."""

from __future__ import annotations

from contract_helpers import create_segment, list_pass, ok, page, unique_name


def test_a_new_workspace_has_no_segments(api):
    p = page(api, "/segments")
    assert p["data"] == [] and p["nextCursor"] is None and p["hasNextPage"] is False


def test_only_static_active_or_draft_segments_are_listed(api, cli, workspace):
    names = {k: unique_name(k) for k in ("sa", "sd", "sx", "da", "dd", "dx")}
    active = create_segment(cli, workspace.name, "static", "active", names["sa"])
    draft = create_segment(cli, workspace.name, "static", "draft", names["sd"])
    create_segment(cli, workspace.name, "static", "archived", names["sx"])
    create_segment(cli, workspace.name, "dynamic", "active", names["da"])
    create_segment(cli, workspace.name, "dynamic", "draft", names["dd"])
    create_segment(cli, workspace.name, "dynamic", "archived", names["dx"])

    r = api.get("/segments")
    data = ok(r, "/api/v1/segments")
    assert {"data", "nextCursor", "hasNextPage", "syncTimestamp"} <= set(data)
    got = {s["segmentId"]: s for s in data["data"]}
    assert set(got) == {active, draft}, data["data"]
    assert (got[active]["name"], got[active]["status"]) == (names["sa"], "active")
    assert (got[draft]["name"], got[draft]["status"]) == (names["sd"], "draft")
    assert data["hasNextPage"] is False and data["nextCursor"]


def test_segments_are_paginated(api, cli, workspace):
    ids = {create_segment(cli, workspace.name, "static", s) for s in ("active", "draft", "active")}
    rows, pages = list_pass(api, "/segments", limit=1)
    assert [len(p["data"]) for p in pages] == [1, 1, 1]
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert len({p["syncTimestamp"] for p in pages}) == 1
    got = [s["segmentId"] for s in rows]
    assert len(got) == 3 and set(got) == ids, "no duplicates, no gaps"
    tail = page(api, "/segments", limit=1, cursor=pages[-1]["nextCursor"])
    assert tail["data"] == [] and tail["nextCursor"] is None
