"""Webhooks in-process, on both databases: the outbox written with each change, the delivery
workers against a real receiver on 127.0.0.1, retries, failure, disabling (contract §8)."""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.activities import service as activities_service
from abmhub.activities.manual import ManualActivity, log_manual_activity
from abmhub.activities.schemas import ActivityItem
from abmhub.client import verify_webhook
from abmhub.db.engine import Database
from abmhub.db.tables import webhook_deliveries, webhook_events
from abmhub.db.tables import webhooks as webhook_table
from abmhub.deals import service as deals_service
from abmhub.deals.schemas import DealItem
from abmhub.scoring.service import run_scoring
from abmhub.signals import service as signals_service
from abmhub.signals.schemas import SignalItem
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import now_us
from abmhub.webhooks import delivery, outbox
from abmhub.webhooks import service as webhooks_service
from abmhub.webhooks.dispatcher import Dispatcher
from abmhub.webhooks.events import slack_line
from abmhub.webhooks.sender import Attempt
from tests.support.receiver import Receiver, running_receiver
from tests.support.statements import StatementCounter

ALL_EVENTS = ["account.created", "account.journey_stage_changed", "account.score_changed", "deal.stage_changed"]


@pytest.fixture
def workspace_id(database: Database) -> int:
    return tenancy.create_workspace(database, name="acme")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def subscribe(db: Database, workspace_id: int, url: str, events: list[str], **options: Any) -> tuple[Any, str]:
    return webhooks_service.create_webhook(
        db, workspace_id=workspace_id, url=url, events=events, allow_private=True, **options
    )


def push(db: Database, workspace_id: int, *domains: str) -> None:
    items = [AccountItem.model_validate({"domain": d, "name": d.split(".")[0].title()}) for d in domains]
    accounts_service.push_accounts(db, workspace_id=workspace_id, items=items, upsert=True)


