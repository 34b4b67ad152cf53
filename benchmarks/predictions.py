"""Predictions benchmark: training a model, and what refreshing predictions adds to scoring.

    python -m benchmarks predictions [--backend sqlite|postgresql] [--quick] [--part training|serving|both]

Targets (issue 18, this 2-core machine): `abmhub model train` on 100,000 accounts × 12
monthly snapshots ≤ 120 s and ≤ 2 GiB peak RSS; refreshing the active model's predictions
adds ≤ 20 % to a full scoring run of 1,000,000 accounts.

1. Training. A planted-truth history (`abmhub.sandbox.planted.PlantedGenerator`: latent fit,
   buying episodes raising each source's signals with its own lead time, opportunities with a
   known probability) for N accounts over `--days` days up to today, converted from its wire
   shape to table rows here and bulk-loaded straight into a fresh, migrated database (accounts
   pushed today, their signals, activities with contacts, deals with stage history and account
   links; the sandbox's pipelines defined through the service). 465 days give exactly 12
   snapshots at a 90-day horizon (every 30 days back from today − 90, from the first day + 30
   on). Then the shipped path, `predictions.service.train_model(db, workspace_id, horizon_days=90)`
   — read the history, build the snapshot rows, fit, backtest, store, and activate (predict
   every account) when it beats the hand-set score, as `abmhub model train` does — runs in a
   child process (`python -m benchmarks.predictions --child SPEC`): its time is taken around
   the call (imports excluded), its peak RSS is its own /proc VmHWM (imports included), and
   its steps are timed by wrapping the module functions.
2. Serving. `benchmarks.scoring`'s data set (1M accounts, 10M signals) and its scoring child
   (`run_scoring(db, full=True)`), run in this order on the same data:
   A — the first full run, no model (every account's score changes);
   B — a full run, no model (scores settled: nothing changes);
   then an active model is inserted (`prediction_models`, a `Predictor` with fixed
   coefficients over every feature: serving costs the same whatever the numbers);
   C1 — a full run with the model (every prediction is written for the first time);
   C2 — a full run with the model (predictions exist and are rewritten: the daily run);
   D — (unless --no-first-run) scores reset, a full run with the model: compare with A.
   The target is checked on C2 / B (the steady state), and reported for C1 / B and D / A.
   Between runs PostgreSQL gets `VACUUM ANALYZE` of the written tables (what autovacuum would
   do), SQLite a WAL checkpoint.

Other processes may load the cores: the CPU they used during each child run is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    BACKENDS,
    RESULTS_DIR,
    BenchmarkError,
    Report,
    Run,
    log,
)
from benchmarks.scoring import (
    SIGNAL_COLUMNS,
    Loader,
    Shape,
    _copy_text,
    _proc_status,
    generate,
    reset_scores,
    run_child,
    run_module_child,
)

DEFAULT_TRAIN_ACCOUNTS = 100_000
QUICK_TRAIN_ACCOUNTS = 10_000
DEFAULT_SERVE_ACCOUNTS = 1_000_000
DEFAULT_SERVE_SIGNALS = 10_000_000
QUICK_SERVE_ACCOUNTS = 100_000
QUICK_SERVE_SIGNALS = 1_000_000
HISTORY_DAYS = 465  # 12 snapshots at a 90-day horizon (see the module docstring)
HORIZON_DAYS = 90
TARGET_TRAIN_S = 120.0
TARGET_TRAIN_RSS_MIB = 2048.0
TARGET_SERVING_RATIO = 1.20
WORKSPACE = "bench"
CHUNK_ACCOUNTS = 2_000  # planted accounts converted and loaded at a time
US_PER_DAY = 86_400_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite", help="database backend (default sqlite)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_TRAIN_ACCOUNTS:,} accounts to train on; {QUICK_SERVE_ACCOUNTS:,} accounts, "
        f"{QUICK_SERVE_SIGNALS:,} signals to score",
    )
    parser.add_argument("--part", choices=("training", "serving", "both"), default="both", help="default both")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        metavar="N",
        help=f"training accounts (default {DEFAULT_TRAIN_ACCOUNTS:,})",
    )
    parser.add_argument(
        "--days", type=int, default=HISTORY_DAYS, help=f"days of planted history (default {HISTORY_DAYS})"
    )
    parser.add_argument(
        "--serving-accounts",
        type=int,
        default=None,
        metavar="N",
        help=f"accounts of the scoring data set (default {DEFAULT_SERVE_ACCOUNTS:,})",
    )
    parser.add_argument(
        "--serving-signals",
        type=int,
        default=None,
        metavar="M",
        help=f"signals of the scoring data set (default {DEFAULT_SERVE_SIGNALS:,})",
    )
    parser.add_argument("--no-first-run", action="store_true", help="skip run D (scores reset, first run with model)")
    parser.add_argument("--phases", action="store_true", help="time the scoring engine's steps in the children")
    parser.add_argument("--seed", type=int, default=20261207, help="seed of both data sets (default 20261207)")
    parser.add_argument(
        "--max-run-seconds", type=float, default=1800.0, help="kill a child after this long (default 1800)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (databases)")


# --- the training data set: planted plans as table rows -------------------------------------------

ACCOUNT_COLUMNS = (
    "id", "workspace_id", "rtp_aid", "uuid", "external_id", "name", "domain", "short_name", "linkedin_url", "tags",
    "custom_fields", "score_dirty", "created_us", "change_us",
)  # fmt: skip
CONTACT_COLUMNS = (
    "id", "workspace_id", "uuid", "email", "external_contact_id", "name", "title", "department", "seniority",
    "created_us", "change_us",
)  # fmt: skip
ACTIVITY_COLUMNS = (
    "id", "workspace_id", "uuid", "external_activity_id", "kind", "occurred_us", "domain", "account_id",
    "account_name", "subject", "owner_email", "owner_name", "owner_id", "created_us", "change_us",
)  # fmt: skip
ACTIVITY_CONTACT_COLUMNS = ("activity_id", "contact_id", "position", "occurred_us", "activity_uuid")
DEAL_COLUMNS = (
    "id", "workspace_id", "uuid", "external_deal_id", "name", "amount", "currency", "stage_id", "stage_label",
    "pipeline_id", "pipeline_label", "start_us", "closed_us", "owner_name", "owner_email", "owner_id", "created_us",
    "change_us",
)  # fmt: skip
DEAL_ACCOUNT_COLUMNS = ("id", "workspace_id", "deal_id", "position", "domain", "name", "account_id")
STAGE_HISTORY_COLUMNS = ("id", "deal_id", "stage_id", "stage_label", "pipeline_id", "entered_us")
# In load order (links after what they link).
TABLES = (
    ("accounts", ACCOUNT_COLUMNS),
    ("signals", SIGNAL_COLUMNS),
    ("contacts", CONTACT_COLUMNS),
    ("activities", ACTIVITY_COLUMNS),
    ("activity_contacts", ACTIVITY_CONTACT_COLUMNS),
    ("deals", DEAL_COLUMNS),
    ("deal_accounts", DEAL_ACCOUNT_COLUMNS),
    ("deal_stage_history", STAGE_HISTORY_COLUMNS),
)


def _us(text: str) -> int:
    """An ISO 8601 moment as the sandbox writes it (`...T12:00:00.000Z`) in epoch microseconds."""
    return round(datetime.fromisoformat(text).timestamp() * 1_000_000)


class PlanRows:
    """Planted `AccountPlan`s (wire-shaped) → rows of abmhub's tables, ids counted here.

    What the services would store for a push: domains lower-case, signals with their UTC day,
    activities linked to their account and contacts, deals linked through `deal_accounts`.
    Everything is pushed today (`created_us` now), dated in the past — a CRM backfill.
    """

    def __init__(self, workspace_id: int, now: int, seed: int) -> None:
        self.workspace_id = workspace_id
        self.now = now
        self._rng = random.Random(seed * 11 + 1)
        self.ids = dict.fromkeys(
            ("accounts", "signals", "contacts", "activities", "deals", "deal_accounts", "stages"), 0
        )

    def _next(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def convert(self, plans: Sequence[Any]) -> dict[str, list[tuple[Any, ...]]]:
        from abmhub.ids import new_object_ids

        ws, now = self.workspace_id, self.now
        out: dict[str, list[tuple[Any, ...]]] = {table: [] for table, _ in TABLES}
        signal_rows, activity_rows, links = out["signals"], out["activities"], out["activity_contacts"]
        for plan, rtp_aid in zip(plans, new_object_ids(len(plans)), strict=True):
            a = plan.account
            account_id = self._next("accounts")
            domain = a["domain"].strip().lower()
            out["accounts"].append(
                (account_id, ws, rtp_aid, self._uuid(), a.get("externalId"), a["name"], domain, a.get("shortName"),
                 a.get("linkedinUrl"), json.dumps(a.get("tags", [])), json.dumps(a.get("customFields", {})), True,
                 now, now)
            )  # fmt: skip
            for s in plan.signals:
                occurred = _us(s["occurredAt"])
                signal_rows.append(
                    (self._next("signals"), ws, s["source"], s["type"], domain, occurred, occurred // US_PER_DAY,
                     s["externalSignalId"], 1.0, s.get("count", 1), s.get("score"), s.get("topic"), s.get("url"), now)
                )  # fmt: skip
            contact_ids: dict[str, int] = {}
            for activity in plan.activities:
                activity_id = self._next("activities")
                activity_uuid = self._uuid()
                occurred = _us(activity["occurredAt"])
                subject = activity.get("subject") or activity.get("callTitle")
                activity_rows.append(
                    (activity_id, ws, activity_uuid, activity["externalActivityId"], activity["activityType"],
                     occurred, domain, account_id, activity.get("accountName"), subject, activity.get("ownerEmail"),
                     activity.get("ownerName"), activity.get("ownerId"), now, now)
                )  # fmt: skip
                for position, contact in enumerate(activity.get("contacts", [])):
                    email = contact["email"].lower()
                    contact_id = contact_ids.get(email)
                    if contact_id is None:
                        contact_id = contact_ids[email] = self._next("contacts")
                        out["contacts"].append(
                            (contact_id, ws, self._uuid(), email, contact.get("externalContactId"),
                             contact.get("name"), contact.get("title"), contact.get("department"),
                             contact.get("seniority"), now, now)
                        )  # fmt: skip
                    links.append((activity_id, contact_id, position, occurred, activity_uuid))
            for deal in plan.deals:
                deal_id = self._next("deals")
                closed = deal.get("closedDate")
                out["deals"].append(
                    (deal_id, ws, self._uuid(), deal["externalDealId"], deal["name"], deal.get("amount"),
                     deal.get("dealCurrencyCode"), deal.get("stageId"), deal.get("stageLabel"), deal.get("pipelineId"),
                     deal.get("pipelineLabel"), _us(deal["startDate"]) if deal.get("startDate") else None,
                     _us(closed) if closed else None, deal.get("ownerName"), deal.get("ownerEmail"),
                     deal.get("ownerId"), now, now)
                )  # fmt: skip
                for position, associated in enumerate(deal.get("associatedAccounts", [])):
                    linked = associated["domain"].strip().lower()
                    out["deal_accounts"].append(
                        (self._next("deal_accounts"), ws, deal_id, position, linked, associated.get("name"),
                         account_id if linked == domain else None)
                    )  # fmt: skip
                for entry in deal.get("stageHistory", []):
                    out["deal_stage_history"].append(
                        (self._next("stages"), deal_id, entry["stageId"], entry.get("stageLabel"),
                         deal.get("pipelineId"), _us(entry["enteredAt"]))
                    )  # fmt: skip
        return out


class HistoryLoader(Loader):
    """`scoring.Loader`, plus COPY into a table without an id column (activity_contacts)."""

    def load(
        self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]] | Sequence[tuple[Any, ...]]
    ) -> int:
        if self.backend == "sqlite" or "id" in columns:
            return super().load(table, columns, rows)
        n = 0
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            lines = []
            for row in rows:
                lines.append("\t".join(_copy_text(v) for v in row))
                n += 1
            if lines:
                copy.write("\n".join(lines) + "\n")
        return n


def generate_history(backend: str, url: str, *, accounts: int, days: int, seed: int) -> dict[str, Any]:
    """Migrate, create the workspace and the sandbox's pipelines, load the planted history, ANALYZE."""
    from abmhub.db.engine import Database
    from abmhub.db.migrate import upgrade
    from abmhub.deals import service as deals_service
    from abmhub.deals.schemas import PipelineDefinition
    from abmhub.sandbox.data import PIPELINES
    from abmhub.sandbox.planted import PlantedGenerator
    from abmhub.tenancy.service import create_workspace
    from abmhub.timefmt import now_us

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db = Database(url)
    try:
        upgrade(db)
        workspace_id = create_workspace(db, name=WORKSPACE)
        deals_service.create_pipelines(
            db, workspace_id=workspace_id, definitions=[PipelineDefinition.model_validate(p) for p in PIPELINES]
        )
    finally:
        db.dispose()
    now = now_us()
    timings["migrate_and_setup_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    generator = PlantedGenerator(seed=seed, accounts=accounts, as_of=datetime.fromtimestamp(now / 1e6, UTC), days=days)
    truth = generator.truth.summary()
    timings["planted_truth_s"] = time.perf_counter() - t
    rows = PlanRows(workspace_id, now, seed)
    loader = HistoryLoader(backend, url)
    counts = {table: 0 for table, _ in TABLES}
    plans_s = convert_s = load_s = 0.0
    try:
        plans = generator.plans()
        while True:
            t = time.perf_counter()
            chunk = list(islice(plans, CHUNK_ACCOUNTS))
            plans_s += time.perf_counter() - t
            if not chunk:
                break
            t = time.perf_counter()
            tables = rows.convert(chunk)
            convert_s += time.perf_counter() - t
            t = time.perf_counter()
            for table, columns in TABLES:
                if tables[table]:
                    counts[table] += loader.load(table, columns, tables[table])
            load_s += time.perf_counter() - t
            if counts["accounts"] % 20_000 == 0:
                log(f"  {counts['accounts']:,} accounts, {counts['signals']:,} signals")
        loader.execute("UPDATE workspaces SET clock_us = ? WHERE id = ?", (now_us(), workspace_id))
        t = time.perf_counter()
        loader.analyze(tuple(table for table, _ in TABLES))
        timings["analyze_s"] = time.perf_counter() - t
    finally:
        loader.close()
    timings.update(planted_plans_s=plans_s, convert_s=convert_s, load_s=load_s)
    timings["total_s"] = time.perf_counter() - t0
    return {"workspace_id": workspace_id, "now_us": now, "rows": counts, "timings": timings, "planted": truth}


# --- the training child ----------------------------------------------------------------------------


class StepTimer:
    """Wall time of wrapped module functions (calls nest: a step's time includes what it calls)."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                slot = self.totals.setdefault(label, [0.0, 0])
                slot[0] += time.perf_counter() - t0
                slot[1] += 1

        setattr(module, name, wrapper)


TRAINING_STEPS = (
    ("service", "load_history", "history load (queries + arrays)"),
    ("train", "build_rows", "snapshot rows (features, population, labels, hand-set scores)"),
    ("train", "fit_head", "fits (L2 logistic + Platt), all heads"),
    ("train", "_backtest_report", "backtest metrics + bootstrap intervals"),
    ("train", "_explanation", "report: explanation"),
    ("train", "_drift", "report: drift"),
    ("service", "activate_model", "activation: every account predicted and stored"),
)


def _child_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from abmhub.db.engine import Database
    from abmhub.predictions import service, train

    modules = {"service": service, "train": train}
    timer = StepTimer()
    for module, name, label in TRAINING_STEPS:
        timer.wrap(modules[module], name, label)
    db = Database(spec["url"])
    rss_before = _proc_status(os.getpid())
    started = time.perf_counter()
    record, _ = service.train_model(db, workspace_id=spec["workspace_id"], horizon_days=spec["horizon_days"])
    seconds = time.perf_counter() - started
    db.dispose()
    status = _proc_status(os.getpid())
    result = {
        "run_s": seconds,
        "model_id": record.model_id,
        "active": record.active,
        "beats_hand_set": record.beats_hand_set,
        "report": record.report,
        "steps": {label: {"s": s, "calls": calls} for label, (s, calls) in timer.totals.items()},
        "rss_before_run_mib": rss_before.get("VmRSS", 0) / 1024,
        "vmhwm_mib": status.get("VmHWM", 0) / 1024,
    }
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


def run_training_child(run: Run, url: str, workspace_id: int, timeout: float) -> dict[str, Any]:
    """`train_model` in a measured child process (`benchmarks.scoring.run_module_child`)."""
    spec = {"url": url, "workspace_id": workspace_id, "horizon_days": HORIZON_DAYS}
    result = run_module_child(run, "benchmarks.predictions", spec, timeout=timeout)
    if not result["finished"]:
        raise BenchmarkError(f"training did not finish within {timeout:.0f} s")
    return result


def training(run: Run, args: argparse.Namespace, n: int, report: Report) -> dict[str, Any]:
    url = run.databases.new("bench_predictions_training")
    log(f"training: generating a planted history of {n:,} accounts over {args.days} days ({args.backend})")
    data = generate_history(args.backend, url, accounts=n, days=args.days, seed=args.seed)
    t = data["timings"]
    log(
        f"generated in {t['total_s']:.1f} s (plans {t['planted_plans_s']:.1f} s, rows {t['convert_s']:.1f} s, "
        f"load {t['load_s']:.1f} s, ANALYZE {t['analyze_s']:.1f} s): {data['rows']['signals']:,} signals, "
        f"{data['rows']['activities']:,} activities, {data['rows']['deals']:,} deals"
    )
    log("training: train_model in a child process")
    result = run_training_child(run, url, data["workspace_id"], args.max_run_seconds)
    backtest = result["report"]["backtest"]
    log(
        f"trained in {result['run_s']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB; ROC-AUC "
        f"{backtest['rocAuc']:.3f} against the hand-set score's {backtest['handSetRocAuc']:.3f}"
    )
    report.details["training"] = {"data_set": data, "run": result, "database_size": run.databases.sizes(url)}
    if not args.keep_temp:
        run.databases.drop(url)
    trained_on = result["report"]["trainedOn"]
    report.add(
        "training_generation_s", f"planted history generation + load + ANALYZE, {n:,} accounts (not a target)",
        t["total_s"], "s",
    )  # fmt: skip
    report.add(
        "training_s",
        f"model train, {trained_on['accounts']:,} accounts × {trained_on['snapshots']} snapshots "
        f"({trained_on['rows']:,} rows)",
        result["run_s"], "s", baseline=TARGET_TRAIN_S, baseline_label="target",
    )  # fmt: skip
    report.add(
        "training_peak_rss_mib", "peak RSS of the training process", result["peak_rss_mib"], "MiB",
        baseline=TARGET_TRAIN_RSS_MIB, baseline_label="target",
    )  # fmt: skip
    report.add("training_roc_auc", "backtest ROC-AUC, model", backtest["rocAuc"], "")
    report.add(
        "training_hand_set_roc_auc", "backtest ROC-AUC, hand-set score (same rows)", backtest["handSetRocAuc"], ""
    )
    return result


# --- serving -------------------------------------------------------------------------------------


def benchmark_predictor() -> Any:
    """A `Predictor` over every feature with fixed coefficients (no training on the 1M set).

    Serving's cost does not depend on the numbers: the same features are read and the same
    arithmetic and factors computed. Signs follow the planted directions (LinkedIn down).
    """
    import numpy as np

    from abmhub.predictions.features import FEATURE_NAMES
    from abmhub.predictions.model import Head, Predictor

    def weight(name: str) -> float:
        sign = -1.0 if name.startswith("linkedin_ads") else 1.0
        if name.endswith("days_since"):
            return -0.01
        if name.endswith("momentum"):
            return 0.2 * sign
        return 0.3 * sign

    coef = np.array([weight(name) for name in FEATURE_NAMES])
    k = len(FEATURE_NAMES)
    mean, scale = np.zeros(k), np.ones(k)
    horizon = Head(mean, scale, coef, -3.0, (1.0, 0.0))
    within_30d = Head(mean, scale, coef * 0.8, -4.0, (1.0, 0.0))
    return Predictor(FEATURE_NAMES, horizon, within_30d, (0.2, 0.1, 0.05))


def insert_model(url: str, workspace_id: int) -> str:
    from abmhub.db.engine import Database
    from abmhub.db.tables import prediction_models
    from abmhub.ids import new_object_id

    model_id = new_object_id()
    report = {
        "note": "benchmark model: fixed coefficients, not trained",
        "trainedOn": {"snapshots": 0, "positives": 0, "accounts": 0, "rows": 0},
        "backtest": {"rocAuc": 1.0, "handSetRocAuc": 0.5, "bands": []},
    }
    db = Database(url)
    try:
        with db.write(workspace_id) as tx:
            tx.conn.execute(
                prediction_models.insert().values(
                    workspace_id=workspace_id,
                    model_id=model_id,
                    created_us=tx.now_us,
                    active=True,
                    horizon_days=HORIZON_DAYS,
                    as_of_us=tx.now_us,
                    beats_hand_set=True,
                    fingerprint="0" * 64,
                    parameters=benchmark_predictor().to_json(),
                    report=report,
                )
            )
    finally:
        db.dispose()
    return model_id


def settle(backend: str, url: str) -> float:
    """What the database would do between two daily runs: autovacuum (PostgreSQL), a checkpoint (SQLite)."""
    t = time.perf_counter()
    with Loader(backend, url) as loader:
        if backend == "sqlite":
            loader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            loader.analyze(("accounts", "account_predictions", "segment_members", "daily_scores", "stage_changes"))
    return time.perf_counter() - t


def _count(backend: str, url: str, sql: str) -> int:
    with Loader(backend, url) as loader:
        return int(loader.execute(sql).fetchone()[0])


def serving(run: Run, args: argparse.Namespace, n: int, m: int, report: Report) -> dict[str, Any]:
    url = run.databases.new("bench_predictions_serving")
    log(f"serving: generating {n:,} accounts, {m:,} signals ({args.backend})")
    data = generate(args.backend, url, Shape(accounts=n, signals=m, seed=args.seed))
    log(f"generated in {data['timings']['total_s']:.1f} s")
    runs: dict[str, Any] = {}

    def full_run(key: str, what: str) -> dict[str, Any]:
        log(f"serving: run {key} — {what}")
        result = run_child(run, url, full=True, phases=args.phases, timeout=args.max_run_seconds)
        if not result.get("finished"):
            raise BenchmarkError(f"run {key} did not finish within {args.max_run_seconds:.0f} s")
        if result["scored"] != n:
            raise BenchmarkError(f"run {key} scored {result['scored']:,} accounts, expected {n:,}")
        result["what"] = what
        result["settle_s"] = settle(args.backend, url)
        result["predictions_stored"] = _count(args.backend, url, "SELECT count(*) FROM account_predictions")
        log(
            f"  {result['run_s']:.1f} s, {result['changed']:,} changed, {result['predictions_stored']:,} predictions "
            f"stored, peak RSS {result['peak_rss_mib']:.0f} MiB, other load "
            f"{result['other_cpu_s'] / result['child_wall_s']:.2f} cores"
        )
        runs[key] = result
        return result

    a = full_run("A", "first full run, no model (every score changes)")
    b = full_run("B", "full run, no model (scores settled)")
    model_id = insert_model(url, data["workspace_id"])
    c1 = full_run("C1", "full run, active model, no predictions stored yet")
    c2 = full_run("C2", "full run, active model, predictions stored (the daily run)")
    d = None
    if not args.no_first_run:
        reset_s = reset_scores(args.backend, url)
        log(f"serving: scores reset ({reset_s:.1f} s)")
        d = full_run("D", "first full run after a score reset, active model (every score changes)")
        d["reset_s"] = reset_s
    report.details["serving"] = {
        "data_set": data,
        "model_id": model_id,
        "runs": runs,
        "database_size": run.databases.sizes(url),
    }
    if not args.keep_temp:
        run.databases.drop(url)

    report.add("serving_generation_s", "scoring data set generation + load (not a target)",
               data["timings"]["total_s"], "s")  # fmt: skip
    report.add("serving_full_no_model_s", f"B: full run, {n:,} accounts, no model", b["run_s"], "s")
    report.add(
        "serving_full_with_model_s", f"C2: full run, {n:,} accounts, active model (daily run)", c2["run_s"], "s",
        baseline=b["run_s"], baseline_label="B",
    )  # fmt: skip
    report.add(
        "serving_full_with_model_first_s", "C1: full run, active model, predictions written the first time",
        c1["run_s"], "s", baseline=b["run_s"], baseline_label="B",
    )  # fmt: skip
    report.add("serving_first_run_no_model_s", "A: first full run, no model (all scores change)", a["run_s"], "s")
    if d is not None:
        report.add(
            "serving_first_run_with_model_s", "D: first full run after a reset, active model", d["run_s"], "s",
            baseline=a["run_s"], baseline_label="A",
        )  # fmt: skip
    report.add(
        "serving_peak_rss_mib", "peak RSS of the scoring process, with the model (C2)", c2["peak_rss_mib"], "MiB",
        baseline=b["peak_rss_mib"], baseline_label="B",
    )  # fmt: skip
    return runs


# --- the run -------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    n_train = args.accounts if args.accounts is not None else (
        QUICK_TRAIN_ACCOUNTS if args.quick else DEFAULT_TRAIN_ACCOUNTS
    )  # fmt: skip
    n_serve = args.serving_accounts if args.serving_accounts is not None else (
        QUICK_SERVE_ACCOUNTS if args.quick else DEFAULT_SERVE_ACCOUNTS
    )  # fmt: skip
    m_serve = args.serving_signals if args.serving_signals is not None else (
        QUICK_SERVE_SIGNALS if args.quick else DEFAULT_SERVE_SIGNALS
    )  # fmt: skip
    config = {
        "part": args.part,
        "training_accounts": n_train,
        "history_days": args.days,
        "horizon_days": HORIZON_DAYS,
        "serving_accounts": n_serve,
        "serving_signals": m_serve,
        "seed": args.seed,
        "quick": bool(args.quick),
        "targets": {
            "training_s": TARGET_TRAIN_S,
            "training_peak_rss_mib": TARGET_TRAIN_RSS_MIB,
            "serving_ratio": TARGET_SERVING_RATIO,
        },
    }
    report = Report("predictions", args.backend, config)
    report.machine["note"] = (
        "The measured child process, the database (PostgreSQL server processes) and the benchmark share this "
        "machine's cores; peak RSS is the child's own (PostgreSQL's memory is separate)."
    )
    started = time.perf_counter()
    trained = runs = None
    with Run(args.backend, keep_temp=args.keep_temp) as run:
        if args.part in ("training", "both"):
            trained = training(run, args, n_train, report)
        if args.part in ("serving", "both"):
            runs = serving(run, args, n_serve, m_serve, report)
        report.details["databases"] = run.databases.info
    report.details["total_runtime_s"] = time.perf_counter() - started
    children = ([trained] if trained else []) + list((runs or {}).values())
    other = sum(c["other_cpu_s"] for c in children) / sum(c["child_wall_s"] for c in children)
    report.machine["other_load_cores_avg"] = other
    verdicts = _verdicts(trained, runs)
    report.details["verdicts"] = verdicts
    path = report.write(args.results_dir)

    print(report.markdown())
    print()
    print(_verdict_table(verdicts, args.backend))
    if trained:
        print()
        print(_training_table(trained))
    if runs:
        print()
        print(_runs_table(runs))
    print()
    print(
        f"Other processes and kernel threads kept {other:.2f} of {report.machine['nproc']} cores busy on average "
        "during the measured runs" + (" — the measured process did not have the machine to itself." if other > 0.2
                                      else ".")
    )  # fmt: skip
    print(f"results: {path}")
    log(f"done in {report.details['total_runtime_s']:.0f} s")
    return 0


def _verdicts(trained: dict[str, Any] | None, runs: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    if trained:
        out.append({"target": "training time", "value": trained["run_s"], "limit": TARGET_TRAIN_S, "unit": "s"})
        out.append(
            {"target": "training peak RSS", "value": trained["peak_rss_mib"], "limit": TARGET_TRAIN_RSS_MIB,
             "unit": "MiB"}
        )  # fmt: skip
    if runs:
        ratio = runs["C2"]["run_s"] / runs["B"]["run_s"]
        out.append({"target": "full run with model / without (C2/B)", "value": ratio, "limit": TARGET_SERVING_RATIO})
        out.append(
            {"target": "same, predictions written the first time (C1/B)", "value": runs["C1"]["run_s"] /
             runs["B"]["run_s"], "limit": TARGET_SERVING_RATIO}
        )  # fmt: skip
        if "D" in runs:
            out.append(
                {"target": "first run after a reset, with model / without (D/A)",
                 "value": runs["D"]["run_s"] / runs["A"]["run_s"], "limit": TARGET_SERVING_RATIO}
            )  # fmt: skip
    for item in out:
        item["pass"] = item["value"] <= item["limit"]
    return out


def _verdict_table(verdicts: list[dict[str, Any]], backend: str) -> str:
    lines = [f"Targets (issue 18), {backend}", "", "| target | measured | limit | |", "|---|---:|---:|---|"]
    for v in verdicts:
        unit = v.get("unit")
        if unit:
            value, limit = f"{v['value']:,.1f} {unit}", f"≤ {v['limit']:,.0f} {unit}"
        else:
            value, limit = f"{v['value']:.3f}", f"≤ {v['limit']:.2f}"
        lines.append(f"| {v['target']} | {value} | {limit} | {'PASS' if v['pass'] else 'FAIL'} |")
    return "\n".join(lines)


def _training_table(trained: dict[str, Any]) -> str:
    total = trained["run_s"]
    report = trained["report"]
    backtest, on = report["backtest"], report["trainedOn"]
    lines = [
        f"Training — where the time goes ({total:.1f} s; {on['accounts']:,} accounts, {on['snapshots']} snapshots, "
        f"{on['rows']:,} rows, {on['positives']:,} positives; activated: {'yes' if trained['active'] else 'no'})",
        "",
        "| step | s | share | calls |",
        "|---|---:|---:|---:|",
    ]
    steps = trained["steps"]
    for label, value in sorted(steps.items(), key=lambda kv: -kv[1]["s"]):
        lines.append(f"| {label} | {value['s']:.2f} | {value['s'] / total:.0%} | {value['calls']} |")
    rest = total - sum(value["s"] for value in steps.values())  # the steps do not nest
    lines.append(f"| other (today's features, storing the model, ...) | {rest:.2f} | {rest / total:.0%} | – |")
    lines += [
        "",
        f"Backtest: ROC-AUC {backtest['rocAuc']:.3f} (hand-set {backtest['handSetRocAuc']:.3f}), PR-AUC "
        f"{backtest['prAuc']:.3f} (hand-set {backtest['handSetPrAuc']:.3f}), top-decile lift "
        f"{backtest['topDecileLift']:.2f} (hand-set {backtest['handSetTopDecileLift']:.2f}), Brier {backtest['brier']:.4f}; "
        f"peak RSS {trained['peak_rss_mib']:.0f} MiB (before the call {trained['rss_before_run_mib']:.0f} MiB).",
    ]
    return "\n".join(lines)


def _runs_table(runs: dict[str, Any]) -> str:
    lines = [
        "Serving — the full scoring runs, in order",
        "",
        "| run | what | s | changed | predictions stored after | peak RSS MiB | other load (cores) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, r in runs.items():
        lines.append(
            f"| {key} | {r['what']} | {r['run_s']:.1f} | {r['changed']:,} | {r['predictions_stored']:,} | "
            f"{r['peak_rss_mib']:.0f} | {r['other_cpu_s'] / r['child_wall_s']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2]))
    sys.exit("usage: python -m benchmarks predictions ...  (this entry point is the training child)")
