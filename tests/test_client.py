"""The Python SDK (abmhub.client) against a real `abmhub serve`, on SQLite and PostgreSQL.

Chunking and merged per-item results, a chunk refused as a whole while the others go
through, pagination, delta sync that saves its stamp only after a complete pass, Surface V
(log and read a timeline), the async clients, and errors that never show the key.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from abmhub.client import (
    AccountIn,
    AsyncRecotapClient,
    AsyncReevoClient,
    BadRequest,
    CallbackState,
    MemoryState,
    RecotapClient,
    ReevoClient,
    StateFile,
    Unauthorized,
    Unprocessable,
)


def counting_http() -> tuple[httpx.Client, list[str]]:
    """An httpx client that records 'METHOD path' of every request it sends."""
    sent: list[str] = []
    client = httpx.Client(event_hooks={"request": [lambda r: sent.append(f"{r.method} {r.url.path}")]})
    return client, sent


def accounts(prefix: str, n: int) -> list[dict]:
    return [
        {"domain": f"{prefix}-{i}.com", "name": f"{prefix.title()} {i}", "externalId": f"{prefix}-{i}"}
        for i in range(n)
    ]


@pytest.fixture
def client(server, workspace):
    with RecotapClient(server.base_url, workspace.key) as c:
        yield c


def test_a_push_of_250_accounts_is_3_requests_with_results_merged_in_order(server, workspace):
    http, sent = counting_http()
    items: list = accounts("chunk", 250)
    items[10] = {"domain": "not a domain", "name": "Bad"}  # a per-item failure from the server
    items[120] = {
        "domain": "chunk-0.com",
        "name": "Again",
    }  # a duplicate domain: failed, with the first account's rtp_aid
    items[201] = {"domain": "chunk-missing-name.com"}  # refused locally: never sent
    items[202] = AccountIn(domain="https://www.Chunk-Model.com/x", name="From a model", tags=["t"])
    with RecotapClient(server.base_url, workspace.key, http=http) as c:
        report = c.push_accounts(iter(items))  # any iterable, here a one-shot iterator
    assert sent == ["POST /api/v1/accounts"] * 3
    assert [r.index for r in report.results] == list(range(250))
    assert report.summary.total == 250 and report.summary.created == 247 and report.summary.failed == 3
    assert report.failed_chunks == []
    assert report.results[10].status == "failed" and "Invalid domain" in report.results[10].error
    first = report.results[0]
    assert first.status == "created" and first.domain == "chunk-0.com" and len(first.rtp_aid) == 24
    dup = report.results[120]
    assert dup.status == "failed" and dup.rtp_aid == first.rtp_aid and "already exists" in dup.error
    assert report.results[201].status == "failed" and report.results[201].error.startswith("not sent: name")
    assert report.results[202].status == "created" and report.results[202].domain == "chunk-model.com"
    assert report.results[249].domain == "chunk-249.com"
    assert [r.index for r in report.failures] == [10, 120, 201]
    assert not report.ok


def test_a_chunk_refused_as_a_whole_is_recorded_and_the_next_chunks_go_through(client):
    # model_construct skips the local check, so the server sees a blank name: a 400 for its chunk.
    items = [*accounts("whole", 4), AccountIn.model_construct(domain="whole-bad.com", name=" "), *accounts("whole2", 3)]
    report = client.push_accounts(items, chunk_size=3)
    assert len(report.results) == 8
    assert [r.status for r in report.results] == ["created"] * 3 + ["failed"] * 3 + ["created"] * 2
    (failure,) = report.failed_chunks
    assert failure.start == 3 and failure.size == 3
    assert isinstance(failure.error, BadRequest)
    assert any(issue.path == "accounts.1.name" for issue in failure.error.issues)
    assert "name should not be empty" in report.results[4].error
    assert report.results[3].domain == "whole-3.com", "a failed chunk's results still name their items"
    assert {a.domain for a in client.iter_accounts()} == {f"whole-{i}.com" for i in range(3)} | {
        f"whole2-{i}.com" for i in (1, 2)
    }


def test_pages_stop_on_hasNextPage_and_delta_sync_saves_only_after_a_complete_pass(client, tmp_path):
    client.push_accounts(accounts("page", 25))
    http_pages = list(client.pages("accounts", limit=10))
    assert [len(p.items) for p in http_pages] == [10, 10, 5]
    assert http_pages[-1].next_cursor, "abmhub sends a cursor on the last page too; hasNextPage alone ends the list"
    assert [a.domain for a in client.iter_accounts(limit=7)] == [f"page-{i}.com" for i in range(25)]

    state_path = tmp_path / "state.json"
    first = client.delta_sync("accounts", state=state_path, limit=10)
    assert len(list(first)) == 25
    assert first.completed and first.last_sync is None and first.pages_read == 3
    saved = json.loads(state_path.read_text())["accounts"]
    assert saved["lastSync"] == first.sync_timestamp and saved["records"] == 25

    # A pass that stops early (a break, an exception) leaves the state as it was.
    aid = next(client.iter_accounts(domains=["page-3.com"])).rtp_aid
    client.update_account(aid, name="Page Three")
    client.push_accounts([{"domain": "page-new.com", "name": "New"}])
    before = state_path.read_text()
    interrupted = client.delta_sync("accounts", state=state_path)
    for _ in interrupted:
        break
    with pytest.raises(RuntimeError):
        for _ in client.delta_sync("accounts", state=state_path):
            raise RuntimeError("the consumer failed")
    assert state_path.read_text() == before and not interrupted.completed

    second = client.delta_sync("accounts", state=state_path)
    changed = {a.domain: a.name for a in second}
    assert changed == {"page-3.com": "Page Three", "page-new.com": "New"}
    assert second.last_sync == first.sync_timestamp and second.sync_timestamp > first.sync_timestamp
    third = client.delta_sync("accounts", state=StateFile(state_path, "accounts"))
    assert list(third) == [] and third.completed
    full = client.delta_sync("accounts", state=state_path, full=True)
    assert len(list(full)) == 26


def test_deals_activities_and_signals_push_and_read_back(client):
    client.push_accounts([{"domain": "deal-co.com", "name": "Deal Co"}])
    assert client.create_pipelines(
        [{"pipelineId": "p", "pipelineLabel": "Sales", "stages": [
            {"stageId": "disc", "stageLabel": "Discovery"}, {"stageId": "won", "stageLabel": "Closed Won"}]}]
    ) == ["p"]  # fmt: skip
    (pipeline,) = client.deal_stages()  # a bare JSON array on the wire
    assert [s.stageId for s in pipeline.stages] == ["disc", "won"]
    assert client.journey_stages() == ["Unaware", "Aware", "Consideration", "Opportunity", "Customer"]

    start = datetime(2026, 3, 1, tzinfo=UTC)
    deals = client.push_deals(
        {
            "externalDealId": f"d-{i}",
            "name": f"Deal {i}",
            "amount": 1000 * i,
            "pipelineId": "p",
            "stageId": "won" if i == 0 else "disc",
            "startDate": start,  # a datetime is sent as ISO 8601
            "associatedAccounts": [{"domain": "deal-co.com"}],
            "stageHistory": [{"stageId": "disc", "enteredAt": start}],
        }
        for i in range(150)
    )
    assert deals.summary.upserted == 150 and deals.ok
    stored = list(client.iter_deals(limit=100))
    assert len(stored) == 150
    won = next(d for d in stored if d.externalDealId == "d-0")
    assert won.associatedAccounts[0].rtp_aid and [h.stageId for h in won.stageHistory] == ["disc", "won"]

    def activity(i: int, kind: str = "call") -> dict:
        return {
            "externalActivityId": f"a-{i}",
            "activityType": kind,
            "occurredAt": (start + timedelta(hours=i)).isoformat(),
            "domain": "deal-co.com",
            "ownerEmail": "rep@example.com",
            "from": {"name": "Rep"},
            "contacts": [{"email": f"person{i % 3}@deal-co.com", "name": f"Person {i % 3}"}],
        }

    pushed = client.push_sales_activities([activity(i) for i in range(60)] + [activity(0), activity(99, "meeting")])
    assert [len(pushed.results), pushed.summary.created, pushed.summary.failed, pushed.summary.skipped] == [
        62,
        60,
        1,
        1,
    ]
    assert "already exists" in pushed.results[60].error and pushed.results[61].reason
    assert len(list(client.iter_sales_activities(domain="deal-co.com"))) == 60

    signal = {"source": "g2", "type": "pricing_view", "domain": "deal-co.com", "occurredAt": "2026-04-29T09:00:00Z"}
    signals = client.push_signals(
        [{**signal, "externalSignalId": f"s-{i % 1200}"} for i in range(1300)]
        + [{**signal, "type": "no_such_type"}]  # refused locally: it would make the server refuse its whole chunk
    )
    assert (signals.summary.created, signals.summary.skipped, signals.summary.failed) == (1200, 100, 1)
    assert signals.failed_chunks == []


def test_reevo_client_logs_activities_and_reads_the_timeline(server, workspace, client):
    client.push_accounts([{"domain": "timeline.com", "name": "Timeline"}])
    client.push_sales_activities(
        [{"externalActivityId": "call-1", "activityType": "call", "occurredAt": "2026-04-01T10:00:00Z",
          "domain": "timeline.com", "ownerEmail": "rep@example.com", "callTitle": "Discovery call",
          "contacts": [{"email": "buyer@timeline.com"}]}]
    )  # fmt: skip
    account = next(client.iter_accounts(domains=["timeline.com"]))
    with ReevoClient(server.base_url, workspace.key) as reevo:
        assert reevo.health() == "healthy"
        logged = [
            reevo.log_activity(
                activity_time=datetime(2026, 4, day, 15, tzinfo=UTC),
                subject=f"Touch {day}",
                description="notes",
                category="CONFERENCE",
                account_id=account.id,
            )
            for day in (2, 3, 4)
        ]
        assert logged[0].type == "MANUAL_ACTIVITY" and logged[0].ended_at == "2026-04-02T15:00:00Z"
        timeline = list(reevo.timeline(account_id=account.id, limit=2))  # two pages and a half
        assert [a.display_name for a in timeline] == ["Touch 4", "Touch 3", "Touch 2", "Discovery call"]
        assert timeline[-1].type == "CALL" and timeline[-1].metadata["kind"] == "call"
        window = list(reevo.timeline(account_id=account.id, created_from="2026-04-03T00:00:00Z"))
        assert [a.display_name for a in window] == ["Touch 4", "Touch 3"]
        assert reevo.get_activity(logged[1].id).display_name == "Touch 3"
        with pytest.raises(Unprocessable) as refused:
            reevo.log_activity(
                activity_time="2026-04-05T00:00:00Z",
                subject="x",
                description="",
                account_id="3c90c3cc-0d44-4b50-8888-8dd25736052a",
            )
        assert refused.value.status == 422 and refused.value.issues[0].path == "attributes.account_id"


def test_async_clients(server, workspace):
    async def scenario() -> None:
        async def source():
            for item in accounts("async", 230):
                yield item

        async with AsyncRecotapClient(server.base_url, workspace.key) as c:
            report = await c.push_accounts(source(), concurrency=3)
            assert [r.index for r in report.results] == list(range(230)) and report.summary.created == 230
            assert [r.domain for r in report.results[:2]] == ["async-0.com", "async-1.com"]
            assert len([a async for a in c.iter_accounts(limit=100)]) == 230

            stamps: list[str] = []

            async def load() -> str | None:
                return stamps[-1] if stamps else None

            async def save(stamp: str) -> None:
                stamps.append(stamp)

            first = c.delta_sync("accounts", state=CallbackState(load, save))
            assert len([a async for a in first]) == 230 and stamps == [first.sync_timestamp]
            await c.update_account(report.results[5].rtp_aid, tags=["changed"])
            second = c.delta_sync("accounts", state=CallbackState(load, save))
            assert [a.domain async for a in second] == ["async-5.com"] and len(stamps) == 2
            (account,) = [a async for a in c.iter_accounts(domains=["async-0.com"])]
            account_id = account.id

        async with AsyncReevoClient(server.base_url, workspace.key) as reevo:
            await reevo.log_activity(
                activity_time="2026-04-02T00:00:00Z", subject="A", description="", account_id=account_id
            )
            await reevo.log_activity(
                activity_time="2026-04-03T00:00:00Z", subject="B", description="", account_id=account_id
            )
            assert [r.display_name async for r in reevo.timeline(account_id=account_id, limit=1)] == ["B", "A"]

    asyncio.run(scenario())


def test_a_bad_key_stops_a_push_and_is_never_shown(server, workspace):
    key = workspace.key[:-4] + "abcd"
    client = RecotapClient(server.base_url, key)
    assert key not in repr(client) and "***" not in repr(client)
    state = MemoryState()
    with client, pytest.raises(Unauthorized) as refused:
        client.push_accounts(accounts("never", 150))
    text = "".join(traceback.format_exception(refused.value)) + repr(refused.value)
    assert "Invalid API key" in text and key not in text
    with RecotapClient(server.base_url, key) as c, pytest.raises(Unauthorized):
        list(c.delta_sync("accounts", state=state))
    assert state.last_sync is None