def stored_events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of every event in the outbox, in order."""
    with db.read() as conn:
        rows = conn.execute(select(webhook_events.c.events).order_by(webhook_events.c.id)).scalars()
        return [(event["type"], event["data"]) for packed in rows for event in outbox.unpack(packed)]


def delivery_rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


# --- the outbox --------------------------------------------------------------------------------


def test_without_a_subscription_nothing_is_written(database, workspace_id):
    push(database, workspace_id, "acme.com")
    run_scoring(database, workspace="acme")
    assert stored_events(database) == []


def test_a_push_of_100_accounts_writes_its_events_in_one_statement(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    subscribe(database, workspace_id, "http://127.0.0.1:9/other", ["account.created", "ping"])
    counter = StatementCounter(database)
    push(database, workspace_id, *(f"a{i}.com" for i in range(100)))
    events_written = [s for s in counter.statements if s.startswith("INSERT INTO WEBHOOK_EVENTS")]
    assert len(events_written) == 1, f"one outbox row for the 100 events, not {len(events_written)} statements"
    assert not [s for s in counter.statements if "WEBHOOK_DELIVERIES" in s], "deliveries are the workers' work"
    assert counter.commits == 1, "the events commit with the accounts"
    events = stored_events(database)
    assert [t for t, _ in events] == ["account.created"] * 100
    assert events[0][1]["domain"] == "a0.com" and events[0][1]["name"] == "A0"
    fan_out(database)
    assert len(delivery_rows(database)) == 200, "one delivery per subscription that wants the event"


def fan_out(db: Database) -> None:
    """Let a worker claim every subscription with work once (queueing its deliveries), then let go."""
    held = []
    while (claimed := delivery.claim(db, now_us())) is not None:
        held.append(claimed)
    for claimed in held:
        delivery.release(db, claimed)


def test_events_roll_back_with_the_change(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    with pytest.raises(RuntimeError), database.write(workspace_id) as tx:
        outbox.record(tx.conn, workspace_id, tx.now_us, [outbox_event()])
        raise RuntimeError("the change fails after its events were written")
    assert stored_events(database) == [], "nothing is announced that did not commit"


def outbox_event() -> Any:
    from abmhub.webhooks.events import account_created

    return account_created(rtp_aid="x" * 24, uuid="u", domain="x.com", name="X", external_id=None)


def test_a_paused_subscription_gets_what_it_missed_when_resumed(database, workspace_id):
    other = tenancy.create_workspace(database, name="other")
    hook, _ = subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    pause = {"status": "paused"}
    webhooks_service.update_webhook(database, workspace_id=workspace_id, webhook_id=hook.webhook_id, changes=pause)
    subscribe(database, other, "http://127.0.0.1:9/other", ["account.created"])
    push(database, workspace_id, "acme.com")
    assert delivery.claim(database, now_us()) is None, "nothing is delivered while paused, nor to another workspace"
    resume = {"status": "active"}
    webhooks_service.update_webhook(database, workspace_id=workspace_id, webhook_id=hook.webhook_id, changes=resume)
    held = delivery.claim(database, now_us())
    assert held is not None and [d.event_type for d in held.due] == ["account.created"]
    assert held.due[0].data["domain"] == "acme.com"
    assert delivery.claim(database, now_us()) is None, "the other workspace's subscription has nothing"


def test_a_subscription_starts_with_the_events_after_it(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/early", ["account.created"])
    push(database, workspace_id, "before.com")
    subscribe(database, workspace_id, "http://127.0.0.1:9/late", ["account.created"])
    push(database, workspace_id, "after.com")
    fan_out(database)
    by_hook = {row.url[-4:]: row.id for row in all_hooks(database)}
    with database.read() as conn:
        pairs = conn.execute(
            select(webhook_deliveries.c.webhook_pk, webhook_events.c.events, webhook_deliveries.c.position).join(
                webhook_events, webhook_events.c.id == webhook_deliveries.c.event_pk
            )
        ).all()
    late = sorted(outbox.unpack(events)[at]["data"]["domain"] for pk, events, at in pairs if pk == by_hook["late"])
    early = sorted(outbox.unpack(events)[at]["data"]["domain"] for pk, events, at in pairs if pk == by_hook["arly"])
    assert (early, late) == (["after.com", "before.com"], ["after.com"])


def test_scoring_announces_stage_and_score_changes_past_min_score_delta(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/a", ["account.journey_stage_changed"])
    subscribe(database, workspace_id, "http://127.0.0.1:9/b", ["account.score_changed"], min_score_delta=100)
    subscribe(database, workspace_id, "http://127.0.0.1:9/c", ["account.score_changed"], min_score_delta=1)
    push(database, workspace_id, "acme.com", "quiet.com")
    signals = [
        SignalItem.model_validate(
            {"source": "g2", "type": "pricing_view", "domain": "acme.com", "occurredAt": "2026-12-06T10:00:00Z"}
        )
        for _ in range(5)
    ]
    signals_service.push_signals(database, workspace_id=workspace_id, items=signals)
    run_scoring(database, workspace="acme")
    events = stored_events(database)
    stages = [data for kind, data in events if kind == "account.journey_stage_changed"]
    assert {(d["domain"], d["from"]) for d in stages} == {("acme.com", ""), ("quiet.com", "")}
    acme = next(d for d in stages if d["domain"] == "acme.com")
    assert acme["to"] != "" and acme["name"] == "Acme" and len(acme["rtp_aid"]) == 24
    scores = [data for kind, data in events if kind == "account.score_changed"]
    assert [(d["domain"], d["from"]) for d in scores] == [("acme.com", 0)], "quiet.com stayed at 0"
    assert acme["rtp_account_score"] == scores[0]["to"] > 0
    fan_out(database)
    by_url = {row.url[-1]: row.id for row in all_hooks(database)}
    targets = {(row.webhook_pk, row.event_pk) for row in delivery_rows(database)}
    assert not any(pk == by_url["b"] for pk, _ in targets), "a move under minScoreDelta goes to nobody"
    assert sum(pk == by_url["c"] for pk, _ in targets) == 1


def all_hooks(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(webhook_table)))


def test_deal_stage_changes_carry_the_deal_record_and_the_stage_left(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["deal.stage_changed"])
    push(database, workspace_id, "acme.com")

    def deal(stage: str, **extra: Any) -> DealItem:
        item = {"externalDealId": "D-1", "name": "Renewal", "stageId": stage, "stageLabel": stage.title(), **extra}
        return DealItem.model_validate(item)

    deals_service.push_deals(
        database, workspace_id=workspace_id, items=[deal("proposal", associatedAccounts=[{"domain": "acme.com"}])]
    )
    deals_service.push_deals(database, workspace_id=workspace_id, items=[deal("proposal", amount=10)])  # no move
    deals_service.push_deals(database, workspace_id=workspace_id, items=[deal("negotiation")])
    events = [data for kind, data in stored_events(database)]
    assert [(d["fromStageId"], d["stageId"]) for d in events] == [(None, "proposal"), ("proposal", "negotiation")]
    record = events[1]
    assert record["externalDealId"] == "D-1" and record["stageLabel"] == "Negotiation"
    assert record["associatedAccounts"][0]["domain"] == "acme.com"
    assert [h["stageId"] for h in record["stageHistory"]] == ["proposal", "negotiation"]


def test_activities_of_both_surfaces_are_announced(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["activity.created"])
    push(database, workspace_id, "acme.com")
    call = ActivityItem.model_validate(
        {
            "externalActivityId": "call-1",
            "activityType": "call",
            "domain": "acme.com",
            "occurredAt": "2026-12-06T10:00:00Z",
            "subject": "Intro call",
            "ownerEmail": "rep@example.com",
            "contacts": [{"email": "ann@acme.com"}],
        }
    )
    activities_service.push_activities(database, workspace_id=workspace_id, items=[call])
    account = accounts_service.browse_accounts(database, workspace_id=workspace_id).rows[0]
    user_id = tenancy_user(database)
    log_manual_activity(
        database,
        workspace_id=workspace_id,
        user_id=user_id,
        activity=ManualActivity(
            occurred_us=now_us(), subject="Met at the fair", description="", account_uuid=account.uuid
        ),
    )
    events = [data for kind, data in stored_events(database)]
    assert [(d["kind"], d["subject"], d["account"]["domain"]) for d in events] == [
        ("call", "Intro call", "acme.com"),
        ("manual", "Met at the fair", "acme.com"),
    ]


def tenancy_user(db: Database) -> int:
    tenancy.create_key(db, workspace="acme", user_email="rep@example.com")
    from abmhub.db.tables import users

    with db.read() as conn:
        return int(conn.execute(select(users.c.id).where(users.c.email == "rep@example.com")).scalar_one())


# --- delivery ----------------------------------------------------------------------------------


def deliver_all(dispatcher: Dispatcher, until: float = 5.0) -> None:
    """Run the workers' loop in this thread until nothing is due (or `until` seconds)."""
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        if not dispatcher.work_once():
            return


