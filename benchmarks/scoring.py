"""Scoring benchmark: a full recompute and an incremental run of the scoring job.

    python -m benchmarks scoring [--backend sqlite|postgresql] [--accounts N] [--signals M] [--quick]

Targets (issue, 2-core machine): full recompute of 1,000,000 accounts with 10,000,000
signals ≤ 60 s, incremental run after 1,000 accounts changed ≤ 1 s, peak memory ≤ 1 GiB.

1. Data set, written straight into a fresh, migrated database (no HTTP): one workspace, N
   accounts, M signals over the last 180 days in arrival (time) order, spread over the
   account domains with a skewed distribution (a few accounts get many signals, most get a
   few; ~10 % of the signals name domains that have no account), all four sources with their
   types; sales activities for ~5 % and deals for ~2 % of the accounts; two dynamic segments.
   SQLite: executemany in large transactions; PostgreSQL: COPY. Then ANALYZE (PostgreSQL:
   VACUUM ANALYZE, which also sets the visibility map, as autovacuum would). Deterministic
   for a given --seed (except rtp_aid, which `abmhub.ids.new_object_id` stamps with the clock).
2. Full run: `run_scoring(db, full=True)` in a child process (`python -m benchmarks.scoring
   --child ...`): its peak RSS is the child's own high-water mark (/proc VmHWM; ru_maxrss is
   not usable: it inherits the parent's RSS across fork+exec), cross-checked by sampling; its
   time is measured around the call inside the child (imports excluded).
   On PostgreSQL the server's memory is separate and sampled from /proc.
3. Settle (PostgreSQL: VACUUM ANALYZE accounts, which autovacuum would do within a minute of
   a 1M-row update), then 1,000 random accounts get one new signal each and `score_dirty`,
   and the incremental run `run_scoring(db)` is timed the same way.
4. Optional: `--phases` times the engine's steps in the child (wrapped functions, statement
   timing through SQLAlchemy cursor events, commits); `--profile` records the child with
   py-spy; `--explain` prints the query plans of one batch; `--experiments a,b,...` reruns the
   first-run full recompute (scores reset) with monkeypatched variants (see EXPERIMENTS).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from benchmarks.harness import (
    BACKENDS,
    REPO_ROOT,
    RESULTS_DIR,
    BenchmarkError,
    PySpy,
    Report,
    Run,
    fmt_number,
    log,
    machine_busy_seconds,
    python_env,
    summarize_collapsed,
    utc_stamp,
)

DEFAULT_ACCOUNTS = 1_000_000
DEFAULT_SIGNALS = 10_000_000
QUICK_ACCOUNTS = 20_000
QUICK_SIGNALS = 200_000
INCREMENTAL_ACCOUNTS = 1_000
TARGET_FULL_S = 60.0
TARGET_INCREMENTAL_S = 1.0
TARGET_RSS_MIB = 1024.0
DAYS = 180
US_PER_DAY = 86_400_000_000
US_PER_S = 1_000_000
WORKSPACE = "bench"
SQLITE_ROWS_PER_TX = 200_000
COPY_CHUNK_ROWS = 50_000
RSS_SAMPLE_S = 0.2

# Shares of the signals per source, and of the types within a source (sum to 1).
SOURCE_MIX = (("website", 0.50), ("linkedin_ads", 0.25), ("g2", 0.15), ("bombora", 0.10))
TYPE_MIX = {
    "website": (("page_view", 1.0),),
    "linkedin_ads": (("impression", 0.70), ("click", 0.20), ("engagement", 0.10)),
    "g2": (("category_view", 0.40), ("profile_view", 0.30), ("comparison", 0.20), ("pricing_view", 0.10)),
    "bombora": (("surge", 1.0),),
}
PAGES = ("/", "/pricing", "/docs", "/blog/abm-101", "/customers", "/integrations", "/demo")
TOPICS = ("Account Based Marketing", "Intent Data", "Sales Intelligence", "Marketing Automation", "CRM")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts", type=int, default=None, metavar="N", help=f"accounts (default {DEFAULT_ACCOUNTS:,})"
    )
    parser.add_argument("--signals", type=int, default=None, metavar="M", help=f"signals (default {DEFAULT_SIGNALS:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts, {QUICK_SIGNALS:,} signals"
    )
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the data set (default 20261125)")
    parser.add_argument(
        "--changed", type=int, default=INCREMENTAL_ACCOUNTS, help="accounts changed before the incremental run"
    )
    parser.add_argument("--segments", type=int, default=2, choices=range(3), help="dynamic segments (0-2, default 2)")
    parser.add_argument(
        "--skew", type=float, default=2.0, help="signal skew: an account's rank is N·u^skew (default 2.0)"
    )
    parser.add_argument(
        "--signal-order",
        choices=("time", "domain"),
        default="time",
        help="physical order of the signals table: arrival time (realistic, default) or clustered by domain "
        "(what a loader that writes account by account produces; sorts all signals in memory)",
    )
    parser.add_argument("--phases", action="store_true", help="time the engine's steps in the child (tiny overhead)")
    parser.add_argument("--profile", action="store_true", help="record the full run with py-spy (marked as profiled)")
    parser.add_argument("--explain", action="store_true", help="print/store the query plans of one batch")
    parser.add_argument(
        "--experiments",
        default="",
        metavar="LIST",
        help="comma-separated monkeypatch experiments, each a first-run full recompute after a score reset: "
        + ", ".join(sorted(EXPERIMENTS)),
    )
    parser.add_argument(
        "--incremental-experiments",
        default="",
        metavar="LIST",
        help="comma-separated incremental-run experiments, each after touching --changed other accounts: "
        + ", ".join(INCREMENTAL_EXPERIMENTS),
    )
    parser.add_argument(
        "--apply",
        default=None,
        metavar="EXPERIMENT",
        help="apply one experiment's monkeypatches and schema change to the main full and incremental runs "
        "(right after loading: the full run is then a true first run with the change)",
    )
    parser.add_argument("--full-rerun", action="store_true", help="also time a second full run (nothing changes)")
    parser.add_argument(
        "--max-run-seconds",
        type=float,
        default=1800.0,
        help="kill a scoring child after this long and report it as not finished (default 1800)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases)")


# --- the data set --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    accounts: int
    signals: int
    seed: int
    skew: float = 2.0
    days: int = DAYS
    orphan_share: float = 0.10  # signals whose domain has no account
    activity_share: float = 0.05  # accounts with sales activities (1–8 each)
    deal_share: float = 0.02  # accounts with a deal
    segments: int = 2
    signal_order: str = "time"


def account_domain(i: int) -> str:
    return f"acct-{i}.example.com"


def _stride(n: int) -> int:
    """A multiplier coprime to n: rank → account id is then a permutation (hot accounts spread out)."""
    stride = max(1, int(n * 0.6180339887))  # golden ratio: consecutive ranks land far apart
    while math.gcd(stride, n) != 1:
        stride += 1
    return stride


def _cumulative(mix: Sequence[tuple[str, float]]) -> list[tuple[float, str]]:
    total, out = 0.0, []
    for name, share in mix:
        total += share
        out.append((total, name))
    return out


def _pick(cumulative: list[tuple[float, str]], u: float) -> str:
    for edge, name in cumulative:
        if u < edge:
            return name
    return cumulative[-1][1]


def signal_rows(shape: Shape, workspace_id: int, now: int) -> Iterator[tuple[Any, ...]]:
    """The signals in arrival order: day by day over the last `days` days, times sorted within a day.

    Columns: SIGNAL_COLUMNS. Bombora rows carry a surge score 0–100 (mostly 30–90) and a topic,
    website rows a URL, LinkedIn impressions a count 1–200.
    """
    rng = random.Random(shape.seed * 7 + 1)
    n, m = shape.accounts, shape.signals
    stride = _stride(n)
    orphans = max(1, n // 2)
    sources = _cumulative(SOURCE_MIX)
    types = {source: _cumulative(mix) for source, mix in TYPE_MIX.items()}
    start = now - shape.days * US_PER_DAY
    per_day, extra = divmod(m, shape.days)
    serial = 0
    rand, randrange, skew, orphan_share = rng.random, rng.randrange, shape.skew, shape.orphan_share
    for day in range(shape.days):
        count = per_day + (1 if day < extra else 0)
        day_start = start + day * US_PER_DAY
        times = sorted(randrange(day_start, day_start + US_PER_DAY) for _ in range(count))
        for occurred in times:
            serial += 1
            if rand() < orphan_share:
                domain = f"nomatch-{randrange(orphans)}.example.org"
            else:
                rank = int(n * rand() ** skew)
                domain = account_domain((rank * stride) % n + 1)
            source = _pick(sources, rand())
            kind = _pick(types[source], rand())
            score = topic = url = None
            count_ = 1
            if source == "bombora":
                score = max(0, min(100, int(rng.triangular(20, 100, 60))))
                topic = TOPICS[randrange(len(TOPICS))]
            elif source == "website":
                url = "https://abmhub.example" + PAGES[randrange(len(PAGES))]
            elif source == "linkedin_ads":
                count_ = randrange(1, 201) if kind == "impression" else randrange(1, 6)
            elif source == "g2":
                count_ = randrange(1, 4)
            yield (
                serial, workspace_id, source, kind, domain, occurred, occurred // US_PER_DAY,
                f"sig-{serial}", 1.0, count_, score, topic, url, min(now, occurred + 3600 * US_PER_S),
            )  # fmt: skip


SIGNAL_COLUMNS = (
    "id", "workspace_id", "source", "type", "domain", "occurred_us", "occurred_day", "external_signal_id",
    "weight", "count", "score", "topic", "url", "created_us",
)  # fmt: skip
ACCOUNT_COLUMNS = (
    "id", "workspace_id", "rtp_aid", "uuid", "external_id", "name", "domain", "tags", "custom_fields",
    "score_dirty", "created_us", "change_us",
)  # fmt: skip
ACTIVITY_COLUMNS = (
    "id", "workspace_id", "uuid", "external_activity_id", "kind", "occurred_us", "domain", "account_id",
    "subject", "owner_email", "created_us", "change_us",
)  # fmt: skip
DEAL_COLUMNS = (
    "id", "workspace_id", "uuid", "external_deal_id", "name", "amount", "currency", "stage_id", "stage_label",
    "pipeline_id", "pipeline_label", "created_us", "change_us",
)  # fmt: skip
DEAL_ACCOUNT_COLUMNS = ("id", "workspace_id", "deal_id", "position", "domain", "name", "account_id")

# A defined pipeline (stages say what they mean) and one known only by its stage labels.
PIPELINE_STAGES = (
    ("discovery", "Discovery", "Opportunity"),
    ("negotiation", "Negotiation", "Opportunity"),
    ("won", "Closed Won", "Customer"),
    ("lost", "Closed Lost", None),
)
LEGACY_STAGES = (("l-prop", "Proposal"), ("l-won", "Closed Won"), ("l-lost", "Closed Lost"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def account_rows(shape: Shape, workspace_id: int, now: int) -> Iterator[tuple[Any, ...]]:
    from abmhub.ids import new_object_id

    rng = random.Random(shape.seed * 7 + 2)
    for i in range(1, shape.accounts + 1):
        created = now - rng.randrange(365 * US_PER_DAY)
        external = f"crm-{i}" if i % 3 else None
        yield (
            i, workspace_id, new_object_id(), _uuid(rng), external, f"Account {i}", account_domain(i), "[]", "{}",
            True, created, created,
        )  # fmt: skip


def activity_rows(shape: Shape, workspace_id: int, now: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(shape.seed * 7 + 3)
    serial = 0
    for i in range(1, shape.accounts + 1):
        if rng.random() >= shape.activity_share:
            continue
        for _ in range(rng.randrange(1, 9)):
            serial += 1
            occurred = now - rng.randrange(shape.days * US_PER_DAY)
            kind = "call" if rng.random() < 0.4 else "email"
            yield (
                serial, workspace_id, _uuid(rng), f"act-{serial}", kind, occurred, account_domain(i), i,
                f"{kind} {serial}", "rep@example.com", occurred, occurred,
            )  # fmt: skip


def deal_rows(shape: Shape, workspace_id: int, now: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rng = random.Random(shape.seed * 7 + 4)
    deals, links = [], []
    for i in range(1, shape.accounts + 1):
        if rng.random() >= shape.deal_share:
            continue
        d = len(deals) + 1
        created = now - rng.randrange(shape.days * US_PER_DAY)
        u = rng.random()
        if u < 0.6:
            stage_id, label, _ = PIPELINE_STAGES[rng.randrange(len(PIPELINE_STAGES))]
            pipeline, pipeline_label = "sales", "Sales"
        elif u < 0.9:
            stage_id, label = LEGACY_STAGES[rng.randrange(len(LEGACY_STAGES))]
            pipeline, pipeline_label = "legacy", "Legacy"
        else:
            stage_id = label = pipeline = pipeline_label = None
        deals.append(
            (d, workspace_id, _uuid(rng), f"deal-{d}", f"Deal {d}", float(rng.randrange(1, 200)) * 1000.0, "USD",
             stage_id, label, pipeline, pipeline_label, created, created)
        )  # fmt: skip
        links.append((len(links) + 1, workspace_id, d, 0, account_domain(i), f"Account {i}", i))
        if rng.random() < 0.1 and i < shape.accounts:  # a few deals name a second account
            links.append((len(links) + 1, workspace_id, d, 1, account_domain(i + 1), f"Account {i + 1}", i + 1))
    return deals, links


SEGMENT_RULES = (
    ("High intent", {"all": [{"field": "rtp_account_score", "op": "gte", "value": 30}]}),
    ("Considering", {"all": [{"field": "rtp_journey_stage", "op": "eq", "value": "Consideration"}]}),
)


# --- loaders ---------------------------------------------------------------------------------------


class Loader:
    """Bulk writes into the benchmark database, bypassing abmhub (no HTTP, no validation)."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        if backend == "sqlite":
            import sqlite3

            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")
            self.conn.execute("PRAGMA cache_size=-524288")  # 512 MiB: index builds stay in memory
            self.conn.execute("PRAGMA foreign_keys=OFF")
        else:
            import psycopg
            from sqlalchemy.engine import make_url

            conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            self.conn = psycopg.connect(conninfo, autocommit=True)
            # The throwaway cluster commits asynchronously; VACUUM cannot mark a page all-visible
            # (index-only scans) before the commit that wrote it is flushed, so the loader commits
            # synchronously — what autovacuum sees anyway, minutes after real data arrived.
            self.conn.execute("SET synchronous_commit = on")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(
        self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]] | Sequence[tuple[Any, ...]]
    ) -> int:
        n = 0
        if self.backend == "sqlite":
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= SQLITE_ROWS_PER_TX:
                    n += self._sqlite_tx(sql, batch)
                    batch = []
            if batch:
                n += self._sqlite_tx(sql, batch)
            return n
        copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
            lines: list[str] = []
            for row in rows:
                lines.append("\t".join(_copy_text(v) for v in row))
                n += 1
                if len(lines) >= COPY_CHUNK_ROWS:
                    copy.write("\n".join(lines) + "\n")
                    lines = []
            if lines:
                copy.write("\n".join(lines) + "\n")
        # Explicit ids were written: move the id sequence past them.
        self.conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
        )
        return n

    def _sqlite_tx(self, sql: str, batch: list[tuple[Any, ...]]) -> int:
        self.conn.execute("BEGIN")
        self.conn.executemany(sql, batch)
        self.conn.execute("COMMIT")
        return len(batch)

    def execute_script(self, sql: str) -> None:
        for statement in sql.split(";\n"):
            if statement.strip():
                self.execute(statement)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.backend == "sqlite":
            return self.conn.execute(sql, params)
        return self.conn.execute(sql.replace("?", "%s"), params)

    def analyze(self, tables: Sequence[str] | None = None) -> None:
        if self.backend == "sqlite":
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("ANALYZE")
        else:
            # VACUUM as well: it sets the visibility map (index-only scans) like autovacuum would.
            for table in tables or ("accounts", "signals", "activities", "deals", "deal_accounts"):
                self.conn.execute(f"VACUUM ANALYZE {table}")


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value)  # no tabs, newlines or backslashes in the generated data


