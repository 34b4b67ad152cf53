"""Journey stages from deals and engagement (API.md §2.9, §2.10, §2.4, §3.3, §6.16, §6.19, §6.23, §6.31).

A pipeline is defined with POST /deal-stages, deals and calls/emails are pushed with the
ordinary endpoints, `abmhub score` runs the job, and GET /accounts (with its `journeyStage`
and `minScore` filters) and GET /accounts/:rtp_aid/score are read back.
"""

from __future__ import annotations

from contract_helpers import (
    JOURNEY_STAGES,
    SCORE_KEYS,
    account,
    accounts_by_domain,
    activity,
    all_accounts,
    assert_scored_record,
    deal,
    describe,
    explain_raw,
    iso_days_ago,
    list_pass,
    ok,
    page,
    push_activities_ok,
    push_deals_ok,
    push_ok,
    run_score,
    score_fields,
    unique_domain,
    unique_name,
)

OPEN_STAGES = ("Opportunity", "Customer")


def test_journey_stages_follow_deals(api, cli, workspace):
    pid = unique_name("pipe")
    stages = [
        {"stageId": "demo", "stageLabel": "Demo"},
        {"stageId": "closedwon", "stageLabel": "Closed Won"},
        {"stageId": "closedlost", "stageLabel": "Closed Lost"},
        # §2.9 extension: an explicit journeyStage decides, whatever the label says.
        {
            "stageId": "signed",
            "stageLabel": "Contract Signed",
            "journeyStage": "Customer",
        },
        {"stageId": "dq", "stageLabel": "Disqualified", "journeyStage": None},
    ]
    r = api.post(
        "/deal-stages",
        json={"pipelines": [{"pipelineId": pid, "pipelineLabel": "Sales", "stages": stages}]},
    )
    ok(r, "/api/v1/deal-stages")
    label = {s["stageId"]: s["stageLabel"] for s in stages}

    names = [
        "open",
        "won",
        "lost",
        "nostage",
        "open_lost",
        "won_open",
        "signed",
        "dq",
        "late",
        "moving",
        "calls",
        "nothing",
    ]
    d = {n: unique_domain(f"js-{n.replace('_', '')}") for n in names}

    def staged(name: str, stage_id: str | None, ext: str | None = None) -> dict:
        fields = {"associatedAccounts": [{"domain": d[name]}]}
        if stage_id is not None:
            fields.update(
                stageId=stage_id,
                stageLabel=label[stage_id],
                pipelineId=pid,
                pipelineLabel="Sales",
            )
        return deal(ext, **fields)

    # `late`: its deal arrives before its account (§2.8: resolved when the account appears).
    push_deals_ok(api, [staged("late", "demo")])
    push_ok(api, [account(d[n]) for n in names if n != "late"])
    push_ok(api, [account(d["late"])])
    moving_deal = staged("moving", "demo")
    push_deals_ok(
        api,
        [
            staged("open", "demo"),
            staged("won", "closedwon"),
            staged("lost", "closedlost"),
            staged("nostage", None),  # §6.19: a deal with no stageId counts as open
            staged("open_lost", "demo"),
            staged("open_lost", "closedlost"),
            staged("won_open", "closedwon"),
            staged("won_open", "demo"),
            staged("signed", "signed"),
            staged("dq", "dq"),
            moving_deal,
        ],
    )
    push_activities_ok(
        api,
        [
            activity(d["calls"], activity_type="call", occurredAt=iso_days_ago(0)),
            activity(d["calls"], activity_type="call", occurredAt=iso_days_ago(1)),
            activity(d["calls"], activity_type="email", occurredAt=iso_days_ago(0)),
        ],
    )

    run_score(cli, workspace.name)
    recs = accounts_by_domain(api, d.values())
    by = {n: recs[d[n]] for n in names}
    for rec in by.values():
        assert_scored_record(rec)

    def stage(n: str) -> str:
        return by[n]["rtp_journey_stage"]

    for n in ("open", "nostage", "open_lost", "late", "moving"):
        assert stage(n) == "Opportunity", (
            f"{n}: an open deal (and no won deal) makes the account Opportunity, got {score_fields(by[n])}"
        )
    for n in ("won", "won_open"):
        assert stage(n) == "Customer", (
            f"{n}: a won deal (label 'Closed Won') makes the account Customer, got {score_fields(by[n])}"
        )
    assert stage("signed") == "Customer", (
        f"a stage with journeyStage 'Customer' counts as won: {score_fields(by['signed'])}"
    )
    for n in ("lost", "dq"):
        assert stage(n) not in OPEN_STAGES, (
            f"{n}: a lost deal makes the account neither Opportunity nor Customer: {score_fields(by[n])}"
        )
        # §6.19/§6.31: a lost deal counts for nothing — the account reads like one with nothing.
        assert score_fields(by[n]) == score_fields(by["nothing"]), (
            f"{n}: a lost deal adds nothing to any score: {score_fields(by[n])} vs an account with nothing {score_fields(by['nothing'])}"
        )
    assert score_fields(by["nothing"]) == {
        **dict.fromkeys(SCORE_KEYS, 0),
        "rtp_journey_stage": "Unaware",
    }, score_fields(by["nothing"])
    assert stage("calls") in ("Aware", "Consideration"), (
        f"calls and emails alone make an account Aware or Consideration: {score_fields(by['calls'])}"
    )
    assert by["calls"]["rtp_account_score"] > 0, (
        f"recent calls and emails count for the account score (§3.2): {score_fields(by['calls'])}"
    )
    for source_key in (
        "rtp_website_intent_score",
        "rtp_g2_intent_score",
        "rtp_bombora_intent_score",
        "rtp_advertising_activity_score",
    ):
        assert by["calls"][source_key] == 0 and by["won"][source_key] == 0, (
            "activities and deals are not intent signals"
        )

    # Explanation (§6.23, §6.31): engagement.deals counts open and won deals, not lost ones;
    # engagement.activities counts calls and emails.
    expected = {
        "open": (0, 1),
        "won": (0, 1),
        "lost": (0, 0),
        "nostage": (0, 1),
        "open_lost": (0, 1),
        "won_open": (0, 2),
        "signed": (0, 1),
        "dq": (0, 0),
        "calls": (3, 0),
        "nothing": (0, 0),
    }
    for n, (acts, deals) in expected.items():
        r = explain_raw(api, by[n]["rtp_aid"])
        data = ok(r)
        eng = data.get("engagement")
        assert isinstance(eng, dict), describe(r)
        assert (eng.get("activities"), eng.get("deals")) == (acts, deals), (
            f"{n}: engagement.activities/deals should be {acts}/{deals}, got {eng.get('activities')}/{eng.get('deals')}: {describe(r)}"
        )
        assert data["rtp_journey_stage"] == stage(n) and data["rtp_account_score"] == by[n]["rtp_account_score"], (
            f"{n}: the explanation shows the account's current score and stage: {describe(r)}"
        )

    # A deal change marks the account for the next (incremental) run (§3.4), and the stage
    # change the job makes is a change for delta sync (§1.5).
    sync = page(api, "/accounts", limit=1000)["syncTimestamp"]
    push_deals_ok(api, [staged("moving", "closedlost", moving_deal["externalDealId"])])
    run_score(cli, workspace.name)
    recs2 = accounts_by_domain(api, d.values())
    assert recs2[d["moving"]]["rtp_journey_stage"] not in OPEN_STAGES, (
        f"a deal moved to 'Closed Lost' no longer makes the account Opportunity: {score_fields(recs2[d['moving']])}"
    )
    for n in names:
        if n != "moving":
            assert score_fields(recs2[d[n]]) == score_fields(by[n]), f"{n}: nothing changed for it, nothing may move"
    delta, _ = list_pass(api, limit=1000, lastSync=sync)
    moved = [a for a in delta if a["domain"] == d["moving"]]
    assert moved and moved[0]["rtp_journey_stage"] == recs2[d["moving"]]["rtp_journey_stage"], (
        f"a journey-stage change by the job comes back in the lastSync={sync} pass: {sorted(a['domain'] for a in delta)}"
    )

    # GET /journey-stages (§2.10) and the list filters (§2.4, §6.16) on scored accounts.
    r = api.get("/journey-stages")
    assert r.status_code == 200 and r.json() == JOURNEY_STAGES, (
        f"GET /journey-stages is the bare array {JOURNEY_STAGES}: {describe(r)}"
    )
    everyone = all_accounts(api)
    assert {a["domain"] for a in everyone} == set(d.values())
    for js in JOURNEY_STAGES:
        got = {a["domain"] for a in all_accounts(api, journeyStage=js)}
        want = {a["domain"] for a in everyone if a["rtp_journey_stage"] == js}
        assert got == want, f"journeyStage={js}: expected {sorted(want)}, got {sorted(got)}"
    assert {a["domain"] for a in all_accounts(api, journeyStage="Opportunity")} == {
        d[n] for n in ("open", "nostage", "open_lost", "late")
    }
    assert {a["domain"] for a in all_accounts(api, journeyStage="Customer")} == {
        d[n] for n in ("won", "won_open", "signed")
    }
    for m in sorted({a["rtp_account_score"] for a in everyone} | {1}):
        got = {a["domain"] for a in all_accounts(api, minScore=m)}
        want = {a["domain"] for a in everyone if a["rtp_account_score"] >= m}
        assert got == want, (
            f"minScore={m} is inclusive (rtp_account_score >= {m}): expected {sorted(want)}, got {sorted(got)}"
        )
    got = {a["domain"] for a in all_accounts(api, journeyStage="Customer", minScore=1)}
    want = {a["domain"] for a in everyone if a["rtp_journey_stage"] == "Customer" and a["rtp_account_score"] >= 1}
    assert got == want, f"filters combine: expected {sorted(want)}, got {sorted(got)}"
