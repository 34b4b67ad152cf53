"""POST/GET /deal-stages and GET /journey-stages (API.md §1.3, §1.4, §2.9, §2.10, §6.4, §6.19, §6.20)."""

from __future__ import annotations

import pytest
from contract_helpers import (
    assert_constraint,
    assert_write_route_conventions,
    client_for,
    deal_stages,
    describe,
    error,
    not_found_route,
    ok,
    pipeline,
    unique_name,
    validation_errors,
)

JOURNEY_STAGES = ["Unaware", "Aware", "Consideration", "Opportunity", "Customer"]


def create_pipelines(api, pipelines: list[dict]) -> dict:
    r = api.post("/deal-stages", json={"pipelines": pipelines})
    data = ok(r, "/api/v1/deal-stages")
    return data


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {p["pipelineId"]: p for p in rows}


def assert_nothing_created(api) -> None:
    assert deal_stages(api) == [], "a rejected request must create nothing"


# --------------------------------------------------------------------------- create and read


def test_new_workspace_has_no_pipelines(api):
    assert deal_stages(api) == []


def test_create_pipelines_success_shape_and_read_back(api):
    p1 = pipeline(
        label="New Business",
        stages=[
            {"stageId": "qual", "stageLabel": "Qualified"},
            {"stageId": "demo", "stageLabel": "Demo"},
            {"stageId": "won", "stageLabel": "Closed Won"},
        ],
    )
    p2 = pipeline(label="Renewals", stages=[{"stageId": "renew", "stageLabel": "Renewal Due"}])
    data = create_pipelines(api, [p1, p2])
    assert data["results"] == [
        {"pipelineId": p1["pipelineId"], "status": "created"},
        {"pipelineId": p2["pipelineId"], "status": "created"},
    ], data
    assert {k: data["summary"][k] for k in ("total", "created")} == {"total": 2, "created": 2}, data

    rows = deal_stages(api)
    got = by_id(rows)
    assert set(got) == {p1["pipelineId"], p2["pipelineId"]}, rows
    for p in (p1, p2):
        g = got[p["pipelineId"]]
        assert g["pipelineLabel"] == p["pipelineLabel"], g
        assert isinstance(g["stages"], list), g
        assert [(s["stageId"], s["stageLabel"]) for s in g["stages"]] == [
            (s["stageId"], s["stageLabel"]) for s in p["stages"]
        ], f"stages read back as created, in order: {g}"


def test_the_same_stage_id_may_appear_in_different_pipelines(api):
    stages = [{"stageId": "open", "stageLabel": "Open"}]
    data = create_pipelines(api, [pipeline(stages=stages), pipeline(stages=stages)])
    assert [r["status"] for r in data["results"]] == ["created", "created"]
    assert len(deal_stages(api)) == 2


def test_exactly_20_pipelines_are_accepted(api):
    data = create_pipelines(api, [pipeline() for _ in range(20)])
    assert data["summary"]["created"] == 20
    assert len(deal_stages(api)) == 20


# --------------------------------------------------------------------------- create-only, all-or-nothing


def test_existing_pipeline_ids_are_409_in_request_order_and_nothing_is_created(api):
    a, b = pipeline(), pipeline()
    create_pipelines(api, [a, b])
    fresh1, fresh2 = pipeline(), pipeline()
    body = [fresh1, pipeline(b["pipelineId"], label="Again B"), fresh2, pipeline(a["pipelineId"], label="Again A")]
    r = api.post("/deal-stages", json={"pipelines": body})
    error(r, 409, f"Pipeline(s) already exist: {b['pipelineId']}, {a['pipelineId']}", "Conflict")
    rows = by_id(deal_stages(api))
    assert set(rows) == {a["pipelineId"], b["pipelineId"]}, "all-or-nothing: the new pipelines must not be created"
    assert rows[a["pipelineId"]]["pipelineLabel"] == a["pipelineLabel"], "existing pipelines are not changed"
    assert rows[b["pipelineId"]]["pipelineLabel"] == b["pipelineLabel"]


def test_single_existing_pipeline_is_409(api):
    a = pipeline()
    create_pipelines(api, [a])
    r = api.post("/deal-stages", json={"pipelines": [pipeline(a["pipelineId"])]})
    error(r, 409, f"Pipeline(s) already exist: {a['pipelineId']}", "Conflict")


