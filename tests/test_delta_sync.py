"""Delta sync never loses a change, even when writes commit while a reader pages (§1.5).

Writers keep renaming accounts and adding new ones through the API while a reader runs
delta-sync passes exactly as an integration would: store the first page's `syncTimestamp`,
page with `cursor` until `hasNextPage` is false, pass the stored value as `lastSync` next
time. When the writers stop, one more pass must leave the reader's mirror identical to the
server's final state; a single missed change would leave a stale name behind.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

WRITERS = 3
WRITE_SECONDS = 4.0
SEED_ACCOUNTS = 200


def push(api: httpx.Client, accounts: list[dict]) -> None:
    r = api.post("/accounts", json={"accounts": accounts, "upsert": True})
    assert r.status_code == 200, r.text
    failed = [x for x in r.json()["data"]["results"] if x["status"] == "failed"]
    assert not failed, failed


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def delta_pass(api: httpx.Client, last_sync: str | None, mirror: dict[str, str]) -> tuple[str, int]:
    """One pass; returns its syncTimestamp and the number of records it delivered."""
    params: dict[str, str | int] = {"limit": 37}
    if last_sync is not None:
        params["lastSync"] = last_sync
    started = datetime.now(UTC)
    sync_timestamp = None
    delivered = 0
    cursor = None
    while True:
        r = api.get("/accounts", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()["data"]
        if sync_timestamp is None:
            sync_timestamp = page["syncTimestamp"]
            lag = started - parse(sync_timestamp)
            assert lag < timedelta(seconds=10), f"syncTimestamp {sync_timestamp} is {lag} older than the pass"
        assert page["syncTimestamp"] == sync_timestamp, "every page of one pass carries the same syncTimestamp"
        for record in page["data"]:
            mirror[record["domain"]] = record["name"]
            delivered += 1
        if not page["hasNextPage"]:
            return sync_timestamp, delivered
        cursor = page["nextCursor"]


def test_delta_sync_sees_every_change_made_while_it_pages(server, workspace):
    headers = {"X-Api-Key": workspace.key}
    base = f"{server.base_url}/api/v1"
    with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
        domains = [f"seed-{i}.example.com" for i in range(SEED_ACCOUNTS)]
        for start in range(0, SEED_ACCOUNTS, 100):
            push(api, [{"domain": d, "name": "v0"} for d in domains[start : start + 100]])

        stop = threading.Event()
        errors: list[BaseException] = []
        writes = [0] * WRITERS

        def writer(index: int) -> None:
            rng = random.Random(index)
            try:
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    version = 0
                    while not stop.is_set():
                        version += 1
                        batch = rng.sample(domains, 8)
                        batch.append(f"new-{index}-{version}.example.com")
                        push(client, [{"domain": d, "name": f"w{index}-v{version}"} for d in batch])
                        writes[index] += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        mirror: dict[str, str] = {}
        last_sync = None
        passes = 0
        deadline = time.monotonic() + WRITE_SECONDS
        try:
            while time.monotonic() < deadline:
                last_sync, _ = delta_pass(api, last_sync, mirror)
                passes += 1
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors, errors
        assert sum(writes) > 20, f"the writers made only {sum(writes)} requests; the test proves nothing"
        assert passes > 3, f"the reader made only {passes} passes while writers ran"

        # One more delta pass after the last write: the mirror must now equal the server.
        delta_pass(api, last_sync, mirror)
        truth: dict[str, str] = {}
        delta_pass(api, None, truth)
        stale = {d: (mirror.get(d), name) for d, name in truth.items() if mirror.get(d) != name}
        assert not stale, f"{len(stale)} changes were never delivered (mirror, server): {list(stale.items())[:5]}"
        assert len(truth) == SEED_ACCOUNTS + sum(writes)


def test_unchanged_accounts_are_not_delivered_again(api):
    r = api.post("/accounts", json={"accounts": [{"domain": f"quiet-{i}.com", "name": "Q"} for i in range(5)]})
    assert r.status_code == 200, r.text
    first = api.get("/accounts").json()["data"]
    assert len(first["data"]) == 5
    r = api.put(f"/accounts/{first['data'][2]['rtp_aid']}", json={"name": "Changed"})
    assert r.status_code == 200, r.text
    delta = api.get("/accounts", params={"lastSync": first["syncTimestamp"]}).json()["data"]
    assert [a["name"] for a in delta["data"]] == ["Changed"], "only the changed account is delivered"
    again = api.get("/accounts", params={"lastSync": delta["syncTimestamp"]}).json()["data"]
    assert again["data"] == [], "nothing changed since the last pass"
