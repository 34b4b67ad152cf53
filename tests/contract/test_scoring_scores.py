"""Scores from signals (API.md §2.1, §3.1, §3.2, §3.4, §1.5, §6.22).

Black-box: signals go in through POST /signals, the scoring job is run with `abmhub score`,
scores are read back from GET /accounts. The tests check the contract's promises (ranges,
which sub-scores move, stronger/more recent signals score higher, determinism, delta sync),
never the model's exact numbers.
"""

from __future__ import annotations

from contract_helpers import (
    SCORE_KEYS,
    SUB_SCORE_KEY,
    account,
    accounts_by_domain,
    assert_scored_record,
    client_for,
    list_pass,
    page,
    parse_ts,
    push_ok,
    push_signals_ok,
    run_score,
    score_fields,
    signal,
    unique_domain,
)

# Which sources each test account gets signals from; the other sub-scores must stay 0.
SOURCES_OF = {
    "none": set(),
    "web": {"website"},
    "g2_pricing": {"g2"},
    "g2_category": {"g2"},
    "bomb90": {"bombora"},
    "bomb55": {"bombora"},
    "li": {"linkedin_ads"},
    "li_many": {"linkedin_ads"},
    "li_few": {"linkedin_ads"},
    "recent": {"g2"},
    "old": {"g2"},
    "early": {"website", "g2"},
    "norm": {"g2"},
}
# Accounts whose signals are strong and recent enough that a zero sub-score would mean they were ignored.
CLEARLY_NONZERO = {"web", "g2_pricing", "bomb90", "li", "recent", "early", "norm"}


