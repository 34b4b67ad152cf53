"""Delta sync under load: writers and the scoring job change records while a reader delta-syncs
in a loop; when they stop, one more pass leaves the reader with the final state of every record.

The reader is an integration as the contract describes it (§1.5): it keeps the first page's
`syncTimestamp` of each pass and sends it as the next pass's `lastSync`. Meanwhile writers
rename accounts, add accounts, push intent signals and open deals, and the scoring job
(run_scoring, as `abmhub score` and the server's schedule run it) recomputes scores and
journey stages of the changed accounts, sometimes of all. Every field the reader mirrors,
scores and journey stage included, must end equal to the server's.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from abmhub.scoring.service import ScoringBusy, run_scoring
from tests.reliability.support import (
    new_tenant,
    pick,
    prepared_database,
    record_figures,
    serve,
    stop,
)

SEED_ACCOUNTS = 150
MIRRORED = (
    "name",
    "domain",
    "rtp_account_score",
    "rtp_journey_stage",
    "rtp_website_intent_score",
    "rtp_g2_intent_score",
    "rtp_bombora_intent_score",
    "rtp_advertising_activity_score",
    "rtp_last_account_date",
)


def snapshot(record: dict) -> tuple:
    return tuple(record[key] for key in MIRRORED)


def delta_pass(client: httpx.Client, last_sync: str | None, mirror: dict[str, tuple]) -> tuple[str, int]:
    params: dict[str, str | int] = {"limit": 53, **({"lastSync": last_sync} if last_sync else {})}
    sync_timestamp, cursor, delivered = None, None, 0
    while True:
        r = client.get("/accounts", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()["data"]
        sync_timestamp = sync_timestamp or page["syncTimestamp"]
        assert page["syncTimestamp"] == sync_timestamp, "every page of a pass carries the pass's syncTimestamp"
        for record in page["data"]:
            mirror[record["rtp_aid"]] = snapshot(record)
            delivered += 1
        if not page["hasNextPage"]:
            return sync_timestamp, delivered
        cursor = page["nextCursor"]


def now_iso(days_ago: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_delta_syncing_reader_ends_with_the_final_state_while_writers_and_scoring_run(
    backend, new_database_url, tmp_path
):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenant = new_tenant(database, "delta")
    server = serve(backend, url, tmp_path / "server.log")
    base = f"{server.base_url}/api/v1"
    headers = {"X-Api-Key": tenant.key}
    seconds = pick(ci=6, long=180)
    domains = [f"load-{i}.example.com" for i in range(SEED_ACCOUNTS)]
    stop_event = threading.Event()
    errors: list[str] = []
    counts = {"writes": 0, "scoring_runs": 0, "scores_changed": 0, "passes": 0, "delivered": 0}
    lock = threading.Lock()

    def guarded(name, body):
        def run() -> None:
            try:
                body()
            except Exception as exc:
                errors.append(f"{name}: {exc!r}")
                stop_event.set()

        return threading.Thread(target=run, name=name, daemon=True)

    def expect_ok(response: httpx.Response) -> None:
        assert response.status_code == 200, response.text[:300]
        with lock:
            counts["writes"] += 1

    def renamer() -> None:
        rng = random.Random(1)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            version = 0
            while not stop_event.is_set():
                version += 1
                batch = [{"domain": d, "name": f"r{version}"} for d in rng.sample(domains, 6)]
                batch.append({"domain": f"new-{version}.example.com", "name": f"r{version}"})
                expect_ok(client.post("/accounts", json={"accounts": batch, "upsert": True}))

    def signaller() -> None:
        rng = random.Random(2)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            n = 0
            while not stop_event.is_set():
                n += 1
                signals = [
                    {
                        "source": "website",
                        "type": "page_view",
                        "url": "/pricing",
                        "domain": rng.choice(domains),
                        "occurredAt": now_iso(rng.randint(0, 20)),
                    },
                    {"source": "g2", "type": "pricing_view", "domain": rng.choice(domains), "occurredAt": now_iso()},
                    {
                        "source": "bombora",
                        "type": "surge",
                        "topic": "abm",
                        "score": rng.randint(40, 100),
                        "domain": rng.choice(domains),
                        "occurredAt": now_iso(1),
                    },
                ]
                expect_ok(client.post("/signals", json={"signals": signals}))
                if n % 5 == 0:  # an open deal makes its account an Opportunity
                    deal = {
                        "externalDealId": f"deal-{n}",
                        "name": "Load",
                        "stageId": "open",
                        "associatedAccounts": [{"domain": rng.choice(domains)}],
                    }
                    expect_ok(client.post("/deals", json={"deals": [deal]}))

    def scorer() -> None:
        full = False
        while not stop_event.is_set():
            try:
                report = run_scoring(database, workspace=tenant.name, full=full)
            except ScoringBusy:
                time.sleep(0.05)
                continue
            with lock:
                counts["scoring_runs"] += 1
                counts["scores_changed"] += sum(run.changed for run in report.workspaces)
            full = not full
            time.sleep(0.1)

    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for start in range(0, SEED_ACCOUNTS, 100):
                chunk = [{"domain": d, "name": "v0"} for d in domains[start : start + 100]]
                assert client.post("/accounts", json={"accounts": chunk}).status_code == 200
            threads = [guarded("renamer", renamer), guarded("signaller", signaller), guarded("scorer", scorer)]
            for thread in threads:
                thread.start()
            mirror: dict[str, tuple] = {}
            last_sync = None
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline and not stop_event.is_set():
                    last_sync, delivered = delta_pass(client, last_sync, mirror)
                    counts["passes"] += 1
                    counts["delivered"] += delivered
            finally:
                stop_event.set()
                for thread in threads:
                    thread.join(timeout=120)
            assert not errors, errors
            assert counts["writes"] > 20, f"the writers made only {counts['writes']} requests"
            assert counts["scoring_runs"] >= 3, f"the scoring job ran only {counts['scoring_runs']} times"
            assert counts["scores_changed"] > 0, "the scoring job changed no score: the test proves nothing"
            assert counts["passes"] >= 3, f"the reader made only {counts['passes']} passes"

            # Everyone has stopped: one more pass must bring the mirror to the server's state.
            delta_pass(client, last_sync, mirror)
            truth: dict[str, tuple] = {}
            delta_pass(client, None, truth)
    finally:
        stop(server)
        database.dispose()
    stale = {aid: (mirror.get(aid), now) for aid, now in truth.items() if mirror.get(aid) != now}
    assert not stale, (
        f"{len(stale)} of {len(truth)} accounts were never delivered in their final state "
        f"(mirror, server): {list(stale.items())[:3]}"
    )
    record_figures("delta sync under load", backend, records_checked=len(truth), **counts)
