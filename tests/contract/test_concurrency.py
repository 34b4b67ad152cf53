"""Rules that must hold when requests overlap (API.md §1.5 consistency, §2.2 dedup, §2.7 409)."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from contract_helpers import (
    account,
    all_accounts,
    client_for,
    create_accounts,
    describe,
    list_pass,
    ok,
    push_ok,
    unique_domain,
)


def parallel(server, key, n, fn):
    """Run fn(client, i) for i in range(n) on n threads, each with its own client."""
    barrier = threading.Barrier(n)

    def run(i):
        with client_for(server, key) as c:
            barrier.wait(timeout=30)
            return fn(c, i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_pushes_of_the_same_domains_create_each_account_once(server, workspace, api):
    domains = [unique_domain("race") for _ in range(10)]

    def push(c, i):
        order = domains[:] if i % 2 == 0 else domains[::-1]
        return c.post("/accounts", json={"accounts": [account(d, name=f"Racer {i}") for d in order]})

    responses = parallel(server, workspace.key, 6, push)
    created: dict[str, str] = {}
    for r in responses:
        for item in ok(r)["results"]:
            if item["status"] == "created":
                assert item["domain"] not in created, f"{item['domain']} created twice"
                created[item["domain"]] = item["rtp_aid"]
    assert set(created) == set(domains), "every domain is created exactly once"
    for r in responses:
        for item in ok(r)["results"]:
            if item["status"] == "failed":
                aid = created[item["domain"]]
                assert item["rtp_aid"] == aid, item
                assert item["error"] == (
                    f"Account with domain '{item['domain']}' already exists. Use PUT /accounts/{aid} to update it."
                ), item
    assert sorted(r["domain"] for r in all_accounts(api)) == sorted(domains)


def test_concurrent_creation_of_one_custom_field_gives_one_200_and_409s(server, workspace, api):
    def create(c, i):
        return c.post("/accounts/custom-field", json={"label": "Raced Field", "labelType": "number"})

    responses = parallel(server, workspace.key, 5, create)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409, 409], [describe(r) for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["customMessage"] == "Custom field with key 'RACED_FIELD_C' already exists"
    assert [f["key"] for f in ok(api.get("/accounts/custom-fields"))] == ["RACED_FIELD_C"]


def test_delta_sync_never_misses_a_change_made_during_passes(server, workspace, api):
    """A client that keeps each pass's syncTimestamp as its next lastSync ends with the server's state."""
    aids = [r["rtp_aid"] for r in create_accounts(api, 12, prefix="sync")]
    mirror: dict[str, str] = {}
    rows, pages = list_pass(api, limit=5)
    for row in rows:
        mirror[row["rtp_aid"]] = row["name"]
    last_sync = pages[0]["syncTimestamp"]

    stop = threading.Event()
    errors: list[str] = []

    def writer():
        rnd = random.Random(7)
        with client_for(server, workspace.key) as c:
            for i in range(40):
                r = c.put(f"/accounts/{rnd.choice(aids)}", json={"name": f"v{i}"})
                if r.status_code != 200:
                    errors.append(describe(r))
                if i % 8 == 0:
                    push_ok(c, [account(name=f"new{i}")])
        stop.set()

    t = threading.Thread(target=writer)
    t.start()
    passes = 0
    while not stop.is_set() and passes < 40:
        rows, pages = list_pass(api, lastSync=last_sync, limit=5)
        assert len({p["syncTimestamp"] for p in pages}) == 1
        for row in rows:
            mirror[row["rtp_aid"]] = row["name"]
        last_sync = pages[0]["syncTimestamp"]
        passes += 1
    t.join(timeout=120)
    assert not errors, errors
    rows, pages = list_pass(api, lastSync=last_sync, limit=5)
    for row in rows:
        mirror[row["rtp_aid"]] = row["name"]

    truth = {r["rtp_aid"]: r["name"] for r in all_accounts(api)}
    stale = {aid: (mirror.get(aid), name) for aid, name in truth.items() if mirror.get(aid) != name}
    assert not stale, f"changes missed by delta sync (mirror, server): {stale}"
