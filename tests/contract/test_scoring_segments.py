"""Dynamic segments re-evaluated by the scoring job (API.md §2.12, §2.1 `segmentIds`, §3.4).

The rule format is the one docs/scoring.md §8 documents (`{"all": [...], "any": [...]}` of
`{field, op, value}`); the contract itself only says the rule filters on scores, journey
stage, sub-scores, tags and custom fields and is re-evaluated by the scoring job.
Thresholds are taken from the scores the job produced, so no model number is pinned.
"""

from __future__ import annotations

from contract_helpers import (
    account,
    accounts_by_domain,
    assert_account_record,
    create_field,
    create_segment_api,
    describe,
    ok,
    push_ok,
    push_signals_ok,
    run_score,
    score_fields,
    segment_members,
    signal,
    unique_domain,
    unique_name,
)


def test_dynamic_segments_follow_the_scores(api, cli, workspace):
    names = ["hot", "warm", "cold", "webby"]
    d = {n: unique_domain(f"seg-{n}") for n in names}
    key = create_field(api, unique_name("Tier"))["key"]
    push_ok(
        api,
        [
            account(d["hot"], tags=["vip"], customFields={key: "gold"}),
            account(d["warm"], tags=["vip"], customFields={key: "silver"}),
            account(d["cold"], tags=["vip"]),
            account(d["webby"], customFields={key: "gold"}),
        ],
    )
    push_signals_ok(
        api,
        [signal("g2", "pricing_view", d["hot"]) for _ in range(3)]
        + [signal("g2", "category_view", d["warm"])]
        + [signal("website", "page_view", d["webby"]) for _ in range(5)],
    )
    run_score(cli, workspace.name)
    recs = accounts_by_domain(api, d.values())
    by = {n: recs[d[n]] for n in names}
    g2 = {n: by[n]["rtp_g2_intent_score"] for n in names}
    assert g2["hot"] > g2["warm"] > 0 == g2["cold"], (
        f"three G2 pricing views beat one category view, which beats nothing: {g2}"
    )
    assert by["webby"]["rtp_website_intent_score"] > 0, score_fields(by["webby"])

    # S1: a sub-score threshold between warm and hot.
    t1 = g2["warm"] + 1
    rule1 = {"all": [{"field": "rtp_g2_intent_score", "op": "gte", "value": t1}]}
    s1 = create_segment_api(api, "dynamic", "active", rule=rule1)["segmentId"]
    # S2: `all` and `any` together, on tags, the account score and a sub-score.
    rule2 = {
        "all": [
            {
                "field": "rtp_account_score",
                "op": "gt",
                "value": by["cold"]["rtp_account_score"],
            }
        ],
        "any": [
            {"field": "tags", "op": "contains", "value": "vip"},
            {"field": "rtp_website_intent_score", "op": "gt", "value": 0},
        ],
    }
    s2 = create_segment_api(api, "dynamic", "active", rule=rule2)["segmentId"]
    # S3: the journey stage.
    rule3 = {
        "all": [
            {
                "field": "rtp_journey_stage",
                "op": "eq",
                "value": by["cold"]["rtp_journey_stage"],
            }
        ]
    }
    s3 = create_segment_api(api, "dynamic", "active", rule=rule3)["segmentId"]

    # S4: a custom field and a tag.
    rule4 = {
        "all": [
            {"field": f"customFields.{key}", "op": "eq", "value": "gold"},
            {"field": "tags", "op": "contains", "value": "vip"},
        ]
    }
    s4 = create_segment_api(api, "dynamic", "active", rule=rule4)["segmentId"]

    def want4(rec):
        return rec["customFields"].get(key) == "gold" and "vip" in rec["tags"]

    def want1(rec):
        return rec["rtp_g2_intent_score"] >= t1

    def want2(rec):
        return rec["rtp_account_score"] > by["cold"]["rtp_account_score"] and (
            "vip" in rec["tags"] or rec["rtp_website_intent_score"] > 0
        )

    def want3(rec):
        return rec["rtp_journey_stage"] == by["cold"]["rtp_journey_stage"]

    def check(seg: str, want, label: str) -> set[str]:
        recs = accounts_by_domain(api, d.values())
        expected = {rec["rtp_aid"] for rec in recs.values() if want(rec)}
        rows = segment_members(api, seg)
        for row in rows:
            assert_account_record(row)
        got = {row["rtp_aid"] for row in rows}
        assert got == expected, (
            f"{label}: members of the dynamic segment should be {sorted(r['domain'] for r in recs.values() if want(r))}, "
            f"got {sorted(row['domain'] for row in rows)}; scores: { {r['domain']: score_fields(r) for r in recs.values()} }"
        )
        for rec in recs.values():
            assert (seg in rec["segmentIds"]) == (rec["rtp_aid"] in expected), (
                f"{label}: {rec['domain']} segmentIds {rec['segmentIds']} must {'' if rec['rtp_aid'] in expected else 'not '}hold {seg}"
            )
        return got

    run_score(cli, workspace.name)  # the job re-evaluates the rules
    assert check(s1, want1, "S1 (g2 >= threshold)") == {by["hot"]["rtp_aid"]}
    assert by["hot"]["rtp_aid"] in check(s2, want2, "S2 (all + any)")
    assert by["cold"]["rtp_aid"] in check(s3, want3, "S3 (journey stage)")
    assert check(s4, want4, "S4 (custom field and tag)") == {by["hot"]["rtp_aid"]}

    # An account that stops matching leaves after the next run.
    rule1b = {"all": [{"field": "rtp_g2_intent_score", "op": "gte", "value": g2["hot"] + 1}]}
    r = api.patch(f"/segments/{s1}", json={"rule": rule1b})
    ok(r)
    t1 = g2["hot"] + 1
    run_score(cli, workspace.name, "--all")
    assert check(s1, want1, "S1 after raising the threshold above every score") == set(), describe(r)
    check(s2, want2, "S2 after a run with no changes")
    check(s3, want3, "S3 after a run with no changes")
