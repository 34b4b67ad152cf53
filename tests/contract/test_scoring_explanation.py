"""The score explanation GET /accounts/:rtp_aid/score (API.md §3.5, §6.23, §6.31, §6.34) and
`abmhub score` as an operator command (§5)."""

from __future__ import annotations

import pytest
from contract_helpers import (
    SIGNAL_SOURCES,
    SUB_SCORE_KEY,
    TIMESTAMP_RE,
    account,
    activity,
    client_for,
    deal,
    describe,
    envelope,
    error,
    explain_raw,
    get_account,
    iso_days_ago,
    ok,
    push_activities_ok,
    push_deals_ok,
    push_ok,
    push_signals,
    push_signals_ok,
    random_hex24,
    run_score,
    signal,
    unique_domain,
    unique_name,
)

EXPLANATION_KEYS = {
    "rtp_aid",
    "rtp_account_score",
    "rtp_journey_stage",
    "sources",
    "engagement",
    "topSignals",
    "computedAt",
}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def explanation(api, rtp_aid: str) -> dict:
    r = explain_raw(api, rtp_aid)
    data = ok(r, f"/api/v1/accounts/{rtp_aid}/score")
    assert isinstance(data, dict), describe(r)
    missing = EXPLANATION_KEYS - set(data)
    assert not missing, f"the explanation lacks {sorted(missing)}: {describe(r)}"
    assert data["rtp_aid"] == rtp_aid, describe(r)
    sources = data["sources"]
    assert isinstance(sources, list) and len(sources) == 4, f"sources always lists the four sources: {describe(r)}"
    assert {s.get("source") for s in sources} == set(SIGNAL_SOURCES), f"sources must be {SIGNAL_SOURCES}: {describe(r)}"
    for s in sources:
        assert {"source", "score", "weight", "contribution", "signals"} <= set(s), f"source entry keys: {s}"
        assert is_number(s["score"]) and 0 <= s["score"] <= 100, s
        assert is_number(s["weight"]) and s["weight"] >= 0, s
        assert is_number(s["contribution"]) and s["contribution"] >= 0, s
        assert isinstance(s["signals"], int) and not isinstance(s["signals"], bool) and s["signals"] >= 0, s
    eng = data["engagement"]
    assert isinstance(eng, dict) and {"score", "activities", "deals"} <= set(eng), f"engagement keys: {describe(r)}"
    assert is_number(eng["score"]) and 0 <= eng["score"] <= 100, eng
    assert isinstance(data["topSignals"], list), describe(r)
    for t in data["topSignals"]:
        assert {"source", "type", "occurredAt", "weight"} <= set(t), f"topSignals entry keys: {t}"
        assert t["source"] in SIGNAL_SOURCES and TIMESTAMP_RE.match(str(t["occurredAt"])) and is_number(t["weight"]), t
    return data