def test_a_delivery_is_signed_and_carries_the_event(database, workspace_id, receiver):
    _hook, secret = subscribe(database, workspace_id, receiver.url, ["account.created"])
    push(database, workspace_id, "acme.com")
    dispatcher = Dispatcher(database, allow_private=True)
    deliver_all(dispatcher)
    [got] = receiver.received
    assert got.header("Content-Type") == "application/json"
    assert got.header("User-Agent").startswith("abmhub-webhooks/")
    event = verify_webhook(secret, got.headers, got.body)
    assert event["type"] == "account.created" == got.header("X-Abmhub-Event-Type")
    assert event["id"] == got.header("X-Abmhub-Event-Id") and event["id"].startswith("evt_")
    assert event["data"]["domain"] == "acme.com"
    with pytest.raises(Exception, match=r"(?i)signature"):
        verify_webhook("whsec_another", got.headers, got.body)
    [row] = delivery_rows(database)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_us) == ("succeeded", 1, 200, None)
    dispatcher.sender.close()


def test_500s_and_timeouts_are_retried_on_the_backoff_schedule(database, workspace_id, receiver):
    receiver.script = [500, ("sleep", 1.0), 500]  # then 200
    subscribe(database, workspace_id, receiver.url, ["account.created"])
    push(database, workspace_id, "acme.com")
    dispatcher = Dispatcher(database, allow_private=True, retry_base_s=0.2, timeout_s=0.5)
    deliver_all(dispatcher, until=10)
    deadline = time.monotonic() + 15
    while len(receiver.received) < 4 and time.monotonic() < deadline:
        deliver_all(dispatcher)
        time.sleep(0.02)
    dispatcher.sender.close()
    times = [r.at for r in receiver.received]
    assert len(times) == 4, f"3 failed attempts and the one that succeeded, not {len(times)}"
    assert len({r.header("X-Abmhub-Event-Id") for r in receiver.received}) == 1, "the same event each time"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Waits of 0.2, 0.4, 0.8 s (+ up to 20 % jitter); the second attempt's own 0.5 s timeout
    # comes before its wait.
    assert 0.2 <= gaps[0] < 0.2 * 1.2 + 0.3, gaps
    assert 0.5 + 0.4 <= gaps[1] < 0.5 + 0.4 * 1.2 + 0.3, gaps
    assert 0.8 <= gaps[2] < 0.8 * 1.2 + 0.3, gaps
    [row] = delivery_rows(database)
    assert (row.status, row.attempts, row.last_status_code) == ("succeeded", 4, 200)