# --------------------------------------------------------------------------- validation (§1.4, §6.1, §6.20)


def test_more_than_20_pipelines_is_400(api):
    r = api.post("/deal-stages", json={"pipelines": [pipeline() for _ in range(21)]})
    assert_constraint(r, "pipelines", "arrayMaxSize", "pipelines must contain no more than 20 elements")
    assert_nothing_created(api)


VALIDATION_CASES = [
    ("pipelines-missing", {}, "pipelines", "isArray", "pipelines must be an array"),
    ("pipelines-object", {"pipelines": {"pipelineId": "x"}}, "pipelines", "isArray", "pipelines must be an array"),
    ("pipelines-empty", {"pipelines": []}, "pipelines", "arrayMinSize", "pipelines must contain at least 1 elements"),
    (
        "stages-empty",
        {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P", "stages": []}]},
        "pipelines.0.stages",
        "arrayMinSize",
        "stages must contain at least 1 elements",
    ),
    (
        "stages-missing",
        {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P"}]},
        "pipelines.0.stages",
        "isArray",
        "stages must be an array",
    ),
    (
        "pipelineId-missing",
        {"pipelines": [{"pipelineLabel": "P", "stages": [{"stageId": "s", "stageLabel": "S"}]}]},
        "pipelines.0.pipelineId",
        "isNotEmpty",
        "pipelineId should not be empty",
    ),
    (
        "pipelineId-blank",
        {"pipelines": [{"pipelineId": " ", "pipelineLabel": "P", "stages": [{"stageId": "s", "stageLabel": "S"}]}]},
        "pipelines.0.pipelineId",
        "isNotEmpty",
        "pipelineId should not be empty",
    ),
    (
        "pipelineLabel-missing",
        {"pipelines": [{"pipelineId": "p", "stages": [{"stageId": "s", "stageLabel": "S"}]}]},
        "pipelines.0.pipelineLabel",
        "isNotEmpty",
        "pipelineLabel should not be empty",
    ),
    (
        "stageId-missing",
        {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P", "stages": [{"stageLabel": "S"}]}]},
        "pipelines.0.stages.0.stageId",
        "isNotEmpty",
        "stageId should not be empty",
    ),
    (
        "stageLabel-missing",
        {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P", "stages": [{"stageId": "s"}]}]},
        "pipelines.0.stages.0.stageLabel",
        "isNotEmpty",
        "stageLabel should not be empty",
    ),
    (
        "stageId-number",
        {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P", "stages": [{"stageId": 1, "stageLabel": "S"}]}]},
        "pipelines.0.stages.0.stageId",
        "isString",
        "stageId must be a string",
    ),
]


@pytest.mark.parametrize("body,path,key,text", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_request_shape_errors_are_400_and_create_nothing(api, body, path, key, text):
    body = dict(body)
    if isinstance(body.get("pipelines"), list) and body["pipelines"]:
        body["pipelines"] = [pipeline()] + body["pipelines"]
        path = path.replace("pipelines.0.", "pipelines.1.")
    assert_constraint(api.post("/deal-stages", json=body), path, key, text)
    assert_nothing_created(api)


def test_repeated_stage_id_within_a_pipeline_is_a_validation_error(api):
    bad = pipeline(stages=[{"stageId": "s1", "stageLabel": "One"}, {"stageId": "s1", "stageLabel": "Again"}])
    validation_errors(api.post("/deal-stages", json={"pipelines": [pipeline(), bad]}))
    assert_nothing_created(api)


def test_repeated_pipeline_id_within_a_request_is_a_validation_error(api):
    pid = unique_name("pipe")
    validation_errors(api.post("/deal-stages", json={"pipelines": [pipeline(pid), pipeline(), pipeline(pid)]}))
    assert_nothing_created(api)


# --------------------------------------------------------------------------- journey stage per stage (§2.9 extension, §6.19)


def stage_journeys(api, pipeline_id: str) -> dict[str, object]:
    """{stageId: journeyStage} as GET /deal-stages shows it; skip when GET does not show it
    (the contract says stages *may* carry it)."""
    stages = by_id(deal_stages(api))[pipeline_id]["stages"]
    if not all("journeyStage" in s for s in stages):
        pytest.skip("GET /deal-stages does not show journeyStage (the contract leaves that open)")
    return {s["stageId"]: s["journeyStage"] for s in stages}


def test_journey_stage_defaults_from_the_label(api):
    labels = {
        "a": "Closed Won",
        "b": "closed-won",
        "c": "WON",
        "d": "Won - Pending Signature",
        "e": "Closed Lost",
        "f": "lost",
        "g": "Closed-LOST (no budget)",
        "h": "Negotiation",
        "i": "Qualified",
        "j": "Wonderland Review",  # "won" only as part of a word: not the word "won"
    }
    expected = {
        "a": "Customer",
        "b": "Customer",
        "c": "Customer",
        "d": "Customer",
        "e": None,
        "f": None,
        "g": None,
        "h": "Opportunity",
        "i": "Opportunity",
        "j": "Opportunity",
    }
    p = pipeline(stages=[{"stageId": k, "stageLabel": v} for k, v in labels.items()])
    create_pipelines(api, [p])
    got = stage_journeys(api, p["pipelineId"])
    wrong = {k: (labels[k], expected[k], got[k]) for k in labels if got[k] != expected[k]}
    assert not wrong, f"journeyStage defaults (label, expected, got): {wrong}"


def test_given_journey_stage_is_kept(api):
    p = pipeline(
        stages=[
            {"stageId": "a", "stageLabel": "Closed Lost", "journeyStage": "Opportunity"},
            {"stageId": "b", "stageLabel": "Negotiation", "journeyStage": "Customer"},
            {"stageId": "c", "stageLabel": "Closed Won", "journeyStage": None},
            {"stageId": "d", "stageLabel": "Signed", "journeyStage": "Customer"},
        ]
    )
    create_pipelines(api, [p])
    got = stage_journeys(api, p["pipelineId"])
    assert got == {"a": "Opportunity", "b": "Customer", "c": None, "d": "Customer"}, got


# --------------------------------------------------------------------------- envelope and auth on the bare-array routes (§6.4)


@pytest.mark.parametrize("path", ["/deal-stages", "/journey-stages"])
def test_bare_array_routes_use_the_error_envelope_for_401(server, path):
    with client_for(server, None) as anon:
        error(anon.get(path), 401, "X-Api-Key header is required")
    with client_for(server, "x" * 64) as bad:
        error(bad.get(path), 401, "Invalid API key")


def test_post_deal_stages_errors_are_enveloped(server):
    with client_for(server, None) as anon:
        error(anon.post("/deal-stages", json={"pipelines": [pipeline()]}), 401, "X-Api-Key header is required")


def test_journey_stages_is_the_fixed_bare_array(api):
    r = api.get("/journey-stages")
    assert r.status_code == 200, describe(r)
    assert "application/json" in r.headers.get("content-type", ""), describe(r)
    assert r.json() == JOURNEY_STAGES, describe(r)


def test_deal_stages_success_is_not_enveloped(api):
    create_pipelines(api, [pipeline()])
    body = api.get("/deal-stages").json()
    assert isinstance(body, list) and len(body) == 1, body
    assert {"pipelineId", "pipelineLabel", "stages"} <= set(body[0]), body
    for s in body[0]["stages"]:
        assert {"stageId", "stageLabel"} <= set(s), s


# --------------------------------------------------------------------------- isolation (§0)


def test_pipelines_do_not_cross_workspaces(api, server, new_workspace):
    p = pipeline()
    create_pipelines(api, [p])
    with client_for(server, new_workspace().key) as other:
        assert deal_stages(other) == [], "another workspace sees none of our pipelines"
        data = create_pipelines(other, [pipeline(p["pipelineId"], label="Theirs")])
        assert data["results"][0]["status"] == "created", "pipelineIds are unique per workspace only"
        assert by_id(deal_stages(other))[p["pipelineId"]]["pipelineLabel"] == "Theirs"
    assert by_id(deal_stages(api))[p["pipelineId"]]["pipelineLabel"] == p["pipelineLabel"]


def test_write_conventions_on_post_deal_stages(server, workspace, api):
    assert_write_route_conventions(server, workspace.key, "POST", "/deal-stages", {"pipelines": [pipeline()]})
    assert_nothing_created(api)


@pytest.mark.parametrize(
    "method,path", [("PUT", "/deal-stages"), ("DELETE", "/deal-stages"), ("POST", "/journey-stages")]
)
def test_methods_not_served_are_404(api, method, path):
    not_found_route(api.request(method, path, json={}), method, f"/api/v1{path}")
