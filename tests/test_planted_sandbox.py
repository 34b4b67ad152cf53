"""`abmhub seed --planted`: a sandbox whose opportunities follow a hidden rule, with its truth."""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from abmhub.accounts.schemas import AccountItem
from abmhub.activities.schemas import ActivityItem
from abmhub.db.tables import activities, deal_accounts, deal_stage_history, deals, signals, workspaces
from abmhub.deals.schemas import DealItem
from abmhub.sandbox.planted import (
    EPISODE_DAYS,
    LEAD_DAYS,
    PlantedGenerator,
    PlantedTruth,
    idle_probability,
    plant_truth,
)
from abmhub.sandbox.seed import seed_workspace
from abmhub.scoring.model import US_PER_DAY
from abmhub.signals.schemas import SignalItem

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
BUYING_PAGES = ("/pricing", "/demo", "/product", "/case-studies", "/integrations", "/security")


def test_the_same_seed_gives_the_same_truth_and_records(tmp_path):
    first, again = (PlantedGenerator(seed=7, accounts=120, as_of=AS_OF) for _ in range(2))
    plans = list(first.plans())
    assert first.truth == again.truth and plans == list(again.plans())
    smaller = PlantedGenerator(seed=7, accounts=40, as_of=AS_OF)
    assert list(smaller.truth.accounts.values()) == list(first.truth.accounts.values())[:40]
    assert list(smaller.plans()) == plans[:40], "a smaller sandbox is the start of a larger one"
    other = plant_truth(seed=8, accounts=120, as_of=AS_OF)
    assert [a.f for a in other.accounts.values()] != [a.f for a in first.truth.accounts.values()]

    first.truth.save(tmp_path / "truth.json")
    assert PlantedTruth.load(tmp_path / "truth.json") == first.truth
    document = json.loads((tmp_path / "truth.json").read_text())
    assert document["directions"] == {"website": 1, "g2": 1, "bombora": 1, "activities": 1, "linkedin_ads": -1}

    today = first.truth.as_of_day
    for plan in plans:
        AccountItem.model_validate(plan.account)
        for deal in plan.deals:
            DealItem.model_validate(deal)
        for activity in plan.activities:
            ActivityItem.model_validate(activity)
        for signal in plan.signals:
            SignalItem.model_validate(signal)
        moments = [s["occurredAt"] for s in plan.signals] + [a["occurredAt"] for a in plan.activities]
        moments += [h["enteredAt"] for d in plan.deals for h in d["stageHistory"]]
        assert max(moments) < "2026-04-30" and min(moments) >= "2024-11-06", "540 days before as-of"
    signal_count = sum(len(p.signals) for p in plans) / len(plans)
    assert 100 <= signal_count <= 200, f"{signal_count:.0f} signals per account"
    assert all(a.first_day >= today - 540 for a in first.truth.accounts.values())