def test_after_24_hours_a_delivery_has_failed(database, workspace_id, receiver):
    receiver.default = 503
    subscribe(database, workspace_id, receiver.url, ["account.created"])
    push(database, workspace_id, "acme.com")
    with database.write() as tx:  # the event happened almost 24 h ago
        almost_a_day_ago = now_us() - outbox.RETRY_WINDOW_US + 1_000_000
        tx.conn.execute(update(webhook_events).values(created_us=almost_a_day_ago))
    dispatcher = Dispatcher(database, allow_private=True, retry_base_s=10)
    deliver_all(dispatcher)
    dispatcher.sender.close()
    [row] = delivery_rows(database)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_us) == ("failed", 1, 503, None)


def test_three_days_of_failures_disable_the_subscription(database, workspace_id):
    hook, _ = subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    push(database, workspace_id, "acme.com")
    held = delivery.claim(database, now_us())
    assert held is not None and len(held.due) == 1
    failed = Attempt(status_code=500, error=None, duration_s=0.01)
    delivery.record_attempt(database, held, held.due[0], failed, now_us(), retry_base_s=10)
    assert (
        webhooks_service.get_webhook(database, workspace_id=workspace_id, webhook_id=hook.webhook_id).status == "active"
    )
    three_days_ago = now_us() - delivery.DISABLE_AFTER_US - 1
    with database.write() as tx:
        tx.conn.execute(update(webhook_table).values(failing_since_us=three_days_ago))
    delivery.record_attempt(database, held, held.due[0], failed, now_us(), retry_base_s=10)
    found = webhooks_service.get_webhook(database, workspace_id=workspace_id, webhook_id=hook.webhook_id)
    assert found.status == "disabled"
    assert delivery.claim(database, now_us() + 10**10) is None, "a disabled subscription is not delivered to"
    resumed = webhooks_service.update_webhook(
        database, workspace_id=workspace_id, webhook_id=hook.webhook_id, changes={"status": "active"}
    )
    assert resumed.status == "active"