def test_explanation_shows_why(api, cli, workspace):
    dom, empty = unique_domain("ex"), unique_domain("ex-empty")
    aid, empty_aid = (r["rtp_aid"] for r in push_ok(api, [account(dom), account(empty)]))
    sent = (
        [
            signal(
                "g2",
                "pricing_view",
                dom,
                days_ago=0,
                externalSignalId=unique_name("ex-sig"),
            ),
            signal(
                "g2",
                "pricing_view",
                dom,
                days_ago=1,
                externalSignalId=unique_name("ex-sig"),
            ),
        ]
        + [signal("website", "page_view", dom, days_ago=30) for _ in range(3)]
        + [
            signal("linkedin_ads", "impression", dom, days_ago=30, count=200),
            signal("linkedin_ads", "click", dom, days_ago=30, count=1),
        ]
    )
    push_signals_ok(api, sent)
    # Repeats of known externalSignalIds are skipped (§3.1) and so must not count twice below.
    again = push_signals(api, sent[:2])
    assert [i["status"] for i in again["results"]] == ["skipped", "skipped"], again["results"]
    push_activities_ok(
        api,
        [
            activity(dom, activity_type="call", occurredAt=iso_days_ago(0)),
            activity(dom, activity_type="email", occurredAt=iso_days_ago(2)),
        ],
    )
    push_deals_ok(api, [deal(associatedAccounts=[{"domain": dom}])])  # no stageId: an open deal

    # Before any run the explanation shows the stored values: 0 and "" (§2.1).
    pre = explanation(api, aid)
    assert (pre["rtp_account_score"], pre["rtp_journey_stage"]) == (0, ""), (
        f"an unscored account explains 0 and '': {pre}"
    )
    assert all(s["score"] == 0 for s in pre["sources"]), f"unscored: every source score is 0: {pre['sources']}"

    run_score(cli, workspace.name)
    rec = get_account(api, dom)
    data = explanation(api, aid)
    assert (
        data["rtp_account_score"] == rec["rtp_account_score"] and data["rtp_journey_stage"] == rec["rtp_journey_stage"]
    ), f"the explanation shows the account's current score and stage: {data} vs {rec}"
    assert data["rtp_journey_stage"] == "Opportunity", f"an open deal makes the account Opportunity: {data}"
    src = {s["source"]: s for s in data["sources"]}
    for source, key in SUB_SCORE_KEY.items():
        assert src[source]["score"] == rec[key], (
            f"{source}: the explanation's score is the account's {key} ({rec[key]}): {src[source]}"
        )
        assert abs(src[source]["contribution"] - src[source]["weight"] * src[source]["score"]) <= 0.05 + 1e-9, (
            f"{source}: contribution is weight × score (docs/scoring.md §10): {src[source]}"
        )
    # `signals` counts signal items — the LinkedIn impression with count 200 is one item (§6.34),
    # and the two skipped repeats are not items.
    assert {s: src[s]["signals"] for s in SIGNAL_SOURCES} == {
        "website": 3,
        "g2": 2,
        "bombora": 0,
        "linkedin_ads": 2,
    }, src
    assert src["bombora"]["score"] == 0 and src["bombora"]["contribution"] == 0, (
        f"no Bombora signals: score 0 (§6.23): {src['bombora']}"
    )
    assert src["g2"]["score"] > 0 and src["website"]["score"] > 0, src
    eng = data["engagement"]
    assert (eng["activities"], eng["deals"]) == (2, 1), (
        f"engagement counts one call + one email and one open deal: {eng}"
    )
    assert eng["score"] > 0, f"a call today and an email this week give a non-zero engagement part: {eng}"
    top = data["topSignals"]
    assert top, f"an account with signals names its top signals: {data}"
    assert len(top) <= len(sent), top
    weights = [t["weight"] for t in top]
    assert weights == sorted(weights, reverse=True), f"topSignals come strongest first: {top}"
    sent_kinds = {(s["source"], s["type"]) for s in sent}
    assert all((t["source"], t["type"]) in sent_kinds for t in top), (
        f"topSignals are among the account's signals: {top}"
    )
    assert (top[0]["source"], top[0]["type"]) == ("g2", "pricing_view"), (
        f"today's G2 pricing view outweighs month-old page views and ads: {top}"
    )
    assert data["computedAt"] is not None and TIMESTAMP_RE.match(str(data["computedAt"])), (
        f"computedAt after a run: {data['computedAt']!r}"
    )

    # An account with nothing: four sources at 0 with 0 signals, no top signals, Unaware.
    e = explanation(api, empty_aid)
    assert (e["rtp_account_score"], e["rtp_journey_stage"]) == (0, "Unaware"), e
    assert all(s["score"] == 0 and s["signals"] == 0 and s["contribution"] == 0 for s in e["sources"]), e["sources"]
    assert (e["engagement"]["activities"], e["engagement"]["deals"]) == (0, 0) and e["topSignals"] == [], e


def test_explanation_errors(api, server, new_workspace):
    unknown = random_hex24()
    r = explain_raw(api, unknown)
    error(r, 404, None)

    for bad in ("nothex", "0" * 23, "0" * 25, "g" * 24):
        r = explain_raw(api, bad)
        body = envelope(r, 400)
        assert body["message"] == "Bad Request", describe(r)

    other = new_workspace()
    with client_for(server, other.key) as api2:
        their_aid = push_ok(api2, [account(unique_domain("ex-other"))])[0]["rtp_aid"]
    r = explain_raw(api, their_aid)
    error(r, 404, None)

    with client_for(server, None) as anon:
        error(
            anon.get(f"/accounts/{their_aid}/score"),
            401,
            "X-Api-Key header is required",
        )


@pytest.mark.parametrize("flags", [(), ("--all",)], ids=["changed", "all"])
def test_score_unknown_workspace_fails_clearly(cli, flags):
    ws = unique_name("no-such-workspace")
    proc = cli("score", "--workspace", ws, *flags)
    assert proc.returncode != 0, (
        f"scoring an unknown workspace must fail: stdout={proc.stdout!r} stderr={proc.stderr!r}"
    )
    assert ws in proc.stderr, f"the error names the workspace: stderr={proc.stderr!r}"
    assert "Traceback" not in proc.stderr, f"no stack trace for an operator error: {proc.stderr!r}"


def test_score_an_empty_workspace(cli, workspace):
    run_score(cli, workspace.name)
    run_score(cli, workspace.name, "--all")
