"""Dynamic segment rules on the prediction (API.md §10 last bullet, §2.12): `predictedBand` and
`probability`, re-evaluated by the scoring job, and checked like the other rule fields.

The model is hand-set (tests/support/predictions.py): stored and activated as a trained one
is, so the accounts' predictions come from the same serving code. Expected members are
computed from what `GET /accounts/:rtp_aid/prediction` says, not from pinned numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from contract_helpers import (
    account,
    assert_constraint,
    create_segment_api,
    deal,
    ok,
    push_deals_ok,
    push_ok,
    push_signals_ok,
    run_score,
    segment_members,
    signal,
    unique_domain,
    unique_name,
)

from tests.support.predictions import install_model

NAMES = ("hot", "warm", "cold", "taken")


def predictions(api, aids: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: ok(api.get(f"/accounts/{aid}/prediction")) for name, aid in aids.items()}


def check(api, segment_id: str, aids: dict[str, str], want: Callable[[dict[str, Any]], bool], label: str) -> None:
    found = predictions(api, aids)
    expected = {aids[name] for name, p in found.items() if want(p)}
    got = {row["rtp_aid"] for row in segment_members(api, segment_id)}
    named = {aid: name for name, aid in aids.items()}
    shown = {name: (p["probability"], p["band"]) for name, p in found.items()}
    assert got == expected, (
        f"{label}: members should be {sorted(named[a] for a in expected)}, got {sorted(named[a] for a in got)}; "
        f"predictions (probability, band): {shown}"
    )


@pytest.fixture
def four(api, cli, workspace) -> dict[str, str]:
    """hot: Bombora surges and G2 research this month; warm: one surge; cold: nothing; taken: an
    open deal (it has its opportunity: no prediction). Returns name -> rtp_aid."""
    d = {name: unique_domain(f"pred-{name}") for name in NAMES}
    results = push_ok(api, [account(d[name]) for name in NAMES])
    push_signals_ok(
        api,
        [signal("bombora", "surge", d["hot"], days_ago=i) for i in range(6)]
        + [signal("g2", "pricing_view", d["hot"], days_ago=i) for i in range(3)]
        + [signal("bombora", "surge", d["warm"], days_ago=2)]
        + [signal("bombora", "surge", d["taken"], days_ago=i) for i in range(6)],
    )
    push_deals_ok(api, [deal(associatedAccounts=[{"domain": d["taken"]}])])
    run_score(cli, workspace.name)
    return {name: result["rtp_aid"] for name, result in zip(NAMES, results, strict=True)}


def test_rules_on_the_prediction_follow_the_active_model(api, cli, workspace, server_database, four):
    install_model(server_database, workspace=workspace.name)
    p = predictions(api, four)
    assert p["taken"]["probability"] is None and p["taken"]["band"] is None, p["taken"]
    assert p["hot"]["probability"] > p["warm"]["probability"] > p["cold"]["probability"], p
    assert p["hot"]["band"] != p["cold"]["band"], p

    between = round((p["hot"]["probability"] + p["warm"]["probability"]) / 2, 4)
    hot_band = p["hot"]["band"]
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool], str]] = [
        (
            {"all": [{"field": "probability", "op": "gte", "value": between}]},
            lambda x: x["probability"] is not None and x["probability"] >= between,
            "probability >= a threshold",
        ),
        (
            {"all": [{"field": "predictedBand", "op": "in", "value": [hot_band, "D"]}]},
            lambda x: x["band"] in (hot_band, "D"),
            "band in a list",
        ),
        (
            {"all": [{"field": "predictedBand", "op": "eq", "value": hot_band}]},
            lambda x: x["band"] == hot_band,
            "band is",
        ),
        # No prediction (the account with an open deal) matches no condition, not even a negation.
        (
            {"all": [{"field": "predictedBand", "op": "ne", "value": hot_band}]},
            lambda x: x["band"] is not None and x["band"] != hot_band,
            "band is not",
        ),
        (
            {"all": [{"field": "probability", "op": "lt", "value": 1}]},
            lambda x: x["probability"] is not None,
            "probability below 1",
        ),
        # Together with the other fields.
        (
            {
                "all": [{"field": "rtp_bombora_intent_score", "op": "gt", "value": 0}],
                "any": [
                    {"field": "predictedBand", "op": "eq", "value": "D"},
                    {"field": "probability", "op": "gte", "value": between},
                ],
            },
            lambda x: (
                x["rtp_aid"] in (four["hot"], four["warm"])
                and (x["band"] == "D" or (x["probability"] is not None and x["probability"] >= between))
            ),
            "a score and the prediction",
        ),
    ]
    made = [
        (create_segment_api(api, "dynamic", "active", rule=rule)["segmentId"], want, label)
        for rule, want, label in cases
    ]
    run_score(cli, workspace.name)
    for segment_id, want, label in made:
        check(api, segment_id, four, want, label)

    # Another model ranks the other way round: no account changes, the predictions do, and the
    # next (incremental) run moves the members with them.
    install_model(
        server_database, workspace=workspace.name, coefficients={"bombora_30d": -1.2, "g2_30d": -0.8}, intercept=-1.0
    )
    p2 = predictions(api, four)
    assert p2["cold"]["probability"] > p2["hot"]["probability"], p2
    run_score(cli, workspace.name)
    for segment_id, want, label in made:
        check(api, segment_id, four, want, f"{label}, after another model was activated")


def test_without_an_active_model_a_prediction_rule_selects_nobody(api, cli, workspace, four):
    rules = [
        {"all": [{"field": "predictedBand", "op": "ne", "value": "A"}]},
        {"all": [{"field": "probability", "op": "gte", "value": 0}]},
    ]
    made = [create_segment_api(api, "dynamic", "active", rule=rule)["segmentId"] for rule in rules]
    run_score(cli, workspace.name, "--all")
    for segment_id in made:
        assert segment_members(api, segment_id) == []
    # The rule is kept as sent, for when a model is activated.
    stored = ok(api.get(f"/segments/{made[0]}"))
    assert stored["rule"] == rules[0]


def test_prediction_rules_preview_in_the_rule_editor_service(api, cli, workspace, server_database, four):
    """The dashboard's live preview and the job's refresh use the same SQL: the count matches."""
    from abmhub.segments import service as segments_service
    from abmhub.tenancy.service import key_holder

    install_model(server_database, workspace=workspace.name)
    workspace_id = key_holder(server_database, workspace.key).caller.workspace_id
    rule = {"all": [{"field": "predictedBand", "op": "in", "value": ["A", "B", "C", "D"]}]}
    preview = segments_service.preview_rule(server_database, workspace_id=workspace_id, rule=rule)
    assert preview.count == 3  # every account but the one with an open deal
    assert four["taken"] not in {row.rtp_aid for row in preview.accounts}


@pytest.mark.parametrize(
    "condition,at,constraint,text",
    [
        (
            {"field": "predictedBand", "op": "eq", "value": "E"},
            "rule.all.0.value",
            "isIn",
            "value must be one of the following values: A, B, C, D",
        ),
        ({"field": "predictedBand", "op": "eq", "value": "a"}, "rule.all.0.value", "isIn", None),
        ({"field": "predictedBand", "op": "in", "value": ["A", "Z"]}, "rule.all.0.value", "isIn", None),
        ({"field": "predictedBand", "op": "eq", "value": None}, "rule.all.0.value", "isIn", None),
        (
            {"field": "predictedBand", "op": "gte", "value": "B"},
            "rule.all.0.op",
            "isIn",
            "op must be one of the following values: eq, ne, in",
        ),
        ({"field": "predictedBand", "op": "in", "value": "A"}, "rule.all.0.value", "isArray", None),
        (
            {"field": "probability", "op": "gte", "value": 1.5},
            "rule.all.0.value",
            "max",
            "value must not be greater than 1",
        ),
        (
            {"field": "probability", "op": "gte", "value": -0.1},
            "rule.all.0.value",
            "min",
            "value must not be less than 0",
        ),
        ({"field": "probability", "op": "gte", "value": "high"}, "rule.all.0.value", "isNumber", None),
        ({"field": "probability", "op": "lt", "value": True}, "rule.all.0.value", "isNumber", None),
        ({"field": "probability", "op": "eq", "value": None}, "rule.all.0.value", "isNumber", None),
        ({"field": "probability", "op": "in", "value": [0.2, 2]}, "rule.all.0.value", "max", None),
        ({"field": "probability", "op": "contains", "value": 0.5}, "rule.all.0.field", "isIn", None),
        ({"field": "predictedband", "op": "eq", "value": "A"}, "rule.all.0.field", "isIn", None),
    ],
    ids=[
        "band-E",
        "band-lowercase",
        "band-list-with-Z",
        "band-null",
        "band-gte",
        "band-in-one-value",
        "probability-above-1",
        "probability-below-0",
        "probability-text",
        "probability-boolean",
        "probability-null",
        "probability-list-above-1",
        "probability-contains",
        "field-spelled-otherwise",
    ],
)
def test_a_bad_prediction_condition_is_reported_on_the_field_at_fault(api, condition, at, constraint, text):
    body = {"name": unique_name("Dyn"), "type": "dynamic", "status": "active", "rule": {"any": [condition]}}
    assert_constraint(api.post("/segments", json=body), at.replace("all", "any"), constraint, text)
    segment = create_segment_api(api, "dynamic", "active")["segmentId"]
    r = api.patch(f"/segments/{segment}", json={"rule": {"all": [condition]}})
    assert_constraint(r, at, constraint, text)