def test_signals_drive_the_sub_scores(api, cli, workspace, server, new_workspace):
    d = {name: unique_domain(f"sc-{name.replace('_', '')}") for name in SOURCES_OF}

    # Signals for `early` arrive before its account exists (§3.1: kept, count once it exists).
    push_signals_ok(
        api,
        [signal("website", "page_view", d["early"]) for _ in range(5)] + [signal("g2", "comparison", d["early"])],
    )
    # Another workspace pushes strong signals for this workspace's domains: they must not count here (§0).
    other = new_workspace()
    with client_for(server, other.key) as api2:
        push_signals_ok(
            api2,
            [signal("g2", "pricing_view", d["none"]) for _ in range(20)]
            + [signal("bombora", "surge", d["web"], score=100) for _ in range(5)]
            + [signal("linkedin_ads", "click", d["g2_pricing"], count=500)],
        )

    push_ok(api, [account(dom) for dom in d.values()])
    push_signals_ok(
        api,
        [signal("website", "page_view", d["web"]) for _ in range(3)]
        + [
            signal("g2", "pricing_view", d["g2_pricing"]),
            signal("g2", "category_view", d["g2_category"]),
        ]
        + [
            signal("bombora", "surge", d["bomb90"], score=90),
            signal("bombora", "surge", d["bomb55"], score=55),
        ]
        + [
            signal("linkedin_ads", "impression", d["li"], count=500),
            signal("linkedin_ads", "click", d["li"], count=5),
            signal("linkedin_ads", "engagement", d["li"], count=3),
        ]
        + [
            signal("g2", "profile_view", d["recent"]),
            signal("g2", "profile_view", d["old"], days_ago=90),
        ]
        + [
            signal("linkedin_ads", "impression", d["li_many"], count=2000),
            signal("linkedin_ads", "impression", d["li_few"], count=20),
        ]
        # §1.6/§6.21: a signal's domain is normalised like every other domain (it can fail with
        # "Invalid domain"), so a URL-ish spelling counts for the account.
        + [signal("g2", "pricing_view", f"HTTPS://WWW.{d['norm'].upper()}/pricing?x=1")],
    )

    # §2.1: before the scoring job has seen them, accounts read 0 and "".
    fresh = accounts_by_domain(api, d.values())
    assert set(fresh) == set(d.values()), f"every pushed account is listed: {sorted(fresh)}"
    for rec in fresh.values():
        assert {k: rec[k] for k in SCORE_KEYS} == dict.fromkeys(SCORE_KEYS, 0), (
            f"an unscored account reads every score 0: {rec}"
        )
        assert rec["rtp_journey_stage"] == "", f"an unscored account reads rtp_journey_stage '': {rec}"

    run_score(cli, workspace.name)
    after1 = accounts_by_domain(api, d.values())
    by = {name: after1[dom] for name, dom in d.items()}
    for name, rec in by.items():
        assert_scored_record(rec)
        for source, key in SUB_SCORE_KEY.items():
            if source not in SOURCES_OF[name]:
                assert rec[key] == 0, (
                    f"{name}: {key} must be 0 without {source} signals (another workspace's signals never count): {score_fields(rec)}"
                )
            elif name in CLEARLY_NONZERO:
                assert rec[key] > 0, f"{name}: {key} must be above 0 with recent {source} signals: {score_fields(rec)}"
        assert rec["rtp_journey_stage"] not in ("Opportunity", "Customer"), (
            f"{name}: signals alone never make an Opportunity/Customer: {score_fields(rec)}"
        )

    assert score_fields(by["none"]) == {
        **dict.fromkeys(SCORE_KEYS, 0),
        "rtp_journey_stage": "Unaware",
    }, f"an account with nothing (in this workspace) reads 0 and 'Unaware' after scoring: {score_fields(by['none'])}"
    assert by["early"]["rtp_website_intent_score"] > 0 and by["early"]["rtp_g2_intent_score"] > 0, (
        f"signals pushed before their account count once it exists: {score_fields(by['early'])}"
    )

    def stronger(a: str, b: str, key: str, why: str) -> None:
        assert by[a][key] > by[b][key], f"{why}: {a} {key}={by[a][key]} must be above {b} {key}={by[b][key]}"
        assert by[a]["rtp_account_score"] >= by[b]["rtp_account_score"], (
            f"{why}: {a}'s account score must not be below {b}'s: {by[a]['rtp_account_score']} < {by[b]['rtp_account_score']}"
        )

    stronger(
        "g2_pricing",
        "g2_category",
        "rtp_g2_intent_score",
        "a G2 pricing view weighs more than a category view",
    )
    stronger(
        "bomb90",
        "bomb55",
        "rtp_bombora_intent_score",
        "a Bombora surge of 90 weighs more than one of 55",
    )
    stronger(
        "li_many",
        "li_few",
        "rtp_advertising_activity_score",
        "2000 LinkedIn impressions weigh more than 20",
    )
    stronger(
        "recent",
        "old",
        "rtp_g2_intent_score",
        "a signal from today weighs more than the same one 90 days old",
    )
    for name, rec in by.items():
        assert rec["rtp_account_score"] >= by["none"]["rtp_account_score"], (
            f"{name}: signals never lower the account score"
        )

    # §3.4/§6.22: a second run (a full recompute, same day, no new data) changes nothing — not
    # even rtp_last_account_date (nothing changed, so nothing is a change for delta sync).
    run_score(cli, workspace.name, "--all")
    after2 = accounts_by_domain(api, d.values())
    for name, dom in d.items():
        before, now = after1[dom], after2[dom]
        assert score_fields(now) == score_fields(before), (
            f"{name}: a second run on the same day over the same data changed the scores: {score_fields(before)} -> {score_fields(now)}"
        )
        assert now["rtp_last_account_date"] == before["rtp_last_account_date"], (
            f"{name}: a run that changes nothing must not move rtp_last_account_date: {before['rtp_last_account_date']} -> {now['rtp_last_account_date']}"
        )

    # §1.5: a score change made by the job is a change for delta sync.
    sync = page(api, "/accounts", limit=1000)["syncTimestamp"]
    push_signals_ok(api, [signal("website", "page_view", d["web"]) for _ in range(10)])
    run_score(cli, workspace.name)  # incremental: the web account's inputs changed
    after3 = accounts_by_domain(api, d.values())
    web_before, web_now = after2[d["web"]], after3[d["web"]]
    assert web_now["rtp_website_intent_score"] > web_before["rtp_website_intent_score"], (
        f"ten more page views today must raise the website score: {score_fields(web_before)} -> {score_fields(web_now)}"
    )
    assert web_now["rtp_account_score"] >= web_before["rtp_account_score"], (
        f"more signals never lower the account score: {score_fields(web_now)}"
    )
    assert parse_ts(web_now["rtp_last_account_date"]) > parse_ts(web_before["rtp_last_account_date"]), (
        f"a score change moves rtp_last_account_date: {web_before['rtp_last_account_date']} -> {web_now['rtp_last_account_date']}"
    )
    delta, _ = list_pass(api, limit=1000, lastSync=sync)
    delta_by_domain = {r["domain"]: r for r in delta}
    assert d["web"] in delta_by_domain, (
        f"the rescored account must come back in the lastSync={sync} pass; got {sorted(delta_by_domain)}"
    )
    assert score_fields(delta_by_domain[d["web"]]) == score_fields(web_now), "the delta pass carries the new scores"
    for name, dom in d.items():
        if name != "web":
            assert score_fields(after3[dom]) == score_fields(after2[dom]), (
                f"{name}: nothing new for it, its scores must not move"
            )
            assert after3[dom]["rtp_last_account_date"] == after2[dom]["rtp_last_account_date"], (
                f"{name}: unchanged account rewritten"
            )


def test_a_new_account_reads_zero_until_its_first_run(api, cli, workspace):
    """§2.1: pushed after a run, an account still reads 0 and "" until a run has seen it."""
    first = unique_domain("sc-first")
    push_ok(api, [account(first)])
    push_signals_ok(api, [signal("g2", "pricing_view", first)])
    run_score(cli, workspace.name)
    late = unique_domain("sc-late")
    push_ok(api, [account(late)])
    push_signals_ok(api, [signal("g2", "pricing_view", late)])
    recs = accounts_by_domain(api, [first, late])
    assert recs[first]["rtp_journey_stage"] != "" and recs[first]["rtp_g2_intent_score"] > 0, score_fields(recs[first])
    assert score_fields(recs[late]) == {
        **dict.fromkeys(SCORE_KEYS, 0),
        "rtp_journey_stage": "",
    }, (
        f"scores are not real time (§3.4): an account pushed after the run reads 0 and '' until the next one: {score_fields(recs[late])}"
    )
    run_score(cli, workspace.name)
    recs = accounts_by_domain(api, [first, late])
    assert score_fields(recs[late]) == score_fields(recs[first]), (
        f"the same signals on the same day give the same numbers (§3.2 deterministic): {score_fields(recs[first])} vs {score_fields(recs[late])}"
    )