def test_a_success_ends_the_run_of_failures(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    push(database, workspace_id, "a.com", "b.com")
    held = delivery.claim(database, now_us())
    assert held is not None
    delivery.record_attempt(database, held, held.due[0], Attempt(500, None, 0.0), now_us(), retry_base_s=10)
    delivery.record_attempt(database, held, held.due[1], Attempt(204, None, 0.0), now_us(), retry_base_s=10)
    with database.read() as conn:
        assert conn.execute(select(webhook_table.c.failing_since_us)).scalar_one() is None


def test_one_worker_at_a_time_holds_a_subscription(database, workspace_id):
    subscribe(database, workspace_id, "http://127.0.0.1:9/a", ["account.created"])
    subscribe(database, workspace_id, "http://127.0.0.1:9/b", ["account.created"])
    push(database, workspace_id, "acme.com")
    first = delivery.claim(database, now_us())
    second = delivery.claim(database, now_us())
    assert first is not None and second is not None and first.webhook_pk != second.webhook_pk
    assert delivery.claim(database, now_us()) is None, "both subscriptions are held"
    later = now_us() + delivery.LEASE_US + 1
    taken_over = delivery.claim(database, later)
    assert taken_over is not None, "a lease that ran out (a killed worker) is taken over"
    delivery.release(database, first)  # too late: the new holder keeps it
    with database.read() as conn:
        tokens = set(conn.execute(select(webhook_table.c.lease_token)).scalars())
    assert taken_over.token in tokens


def test_backoff_doubles_with_jitter_and_is_capped_at_an_hour():
    for attempts, base in ((1, 10), (2, 20), (3, 40), (10, 3600), (40, 3600)):
        waits = {delivery.next_wait_us(attempts, 10) / 1e6 for _ in range(50)}
        assert min(waits) >= base and max(waits) <= min(base * 1.2, 3600), (attempts, sorted(waits)[:3])


def test_redeliver_and_deliveries_newest_first(database, workspace_id, receiver):
    hook, _ = subscribe(database, workspace_id, receiver.url, ["account.created"])
    push(database, workspace_id, "a.com")
    push(database, workspace_id, "b.com")
    dispatcher = Dispatcher(database, allow_private=True)
    deliver_all(dispatcher)
    from abmhub.paging import PageRequest

    page = webhooks_service.list_deliveries(
        database, workspace_id=workspace_id, webhook_id=hook.webhook_id, page=PageRequest()
    )
    assert [d.status for d in page.items] == ["succeeded", "succeeded"]
    oldest = page.items[-1]
    again = webhooks_service.redeliver(
        database, workspace_id=workspace_id, webhook_id=hook.webhook_id, delivery_id=oldest.delivery_id
    )
    assert again.status == "pending"
    deliver_all(dispatcher)
    dispatcher.sender.close()
    ids = [r.header("X-Abmhub-Event-Id") for r in receiver.received]
    assert ids == [ids[0], ids[1], ids[0]], "the first event, delivered again"
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one() == 2


def test_slack_lines_read_well_and_escape_what_users_wrote():
    moved = {"rtp_aid": "x", "domain": "acme.com", "name": "Acme Corp", "from": "Aware", "to": "Consideration"}
    line = slack_line("account.journey_stage_changed", {**moved, "rtp_account_score": 64})
    assert line == "Acme Corp (acme.com) moved Aware → Consideration, score 64"
    hostile = slack_line("account.created", {"domain": "evil.com", "name": "<!channel> & <http://x|y>"})
    assert hostile == "New account: &lt;!channel&gt; &amp; &lt;http://x|y&gt; (evil.com)"
    score = slack_line("account.score_changed", {"domain": "a.com", "name": "A", "from": 70, "to": 52})
    assert score == "A (a.com) score 70 → 52 (-18)"


def test_a_dead_receiver_gets_one_attempt_per_wait_and_holds_up_no_one(database, workspace_id):
    with running_receiver() as hanging, running_receiver() as healthy:
        hanging.default = ("sleep", 2.0)
        subscribe(database, workspace_id, hanging.url, ["account.created"])
        subscribe(database, workspace_id, healthy.url, ["account.created"])
        push(database, workspace_id, *(f"a{i}.com" for i in range(20)))
        dispatcher = Dispatcher(database, allow_private=True, timeout_s=0.3, retry_base_s=60)
        started = time.monotonic()
        deliver_all(dispatcher)
        dispatcher.sender.close()
        assert len(healthy.received) == 20, "the healthy receiver got every event"
        assert len(hanging.received) == 1, "the hanging one got one attempt, then the subscription backs off"
        assert time.monotonic() - started < 5
    statuses = collections.Counter((row.webhook_pk, row.status, row.attempts) for row in delivery_rows(database))
    assert sorted(statuses.values()) == [1, 19, 20], statuses


def test_deleting_a_subscription_keeps_the_events_another_has_not_taken_yet(database, workspace_id):
    first, _ = subscribe(database, workspace_id, "http://127.0.0.1:9/first", ["account.created"])
    subscribe(database, workspace_id, "http://127.0.0.1:9/second", ["account.created"])
    push(database, workspace_id, "acme.com")
    held = delivery.claim(database, now_us())  # the first subscription takes the event
    assert held is not None and held.webhook_id == first.webhook_id
    delivery.release(database, held)
    webhooks_service.delete_webhook(database, workspace_id=workspace_id, webhook_id=first.webhook_id)
    other = delivery.claim(database, now_us())
    assert other is not None and [d.data["domain"] for d in other.due] == ["acme.com"], "the second still gets it"


def test_the_purge_keeps_what_a_paused_subscription_has_not_taken(database, workspace_id):
    hook, _ = subscribe(database, workspace_id, "http://127.0.0.1:9/hook", ["account.created"])
    webhooks_service.update_webhook(
        database, workspace_id=workspace_id, webhook_id=hook.webhook_id, changes={"status": "paused"}
    )
    push(database, workspace_id, "acme.com")
    later = now_us() + delivery.FINISHED_KEPT_US + 1
    delivery.purge(database, later)
    assert len(stored_events(database)) == 1, "kept: the paused subscription has not taken it"
    webhooks_service.delete_webhook(database, workspace_id=workspace_id, webhook_id=hook.webhook_id)
    delivery.purge(database, later)
    assert stored_events(database) == [], "nobody listens any more: gone"
