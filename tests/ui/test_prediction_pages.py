"""Predictions on the dashboard (API.md §10): the account page's "Prediction" panel, the
overview's "Likely to open an opportunity" list, and prediction fields in the rule editor.

Against a real `abmhub serve` on both databases; the numbers on the pages are checked against
`GET /accounts/:rtp_aid/prediction` for the same workspace. The model is hand-set
(tests/support/predictions.py), stored and activated as a trained one is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.datastructures import QueryParams
from ui_helpers import ESCAPED_HOSTILE, HOSTILE_NAME, dashboard, ok_data, page, score, sign_in

from abmhub.ui.pages import environment
from abmhub.ui.rule_form import RuleForm
from tests.support.predictions import install_model


@pytest.fixture
def ui(server, workspace):
    with dashboard(server) as client:
        sign_in(client, workspace.key)
        yield client


def chance(probability: float) -> str:
    return environment.filters["chance"](probability)


def push_ranked(api: httpx.Client, count: int, *, prefix: str = "ranked") -> list[str]:
    """`count` accounts, account i with i Bombora surges this month (the hand-set model ranks
    them by that); returns their rtp_aids in that order."""
    items = [{"domain": f"{prefix}-{i}.example.com", "name": f"{prefix.capitalize()} {i:02d}"} for i in range(count)]
    results = ok_data(api.post("/accounts", json={"accounts": items}))["results"]
    now = datetime.now(UTC)
    signals = [
        {
            "source": "bombora",
            "type": "surge",
            "domain": item["domain"],
            "topic": "Customer Data Platforms",
            "score": 70,
            "occurredAt": (now - timedelta(days=n, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for i, item in enumerate(items)
        for n in range(i)
    ]
    if signals:
        ok_data(api.post("/signals", json={"signals": signals}))
    return [result["rtp_aid"] for result in results]


def prediction(api: httpx.Client, rtp_aid: str) -> dict[str, Any]:
    return ok_data(api.get(f"/accounts/{rtp_aid}/prediction"))


def test_account_page_shows_the_prediction_and_what_moves_it(server, workspace, api, ui, server_database):
    aids = push_ranked(api, 4)
    score(server, workspace.name)
    model_id = install_model(server_database, workspace=workspace.name)
    top = prediction(api, aids[-1])
    assert top["factors"], top

    html = page(ui, f"/ui/accounts/{aids[-1]}")
    panel = html[html.index('id="prediction-title"') : html.index('id="history-title"')]
    assert f'<strong data-metric="probability">{chance(top["probability"])}</strong>' in panel
    assert "within 90 days" in panel
    assert f'<strong data-metric="probability-30d">{chance(top["probability30d"])}</strong>' in panel
    assert f"Band {top['band']}</span>" in panel
    for factor in top["factors"]:
        assert factor["feature"] in panel
    raises = sum(1 for factor in top["factors"] if factor["contribution"] > 0)
    assert len(re.findall(r'class="factor-effect raises"', panel)) == raises
    assert len(re.findall(r'<svg class="factor-bar"', panel)) == len(top["factors"])
    assert model_id in panel
    assert "abmhub model train" not in html

    # An account with no record at all: its chance is the base rate, and nothing sets it apart.
    none = prediction(api, aids[0])
    quiet = page(ui, f"/ui/accounts/{aids[0]}")
    assert f'<strong data-metric="probability">{chance(none["probability"])}</strong>' in quiet
    if not none["factors"]:
        assert "Nothing sets this account apart" in quiet


def test_an_account_with_an_open_deal_already_has_its_opportunity(server, workspace, api, ui, server_database):
    (aid,) = push_ranked(api, 1, prefix="dealt")
    ok_data(
        api.post(
            "/deals",
            json={
                "deals": [
                    {
                        "externalDealId": "dealt-1",
                        "name": "Dealt",
                        "associatedAccounts": [{"domain": "dealt-0.example.com"}],
                    }
                ]
            },
        )
    )
    score(server, workspace.name)
    install_model(server_database, workspace=workspace.name)
    assert prediction(api, aid)["probability"] is None
    html = page(ui, f"/ui/accounts/{aid}")
    assert 'data-prediction="has-opportunity"' in html and "already has an opportunity" in html
    assert 'data-metric="probability"' not in html


def test_without_an_active_model_the_account_page_says_how_to_get_one(server, workspace, api, ui):
    (aid,) = push_ranked(api, 1, prefix="nomodel")
    html = page(ui, f"/ui/accounts/{aid}")
    assert f"abmhub model train --workspace {workspace.name}" in html
    assert 'data-metric="probability"' not in html
    assert "Likely to open an opportunity" not in page(ui, "/ui")


def test_overview_lists_the_ten_likeliest_accounts_as_the_api_ranks_them(server, workspace, api, ui, server_database):
    aids = push_ranked(api, 13)
    hostile = ok_data(
        api.post("/accounts", json={"accounts": [{"domain": "hostile-pred.example.com", "name": HOSTILE_NAME}]})
    )
    hostile_aid = hostile["results"][0]["rtp_aid"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    many = [
        {
            "source": "bombora",
            "type": "surge",
            "domain": "hostile-pred.example.com",
            "topic": "CDP",
            "score": 90,
            "occurredAt": now,
        }
        for _ in range(40)
    ]
    ok_data(api.post("/signals", json={"signals": many}))
    score(server, workspace.name)
    install_model(server_database, workspace=workspace.name)
    found = {aid: prediction(api, aid) for aid in [*aids, hostile_aid]}
    expected = sorted(found, key=lambda aid: -found[aid]["probability"])[:10]
    assert expected[0] == hostile_aid and expected[1:] == aids[::-1][:9]

    html = page(ui, "/ui")
    card = html[html.index('id="likely-title"') :]
    card = card[: card.index("</section>")]
    listed = re.findall(r'<a href="/ui/accounts/([0-9a-f]{24})">', card)
    assert listed == expected
    for aid in expected:
        assert chance(found[aid]["probability"]) in card
    assert "within 90 days" in card and '<th scope="col" class="num">90 days</th>' in card
    assert HOSTILE_NAME not in html and ESCAPED_HOSTILE in card


# --- the rule editor: prediction fields --------------------------------------------------------


def editor_form(*rows: tuple[str, str, str]) -> RuleForm:
    pairs = [("name", "Likely"), ("status", "active")]
    for field, op, value in rows:
        pairs += [("all-field", field), ("all-op", op), ("all-value", value)]
    return RuleForm.from_values(QueryParams(pairs))


def test_rule_editor_takes_a_band_and_a_probability_as_a_share_or_a_percentage() -> None:
    form = editor_form(("predictedBand", "in", "a, B"), ("probability", "gte", "25%"), ("probability", "lt", "0.9"))
    assert form.check() == {
        "all": [
            {"field": "predictedBand", "op": "in", "value": ["A", "B"]},
            {"field": "probability", "op": "gte", "value": 0.25},
            {"field": "probability", "op": "lt", "value": 0.9},
        ]
    }


@pytest.mark.parametrize(
    "row,part,words",
    [
        (("predictedBand", "eq", "E"), "value", "no band"),
        (("predictedBand", "gt", "B"), "op", "must be one of the following values: eq, ne, in"),
        (("probability", "gte", "25"), "value", "no probability"),
        (("probability", "gte", "150%"), "value", "no probability"),
        (("probability", "gte", "likely"), "value", "no probability"),
    ],
)
def test_rule_editor_explains_a_bad_prediction_condition_on_its_row(row, part, words) -> None:
    form = editor_form(row)
    assert form.check() is None
    assert words in form.conditions["all"][0].errors[part]


def test_rule_editor_previews_a_rule_on_the_prediction(server, workspace, api, ui, server_database):
    aids = push_ranked(api, 5, prefix="preview")
    score(server, workspace.name)
    install_model(server_database, workspace=workspace.name)
    threshold = prediction(api, aids[3])["probability"]
    wanted = sum(1 for aid in aids if prediction(api, aid)["probability"] >= threshold)
    html = page(
        ui,
        "/ui/segments/preview",
        **{"all-field": "probability", "all-op": "gte", "all-value": str(threshold)},
    )
    assert f"<strong data-preview-count>{wanted}</strong>" in html
    editor = page(ui, "/ui/segments/new")
    assert '<option value="predictedBand"' in editor and '<option value="probability"' in editor
