"""Crashes: a server killed with SIGKILL in the middle of sustained ingest loses nothing it
acknowledged and leaves nothing half-written.

Writers push accounts (with custom fields and tags), deals (with three associated accounts
each) and sales activities (with two contacts each) as fast as the server answers, while
the test kills the server with SIGKILL at random moments and starts it again on the same
database. Every value a writer sends carries a version number, the same in every field of
an item, and each writer owns its records, so afterwards:

- every item answered `created`, `updated` or `upserted` is stored, at that version or at
  a later one the writer sent (a request cut off by the kill may or may not have committed);
- every stored record is whole: all its fields, custom fields, tags, associations and
  contacts carry one version (a half-written item would mix two, or miss some);
- the database passes its integrity check (SQLite `PRAGMA integrity_check` and
  `foreign_key_check`; PostgreSQL amcheck on every B-tree index, and consistency queries).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text

from abmhub.db.engine import Database
from tests.reliability.support import (
    kill,
    new_tenant,
    pick,
    prepared_database,
    record_figures,
    serve,
    stop,
)

WRITERS = 3
ACCOUNTS_PER_WRITER = 40
DEALS_PER_WRITER = 12


@dataclass
class Track:
    """What one writer knows about one record: the last version answered, the last one sent."""

    acked: int = -1
    sent: int = -1


@dataclass
class Ledger:
    accounts: dict[str, Track] = field(default_factory=dict)
    deals: dict[str, Track] = field(default_factory=dict)
    activities: dict[str, bool] = field(default_factory=dict)  # sent; True once answered created
    answered: int = 0
    cut_off: int = 0


def account_item(domain: str, version: int) -> dict:
    return {
        "domain": domain,
        "name": f"v{version}",
        "tags": [f"v{version}", "crash"],
        "customFields": {"TIER_C": f"v{version}", "SCORE_C": version},
    }


def deal_item(ext: str, version: int) -> dict:
    return {
        "externalDealId": ext,
        "name": f"v{version}",
        "amount": version,
        "stageId": f"s{version % 3}",
        "associatedAccounts": [{"domain": f"{ext}-v{version}-{i}.example.com"} for i in range(3)],
    }


def activity_item(ext: str) -> dict:
    return {
        "externalActivityId": ext,
        "activityType": "email",
        "occurredAt": "2026-04-23T08:15:00Z",
        "domain": "crash.example.com",
        "ownerEmail": "rep@example.com",
        "subject": ext,
        "contacts": [{"email": f"a-{ext}@crash.example.com"}, {"email": f"b-{ext}@crash.example.com"}],
    }


class Writer(threading.Thread):
    def __init__(
        self,
        index: int,
        key: str,
        base: dict[str, str],
        ledger: Ledger,
        lock: threading.Lock,
        stop_event: threading.Event,
    ) -> None:
        super().__init__(daemon=True)
        self.index, self.key, self.base, self.ledger, self.lock, self.stop_event = (
            index,
            key,
            base,
            ledger,
            lock,
            stop_event,
        )
        self.rng = random.Random(index)
        self.version = 0
        self.errors: list[str] = []
        self.domains = [f"w{index}-a{i}.crash.example.com" for i in range(ACCOUNTS_PER_WRITER)]
        self.deals = [f"w{index}-d{i}" for i in range(DEALS_PER_WRITER)]
        self.activity_no = 0
        self._client: httpx.Client | None = None

    def client(self) -> httpx.Client:
        """A client of the current server (a new one after each restart)."""
        if self._client is None or str(self._client.base_url).rstrip("/") != self.base["url"]:
            if self._client is not None:
                self._client.close()
            self._client = httpx.Client(base_url=self.base["url"], headers={"X-Api-Key": self.key}, timeout=30)
        return self._client

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.version += 1
            kind = self.rng.choice(("accounts", "deals", "activities"))
            try:
                self.push(kind, self.version)
            except Exception as exc:
                self.errors.append(f"{kind}: {exc!r}")
                break
        if self._client is not None:
            self._client.close()

    def push(self, kind: str, version: int) -> None:
        if kind == "accounts":
            keys = self.rng.sample(self.domains, 10)
            path, body = "/accounts", {"accounts": [account_item(d, version) for d in keys], "upsert": True}
            tracks, good = self.ledger.accounts, {"created", "updated"}
        elif kind == "deals":
            keys = self.rng.sample(self.deals, 4)
            path, body = "/deals", {"deals": [deal_item(d, version) for d in keys]}
            tracks, good = self.ledger.deals, {"upserted"}
        else:
            keys = [f"w{self.index}-e{self.activity_no + i}" for i in range(5)]
            self.activity_no += 5
            path, body = "/sales-activities", {"activities": [activity_item(e) for e in keys]}
            tracks, good = None, {"created"}
        with self.lock:
            for key in keys:
                if tracks is None:
                    self.ledger.activities[key] = False
                else:
                    tracks.setdefault(key, Track()).sent = version
        try:
            response = self.client().post(path, json=body)
        except httpx.TransportError:
            with self.lock:
                self.ledger.cut_off += 1
            time.sleep(0.2)  # the server is down: its replacement is on its way
            return
        if response.status_code != 200:
            raise AssertionError(f"{path} answered {response.status_code}: {response.text[:300]}")
        results = response.json()["data"]["results"]
        with self.lock:
            self.ledger.answered += 1
            for key, result in zip(keys, results, strict=True):
                if result["status"] not in good:
                    raise AssertionError(f"{path} item {key} was not stored: {result}")
                if tracks is None:
                    self.ledger.activities[key] = True
                else:
                    tracks[key].acked = version


def wait_for_answers(ledger: Ledger, lock: threading.Lock, count: int, writers: list[Writer]) -> None:
    with lock:
        target = ledger.answered + count
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if ledger.answered >= target:
                return
        if not any(writer.is_alive() for writer in writers):
            return  # they failed: the test reports why
        time.sleep(0.01)
    raise AssertionError(f"the writers got no {count} answers in 60 s")


def all_pages(client: httpx.Client, path: str) -> list[dict]:
    records, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=params)
        assert page.status_code == 200, page.text
        data = page.json()["data"]
        records.extend(data["data"])
        if not data["hasNextPage"]:
            return records
        cursor = data["nextCursor"]


def version_of(record_name: str) -> int:
    assert record_name.startswith("v"), record_name
    return int(record_name[1:])


def check_integrity(database: Database) -> tuple[list[str], str]:
    """What is wrong with the database file or its constraints (empty when all is well), and
    which checks ran."""
    problems: list[str] = []
    with database.engine.connect() as conn:
        if database.is_sqlite:
            result = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.append(f"integrity_check: {result[:5]}")
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                problems.append(f"foreign_key_check: {broken[:5]}")
            ran = "PRAGMA integrity_check, PRAGMA foreign_key_check"
        else:
            try:
                with conn.begin_nested():
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            except Exception:
                ran = "consistency queries (amcheck unavailable)"
            else:
                indexes = (
                    conn.execute(
                        text(
                            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE a.amname = 'btree' AND n.nspname = 'public'"
                        )
                    )
                    .scalars()
                    .all()
                )
                for name in indexes:
                    # heapallindexed: every table row is findable through the index.
                    conn.execute(text("SELECT bt_index_check(CAST(:name AS regclass), true)"), {"name": name})
                ran = f"amcheck bt_index_check on {len(indexes)} indexes"
        # Consistency the constraints do not state: links point at rows of the same workspace.
        for what, query in (
            (
                "deal association of another workspace",
                "SELECT count(*) FROM deal_accounts da JOIN deals d "
                "ON d.id = da.deal_id WHERE da.workspace_id <> d.workspace_id",
            ),
            (
                "activity contact of another workspace",
                "SELECT count(*) FROM activity_contacts ac JOIN "
                "activities a ON a.id = ac.activity_id JOIN contacts c ON c.id = ac.contact_id "
                "WHERE a.workspace_id <> c.workspace_id",
            ),
            (
                "two accounts with one domain",
                "SELECT count(*) FROM (SELECT workspace_id, domain FROM accounts "
                "GROUP BY workspace_id, domain HAVING count(*) > 1) AS t",
            ),
        ):
            count = conn.execute(text(query)).scalar_one()
            if count:
                problems.append(f"{count} × {what}")
        conn.rollback()
    return problems, ran + " and consistency queries"


def test_sigkill_during_ingest_loses_no_acknowledged_item_and_half_writes_nothing(backend, new_database_url, tmp_path):
    url = new_database_url(backend)
    database = prepared_database(url)
    tenant = new_tenant(database, "crash")
    kills = pick(ci=5, long=100)
    server = serve(backend, url, tmp_path / "server-0.log")
    base = {"url": f"{server.base_url}/api/v1"}
    with httpx.Client(base_url=base["url"], headers={"X-Api-Key": tenant.key}, timeout=30) as client:
        for label, label_type in (("Tier", "singleLineText"), ("Score", "number")):
            r = client.post("/accounts/custom-field", json={"label": label, "labelType": label_type})
            assert r.status_code == 200, r.text

    ledger, lock, stop_event = Ledger(), threading.Lock(), threading.Event()
    writers = [Writer(i, tenant.key, base, ledger, lock, stop_event) for i in range(WRITERS)]
    rng = random.Random(8)
    started = time.monotonic()
    for writer in writers:
        writer.start()
    try:
        for n in range(kills + 1):
            # Let the writers get going on this server (a random number of answered pushes),
            # then pull the plug at whatever it is doing.
            wait_for_answers(ledger, lock, rng.randint(5, 25), writers)
            if n == kills:
                break
            kill(server)
            server = serve(backend, url, tmp_path / f"server-{n + 1}.log")
            base["url"] = f"{server.base_url}/api/v1"
    finally:
        stop_event.set()
        for writer in writers:
            writer.join(timeout=60)
    seconds = time.monotonic() - started
    errors = [e for writer in writers for e in writer.errors]
    assert not errors, f"writers failed: {errors[:5]}"
    assert ledger.answered >= 5 * (kills + 1), f"only {ledger.answered} answered pushes: too little to prove anything"

    checked = 0
    with httpx.Client(base_url=base["url"], headers={"X-Api-Key": tenant.key}, timeout=60) as client:
        accounts = {a["domain"]: a for a in all_pages(client, "/accounts")}
        for domain, track in ledger.accounts.items():
            record = accounts.get(domain)
            if record is None:
                assert track.acked < 0, f"account {domain} was answered at v{track.acked} and is gone"
                continue
            version = version_of(record["name"])
            assert track.acked <= version <= track.sent, (
                f"account {domain} is at v{version}; answered v{track.acked}, last sent v{track.sent}"
            )
            assert record["customFields"] == {"TIER_C": f"v{version}", "SCORE_C": version}, (
                f"account {domain} is half-written: {record}"
            )
            assert record["tags"] == [f"v{version}", "crash"], f"account {domain} is half-written: {record}"
            checked += 1

        stored_deals = {d["externalDealId"]: d for d in all_pages(client, "/deals")}
        for ext, track in ledger.deals.items():
            deal = stored_deals.get(ext)
            if deal is None:
                assert track.acked < 0, f"deal {ext} was answered at v{track.acked} and is gone"
                continue
            version = version_of(deal["name"])
            assert track.acked <= version <= track.sent, (
                f"deal {ext} is at v{version}; answered v{track.acked}, last sent v{track.sent}"
            )
            expected = [f"{ext}-v{version}-{i}.example.com" for i in range(3)]
            assert [a["domain"] for a in deal["associatedAccounts"]] == expected, f"deal {ext} is half-written: {deal}"
            assert deal["amount"] == version and deal["stageId"] == f"s{version % 3}", f"deal {ext} is half-written"
            checked += 1

        stored_activities = {a["externalActivityId"]: a for a in all_pages(client, "/sales-activities")}
        for ext, answered in ledger.activities.items():
            activity = stored_activities.get(ext)
            if activity is None:
                assert not answered, f"activity {ext} was answered created and is gone"
                continue
            emails = sorted(c["email"] for c in activity["contacts"])
            assert emails == [f"a-{ext}@crash.example.com", f"b-{ext}@crash.example.com"], (
                f"activity {ext} is half-written: contacts {emails}"
            )
            checked += 1
        unknown = set(stored_activities) - set(ledger.activities)
        assert not unknown, f"activities nobody sent: {sorted(unknown)[:5]}"

    stop(server)
    problems, checks = check_integrity(database)
    database.dispose()
    assert not problems, f"the database is damaged after {kills} kills: {problems}"
    record_figures(
        "crashes",
        backend,
        kills=kills,
        answered_pushes=ledger.answered,
        cut_off_requests=ledger.cut_off,
        records_checked=checked,
        integrity_checks=checks,
        seconds=round(seconds, 1),
    )
