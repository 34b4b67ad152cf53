"""Races: the same create-only record pushed by many clients at once is created exactly once.

Integrations retry, and two copies of one integration run side by side: identical pushes
then arrive at the same moment, on different server processes that share one database.
Several `abmhub serve` processes run on one SQLite file (and, in the other run, one
PostgreSQL database); many clients, released together by a barrier and spread over the
processes, push the same record. Per kind of record, the contract's outcome:

- sales activity, same externalActivityId: one `created`, every other item `failed` with
  "Activity with externalActivityId '<id>' already exists." (§2.11)
- account, same domain (no upsert): one `created`, the others `failed` with the duplicate
  message naming the winner's rtp_aid (§2.2)
- account under /crm, same externalId: one `created`, the others `updated` (§2.2 alias)
- deal, same externalDealId: every item `upserted`, one deal stored (§2.8)
- custom field, same label: one 200, the others 409 "Custom field with key ... already
  exists" (§2.7)
- pipeline, same pipelineId: one 200, the others 409 "Pipeline(s) already exist" (§2.9)
- signal, same externalSignalId: one `created`, the others `skipped` (§6 item 21)

And never a 500: a unique constraint that fires under a race must not reach the client.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from abmhub.db.tables import activities, deals, signals
from tests.reliability.support import (
    log_problems,
    new_tenant,
    pick,
    prepared_database,
    record_figures,
    serve,
    stop,
)

PROCESSES = 3
CLIENTS = 12


def race(bases: list[str], key: str, send: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """Send `send` from CLIENTS threads at once, spread over the server processes."""
    barrier = threading.Barrier(CLIENTS)

    def one(index: int) -> httpx.Response:
        with httpx.Client(base_url=bases[index % len(bases)], headers={"X-Api-Key": key}, timeout=120) as client:
            client.get("/journey-stages")  # connect before the start line
            barrier.wait(timeout=60)
            return send(client)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def item_outcomes(responses: list[httpx.Response]) -> list[dict]:
    outcomes = []
    for response in responses:
        assert response.status_code == 200, f"a racing push got {response.status_code}: {response.text[:500]}"
        [item] = response.json()["data"]["results"]
        outcomes.append(item)
    return outcomes


def count_of(statuses: list[str]) -> dict[str, int]:
    return dict(Counter(statuses))


def activity_item(external_id: str, domain: str) -> dict:
    return {
        "externalActivityId": external_id,
        "activityType": "call",
        "occurredAt": "2026-04-22T10:30:00Z",
        "domain": domain,
        "ownerEmail": "rep@example.com",
        "contacts": [{"email": f"buyer@{domain}"}],
    }


@pytest.fixture
def racing_servers(backend, new_database_url, tmp_path):
    """PROCESSES servers on one database, and that database opened by the test."""
    url = new_database_url(backend)
    database = prepared_database(url)
    servers = [serve(backend, url, tmp_path / f"server-{i}.log") for i in range(PROCESSES)]
    yield servers, database
    for server in servers:
        stop(server)
    database.dispose()


def test_identical_pushes_from_many_clients_on_several_processes_create_one_record(backend, racing_servers):
    servers, database = racing_servers
    tenant = new_tenant(database, "race")
    bases = [f"{server.base_url}/api/v1" for server in servers]
    rounds = pick(ci=3, long=40)
    races = 0
    started = time.monotonic()
    for round_no in range(rounds):
        tag = f"{round_no}-{uuid.uuid4().hex[:8]}"
        domain = f"race-{tag}.example.com"

        # Sales activity: create-only by externalActivityId.
        ext = f"act-{tag}"
        outcomes = item_outcomes(
            race(
                bases,
                tenant.key,
                lambda c: c.post("/sales-activities", json={"activities": [activity_item(ext, domain)]}),
            )
        )
        assert count_of([o["status"] for o in outcomes]) == {"created": 1, "failed": CLIENTS - 1}, outcomes
        for o in outcomes:
            if o["status"] == "failed":
                assert o["error"] == f"Activity with externalActivityId '{ext}' already exists.", o
        with database.read() as conn:
            stored = conn.execute(
                select(func.count()).select_from(activities).where(activities.c.external_activity_id == ext)
            ).scalar_one()
        assert stored == 1, f"{stored} activities stored for externalActivityId {ext}"

        # Account: create-only by domain.
        outcomes = item_outcomes(
            race(
                bases,
                tenant.key,
                lambda c: c.post("/accounts", json={"accounts": [{"domain": domain, "name": "Racer"}]}),
            )
        )
        assert count_of([o["status"] for o in outcomes]) == {"created": 1, "failed": CLIENTS - 1}, outcomes
        winner = next(o["rtp_aid"] for o in outcomes if o["status"] == "created")
        for o in outcomes:
            if o["status"] == "failed":
                assert o["rtp_aid"] == winner and o["error"] == (
                    f"Account with domain '{domain}' already exists. Use PUT /accounts/{winner} to update it."
                ), o
        listed = httpx.get(
            f"{bases[0]}/accounts", params={"domains": f'["{domain}"]'}, headers={"X-Api-Key": tenant.key}
        ).json()["data"]["data"]
        assert [a["rtp_aid"] for a in listed] == [winner], f"accounts stored for {domain}: {listed}"

        # /crm alias: keyed by externalId, a known one is updated.
        crm_ext = f"crm-{tag}"
        crm_domain = f"crm-{tag}.example.com"
        outcomes = item_outcomes(
            race(
                bases,
                tenant.key,
                lambda c: c.post(
                    "/crm/accounts", json={"accounts": [{"domain": crm_domain, "name": "Crm", "externalId": crm_ext}]}
                ),
            )
        )
        assert count_of([o["status"] for o in outcomes]) == {"created": 1, "updated": CLIENTS - 1}, outcomes
        assert len({o["rtp_aid"] for o in outcomes}) == 1, f"one account for externalId {crm_ext}: {outcomes}"

        # Deal: upsert by externalDealId.
        deal_ext = f"deal-{tag}"
        outcomes = item_outcomes(
            race(
                bases,
                tenant.key,
                lambda c: c.post(
                    "/deals", json={"deals": [{"externalDealId": deal_ext, "name": "Race", "amount": 10}]}
                ),
            )
        )
        assert count_of([o["status"] for o in outcomes]) == {"upserted": CLIENTS}, outcomes
        with database.read() as conn:
            stored = conn.execute(
                select(func.count()).select_from(deals).where(deals.c.external_deal_id == deal_ext)
            ).scalar_one()
        assert stored == 1, f"{stored} deals stored for externalDealId {deal_ext}"

        # Custom field: one definition per key.
        label = f"Race {tag}"
        responses = race(
            bases, tenant.key, lambda c: c.post("/accounts/custom-field", json={"label": label, "labelType": "number"})
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * (CLIENTS - 1), [r.text[:200] for r in responses]
        key = label.replace(" ", "_").upper() + "_C"
        for r in responses:
            if r.status_code == 409:
                assert r.json()["customMessage"] == f"Custom field with key '{key}' already exists", r.text

        # Pipeline: create-only, all or nothing.
        pipeline = f"pipe-{tag}"
        responses = race(
            bases,
            tenant.key,
            lambda c: c.post(
                "/deal-stages",
                json={
                    "pipelines": [
                        {
                            "pipelineId": pipeline,
                            "pipelineLabel": "P",
                            "stages": [{"stageId": "s1", "stageLabel": "One"}],
                        }
                    ]
                },
            ),
        )
        assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1), [
            r.text[:200] for r in responses
        ]
        for r in responses:
            if r.status_code == 409:
                assert r.json()["customMessage"] == f"Pipeline(s) already exist: {pipeline}", r.text

        # Signal: idempotent by externalSignalId.
        sig = f"sig-{tag}"
        outcomes = item_outcomes(
            race(
                bases,
                tenant.key,
                lambda c: c.post(
                    "/signals",
                    json={
                        "signals": [
                            {
                                "source": "g2",
                                "type": "pricing_view",
                                "domain": domain,
                                "occurredAt": "2026-04-22T10:30:00Z",
                                "externalSignalId": sig,
                            }
                        ]
                    },
                ),
            )
        )
        assert count_of([o["status"] for o in outcomes]) == {"created": 1, "skipped": CLIENTS - 1}, outcomes
        with database.read() as conn:
            stored = conn.execute(
                select(func.count()).select_from(signals).where(signals.c.external_signal_id == sig)
            ).scalar_one()
        assert stored == 1, f"{stored} signals stored for externalSignalId {sig}"
        races += 7

    fields = httpx.get(f"{bases[0]}/accounts/custom-fields", headers={"X-Api-Key": tenant.key}).json()["data"]
    assert len(fields) == rounds, f"{len(fields)} custom fields for {rounds} raced labels"
    for server in servers:
        problems = log_problems(server)
        assert not problems, f"a server logged an unexpected error: {problems[:5]}"
    record_figures(
        "races",
        backend,
        races=races,
        processes=PROCESSES,
        clients=CLIENTS,
        requests=races * CLIENTS,
        seconds=round(time.monotonic() - started, 1),
    )