def _workspace_records(db, name: str) -> tuple[dict, dict, list]:
    """Per domain: signals (source, type, day, url), activity days; and the deals with their stage days."""
    with db.read() as conn:
        workspace_id = conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar_one()
        found_signals: dict[str, list] = defaultdict(list)
        for row in conn.execute(
            select(signals.c.domain, signals.c.source, signals.c.type, signals.c.occurred_day, signals.c.url).where(
                signals.c.workspace_id == workspace_id
            )
        ):
            found_signals[row.domain].append((row.source, row.type, row.occurred_day, row.url))
        found_activities: dict[str, list[int]] = defaultdict(list)
        for domain, at in conn.execute(
            select(activities.c.domain, activities.c.occurred_us).where(activities.c.workspace_id == workspace_id)
        ):
            found_activities[domain].append(at // US_PER_DAY)
        first_stage = (
            select(deal_stage_history.c.deal_id, func.min(deal_stage_history.c.entered_us).label("first_us"))
            .group_by(deal_stage_history.c.deal_id)
            .subquery()
        )
        found_deals = conn.execute(
            select(
                deal_accounts.c.domain, deals.c.start_us, deals.c.closed_us, deals.c.stage_id, first_stage.c.first_us
            )
            .join(deal_accounts, deal_accounts.c.deal_id == deals.c.id)
            .join(first_stage, first_stage.c.deal_id == deals.c.id)
            .where(deals.c.workspace_id == workspace_id)
        ).all()
    return found_signals, found_activities, found_deals


def test_the_seeded_workspace_follows_its_truth_and_seeding_again_converges(database):
    report = seed_workspace(database, workspace="planted", accounts=200, seed=11, as_of=AS_OF, planted=True)
    truth = report.truth
    assert truth is not None and report.replayed_days == 0
    today = truth.as_of_day
    found_signals, found_activities, found_deals = _workspace_records(database, "planted")

    # Every opportunity opened before as-of is a deal whose first stage is on the decision day.
    expected = sorted(
        (domain, e.decision_day, e.close_day if e.close_day < today else None)
        for domain, account in truth.accounts.items()
        for e in account.episodes
        if e.opened and e.decision_day < today and e.close_day is not None
    )
    assert len(expected) > 20
    got = sorted(
        (d.domain, d.first_us // US_PER_DAY, None if d.closed_us is None else d.closed_us // US_PER_DAY)
        for d in found_deals
    )
    assert got == expected, "one deal per opened episode, none for the others"
    assert all(d.start_us == d.first_us for d in found_deals), "startDate is the first stage's"

    # Episode records lie in their source's lead time before a decision; LinkedIn gets none.
    def in_lead(domain: str, day: int, lead: int) -> bool:
        return any(e.decision_day - lead <= day < e.decision_day for e in truth.accounts[domain].episodes)

    linkedin_days_in_episodes, linkedin_expected = 0, 0.0
    for domain, account in truth.accounts.items():
        rows = found_signals[domain]
        assert min(day for _, _, day, _ in rows) == account.first_day, "an account exists from its first record"
        for source, kind, day, url in rows:
            if source == "bombora":
                assert in_lead(domain, day, LEAD_DAYS["bombora"])
            elif source == "g2" and kind != "category_view":
                assert in_lead(domain, day, LEAD_DAYS["g2"])
            elif source == "website" and url.endswith(BUYING_PAGES):
                assert in_lead(domain, day, LEAD_DAYS["website"])
            elif source == "linkedin_ads":
                assert kind in ("impression", "click")
                linkedin_days_in_episodes += in_lead(domain, day, EPISODE_DAYS)
        assert all(in_lead(domain, day, LEAD_DAYS["activities"]) for day in found_activities.get(domain, []))
        episode_days = {
            day
            for e in account.episodes
            for day in range(e.decision_day - EPISODE_DAYS, e.decision_day)
            if account.first_day <= day < today
        }
        linkedin_expected += account.noise["linkedin_ads"] * len(episode_days)
    # LinkedIn in the episodes' days is the always-on noise only: a Poisson count of known mean.
    assert abs(linkedin_days_in_episodes - linkedin_expected) <= 4 * math.sqrt(linkedin_expected) + 3, (
        linkedin_days_in_episodes,
        linkedin_expected,
    )
    with_episode = {d for d, a in truth.accounts.items() if any(e.start_day < today for e in a.episodes)}
    assert with_episode and set(found_activities) <= with_episode

    # Seeding again with the same seed converges: nothing new, the same deals.
    again = seed_workspace(database, workspace="planted", accounts=200, seed=11, as_of=AS_OF, planted=True)
    assert again.counts["signals"].get("created", 0) == 0 and again.counts["activities"].get("created", 0) == 0
    assert again.counts["accounts"].get("created", 0) == 0 and again.truth == truth
    assert _workspace_records(database, "planted")[2] == found_deals


def _calibration(truth: PlantedTruth, days: list[int], horizon: int) -> tuple[float, float, float, int]:
    """Σ(realised − true probability), its standard error by account, Σ true probability, positives."""
    residual_by_account: dict[str, float] = defaultdict(float)
    expected, positives = 0.0, 0
    for domain in truth.accounts:
        for day in days:
            if not truth.in_population(domain, day):
                continue
            p = truth.true_probability(domain, day, horizon)
            y = truth.opened_within(domain, day, horizon)
            residual_by_account[domain] += y - p
            expected += p
            positives += y
    residual = sum(residual_by_account.values())
    return residual, math.sqrt(sum(r * r for r in residual_by_account.values())), expected, positives


@pytest.mark.parametrize("horizon", [30, 90, 180])
def test_the_true_probabilities_are_calibrated_against_the_realised_outcomes(horizon):
    """Given the hidden state at the end of day t, E[opened within H] − true probability = 0 for
    every row; accounts are independent, the rows of one account are not (its monthly windows
    overlap and share its episodes), so the sum of residuals is compared with its standard
    error by account, Σ_accounts (Σ_rows (y − p))², and must lie within 4 of them (a false
    alarm once in ~16,000 seeds). With about 4,000 positive rows that is ±7 % of the
    expected count: a truth 10 % off would fail. 180 days exercises a second episode."""
    truth = plant_truth(seed=3, accounts=5000, as_of=AS_OF)
    today = truth.as_of_day
    days = list(range(today - 510, today, 30))
    residual, error, expected, positives = _calibration(truth, days, horizon)
    assert positives > 500, positives
    assert abs(residual) <= 4 * error, f"{positives} opened, {expected:.0f} expected (± {error:.0f})"
    # And within the rows the truth ranks highest (calibrated where it matters, not only on average).
    rows = [
        (truth.true_probability(d, day, horizon), truth.opened_within(d, day, horizon))
        for d in truth.accounts
        for day in days
        if truth.in_population(d, day)
    ]
    top = sorted(rows, reverse=True)[: len(rows) // 10]
    top_expected, top_positives = sum(p for p, _ in top), sum(y for _, y in top)
    assert abs(top_positives - top_expected) <= 4 * math.sqrt(top_expected) + 5, (top_positives, top_expected)
    assert top_positives / len(top) > 2.5 * positives / len(rows), "the truth separates accounts"


def test_the_true_probability_follows_the_rule():
    truth = plant_truth(seed=5, accounts=400, as_of=AS_OF)
    today = truth.as_of_day
    lam, q = 0.002, 0.5
    assert idle_probability(lam, q, EPISODE_DAYS) == 0.0
    assert idle_probability(lam, q, 90) == pytest.approx((1 - math.exp(-lam * 30)) * q)
    assert idle_probability(lam, q, 200) > (1 - math.exp(-lam * 140)) * q, "a second episode can open one"
    checked = set()
    for domain, account in truth.accounts.items():
        for e in (e for e in account.episodes if e.decision_day < today):
            day = e.start_day + 10
            if truth.in_population(domain, day):
                assert truth.true_probability(domain, day, 90) == pytest.approx(account.q), "decided within 90 days"
                assert truth.true_probability(domain, day, 40) == 0.0, "decided after 40 days"
                checked.add("active")
            if e.opened and e.close_day is not None:
                assert not truth.in_population(domain, e.decision_day), "an open deal"
                assert truth.true_probability(domain, e.decision_day, 90) == 0.0
                assert truth.opened_within(domain, e.decision_day - 1, 1)
                assert truth.in_population(domain, e.close_day) is not e.won, "a customer for good"
                checked.add("won" if e.won else "lost")
        assert not truth.in_population(domain, account.first_day - 1), "an account exists from its first record"
    assert checked == {"active", "won", "lost"}
    with pytest.raises(ValueError):
        truth.true_probability(next(iter(truth.accounts)), truth.simulated_until - 10, 90)


def test_abmhub_seed_planted_writes_the_truth_file(cli, tmp_path):
    name = f"planted-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "truth.json"
    proc = cli("seed", "--workspace", name, "--planted", "--accounts", "60", "--seed", "4", "--truth-file", str(path))
    assert proc.returncode == 0, proc.stderr
    truth = PlantedTruth.load(path)
    assert len(truth.accounts) == 60 and truth.params["history_days"] == 540
    summary = truth.summary()
    assert f"Planted: 60 accounts, {summary['episodes']} buying episodes" in proc.stdout
    assert str(path) in proc.stdout.replace("\n", "")
    refused = cli("seed", "--workspace", name, "--planted", "--history-days", "0")
    assert refused.returncode == 1 and "--planted needs history" in refused.stderr