def generate(backend: str, url: str, shape: Shape) -> dict[str, Any]:
    """Migrate, create the workspace, pipelines and segments, bulk-load the rest, ANALYZE."""
    from abmhub.db.engine import Database
    from abmhub.db.migrate import upgrade
    from abmhub.db.tables import pipeline_stages, pipelines
    from abmhub.segments.service import create_segment
    from abmhub.tenancy.service import create_workspace
    from abmhub.timefmt import now_us

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db = Database(url)
    try:
        upgrade(db)
        workspace_id = create_workspace(db, name=WORKSPACE)
        now = now_us()
        with db.write(workspace_id) as tx:
            pk = tx.conn.execute(
                pipelines.insert()
                .values(workspace_id=workspace_id, pipeline_id="sales", label="Sales", created_us=now)
                .returning(pipelines.c.id)
            ).scalar_one()
            tx.conn.execute(
                pipeline_stages.insert(),
                [
                    {"pipeline_pk": pk, "stage_id": s, "label": label, "journey_stage": j, "position": p}
                    for p, (s, label, j) in enumerate(PIPELINE_STAGES)
                ],
            )
        for name, rule in SEGMENT_RULES[: shape.segments]:
            create_segment(db, workspace_id=workspace_id, name=name, type="dynamic", status="active", rule=rule)
    finally:
        db.dispose()
    timings["migrate_and_setup_s"] = time.perf_counter() - t0

    loader = Loader(backend, url)
    counts: dict[str, int] = {}
    try:
        for table, columns, rows in (
            ("accounts", ACCOUNT_COLUMNS, account_rows(shape, workspace_id, now)),
            ("activities", ACTIVITY_COLUMNS, activity_rows(shape, workspace_id, now)),
        ):
            t = time.perf_counter()
            counts[table] = loader.load(table, columns, rows)
            timings[f"{table}_s"] = time.perf_counter() - t
            log(f"  {table}: {counts[table]:,} rows in {timings[f'{table}_s']:.1f} s")
            if table == "accounts" and backend == "sqlite":
                # The search index as `search.catch_up` leaves it at rest (accounts/search.py).
                t = time.perf_counter()
                loader.execute("INSERT INTO account_search (rowid, name, domain) SELECT id, name, domain FROM accounts")
                timings["search_index_s"] = time.perf_counter() - t
        t = time.perf_counter()
        deal_list, link_list = deal_rows(shape, workspace_id, now)
        counts["deals"] = loader.load("deals", DEAL_COLUMNS, deal_list)
        counts["deal_accounts"] = loader.load("deal_accounts", DEAL_ACCOUNT_COLUMNS, link_list)
        timings["deals_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rows = signal_rows(shape, workspace_id, now)
        if shape.signal_order == "domain":
            rows = ((i + 1, *row[1:]) for i, row in enumerate(sorted(rows, key=lambda r: (r[4], r[2], r[5]))))
        counts["signals"] = loader.load("signals", SIGNAL_COLUMNS, rows)
        timings["signals_s"] = time.perf_counter() - t
        log(f"  signals: {counts['signals']:,} rows in {timings['signals_s']:.1f} s")
        # The workspace's sync clock must be past every stamp written above.
        loader.execute("UPDATE workspaces SET clock_us = ? WHERE id = ?", (now_us(), workspace_id))
        t = time.perf_counter()
        loader.analyze()
        timings["analyze_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        distribution = signal_distribution(loader, workspace_id)  # not part of the generation time
    finally:
        loader.close()
    return {"workspace_id": workspace_id, "now_us": now, "rows": counts, "timings": timings, **distribution}


def signal_distribution(loader: Loader, workspace_id: int) -> dict[str, Any]:
    """How the signals fall on accounts: per-account counts (percentiles), orphans, per source."""
    per_account = [
        row[0]
        for row in loader.execute(
            "SELECT count(*) FROM signals s JOIN accounts a ON a.workspace_id = s.workspace_id AND a.domain = s.domain "
            "WHERE s.workspace_id = ? GROUP BY a.id",
            (workspace_id,),
        ).fetchall()
    ]
    accounts = loader.execute("SELECT count(*) FROM accounts WHERE workspace_id = ?", (workspace_id,)).fetchone()[0]
    total = loader.execute("SELECT count(*) FROM signals WHERE workspace_id = ?", (workspace_id,)).fetchone()[0]
    by_source = dict(
        loader.execute("SELECT source, count(*) FROM signals WHERE workspace_id = ? GROUP BY source", (workspace_id,))
    )
    per_account.sort()
    with_signals = len(per_account)
    matched = sum(per_account)

    def pct(q: float) -> int:
        # Percentile over all accounts, the ones without signals counting 0.
        idx = min(accounts - 1, int(q / 100 * accounts))
        offset = accounts - with_signals
        return 0 if idx < offset else per_account[idx - offset]

    return {
        "signals_per_account": {
            "accounts_with_signals": with_signals,
            "accounts_without_signals": accounts - with_signals,
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "p99_9": pct(99.9),
            "max": per_account[-1] if per_account else 0,
            "mean": matched / accounts if accounts else 0,
        },
        "signals_for_domains_without_account": total - matched,
        "signals_by_source": by_source,
    }


def touch_accounts(backend: str, url: str, workspace_id: int, n: int, seed: int) -> list[int]:
    """n random accounts get one new signal each (today) and score_dirty, as a signal push does."""
    from abmhub.timefmt import now_us

    with Loader(backend, url) as loader:
        total = loader.execute("SELECT max(id) FROM accounts").fetchone()[0]
        ids = sorted(random.Random(seed * 7 + 5).sample(range(1, total + 1), min(n, total)))
        now = now_us()
        next_id = loader.execute("SELECT coalesce(max(id), 0) FROM signals").fetchone()[0] + 1
        rows = [
            (next_id + k, workspace_id, "g2", "pricing_view", f"acct-{i}.example.com", now, now // US_PER_DAY,
             f"touch-{seed}-{k}-{now}", 1.0, 1, None, None, None, now)
            for k, i in enumerate(ids)
        ]  # fmt: skip
        loader.load("signals", SIGNAL_COLUMNS, rows)
        placeholders = ", ".join("?" * len(ids))
        if backend == "sqlite":
            loader.execute("BEGIN")
        loader.execute(f"UPDATE accounts SET score_dirty = ? WHERE id IN ({placeholders})", (True, *ids))
        if backend == "sqlite":
            loader.execute("COMMIT")
    return ids


def reset_scores(backend: str, url: str) -> float:
    """Back to the state before the first run: scores 0, no stage, all dirty, no memberships."""
    t = time.perf_counter()
    with Loader(backend, url) as loader:
        if backend == "sqlite":
            loader.execute("BEGIN")
        loader.execute(
            "UPDATE accounts SET account_score = 0, journey_stage = '', advertising_score = 0, website_score = 0, "
            "g2_score = 0, bombora_score = 0, score_dirty = ?, scored_us = NULL",
            (True,),
        )
        loader.execute("DELETE FROM segment_members")
        loader.execute("DELETE FROM scoring_runs")
        if backend == "sqlite":
            loader.execute("COMMIT")
        loader.analyze(("accounts", "segment_members"))
    return time.perf_counter() - t


def score_checksum(backend: str, url: str) -> list[Any]:
    """What a run computed, in a few numbers: experiments must reproduce the shipped engine's result."""
    with Loader(backend, url) as loader:
        row = loader.execute(
            "SELECT count(*), sum(account_score), sum(website_score), sum(g2_score), sum(bombora_score), "
            "sum(advertising_score), sum(CASE WHEN journey_stage = 'Consideration' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN journey_stage = 'Customer' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN score_dirty = ? THEN 1 ELSE 0 END) FROM accounts",
            (True,),
        ).fetchone()
        members = loader.execute("SELECT count(*) FROM segment_members").fetchone()[0]
        return [int(v or 0) for v in row] + [int(members)]


def dirty_count(backend: str, url: str) -> int:
    with Loader(backend, url) as loader:
        return loader.execute("SELECT count(*) FROM accounts WHERE score_dirty = ?", (True,)).fetchone()[0]


# --- the scoring child ---------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of a process in KiB (empty if gone)."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0])
    return out


class RssSampler:
    """Samples the RSS of the scoring child and (PostgreSQL) the server processes."""

    def __init__(self, child_pid: int, postgres_pids: Any = None) -> None:
        self.child_pid = child_pid
        self.postgres_pids = postgres_pids
        self.child_peak_kib = 0
        self.pg_backend_anon_peak_kib = 0
        self.pg_total_anon_peak_kib = 0
        self.pg_cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rss-sampler")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            status = _proc_status(self.child_pid)
            self.child_peak_kib = max(self.child_peak_kib, status.get("VmRSS", 0))
            if self.postgres_pids is not None:
                pids = self.postgres_pids()
                for pid in pids:  # CPU of backends that exit before the end is kept too
                    self.pg_cpu_last[pid] = _cpu_of([pid])
                anon = [_proc_status(pid).get("RssAnon", 0) for pid in pids]
                if anon:
                    self.pg_backend_anon_peak_kib = max(self.pg_backend_anon_peak_kib, max(anon))
                    self.pg_total_anon_peak_kib = max(self.pg_total_anon_peak_kib, sum(anon))
            self._stop.wait(RSS_SAMPLE_S)


def run_child(
    run: Run,
    url: str,
    *,
    full: bool,
    phases: bool = False,
    patches: dict[str, Any] | None = None,
    profile: Path | None = None,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """`run_scoring` in a child process; its result, rusage (exact peak RSS) and sampled memory."""
    spec = {"url": url, "full": full, "phases": phases, "patches": patches or {}}
    return run_module_child(run, "benchmarks.scoring", spec, profile=profile, timeout=timeout)


def run_module_child(
    run: Run, module: str, spec: dict[str, Any], *, profile: Path | None = None, timeout: float = 1800.0
) -> dict[str, Any]:
    """`python -m MODULE --child SPEC` as a measured child: the result JSON it writes to
    `spec["result"]` (with `vmhwm_mib`, its own peak RSS), plus its wall and CPU time, the
    CPU PostgreSQL and everything else used meanwhile, and sampled memory. `finished` is
    False when it ran past `timeout` (it is killed)."""
    result_path = run.workdir / f"child-{time.time_ns()}.json"
    spec = {**spec, "result": str(result_path)}
    argv = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    postgres = run.databases.postgres_pids if run.backend == "postgresql" else None
    busy0 = machine_busy_seconds()
    own0 = time.process_time()
    pg_cpu0 = {pid: _cpu_of([pid]) for pid in (postgres() if postgres else [])}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=python_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        spy = PySpy(proc.pid, profile) if profile is not None else contextlib.nullcontext()
        with RssSampler(proc.pid, postgres) as sampler, spy:
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    os.killpg(proc.pid, 9)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(ChildProcessError):
            os.wait4(proc.pid, 0)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    busy = machine_busy_seconds() - busy0
    own = time.process_time() - own0
    if postgres:
        for pid in postgres():
            sampler.pg_cpu_last[pid] = _cpu_of([pid])
    pg_cpu = sum(max(0.0, cpu - pg_cpu0.get(pid, 0.0)) for pid, cpu in sampler.pg_cpu_last.items())
    if timed_out:
        return {"finished": False, "timeout_s": timeout, "child_wall_s": wall}
    if proc.returncode != 0 or not result_path.exists():
        raise BenchmarkError(f"{module} child failed (exit {proc.returncode})")
    result = json.loads(result_path.read_text())
    result_path.unlink()
    child_cpu = usage.ru_utime + usage.ru_stime
    result.update(
        finished=True,
        child_wall_s=wall,
        # The child's own high-water mark (/proc VmHWM, read by the child at its end). Not
        # ru_maxrss: Linux carries the RSS of the parent at fork time (vfork/posix_spawn) over
        # the exec into the child's ru_maxrss, so wait4/RUSAGE_CHILDREN report the larger
        # of the parent's RSS and the child's peak.
        peak_rss_mib=result["vmhwm_mib"],
        wait4_ru_maxrss_mib=usage.ru_maxrss / 1024,
        sampled_child_rss_peak_mib=sampler.child_peak_kib / 1024,
        child_cpu_s=child_cpu,
        postgres_cpu_s=pg_cpu if postgres else None,
        benchmark_cpu_s=own,
        # Everything else: other users of the machine, and kernel threads (e.g. writeback of
        # the database files this run wrote).
        other_cpu_s=max(0.0, busy - child_cpu - own - (pg_cpu if postgres else 0.0)),
    )
    if postgres:
        result["postgres_backend_anon_rss_peak_mib"] = sampler.pg_backend_anon_peak_kib / 1024
        result["postgres_all_anon_rss_peak_mib"] = sampler.pg_total_anon_peak_kib / 1024
    if profile is not None and profile.exists():
        result["profile"] = {"file": str(profile), **summarize_collapsed(profile)}
    return result


def _cpu_of(pids: Sequence[int]) -> float:
    from benchmarks.harness import process_cpu_seconds

    return sum(process_cpu_seconds(pid) for pid in pids)


# The child side: `python -m benchmarks.scoring --child SPEC`.


class PhaseTimer:
    """Wall time of the engine's steps: wrapped module functions, SQL statements, commits."""

    STATEMENTS = (
        ("UPDATE accounts SET account_score", "UPDATE changed accounts"),
        ("UPDATE accounts SET score_dirty", "UPDATE unchanged accounts (clear dirty)"),
        ("UPDATE accounts SET change_us", "segment refresh: UPDATE change_us"),
        ("UPDATE workspaces SET clock_us", "clock tick"),
        ("BEGIN", "BEGIN"),
    )

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}
        self.pipelined = False

    def add(self, label: str, seconds: float) -> None:
        slot = self.totals.setdefault(label, [0.0, 0])
        slot[0] += seconds
        slot[1] += 1

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - t0)

        setattr(module, name, wrapper)

    def install(self, db: Any) -> None:
        from sqlalchemy import event

        from abmhub.scoring import engine, service

        self.wrap(engine, "next_batch", "select next batch")
        # PostgreSQL writes each batch on a second thread while the next is read
        # (scoring.service._score_in_segments): its writes and their COMMITs overlap the rest.
        self.pipelined = not db.is_sqlite
        self.wrap(engine, "compute_batch", "compute_batch (total)")
        self.wrap(engine, "write_batch", "write_batch (total)")
        self.wrap(engine, "inputs_for", "inputs_for (3 queries)")
        self.wrap(engine, "_source_points", "signals aggregate")
        self.wrap(engine, "_engagement_points", "activities aggregate")
        self.wrap(engine, "deal_flags", "deals query")
        self.wrap(service, "refresh_dynamic_segments", "segment refresh (total)")

        @event.listens_for(db.engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["_bench_t0"] = time.perf_counter()

        @event.listens_for(db.engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):
            elapsed = time.perf_counter() - conn.info.pop("_bench_t0", time.perf_counter())
            for prefix, label in self.STATEMENTS:
                if statement.startswith(prefix):
                    self.add(label, elapsed)
                    return
            if "scoring_lease" in statement:
                self.add("lease", elapsed)

        dialect = db.engine.dialect
        do_commit = dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            t0 = time.perf_counter()
            try:
                do_commit(dbapi_connection)
            finally:
                self.add("COMMIT", time.perf_counter() - t0)

        dialect.do_commit = timed_commit  # the instance attribute shadows the method

    def summary(self, total: float) -> dict[str, Any]:
        t = {k: v[0] for k, v in self.totals.items()}
        get = t.get
        model = get("compute_batch (total)", 0.0) - get("inputs_for (3 queries)", 0.0)
        top = ["select next batch", "compute_batch (total)", "segment refresh (total)", "clock tick", "BEGIN", "lease"]
        if not self.pipelined:  # on PostgreSQL these run on the writer thread, overlapping the rest
            top += ["write_batch (total)", "COMMIT"]
        rest = total - sum(get(k, 0.0) for k in top)
        out = {k: {"s": v[0], "calls": v[1]} for k, v in sorted(self.totals.items())}
        out["model loop + diff (compute_batch minus its queries)"] = {"s": model, "calls": None}
        label = "other (transactions, run report, ...)"
        if self.pipelined:
            label = "other on the main thread (transactions, run report, waits for the writer, ...)"
        out[label] = {"s": rest, "calls": None}
        return out


def apply_patches(db: Any, patches: dict[str, Any]) -> list[str]:
    """Monkeypatches of an experiment, applied in the child before the run. Returns descriptions."""
    from sqlalchemy import event

    from abmhub.scoring import engine

    done = []
    if "batch_size" in patches:
        engine.BATCH_SIZE = int(patches["batch_size"])
        done.append(f"engine.BATCH_SIZE = {engine.BATCH_SIZE}")
    if patches.get("sqlite_pragmas") and db.is_sqlite:
        pragmas = patches["sqlite_pragmas"]

        @event.listens_for(db.engine, "connect")
        def on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        done.append("SQLite connect pragmas: " + ", ".join(pragmas))
    if patches.get("pg_settings") and not db.is_sqlite:
        settings = patches["pg_settings"]

        @event.listens_for(db.engine, "connect")
        def on_connect_pg(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                for setting in settings:
                    cursor.execute(f"SET {setting}")
            dbapi_connection.commit()

        done.append("PostgreSQL session settings: " + ", ".join(settings))
    return done


def _source_fingerprint() -> dict[str, Any]:
    """Which engine the child ran: git HEAD at that moment and a hash of the scoring sources
    (others may commit while a long benchmark runs; the parent's machine info is from its start)."""
    import hashlib

    import abmhub.scoring

    digest = hashlib.sha256()
    for path in sorted(Path(abmhub.scoring.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    head = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    return {"git_head": head, "scoring_sources_sha256": digest.hexdigest()[:16]}


def _child_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from abmhub.db.engine import Database
    from abmhub.scoring.service import run_scoring

    db = Database(spec["url"])
    source = _source_fingerprint()
    patched = apply_patches(db, spec.get("patches") or {})
    timer = PhaseTimer() if spec.get("phases") else None
    if timer is not None:
        timer.install(db)
    rss_before = _proc_status(os.getpid())
    started = time.perf_counter()
    report = run_scoring(db, full=spec["full"])
    seconds = time.perf_counter() - started
    db.dispose()
    status = _proc_status(os.getpid())
    result = {
        "run_s": seconds,
        "full": [w.full for w in report.workspaces],
        "scored": report.scored,
        "changed": report.changed,
        "memberships": sum(w.memberships for w in report.workspaces),
        "rss_before_run_mib": rss_before.get("VmRSS", 0) / 1024,
        "vmhwm_mib": status.get("VmHWM", 0) / 1024,
        "self_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "patches": patched,
        "source": source,
    }
    if timer is not None:
        result["phases"] = timer.summary(seconds)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# --- query plans ---------------------------------------------------------------------------------


def explain_batch(url: str, workspace_id: int, *, only_dirty: bool = False) -> list[dict[str, Any]]:
    """The plans of the SELECTs one engine batch issues (the exact SQL, captured; then rolled back).

    SQLite: EXPLAIN QUERY PLAN. PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) — the query is executed.
    """
    from sqlalchemy import event

    from abmhub.db.engine import Database
    from abmhub.scoring import engine
    from abmhub.scoring.model import day_of
    from abmhub.scoring.settings import DEFAULT_SETTINGS
    from abmhub.timefmt import now_us

    db = Database(url)
    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "workspaces" not in statement:
            captured.append((statement, parameters))

    plans = []
    try:
        with db.engine.connect() as conn:
            trans = conn.begin()
            event.listen(db.engine, "before_cursor_execute", capture)
            try:
                rows = engine.next_batch(conn, workspace_id, after="", only_dirty=only_dirty)
                engine.score_batch(
                    conn, workspace_id, rows, DEFAULT_SETTINGS, day_of(now_us()), now_us(), contiguous=not only_dirty
                )
            finally:
                event.remove(db.engine, "before_cursor_execute", capture)
                trans.rollback()  # the batch's writes are undone before the plans are taken
            trans = conn.begin()
            for statement, parameters in captured:
                prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
                t0 = time.perf_counter()
                lines = conn.exec_driver_sql(prefix + statement, parameters).all()
                took = time.perf_counter() - t0
                if db.is_sqlite:
                    text = "\n".join(f"{'  ' * _depth(row, lines)}{row[-1]}" for row in lines)
                else:
                    text = "\n".join(_shorten(row[0], 240, keep_indent=True) for row in lines)
                plans.append(
                    {"sql": _shorten(statement), "plan": text, "explain_s": round(took, 4), "batch_rows": len(rows)}
                )
            trans.rollback()
    finally:
        db.dispose()
    return plans


def _depth(row: Any, rows: Sequence[Any]) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth += 1
        parent = parents[parent]
    return depth


def _shorten(statement: str, limit: int = 400, *, keep_indent: bool = False) -> str:
    indent = statement[: len(statement) - len(statement.lstrip())] if keep_indent else ""
    flat = indent + " ".join(statement.split())
    return flat if len(flat) <= limit else flat[:limit] + " …"


# --- experiments ---------------------------------------------------------------------------------

# name → (description, child patches, schema change (sqlite SQL, postgresql SQL) or None, backends).
# What earlier experiments measured and what shipped: docs/performance.md.
EXPERIMENTS: dict[str, tuple[str, dict[str, Any], tuple[str, str] | None, tuple[str, ...]]] = {
    "baseline": ("as shipped (same reset, for a like-for-like comparison)", {}, None, BACKENDS),
    "batch-2000": ("BATCH_SIZE 2,000 instead of 10,000 (monkeypatch)", {"batch_size": 2_000}, None, BACKENDS),
    "sqlite-cache": (
        "SQLite cache_size 256 MiB, temp_store MEMORY (connect-event monkeypatch)",
        {"sqlite_pragmas": ["cache_size=-262144", "temp_store=MEMORY"]},
        None,
        ("sqlite",),
    ),
    "sqlite-mmap": (
        "SQLite mmap_size 4 GiB (connect-event monkeypatch; mapped pages count in RSS)",
        {"sqlite_pragmas": ["mmap_size=4294967296"]},
        None,
        ("sqlite",),
    ),
    "pg-work-mem": (
        "work_mem 64MB (connect-event monkeypatch)",
        {"pg_settings": ["work_mem = '64MB'"]},
        None,
        ("postgresql",),
    ),
}

# name → (description, child patches, schema change or None)
INCREMENTAL_EXPERIMENTS: dict[str, tuple[str, dict[str, Any], tuple[str, str] | None]] = {
    "baseline": ("as shipped", {}, None),
}


def run_incremental_experiment(
    run: Run, url: str, workspace_id: int, name: str, round_no: int, args: argparse.Namespace
) -> dict[str, Any]:
    description, patches, schema = INCREMENTAL_EXPERIMENTS[name]
    touch_accounts(run.backend, url, workspace_id, args.changed, args.seed + 1000 + round_no)
    if schema is not None:
        with Loader(run.backend, url) as loader:
            loader.execute_script(schema[0] if run.backend == "sqlite" else schema[1])
            loader.analyze(("accounts",))
    log(f"incremental experiment {name}: {description}")
    try:
        result = run_child(run, url, full=False, phases=True, patches=patches, timeout=args.max_run_seconds)
    finally:
        if schema is not None:
            with Loader(run.backend, url) as loader:
                loader.execute("DROP INDEX IF EXISTS bench_ix_accounts_dirty")
    result["description"] = description
    if result.get("finished"):
        log(f"incremental experiment {name}: {result['run_s'] * 1000:.0f} ms")
    return result


def run_experiment(run: Run, url: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    description, patches, schema, backends = EXPERIMENTS[name]
    if run.backend not in backends:
        return {"skipped": f"not for {run.backend}"}
    reset_s = reset_scores(run.backend, url)
    index_s = None
    if schema is not None:
        with Loader(run.backend, url) as loader:
            t = time.perf_counter()
            loader.execute_script(schema[0] if run.backend == "sqlite" else schema[1])
            loader.analyze(("signals",) if run.backend == "postgresql" else None)
            index_s = time.perf_counter() - t
    log(f"experiment {name}: {description}")
    try:
        profile = args.results_dir / f"scoring-{run.backend}-{name}.pyspy.txt" if args.profile else None
        result = run_child(
            run, url, full=True, phases=True, patches=patches, profile=profile, timeout=args.max_run_seconds
        )
    finally:
        if schema is not None:
            with Loader(run.backend, url) as loader:
                loader.execute("DROP INDEX IF EXISTS bench_ix_signals_cover")
                loader.execute("DROP INDEX IF EXISTS bench_ix_accounts_dirty")
    if result.get("finished"):
        result["checksum"] = score_checksum(run.backend, url)
    result.update(description=description, reset_s=reset_s, index_build_s=index_s)
    if result.get("finished"):
        log(f"experiment {name}: {result['run_s']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB")
    return result


# --- the run -------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    m = args.signals if args.signals is not None else (QUICK_SIGNALS if args.quick else DEFAULT_SIGNALS)
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    incremental_experiments = [e.strip() for e in args.incremental_experiments.split(",") if e.strip()]
    unknown = [e for e in incremental_experiments if e not in INCREMENTAL_EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown incremental experiments: {', '.join(unknown)}")
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown experiments: {', '.join(unknown)} (known: {', '.join(sorted(EXPERIMENTS))})")
    if args.apply is not None and args.apply not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment for --apply: {args.apply}")
    if n < args.changed:
        raise SystemExit("--accounts must be at least --changed")
    shape = Shape(
        accounts=n, signals=m, seed=args.seed, skew=args.skew, segments=args.segments, signal_order=args.signal_order
    )
    stamp = utc_stamp()
    config = {
        "accounts": n,
        "signals": m,
        "changed_for_incremental": args.changed,
        "shape": asdict(shape),
        "source_mix": dict(SOURCE_MIX),
        "batch_size": _engine_batch_size(),
        "phases_timed": bool(args.phases),
        "profiled": bool(args.profile),
        "experiments": experiments,
        "applied_to_main_runs": None
        if args.apply is None
        else {"name": args.apply, "description": EXPERIMENTS[args.apply][0]},
        "quick": bool(args.quick),
        "targets": {"full_s": TARGET_FULL_S, "incremental_s": TARGET_INCREMENTAL_S, "peak_rss_mib": TARGET_RSS_MIB},
    }
    report = Report("scoring", args.backend, config)
    report.machine["note"] = (
        "The scoring child, the database (PostgreSQL server processes) and the benchmark share this "
        "machine's cores; peak RSS is the scoring process's own (PostgreSQL's memory is separate)."
    )
    details = report.details
    started = time.perf_counter()

    with Run(args.backend, keep_temp=args.keep_temp) as run:
        dbs = run.databases
        url = dbs.new("bench_scoring")
        log(f"generating {n:,} accounts, {m:,} signals ({args.backend})")
        data = generate(args.backend, url, shape)
        details["data_set"] = data
        details["database_size_after_load"] = dbs.sizes(url)
        log(f"generated in {data['timings']['total_s']:.1f} s; signals per account {data['signals_per_account']}")
        workspace_id = data["workspace_id"]
        main_patches: dict[str, Any] = {}
        if args.apply is not None:
            description, main_patches, schema, backends = EXPERIMENTS[args.apply]
            if args.backend not in backends:
                raise SystemExit(f"{args.apply} is not for {args.backend}")
            if schema is not None:
                with Loader(args.backend, url) as loader:
                    t = time.perf_counter()
                    loader.execute_script(schema[0] if args.backend == "sqlite" else schema[1])
                    loader.analyze(("signals",) if args.backend == "postgresql" else None)
                    details["applied_schema_s"] = time.perf_counter() - t
            log(f"applied to the main runs: {args.apply} ({description})")

        if args.explain:
            details["plans_full"] = explain_batch(url, workspace_id)
            _print_plans("full run, first batch", details["plans_full"])

        log("full run")
        profile = args.results_dir / f"scoring-{args.backend}-{stamp}-full.pyspy.txt" if args.profile else None
        full = run_child(
            run, url, full=True, phases=args.phases, patches=main_patches, profile=profile,
            timeout=args.max_run_seconds,
        )  # fmt: skip
        details["full"] = full
        if not full.get("finished"):
            raise BenchmarkError(f"the full run did not finish within {args.max_run_seconds:.0f} s")
        log(f"full: {full['run_s']:.1f} s, {full['changed']:,} changed, peak RSS {full['peak_rss_mib']:.0f} MiB")
        if full["scored"] != n:
            raise BenchmarkError(f"full run scored {full['scored']} accounts, expected {n}")
        details["database_size_after_full"] = dbs.sizes(url)
        full["checksum"] = score_checksum(args.backend, url)

        if args.full_rerun:
            log("full run again (same day, nothing changes)")
            details["full_rerun"] = run_child(
                run, url, full=True, phases=args.phases, patches=main_patches, timeout=args.max_run_seconds
            )

        t = time.perf_counter()
        if args.backend == "postgresql":
            with Loader(args.backend, url) as loader:
                loader.analyze(("accounts", "segment_members"))
        details["settle_s"] = time.perf_counter() - t
        t = time.perf_counter()
        touched = touch_accounts(args.backend, url, workspace_id, args.changed, args.seed)
        details["touch_s"] = time.perf_counter() - t
        details["dirty_before_incremental"] = dirty_count(args.backend, url)
        if args.explain:
            details["plans_incremental"] = explain_batch(url, workspace_id, only_dirty=True)
            _print_plans("incremental run, first batch", details["plans_incremental"])
        log(f"incremental run ({len(touched):,} accounts changed)")
        incremental = run_child(
            run, url, full=False, phases=args.phases, patches=main_patches, timeout=args.max_run_seconds
        )
        details["incremental"] = incremental
        if not incremental.get("finished"):
            raise BenchmarkError("the incremental run did not finish")
        if any(incremental["full"]):
            log("WARNING: the incremental run was a full one (a new UTC day began?)")
        if incremental["scored"] != len(touched):
            log(f"WARNING: incremental run scored {incremental['scored']}, expected {len(touched)}")
        log(f"incremental: {incremental['run_s'] * 1000:.0f} ms, peak RSS {incremental['peak_rss_mib']:.0f} MiB")

        details["incremental_experiments"] = {}
        for round_no, name in enumerate(incremental_experiments):
            details["incremental_experiments"][name] = run_incremental_experiment(
                run, url, workspace_id, name, round_no, args
            )
        details["experiments"] = {}
        # Every account is scored for today's data now: the result each experiment must reproduce.
        reference = score_checksum(args.backend, url) if experiments else None
        details["reference_checksum"] = reference
        for name in experiments:
            result = run_experiment(run, url, name, args)
            if result.get("checksum") is not None:
                result["same_result_as_first_full_run"] = result["checksum"] == reference
                if not result["same_result_as_first_full_run"]:
                    log(f"WARNING: experiment {name} computed {result['checksum']}, the shipped engine {reference}")
            details["experiments"][name] = result
        details["databases"] = dbs.info
        if not args.keep_temp:
            dbs.drop(url)

    details["total_runtime_s"] = time.perf_counter() - started
    _figures(report, data, full, incremental, args.backend)
    other = (full["other_cpu_s"] + incremental["other_cpu_s"]) / (full["child_wall_s"] + incremental["child_wall_s"])
    report.machine["other_load_cores_avg"] = other
    path = report.write(args.results_dir)
    print(report.markdown())
    print()
    print(_shape_line(data, n, m))
    for name in ("full", "incremental"):
        if details[name].get("phases"):
            print()
            print(_phase_table(name, details[name]))
    if details["incremental_experiments"]:
        print()
        print(_incremental_table(details["incremental_experiments"], incremental))
    if details["experiments"]:
        print()
        print(_experiment_table(details["experiments"], full))
    print()
    print(
        f"Other processes and kernel threads (incl. writeback of this run's own database writes) kept "
        f"{other:.2f} of {report.machine['nproc']} cores busy on average during the runs"
        + (" — the scoring process did not have the machine to itself." if other > 0.2 else ".")
    )
    print(f"results: {path}")
    log(f"done in {details['total_runtime_s']:.0f} s")
    return 0


def _engine_batch_size() -> int | None:
    with contextlib.suppress(Exception):
        from abmhub.scoring import engine

        return engine.BATCH_SIZE
    return None


def _figures(
    report: Report, data: dict[str, Any], full: dict[str, Any], incremental: dict[str, Any], backend: str
) -> None:
    pg = " (scoring process; PostgreSQL's memory separate)" if backend == "postgresql" else ""
    report.add("generation_s", "data set generation + load + ANALYZE (not a target)", data["timings"]["total_s"], "s")
    report.add(
        "full_s", f"full recompute, {full['scored']:,} accounts ({full['changed']:,} changed)", full["run_s"], "s",
        baseline=TARGET_FULL_S, baseline_label="target",
    )  # fmt: skip
    report.add("full_accounts_per_s", "full recompute throughput", full["scored"] / full["run_s"], "accounts/s")
    report.add(
        "incremental_s", f"incremental run, {incremental['scored']:,} dirty accounts", incremental["run_s"], "s",
        baseline=TARGET_INCREMENTAL_S, baseline_label="target",
    )  # fmt: skip
    report.add(
        "full_peak_rss_mib", f"peak RSS, full run{pg}", full["peak_rss_mib"], "MiB",
        baseline=TARGET_RSS_MIB, baseline_label="target",
    )  # fmt: skip
    report.add(
        "incremental_peak_rss_mib", f"peak RSS, incremental run{pg}", incremental["peak_rss_mib"], "MiB",
        baseline=TARGET_RSS_MIB, baseline_label="target",
    )  # fmt: skip
    if backend == "postgresql":
        report.add(
            "postgres_backend_anon_rss_mib", "PostgreSQL: largest server process private RSS, full run (sampled)",
            full.get("postgres_backend_anon_rss_peak_mib", math.nan), "MiB",
        )  # fmt: skip


def _shape_line(data: dict[str, Any], n: int, m: int) -> str:
    spa = data["signals_per_account"]
    t = data["timings"]
    return (
        f"Data set: {n:,} accounts, {m:,} signals ({data['signals_for_domains_without_account']:,} for domains "
        f"without an account), {data['rows']['activities']:,} activities, {data['rows']['deals']:,} deals. "
        f"Signals per account: p50 {spa['p50']}, p90 {spa['p90']}, p99 {spa['p99']}, max {spa['max']:,}; "
        f"{spa['accounts_without_signals']:,} accounts without signals. Generation: accounts "
        f"{t['accounts_s']:.1f} s, signals {t['signals_s']:.1f} s, ANALYZE {t['analyze_s']:.1f} s, total "
        f"{t['total_s']:.1f} s."
    )


def _phase_table(name: str, result: dict[str, Any]) -> str:
    total = result["run_s"]
    lines = [
        f"{name} run — where the time goes ({total:.2f} s)",
        "",
        "| step | s | share | calls |",
        "|---|---:|---:|---:|",
    ]
    for step, value in sorted(result["phases"].items(), key=lambda kv: -kv[1]["s"]):
        calls = "–" if value["calls"] is None else f"{value['calls']:,}"
        lines.append(f"| {step} | {value['s']:.2f} | {value['s'] / total:.0%} | {calls} |")
    return "\n".join(lines)


def _experiment_table(experiments: dict[str, Any], full: dict[str, Any]) -> str:
    lines = [
        "Experiments (first-run full recompute after a score reset; monkeypatches in the scoring child)",
        "",
        (
            "| experiment | full s | vs first full run | signals aggregate s | model loop s | UPDATE s | COMMIT s "
            "| peak RSS MiB | same scores |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in experiments.items():
        if "skipped" in result:
            continue
        if not result.get("finished"):
            lines.append(f"| {name} | > {result['timeout_s']:.0f} | – | – | – | – | – | – | – |")
            continue
        phases = result.get("phases", {})
        signals = phases.get("signals aggregate", {}).get("s", math.nan)
        model = phases.get("model loop + diff (compute_batch minus its queries)", {}).get("s", math.nan)
        upd = phases.get("UPDATE changed accounts", {}).get("s", 0.0) + phases.get(
            "UPDATE unchanged accounts (clear dirty)", {}
        ).get("s", 0.0)
        commit = phases.get("COMMIT", {}).get("s", math.nan)
        same = {True: "yes", False: "NO", None: "?"}[result.get("same_result_as_first_full_run")]
        lines.append(
            f"| {name} | {result['run_s']:.1f} | {result['run_s'] / full['run_s']:.2f} | {signals:.1f} | "
            f"{model:.1f} | {upd:.1f} | {commit:.1f} | {fmt_number(result['peak_rss_mib'])} | {same} |"
        )
    return "\n".join(lines)


def _incremental_table(experiments: dict[str, Any], incremental: dict[str, Any]) -> str:
    lines = [
        f"Incremental experiments ({incremental['scored']:,} other accounts touched before each)",
        "",
        "| experiment | incremental ms | select dirty batches ms | compute_batch ms | segment refresh ms | COMMIT ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in experiments.items():
        if not result.get("finished"):
            lines.append(f"| {name} | not finished | – | – | – | – |")
            continue
        p = result.get("phases", {})

        def ms(key: str, p: dict[str, Any] = p) -> str:
            return f"{p.get(key, {}).get('s', 0.0) * 1000:.0f}"

        lines.append(
            f"| {name} | {result['run_s'] * 1000:.0f} | {ms('select next batch')} | {ms('compute_batch (total)')} | "
            f"{ms('segment refresh (total)')} | {ms('COMMIT')} |"
        )
    return "\n".join(lines)


def _print_plans(title: str, plans: list[dict[str, Any]]) -> None:
    print(f"Query plans — {title}:", file=sys.stderr)
    for plan in plans:
        print(f"  {plan['sql'][:160]}", file=sys.stderr)
        for line in plan["plan"].splitlines():
            print(f"      {line}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2]))
    sys.exit("usage: python -m benchmarks scoring ...  (this entry point is the scoring child)")
