"""Dashboard benchmark: how fast the dashboard's pages are served at scale.

    python -m benchmarks dashboard [--backend sqlite|postgresql] [--accounts N] [--signals M] [--quick]
                                   [--requests R] [--explain]

Target (2-core machine): with 1,000,000 accounts, every page's HTML is served in ≤ 300 ms at
p95, the accounts list in ≤ 100 ms; the funnel's counts must not scan every account per request.

1. Data set: `benchmarks.scoring.generate` (the scoring suite's bulk generator: N accounts, M
   skewed signals over 180 days, activities for ~5 % and deals for ~2 % of the accounts, two
   dynamic segments), written straight into a fresh database, then ANALYZE. Default 1,000,000
   accounts and 2,000,000 signals (the scoring suite's 10,000,000 take minutes more to make;
   only the overview's "surging" list reads signals, the last 28 days of them); `--quick`
   20,000 and 40,000.
2. History: a full scoring run in-process (`run_scoring(db, full=True)`) with its clock
   `--history-days` (8) days back, then a full run now: every account has a score, a stage, a
   7-day `score_change` (against the score of 8 days ago), stage changes at two moments,
   `daily_scores` rows of two days and the funnel of two days (`daily_stage_counts`). With
   `--history-days 0` only the run of today (every `score_change` is then 0). Then ANALYZE
   again (PostgreSQL: VACUUM ANALYZE), as autovacuum would have by the time data looks so.
3. `abmhub serve --score-interval 0` on it, an API key (`abmhub keys create`), and a dashboard
   session: `POST /ui/sign-in` (form field `api_key`, `Sec-Fetch-Site: same-origin`) → the
   `abmhub_session` cookie.
4. Timing: two keep-alive connections (`benchmarks/wire.py`): the dashboard's with the cookie,
   the API's with the key. `--warmup` rounds, then `--requests` rounds; a round requests every
   page once, in the same order, one request at a time (interleaved: a drift of the machine
   hits every page alike). Latency is measured at the client from sending the request to the
   answer's last byte: the server's time plus one loopback round trip (~0.1 ms, the accounts
   suite's "bare ASGI round trip"). The account page and the history API rotate over five
   accounts (the one with most signals, the best score, one with a deal, one with sales
   activities, one in the middle). The deep page is the one reached by following "Next ›"
   `--deep-hops` (5) times from the default list.
5. Baselines, in the same rounds: `GET /healthz` (abmhub's smallest request) and `GET
   /api/v1/accounts?limit=50` (the API's page of 50 accounts): each page's p50 is reported as
   a ratio to both.
6. Breakdown: every service call the pages make, in-process on the same database (median of
   `--breakdown-repeats`), and the query plans of the statements of each call slower than
   `--explain-over` ms (all of them with `--explain`): SQLite `EXPLAIN QUERY PLAN`, PostgreSQL
   `EXPLAIN (ANALYZE, BUFFERS)`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import html
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    abmhub_cli,
    fmt_number,
    latency_summary,
    log,
    percentile,
)
from benchmarks.scoring import US_PER_DAY, WORKSPACE, Loader, Shape, account_domain, generate
from benchmarks.wire import WireClient, WireResponse

DEFAULT_ACCOUNTS = 1_000_000
DEFAULT_SIGNALS = 2_000_000
QUICK_ACCOUNTS = 20_000
QUICK_SIGNALS = 40_000
DEFAULT_REQUESTS = 30
QUICK_REQUESTS = 10
TARGET_PAGE_MS = 300.0
TARGET_LIST_MS = 100.0
# A search matching about 1% of the default data set (acct-12, acct-12x, ... acct-12xxxx): more
# than the search looks up by id (accounts/search.py), so its page walks the order instead.
COMMON_SEARCH = "acct-12"
SESSION_COOKIE = "abmhub_session"
HEALTHZ = "/healthz"
API_LIST = "/api/v1/accounts?limit=50"
_NEXT_LINK = re.compile(r'rel="next" href="([^"]+)"')
_TOTAL = re.compile(r'class="result-count"[^>]*><strong>([\d,]+)(\+?)</strong>')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--accounts", type=int, default=None, metavar="N", help=f"accounts (default {DEFAULT_ACCOUNTS:,})"
    )
    parser.add_argument("--signals", type=int, default=None, metavar="M", help=f"signals (default {DEFAULT_SIGNALS:,})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_ACCOUNTS:,} accounts, {QUICK_SIGNALS:,} signals, {QUICK_REQUESTS} requests a page",
    )
    parser.add_argument(
        "--requests", type=int, default=None, metavar="R", help=f"timed requests per page (default {DEFAULT_REQUESTS})"
    )
    parser.add_argument("--warmup", type=int, default=3, metavar="W", help="untimed rounds first (default 3)")
    parser.add_argument(
        "--csv-requests",
        type=int,
        default=None,
        metavar="R",
        help="timed requests of the CSV export (default: as --requests, at most 10)",
    )
    parser.add_argument("--deep-hops", type=int, default=5, help="'Next' links followed to the deep page (default 5)")
    parser.add_argument(
        "--history-days",
        type=int,
        default=8,
        help="first full scoring run this many days back, then one now (default 8; 0: only the run of today)",
    )
    parser.add_argument("--search", default=None, help="the search text of the q= list (default: a name fragment)")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the data set (default 20261125)")
    parser.add_argument(
        "--breakdown-repeats", type=int, default=5, help="in-process calls per service for the breakdown (default 5)"
    )
    parser.add_argument(
        "--explain-over",
        type=float,
        default=10.0,
        metavar="MS",
        help="query plans of the service calls slower than this in-process (default 10 ms)",
    )
    parser.add_argument("--explain", action="store_true", help="query plans of every service call")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (database, server log)")


# --- what is requested ---------------------------------------------------------------------------


@dataclass
class Probe:
    """One page (or API call) timed in every round; `paths` rotate from round to round."""

    key: str
    label: str
    client: str  # "ui" or "api"
    paths: list[str]
    target_ms: float | None = None
    kind: str = "html"  # html, csv, json
    rounds: int | None = None  # fewer timed requests than the others (the export)
    seconds: list[float] = field(default_factory=list)
    first_byte_seconds: list[float] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)

    def path(self, round_no: int) -> str:
        return self.paths[round_no % len(self.paths)]


def check(probe: Probe, path: str, response: WireResponse) -> None:
    """Fail on anything but the page asked for; note what it showed (list sizes, CSV rows)."""
    if response.status_code != 200:
        raise BenchmarkError(f"GET {path} → HTTP {response.status_code}: {response.text[:300]}")
    kind = response.headers.get("content-type", "")
    expected = {"html": "text/html", "csv": "text/csv", "json": "application/json"}[probe.kind]
    if not kind.startswith(expected):
        raise BenchmarkError(f"GET {path} answered {kind!r}, not {expected}")
    if probe.kind == "html" and (total := _TOTAL.search(response.text)) is not None:
        probe.seen["listed_total"] = int(total.group(1).replace(",", ""))
        probe.seen["listed_total_capped"] = total.group(2) == "+"  # "10,000+": counting stopped there
    if probe.kind == "csv":
        probe.seen["csv_rows"] = sum(1 for _ in csv.reader(io.StringIO(response.text))) - 1


def sign_in(base_url: str, key: str) -> str:
    """The session cookie the dashboard sets on signing in with `key`."""
    response = httpx.post(
        f"{base_url}/ui/sign-in",
        data={"api_key": key, "next": "/ui"},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
        timeout=60.0,
    )
    cookie = response.cookies.get(SESSION_COOKIE)
    if response.status_code != 303 or not cookie:
        raise BenchmarkError(f"sign-in → HTTP {response.status_code}, no session cookie: {response.text[:300]}")
    return cookie


def follow_next(client: WireClient, start: str, hops: int) -> tuple[str, int]:
    """The page `hops` "Next ›" links after `start` (or the last one there is), and the hops made."""
    path, made = start, 0
    for _ in range(hops):
        response = client.get(path)
        if response.status_code != 200:
            raise BenchmarkError(f"GET {path} → HTTP {response.status_code}")
        found = _NEXT_LINK.search(response.text)
        if found is None:
            break
        path, made = html.unescape(found.group(1)), made + 1
    return path, made


@dataclass(frozen=True, slots=True)
class Sample:
    """Accounts of the data set the account page and the history API are timed on."""

    label: str
    id: int
    rtp_aid: str
    uuid: str
    name: str
    account_score: int
    journey_stage: str


def sample_accounts(backend: str, url: str, workspace_id: int, n: int) -> list[Sample]:
    """Five accounts: most signals (the generator's rank 0), best score, with a deal, with
    activities, one in the middle by id."""
    loader = Loader(backend, url)
    columns = "id, rtp_aid, uuid, name, account_score, journey_stage"
    queries = (
        ("most signals", f"SELECT {columns} FROM accounts WHERE workspace_id = ? AND domain = ?", (account_domain(1),)),
        (
            "best score",
            f"SELECT {columns} FROM accounts WHERE workspace_id = ? ORDER BY account_score DESC, rtp_aid DESC LIMIT 1",
            (),
        ),
        (
            "with a deal",
            f"SELECT {columns} FROM accounts WHERE workspace_id = ? AND id = "
            "(SELECT min(account_id) FROM deal_accounts WHERE account_id IS NOT NULL)",
            (),
        ),
        (
            "with activities",
            f"SELECT {columns} FROM accounts WHERE workspace_id = ? AND id = "
            "(SELECT min(account_id) FROM activities WHERE account_id IS NOT NULL)",
            (),
        ),
        ("middle", f"SELECT {columns} FROM accounts WHERE workspace_id = ? AND id = ?", (max(1, n // 2),)),
    )
    found: list[Sample] = []
    try:
        for label, sql, params in queries:
            row = loader.execute(sql, (workspace_id, *params)).fetchone()
            if row is not None and all(s.id != row[0] for s in found):
                found.append(Sample(label, *row))
    finally:
        loader.close()
    if not found:
        raise BenchmarkError("no account to time the account page on")
    return found


def build_probes(
    samples: list[Sample], search: str, deep: str, csv_rounds: int, rounds: int
) -> tuple[list[Probe], Probe, Probe]:
    """The pages, in the order a round requests them, and the two baselines."""
    list_target = TARGET_LIST_MS
    pages = [
        Probe("overview", "`/ui` (overview)", "ui", ["/ui"], TARGET_PAGE_MS),
        Probe("accounts", "`/ui/accounts` (by score)", "ui", ["/ui/accounts"], list_target),
        Probe("accounts_by_name", "`/ui/accounts?sort=name`", "ui", ["/ui/accounts?sort=name"], list_target),
        Probe("accounts_by_change", "`/ui/accounts?sort=-change`", "ui", ["/ui/accounts?sort=-change"], list_target),
        Probe(
            "accounts_search",
            f"`/ui/accounts?q={search}`",
            "ui",
            [f"/ui/accounts?q={quote(search)}"],
            list_target,
        ),
        Probe(
            "accounts_search_common",
            f"`/ui/accounts?q={COMMON_SEARCH}` (~1% of 1M accounts)",
            "ui",
            [f"/ui/accounts?q={quote(COMMON_SEARCH)}"],
            list_target,
        ),
        Probe(
            "accounts_stage",
            "`/ui/accounts?stage=Consideration`",
            "ui",
            ["/ui/accounts?stage=Consideration"],
            list_target,
        ),
        Probe(
            "accounts_stage_low",
            "`/ui/accounts?stage=Unaware` (the lowest scores)",
            "ui",
            ["/ui/accounts?stage=Unaware"],
            list_target,
        ),
        Probe("accounts_deep", "`/ui/accounts`, page after 5 × Next", "ui", [deep], list_target),
        Probe(
            "account",
            f"`/ui/accounts/<rtp_aid>` ({len(samples)} accounts in turn)",
            "ui",
            [f"/ui/accounts/{s.rtp_aid}" for s in samples],
            TARGET_PAGE_MS,
        ),
        Probe("segments", "`/ui/segments`", "ui", ["/ui/segments"], TARGET_PAGE_MS),
        Probe(
            "export_csv",
            "`/ui/accounts.csv?stage=Customer` (to the last byte)",
            "ui",
            ["/ui/accounts.csv?stage=Customer"],
            None,
            kind="csv",
            rounds=csv_rounds,
        ),
        Probe(
            "api_history",
            "`/api/v1/accounts/<rtp_aid>/history`",
            "api",
            [f"/api/v1/accounts/{s.rtp_aid}/history" for s in samples],
            None,
            kind="json",
        ),
        Probe(
            "api_stage_changes",
            "`/api/v1/accounts/stage-changes?limit=100`",
            "api",
            ["/api/v1/accounts/stage-changes?limit=100"],
            None,
            kind="json",
        ),
    ]
    healthz = Probe("healthz", "`GET /healthz` (baseline)", "api", [HEALTHZ], kind="json")
    api_list = Probe("api_accounts_50", f"`GET {API_LIST}` (baseline)", "api", [API_LIST], kind="json")
    return pages, healthz, api_list


def timed_rounds(
    clients: dict[str, WireClient], probes: list[Probe], warmup: int, rounds: int, on_round: Callable[[int], None]
) -> None:
    for round_no in range(-warmup, rounds):
        for probe in probes:
            if round_no >= 0 and probe.rounds is not None and round_no >= probe.rounds:
                continue
            path = probe.path(round_no)
            client = clients[probe.client]
            started = time.perf_counter()
            response = client.get(path)
            took = time.perf_counter() - started
            check(probe, path, response)
            if round_no >= 0:
                probe.seconds.append(took)
                probe.first_byte_seconds.append(response.first_byte_s - started)
                probe.bytes.append(len(response.content))
        on_round(round_no)


# --- in-process breakdown ------------------------------------------------------------------------


@dataclass
class Call:
    label: str
    pages: str
    run: Callable[[], Any]
    db: Any = None  # the Database it runs on, when not the breakdown's own (plans are taken there)
    seconds: list[float] = field(default_factory=list)
    statements: list[tuple[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)


def service_calls(
    db: Any, workspace_id: int, samples: list[Sample], search: str, hops: int, no_jit: Any = None
) -> list[Call]:
    """What the timed pages call, with the same arguments (ui/router.py)."""
    from abmhub.accounts import service as accounts_service
    from abmhub.accounts.service import AccountFilter, AccountOrder
    from abmhub.activities import service as activities_service
    from abmhub.activities.timeline import TimelineQuery, timeline
    from abmhub.deals import service as deals_service
    from abmhub.history import service as history_service
    from abmhub.insights import service as insights
    from abmhub.paging import PageRequest
    from abmhub.scoring.explain import explain_account
    from abmhub.scoring.model import day_of
    from abmhub.segments import service as segments_service
    from abmhub.timefmt import now_us
    from abmhub.ui import router as ui_router
    from abmhub.ui.account_list import PAGE_SIZE
    from abmhub.ui.router import CHART_DAYS, OVERVIEW_LIST, TIMELINE_PAGE, TREND_DAYS

    ws = {"workspace_id": workspace_id}
    today = day_of(now_us())
    since = now_us() - 7 * US_PER_DAY
    first_page = accounts_service.browse_accounts(db, **ws, limit=PAGE_SIZE)
    page_ids = [row.id for row in first_page.rows]
    deep_after = first_page.last_key
    for _ in range(hops - 1):
        if deep_after is None:
            break
        deep_after = accounts_service.browse_accounts(db, **ws, after=deep_after, limit=PAGE_SIZE).last_key
    by_search = AccountFilter(search=search)
    by_common_search = AccountFilter(search=COMMON_SEARCH)
    by_stage = AccountFilter(journey_stage="Consideration")
    by_low_stage = AccountFilter(journey_stage="Unaware")
    customers = AccountFilter(journey_stage="Customer")
    sample = samples[0]

    def moved(direction: str) -> Callable[[], Any]:
        filters = history_service.StageChangeFilter(since_us=since, direction=direction)
        return lambda: history_service.list_stage_changes(
            db, **ws, filters=filters, page=PageRequest(limit=OVERVIEW_LIST)
        )

    def browse(**kwargs: Any) -> Callable[[], Any]:
        return lambda: accounts_service.browse_accounts(db, **ws, limit=PAGE_SIZE, **kwargs)

    def count(filters: AccountFilter) -> Callable[[], int]:
        # The size a list page shows, as the page gets it (the funnel, or a count up to a cap).
        return lambda: ui_router._list_total(db, workspace_id, filters)

    return [
        Call("history.stage_counts", "overview", lambda: history_service.stage_counts(db, **ws)),
        Call("deals.open_deal_count", "overview", lambda: deals_service.open_deal_count(db, **ws)),
        Call(
            "history.funnel_on (7 and 30 days ago)",
            "overview",
            lambda: [history_service.funnel_on(db, **ws, day=today - d) for d in (7, 30)],
        ),
        Call("history.list_stage_changes (progressed, 7 days)", "overview", moved("progressed")),
        Call("history.list_stage_changes (regressed, 7 days)", "overview", moved("regressed")),
        Call(
            "insights.surging_accounts_now",
            "overview",
            lambda: insights.surging_accounts_now(db, **ws, limit=OVERVIEW_LIST),
        ),
        Call(
            "insights.untouched_high_scores",
            "overview",
            lambda: insights.untouched_high_scores(db, **ws, limit=OVERVIEW_LIST),
        ),
        Call("insights.quiet_open_deals", "overview", lambda: insights.quiet_open_deals(db, **ws, limit=OVERVIEW_LIST)),
        Call("accounts.browse_accounts (by score)", "accounts", browse()),
        Call("list total (no filter)", "accounts, by name, by change, deep", count(AccountFilter())),
        Call(
            "history.score_trends (50 rows, 30 days)",
            "every list",
            lambda: history_service.score_trends(db, **ws, account_ids=page_ids, days=TREND_DAYS),
        ),
        Call("segments.list_all", "every list, segments", lambda: segments_service.list_all(db, **ws)),
        Call("accounts.browse_accounts (by name)", "by name", browse(order=AccountOrder("name", False))),
        Call("accounts.browse_accounts (by -change)", "by change", browse(order=AccountOrder("change", True))),
        Call("accounts.browse_accounts (q=…)", "search", browse(filters=by_search)),
        Call("list total (q=…)", "search", count(by_search)),
        Call("accounts.browse_accounts (common q=…)", "common search", browse(filters=by_common_search)),
        Call("list total (common q=…)", "common search", count(by_common_search)),
        Call("accounts.browse_accounts (stage=Consideration)", "stage", browse(filters=by_stage)),
        Call("list total (stage=Consideration)", "stage", count(by_stage)),
        Call("accounts.browse_accounts (stage=Unaware)", "stage Unaware", browse(filters=by_low_stage)),
        Call("list total (stage=Unaware)", "stage Unaware", count(by_low_stage)),
        Call("accounts.browse_accounts (deep page)", "deep", browse(after=deep_after)),
        Call(
            "accounts.each_account (stage=Customer, all)",
            "CSV export",
            lambda: sum(1 for _ in accounts_service.each_account(db, **ws, filters=customers)),
        ),
        Call(
            f"accounts.get_account ({sample.label})",
            "account",
            lambda: accounts_service.get_account(db, **ws, rtp_aid=sample.rtp_aid),
        ),
        Call(
            f"scoring.explain_account ({sample.label})",
            "account",
            lambda: explain_account(db, **ws, rtp_aid=sample.rtp_aid),
        ),
        Call(
            f"activities timeline ({sample.label})",
            "account",
            lambda: timeline(db, **ws, query=TimelineQuery(account_uuid=sample.uuid, limit=TIMELINE_PAGE)),
        ),
        Call(
            f"deals.deals_of_account ({sample.label})",
            "account",
            lambda: deals_service.deals_of_account(db, **ws, account_id=sample.id),
        ),
        Call(
            f"segments.segments_of_account ({sample.label})",
            "account",
            lambda: segments_service.segments_of_account(db, **ws, account_id=sample.id),
        ),
        Call(
            f"activities.engaged_contacts ({sample.label})",
            "account",
            lambda: activities_service.engaged_contacts(db, **ws, account_id=sample.id),
        ),
        Call(
            f"history.account_history (90 days, {sample.label})",
            "account, API history",
            lambda: history_service.account_history(db, **ws, rtp_aid=sample.rtp_aid, days=CHART_DAYS),
        ),
        Call(
            "history.list_stage_changes (limit 100)",
            "API stage-changes",
            lambda: history_service.list_stage_changes(
                db, **ws, filters=history_service.StageChangeFilter(), page=PageRequest(limit=100)
            ),
        ),
    ] + (
        [  # Not in abmhub: PostgreSQL's JIT compilation off for the overview's costliest query.
            Call(
                "alternative: insights.quiet_open_deals with jit = off",
                "(not built)",
                lambda: insights.quiet_open_deals(no_jit, **ws, limit=OVERVIEW_LIST),
                db=no_jit,
            ),
        ]
        if no_jit is not None
        else []
    )


def breakdown(
    url: str, workspace_id: int, samples: list[Sample], search: str, hops: int, args: argparse.Namespace
) -> list[Call]:
    """Each service call timed in-process (median of `repeats`); plans of the slow ones' statements."""
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    from abmhub.db.engine import Database

    db = Database(url)
    # PostgreSQL: the same calls on connections with JIT compilation off (its default is on).
    no_jit = None
    if not db.is_sqlite:
        no_jit = Database(
            make_url(url).update_query_dict({"options": "-c jit=off"}).render_as_string(hide_password=False)
        )
    try:
        calls = service_calls(db, workspace_id, samples, search, hops, no_jit)
        for call in calls:
            captured: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
                if statement.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
                    captured.append((statement, parameters))  # noqa: B023 (listened to within this iteration)

            engines = [d.engine for d in (db, no_jit) if d is not None]
            for engine in engines:
                event.listen(engine, "before_cursor_execute", capture)
            try:
                call.run()  # warm, and the statements it runs
            finally:
                for engine in engines:
                    event.remove(engine, "before_cursor_execute", capture)
            call.statements = captured
            for _ in range(args.breakdown_repeats):
                started = time.perf_counter()
                call.run()
                call.seconds.append(time.perf_counter() - started)
            median = percentile(call.seconds, 50) * 1000
            if args.explain or median >= args.explain_over:
                call.plans = explain(call.db or db, call.statements)
    finally:
        db.dispose()
        if no_jit is not None:
            no_jit.dispose()
    return calls


def explain(db: Any, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Each statement timed alone, with its plan (PostgreSQL: EXPLAIN ANALYZE, which runs it)."""
    from benchmarks.scoring import _depth, _shorten

    plans = []
    with db.engine.connect() as conn:
        for statement, parameters in statements:
            trans = conn.begin()
            try:
                started = time.perf_counter()
                rows = conn.exec_driver_sql(statement, parameters).all()
                took = time.perf_counter() - started
                prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
                lines = conn.exec_driver_sql(prefix + statement, parameters).all()
            finally:
                trans.rollback()
            if db.is_sqlite:
                text = "\n".join(f"{'  ' * _depth(row, lines)}{row[-1]}" for row in lines)
            else:
                text = "\n".join(_shorten(row[0], 240, keep_indent=True) for row in lines)
            plans.append({"sql": _shorten(statement, 600), "ms": took * 1000, "rows": len(rows), "plan": text})
    return plans


# --- the run -------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    n = args.accounts if args.accounts is not None else (QUICK_ACCOUNTS if args.quick else DEFAULT_ACCOUNTS)
    m = args.signals if args.signals is not None else (QUICK_SIGNALS if args.quick else DEFAULT_SIGNALS)
    rounds = args.requests if args.requests is not None else (QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS)
    csv_rounds = args.csv_requests if args.csv_requests is not None else min(rounds, 10)
    if n < 10 or rounds < 1:
        raise SystemExit("--accounts must be at least 10 and --requests at least 1")
    search = args.search if args.search is not None else str(n * 37 // 100)[:5]
    shape = Shape(accounts=n, signals=m, seed=args.seed)
    config = {
        "accounts": n,
        "signals": m,
        "shape": asdict(shape),
        "requests_per_page": rounds,
        "csv_requests": csv_rounds,
        "warmup_rounds": args.warmup,
        "deep_hops": args.deep_hops,
        "history_days": args.history_days,
        "search": search,
        "quick": bool(args.quick),
        "targets_ms_p95": {"page": TARGET_PAGE_MS, "accounts_list": TARGET_LIST_MS},
        "latency": "client-side, request sent → last byte received, one keep-alive connection, sequential",
    }
    report = Report("dashboard", args.backend, config)
    details = report.details
    started = time.perf_counter()

    with Run(args.backend, keep_temp=args.keep_temp) as run:
        dbs = run.databases
        url = dbs.new("bench_dashboard")
        log(f"generating {n:,} accounts, {m:,} signals ({args.backend})")
        data = generate(args.backend, url, shape)
        details["data_set"] = data
        workspace_id = data["workspace_id"]
        log(f"generated in {data['timings']['total_s']:.1f} s")
        details["scoring"] = score_history(args.backend, url, workspace_id, args.history_days)
        details["database_size"] = dbs.sizes(url)
        samples = sample_accounts(args.backend, url, workspace_id, n)
        details["sampled_accounts"] = [asdict(s) for s in samples]

        server = run.server(url, name="server-dashboard", extra_args=["--score-interval", "0"])
        key = abmhub_cli(
            ["keys", "create", "--workspace", WORKSPACE, "--user", "bench@example.com", "--quiet"], url
        ).strip()
        cookie = sign_in(server.base_url, key)
        ui = WireClient(server.base_url, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, timeout=600.0)
        api = WireClient(server.base_url, headers={"X-Api-Key": key}, timeout=600.0)
        with contextlib.closing(ui), contextlib.closing(api):
            deep, hops = follow_next(ui, "/ui/accounts", args.deep_hops)
            details["deep_page"] = {"path": deep, "hops": hops}
            pages, healthz, api_list = build_probes(samples, search, deep, csv_rounds, rounds)
            if hops != args.deep_hops:
                next(
                    p for p in pages if p.key == "accounts_deep"
                ).label = f"`/ui/accounts`, page after {hops} × Next (the last)"
            probes = [healthz, api_list, *pages]
            log(f"timing {len(pages)} pages and 2 baselines: {args.warmup} warm-up + {rounds} rounds")
            meter = run.cpu_meter(server)

            postmaster = (dbs.postgres_pids() or [None])[0]
            reaped = 0.0

            def start_meter() -> None:
                nonlocal reaped
                meter.start()
                reaped = reaped_cpu_seconds(postmaster)

            def progress(round_no: int) -> None:
                if round_no == -1:
                    start_meter()
                elif round_no >= 0 and (round_no + 1) % 10 == 0:
                    log(f"  round {round_no + 1} of {rounds}")

            if args.warmup == 0:
                start_meter()
            timed_rounds({"ui": ui, "api": api}, probes, args.warmup, rounds, progress)
            cpu = meter.stop()
            if postmaster is not None:
                # PostgreSQL's parallel workers exit after each query, out of CpuMeter's sight; the
                # postmaster reaps them, so their CPU is in its children's time. Not "other" load.
                workers = max(0.0, reaped_cpu_seconds(postmaster) - reaped)
                cpu["postgres_parallel_workers_cpu_s"] = workers
                cpu["postgres_cpu_s"] += workers
                cpu["other_cpu_s"] = max(0.0, cpu["other_cpu_s"] - workers)
                cpu["cores_busy"] += workers / cpu["wall_s"] if cpu["wall_s"] else 0.0
        details["cpu"] = cpu
        details["server_rss_mib"] = _rss(server.pid)
        log("in-process breakdown of the service calls")
        calls = breakdown(url, workspace_id, samples, search, hops, args)
        server.stop()
        details["databases"] = dbs.info
        if not args.keep_temp:
            dbs.drop(url)

    details["total_runtime_s"] = time.perf_counter() - started
    report.machine["other_load_cores_avg"] = cpu["other_cpu_s"] / cpu["wall_s"] if cpu["wall_s"] else None
    summaries = _figures(report, pages, healthz, api_list, data)
    details["pages"] = summaries
    details["breakdown"] = [
        {
            "call": c.label,
            "pages": c.pages,
            "median_ms": percentile(c.seconds, 50) * 1000,
            "max_ms": max(c.seconds) * 1000 if c.seconds else None,
            "statements": len(c.statements),
            "plans": c.plans,
        }
        for c in calls
    ]
    path = report.write(args.results_dir)
    print(report.markdown())
    print()
    print(_page_table(summaries, healthz, api_list, args.backend, n))
    print()
    print(_data_line(data, n, m, details["scoring"], samples, search, hops))
    print()
    print(_breakdown_table(details["breakdown"]))
    plans = [b for b in details["breakdown"] if b["plans"]]
    if plans:
        print()
        print(_plans_text(plans, args.backend))
    print()
    other = report.machine["other_load_cores_avg"]
    print(
        f"Other processes kept {other:.2f} of {report.machine['nproc']} cores busy on average during the timed "
        f"rounds (server {cpu.get('server_cpu_s', 0):.1f} CPU-s, client {cpu['client_cpu_s']:.1f} CPU-s"
        + (
            f", PostgreSQL {cpu['postgres_cpu_s']:.1f} CPU-s incl. {cpu['postgres_parallel_workers_cpu_s']:.1f} in "
            "parallel workers"
            if "postgres_parallel_workers_cpu_s" in cpu
            else ""
        )
        + f", over {cpu['wall_s']:.1f} s)."
    )
    print(f"results: {path}")
    log(f"done in {details['total_runtime_s']:.0f} s")
    return 0


def score_history(backend: str, url: str, workspace_id: int, history_days: int) -> dict[str, Any]:
    """Full scoring runs in-process: `history_days` back (unless 0), then now; then ANALYZE.

    The back-dated run must not see the signals that arrived after its moment (the engine
    counts a signal "from the future" as one of today): they are moved to a scratch workspace
    for that run and back after it.
    """
    from abmhub.db.engine import Database
    from abmhub.scoring.model import day_of
    from abmhub.scoring.service import run_scoring
    from abmhub.tenancy.service import create_workspace
    from abmhub.timefmt import now_us

    result: dict[str, Any] = {}
    db = Database(url)
    loader = Loader(backend, url)
    try:
        if history_days > 0:
            moment = now_us() - history_days * US_PER_DAY
            later = create_workspace(db, name=f"{WORKSPACE}-later-signals")
            move = "UPDATE signals SET workspace_id = ? WHERE workspace_id = ? AND occurred_day > ?"
            started = time.perf_counter()
            moved = loader.execute(move, (later, workspace_id, day_of(moment))).rowcount
            log(f"full scoring run {history_days} days back (its later {moved:,} signals set aside)")
            outcome = run_scoring(db, workspace=WORKSPACE, full=True, clock=lambda: moment)
            loader.execute(move, (workspace_id, later, -1))
            result["backdated"] = {
                "days_back": history_days, "s": time.perf_counter() - started, "signals_set_aside": moved,
                "workspaces": [asdict(w) for w in outcome.workspaces],
            }  # fmt: skip
        log("full scoring run (today)")
        started = time.perf_counter()
        outcome = run_scoring(db, workspace=WORKSPACE, full=True)
        result["today"] = {"s": time.perf_counter() - started, "workspaces": [asdict(w) for w in outcome.workspaces]}
        for name in ("backdated", "today"):
            if name in result:
                if any(w.get("failed") for w in result[name]["workspaces"]):
                    raise BenchmarkError(f"the {name} scoring run failed: {result[name]['workspaces']}")
                log(f"  {name}: {result[name]['s']:.1f} s")
        started = time.perf_counter()
        loader.analyze(
            None
            if backend == "sqlite"
            else ("accounts", "signals", "daily_scores", "stage_changes", "daily_stage_counts", "segment_members")
        )
        result["analyze_s"] = time.perf_counter() - started
        result["stages"] = dict(
            loader.execute(
                "SELECT journey_stage, count(*) FROM accounts WHERE workspace_id = ? GROUP BY journey_stage",
                (workspace_id,),
            ).fetchall()
        )
        changes = loader.execute(
            "SELECT sum(CASE WHEN score_change > 0 THEN 1 ELSE 0 END), sum(CASE WHEN score_change < 0 THEN 1 ELSE 0 END)"
            " FROM accounts WHERE workspace_id = ?",
            (workspace_id,),
        ).fetchone()
        result["score_change"] = {"up": int(changes[0] or 0), "down": int(changes[1] or 0)}
        result["rows"] = {
            table: loader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("daily_scores", "stage_changes", "daily_stage_counts", "segment_members")
        }
    finally:
        loader.close()
        db.dispose()
    return result


def reaped_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of the children a process has waited for (/proc/PID/stat cutime + cstime)."""
    if pid is None:
        return 0.0
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> float | None:
    from benchmarks.harness import proc_status_mb

    return proc_status_mb(pid, "VmHWM")


def _figures(
    report: Report, pages: list[Probe], healthz: Probe, api_list: Probe, data: dict[str, Any]
) -> list[dict[str, Any]]:
    base = {p.key: latency_summary(p.seconds) for p in (healthz, api_list)}
    report.add("healthz_p50_ms", healthz.label, base["healthz"]["p50_ms"], "ms")
    report.add("api_accounts_50_p50_ms", api_list.label, base["api_accounts_50"]["p50_ms"], "ms")
    summaries = []
    for probe in pages:
        s = latency_summary(probe.seconds)
        p95 = percentile([x * 1000 for x in probe.seconds], 95)
        summary = {
            "key": probe.key,
            "label": probe.label,
            "n": s["n"],
            "p50_ms": s["p50_ms"],
            "p95_ms": p95,
            "max_ms": s["max_ms"],
            "first_byte_p50_ms": percentile([x * 1000 for x in probe.first_byte_seconds], 50),
            "bytes_p50": percentile(probe.bytes, 50),
            "target_p95_ms": probe.target_ms,
            "target_met": None if probe.target_ms is None else p95 <= probe.target_ms,
            "p50_vs_healthz": s["p50_ms"] / base["healthz"]["p50_ms"],
            "p50_vs_api_accounts_50": s["p50_ms"] / base["api_accounts_50"]["p50_ms"],
            **probe.seen,
        }
        summaries.append(summary)
        report.add(
            f"{probe.key}_p50_ms", f"{probe.label} p50", s["p50_ms"], "ms",
            baseline=base["healthz"]["p50_ms"], baseline_label="/healthz p50",
            p50_vs_api_accounts_50=summary["p50_vs_api_accounts_50"], max_ms=s["max_ms"],
        )  # fmt: skip
        if probe.target_ms is not None:
            report.add(
                f"{probe.key}_p95_ms", f"{probe.label} p95", p95, "ms",
                baseline=probe.target_ms, baseline_label="target",
            )  # fmt: skip
    report.add(
        "generation_s", "data set generation + load + ANALYZE (not timed per page)", data["timings"]["total_s"], "s"
    )
    return summaries


def _page_table(summaries: list[dict[str, Any]], healthz: Probe, api_list: Probe, backend: str, n: int) -> str:
    h = percentile([x * 1000 for x in healthz.seconds], 50)
    a = percentile([x * 1000 for x in api_list.seconds], 50)
    lines = [
        f"Pages — {backend}, {n:,} accounts (ms, client-side to the last byte; baselines: `/healthz` p50 "
        f"{h:.2f} ms, `{API_LIST}` p50 {a:.2f} ms)",
        "",
        "| page | n | p50 | p95 | max | target (p95) | p50 ÷ healthz | p50 ÷ API page | shown |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for s in summaries:
        if s["target_p95_ms"] is None:
            target = "–"
        else:
            target = f"≤ {s['target_p95_ms']:.0f}: " + ("met" if s["target_met"] else "**missed**")
        shown = ""
        if "listed_total" in s:
            shown = f"{s['listed_total']:,}{'+' if s.get('listed_total_capped') else ''} listed"
        if "csv_rows" in s:
            shown = f"{s['csv_rows']:,} rows, {s['bytes_p50'] / 1024:,.0f} KiB"
        lines.append(
            f"| {s['label']} | {s['n']} | {fmt_number(s['p50_ms'])} | {fmt_number(s['p95_ms'])} | "
            f"{fmt_number(s['max_ms'])} | {target} | {s['p50_vs_healthz']:,.0f} | {s['p50_vs_api_accounts_50']:,.1f} | "
            f"{shown} |"
        )
    return "\n".join(lines)


def _data_line(
    data: dict[str, Any], n: int, m: int, scoring: dict[str, Any], samples: list[Sample], search: str, hops: int
) -> str:
    t = data["timings"]
    runs = ", ".join(f"{name} {scoring[name]['s']:.1f} s" for name in ("backdated", "today") if name in scoring)
    stages = ", ".join(f"{stage or '(none)'} {count:,}" for stage, count in sorted(scoring["stages"].items()))
    rows = ", ".join(f"{table} {count:,}" for table, count in scoring["rows"].items())
    return (
        f"Data set: {n:,} accounts, {m:,} signals, {data['rows']['activities']:,} activities, "
        f"{data['rows']['deals']:,} deals; generated and loaded in {t['total_s']:.1f} s (accounts "
        f"{t['accounts_s']:.1f} s, signals {t['signals_s']:.1f} s, ANALYZE {t['analyze_s']:.1f} s). Full scoring "
        f"runs in-process: {runs}; ANALYZE after {scoring['analyze_s']:.1f} s. Stages: {stages}. 7-day change: "
        f"{scoring['score_change']['up']:,} up, {scoring['score_change']['down']:,} down. History rows: {rows}. "
        f"Account pages: {', '.join(f'{s.label} ({s.name}, score {s.account_score})' for s in samples)}. "
        f"Search text: {search!r}. Deep page: after {hops} × Next."
    )


def _breakdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Service calls in-process (same database, after the HTTP rounds; median)",
        "",
        "| call | on | median ms | max ms | statements |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['call']} | {row['pages']} | {fmt_number(row['median_ms'])} | {fmt_number(row['max_ms'])} | "
            f"{row['statements']} |"
        )
    return "\n".join(lines)


def _plans_text(rows: list[dict[str, Any]], backend: str) -> str:
    kind = "EXPLAIN QUERY PLAN" if backend == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
    out = [f"Query plans ({kind}) of the statements of the slower calls, each statement timed alone:"]
    for row in rows:
        out.append("")
        out.append(f"* {row['call']} — median {row['median_ms']:.1f} ms")
        for plan in row["plans"]:
            out.append(f"  - {plan['ms']:.1f} ms, {plan['rows']} rows: {plan['sql']}")
            out.extend(f"        {line}" for line in plan["plan"].splitlines())
    return "\n".join(out)
