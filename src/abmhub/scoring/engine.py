"""The scoring engine: recompute accounts in set-based batches and write what changed.

A run scores, per workspace, the accounts whose inputs changed (`accounts.score_dirty`,
set by every write that touches a scoring input) — or all of them once per UTC day, for
decay. A batch of accounts is read and scored by `compute_batch` (three aggregate queries —
signals, activities, deals — for the whole batch, then the pure model in Python) and stored
by `write_batch` (one batched UPDATE of the accounts whose values changed, and the dirty flag
of the others cleared). `score_batch` does both on one connection.

How batches map to transactions is the service's business (scoring/service.py): on SQLite each
batch is one write transaction of its workspace; on PostgreSQL a *segment* of batches shares
one (the workspace clock held), and each batch's write is its own transaction on a second
connection, committed before the segment's. A crash loses no committed batch: on SQLite it
loses at most the batch in flight, on PostgreSQL at most the writes of the segment in flight
that had not committed yet. What was lost rolls back whole and stays dirty for the next run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    Row,
    String,
    case,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from abmhub.db.queries import among, param_mark
from abmhub.db.tables import (
    accounts,
    activities,
    deal_accounts,
    deals,
    pipeline_stages,
    pipelines,
    signals,
)
from abmhub.deals.service import journey_stage_for as deal_stage_journey
from abmhub.history import service as history
from abmhub.predictions import serving as predictions
from abmhub.predictions.features import LOOKBACK_DAYS, SignalStats, stats_sql
from abmhub.scoring.model import US_PER_DAY, AccountInputs, AccountScores, score_account
from abmhub.scoring.settings import SCORE_COLUMNS, SOURCES, ScoringSettings
from abmhub.timefmt import now_us
from abmhub.webhooks import outbox
from abmhub.webhooks.events import SCORE_CHANGED, STAGE_CHANGED, Event, score_changed, stage_changed

# 10,000 accounts per transaction: fewer commits and plans, still ~90 MiB peak (docs/performance.md).
BATCH_SIZE = 10_000
# A batch row: the account's id and domain, its stored values (`_stored`), its 7-day change.
_CURRENT = (
    accounts.c.id,
    accounts.c.domain,
    accounts.c.account_score,
    accounts.c.journey_stage,
    *(accounts.c[column] for column in SCORE_COLUMNS.values()),
    accounts.c.score_change,
)
TREND_DAYS = 7  # `accounts.score_change`: the overall score against this many days before


def _age(day_column: Any, today: int) -> Any:
    return case((day_column > today, 0), else_=literal(today) - day_column)


def _decay(age: Any, half_life: float) -> Any:
    return func.pow(0.5, cast(age, Float) / half_life)


def signal_points_sql(settings: ScoringSettings, today: int) -> Any:
    """The SQL twin of `model.signal_points` for a row of `signals`."""
    age = _age(signals.c.occurred_day, today)
    per_source = []
    for source in SOURCES:
        model = settings.sources[source]
        per_type = case(*((signals.c.type == name, points) for name, points in model.points.items()), else_=0.0)
        if source == "bombora":  # `surge`: points per score point above the baseline (NULL score: 0)
            base = (
                per_type
                * case((signals.c.score > model.surge_baseline, signals.c.score - model.surge_baseline), else_=0)
                * signals.c.weight
            )
        else:
            base = per_type * signals.c.weight * signals.c.count
        worth = case((age > model.horizon_days, 0.0), else_=base * _decay(age, model.half_life_days))
        per_source.append((signals.c.source == source, worth))
    return case(*per_source, else_=0.0)


def _source_points(
    conn: Connection,
    workspace_id: int,
    batch: Mapping[str, int],
    settings: ScoringSettings,
    today: int,
    *,
    contiguous: bool,
    features: SignalStats | None = None,
) -> dict[int, dict[str, float]]:
    """Decayed signal points per source of a batch's accounts (`batch`: domain → account id).

    `features`: filled with the prediction model's signal sums per domain and source
    (`predictions.features.stats_sql`), computed in the same pass over the signals.

    A contiguous batch (every account of the workspace from its first domain to its last: a
    full run) reads its signals as ONE range of the covering index, domain by domain; signals
    of domains in that range with no account are summed and dropped. Other batches look their
    domains up one by one.
    """
    oldest = today - max(model.horizon_days for model in settings.sources.values())
    extra: list[Any] = []
    if features is not None:
        oldest = min(oldest, today - LOOKBACK_DAYS + 1)
        extra = stats_sql(signals.c.occurred_day, signals.c["count"], today)
    domains = list(batch)  # in the batch's order: the database's, by its collation
    if contiguous:
        which = signals.c.domain.between(domains[0], domains[-1])
    else:
        which = among(conn, signals.c.domain, domains, String)
    rows = conn.execute(
        select(signals.c.domain, signals.c.source, func.sum(signal_points_sql(settings, today)), *extra)
        .where(signals.c.workspace_id == workspace_id, which, signals.c.occurred_day >= oldest)
        .group_by(signals.c.domain, signals.c.source)
    ).all()
    points: dict[int, dict[str, float]] = {}
    for domain, source, total, *sums in rows:
        account_id = batch.get(domain)
        if account_id is not None:
            points.setdefault(account_id, {})[source] = float(total or 0.0)
            if features is not None:
                features.setdefault(domain, {})[source] = sums
    return points


def engagement_points_sql(settings: ScoringSettings, today: int) -> Any:
    model = settings.engagement
    age = _age(activities.c.occurred_us // US_PER_DAY, today)
    per_kind = case(*((activities.c.kind == kind, points) for kind, points in model.points.items()), else_=0.0)
    return case((age > model.horizon_days, 0.0), else_=per_kind * _decay(age, model.half_life_days))


def _engagement_points(conn: Connection, ids: Sequence[int], settings: ScoringSettings, today: int) -> dict[int, float]:
    rows = conn.execute(
        select(activities.c.account_id, func.sum(engagement_points_sql(settings, today)))
        .where(among(conn, activities.c.account_id, ids))
        .group_by(activities.c.account_id)
    ).all()
    return {account_id: float(total or 0.0) for account_id, total in rows}


def deal_journey(row: Any) -> str | None:
    """What one associated deal means for its accounts: Customer, Opportunity or None (lost)."""
    if row.defined:
        stage: str | None = row.journey_stage  # pipeline_stages.journey_stage, a string column
        return stage
    if row.stage_id is None:
        return "Opportunity"  # a deal with no stage counts as open (§6.19)
    return deal_stage_journey(row.stage_label or "")


def deal_rows(conn: Connection, ids: Sequence[int]) -> Sequence[Row[Any]]:
    """The deals associated with these accounts and what their stages mean (one query)."""
    return conn.execute(
        select(
            deal_accounts.c.account_id,
            deals.c.stage_id,
            deals.c.stage_label,
            pipeline_stages.c.journey_stage,
            (pipeline_stages.c.id.is_not(None)).label("defined"),
        )
        .join(deals, deals.c.id == deal_accounts.c.deal_id)
        .outerjoin(
            pipelines,
            (pipelines.c.workspace_id == deals.c.workspace_id) & (pipelines.c.pipeline_id == deals.c.pipeline_id),
        )
        .outerjoin(
            pipeline_stages,
            (pipeline_stages.c.pipeline_pk == pipelines.c.id) & (pipeline_stages.c.stage_id == deals.c.stage_id),
        )
        .where(among(conn, deal_accounts.c.account_id, ids))
    ).all()


def deal_flags(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[bool, bool]]:
    flags: dict[int, tuple[bool, bool]] = {}
    for row in deal_rows(conn, ids):
        won, open_ = flags.get(row.account_id, (False, False))
        journey = deal_journey(row)
        flags[row.account_id] = (won or journey == "Customer", open_ or journey == "Opportunity")
    return flags


def inputs_for(
    conn: Connection,
    workspace_id: int,
    batch: Mapping[str, int],
    settings: ScoringSettings,
    today: int,
    *,
    contiguous: bool = False,
    features: SignalStats | None = None,
) -> dict[int, AccountInputs]:
    """Everything the model needs for these accounts (domain → id), in three queries.
    `features`: see `_source_points`."""
    ids = list(batch.values())
    sources = _source_points(conn, workspace_id, batch, settings, today, contiguous=contiguous, features=features)
    engagement = _engagement_points(conn, ids, settings, today)
    flags = deal_flags(conn, ids)
    return {
        account_id: AccountInputs(
            source_points=sources.get(account_id, {}),
            engagement_points=engagement.get(account_id, 0.0),
            has_won_deal=flags.get(account_id, (False, False))[0],
            has_open_deal=flags.get(account_id, (False, False))[1],
        )
        for account_id in ids
    }


@dataclass(slots=True)
class BatchResult:
    scored: int = 0
    changed: int = 0


@dataclass(slots=True)
class ScoredBatch:
    """What `compute_batch` found: the rows to write and the accounts that only leave the dirty set."""

    changed: list[tuple[Any, ...]]  # (id, *_wanted(scores)) of each account whose values changed
    unchanged: list[int]  # ids of the accounts whose stored values are already right
    moves: list[tuple[int, str, str]]  # (id, stored stage, new stage) of each stage change
    rescored: list[tuple[int, int, int]]  # (id, stored score, new score) of each overall score change
    trends: list[tuple[int, int]]  # (id, new 7-day change) where it differs from the stored one
    # Where the batch goes in the history (§7): its workspace, the run's UTC day and moment.
    workspace_id: int
    day: int
    at_us: int
    # The active model's predictions of the batch's accounts (§10), when the workspace has one.
    predictions: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return len(self.changed) + len(self.unchanged)


def _stored(row: Any) -> tuple[Any, ...]:
    return tuple(row[2 : 2 + len(_WRITTEN)])


def _wanted(scores: AccountScores) -> tuple[Any, ...]:
    """The stored values of `_CURRENT` (after the id and the domain), in order."""
    return (scores.overall, scores.journey_stage, *(scores.sources[s] for s in SCORE_COLUMNS))


_WRITTEN = ("account_score", "journey_stage", *SCORE_COLUMNS.values())


def _write_scores(conn: Connection, changed: list[tuple[Any, ...]], now: int) -> None:
    """Store (id, *_wanted) rows; each is a change of its account (`change_us`)."""
    if conn.dialect.name == "postgresql":
        # One statement for the batch: UPDATE ... FROM unnest(<one array per column>).
        columns = list(zip(*changed, strict=True))
        types = (Integer, Integer, String, *(Integer for _ in SCORE_COLUMNS))
        v = (
            func.unnest(*(literal(list(c), ARRAY(t)) for c, t in zip(columns, types, strict=True)))
            .table_valued("id", *_WRITTEN)
            .render_derived(name="v")
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.id == v.c.id)
            .values(**{name: v.c[name] for name in _WRITTEN}, change_us=now, scored_us=now, score_dirty=False)
        )
        return
    # SQLite: one prepared statement run in-process for every row, straight through the driver
    # (SQLAlchemy's per-row parameter processing cost as much as the UPDATE itself).
    assignments = ", ".join(f"{name} = ?" for name in _WRITTEN)
    conn.exec_driver_sql(
        f"UPDATE accounts SET {assignments}, change_us = ?, scored_us = ?, score_dirty = 0 WHERE id = ?",
        [(*row[1:], now, now, row[0]) for row in changed],
    )


def compute_batch(
    conn: Connection,
    workspace_id: int,
    rows: Sequence[Any],
    settings: ScoringSettings,
    today: int,
    *,
    contiguous: bool = False,
    at_us: int | None = None,
    model: predictions.ActiveModel | None = None,
) -> ScoredBatch:
    """Score these account rows (`_CURRENT` columns): read their inputs and run the model. Writes nothing.

    `contiguous`: the rows are every account of the workspace between the first and the last
    domain (a full run's batch). `at_us`: the run's moment, which its stage changes are
    recorded at (default: now). `model`: the workspace's active prediction model, whose
    predictions of these accounts are refreshed too.
    """
    batch = {row.domain: row.id for row in rows}
    signal_sums: SignalStats | None = {} if model is not None else None
    inputs = inputs_for(conn, workspace_id, batch, settings, today, contiguous=contiguous, features=signal_sums)
    before = history.score_references(conn, list(batch.values()), today - TREND_DAYS)
    changed, unchanged, moves, rescored, trends = [], [], [], [], []
    for row in rows:
        wanted = _wanted(score_account(settings, inputs[row.id]))
        if wanted != _stored(row):
            changed.append((row.id, *wanted))
            if wanted[1] != row.journey_stage:
                moves.append((row.id, row.journey_stage, wanted[1]))
            if wanted[0] != row.account_score:
                rescored.append((row.id, row.account_score, wanted[0]))
        else:
            unchanged.append(row.id)
        change = wanted[0] - before.get(row.id, wanted[0])
        if change != row.score_change:
            trends.append((row.id, change))
    moment = now_us() if at_us is None else at_us
    predicted = []
    if model is not None:
        taken = {i: account.has_won_deal or account.has_open_deal for i, account in inputs.items()}
        predicted = predictions.changed_only(
            conn,
            predictions.prediction_rows(
                conn, workspace_id, model, batch, taken, today, moment, signal_sums=signal_sums
            ),
            today,
        )
    return ScoredBatch(
        changed,
        unchanged,
        moves,
        rescored,
        trends,
        workspace_id=workspace_id,
        day=today,
        at_us=moment,
        predictions=predicted,
    )


def write_batch(conn: Connection, batch: ScoredBatch, now: int) -> None:
    """Store a computed batch, stamped `now` (the workspace clock of the span that read its inputs).

    A score or stage change is a change of the account (`change_us`: delta sync and
    `rtp_last_account_date`), and goes into its history; an unchanged account only leaves the
    dirty set.
    """
    if batch.changed:
        _write_scores(conn, batch.changed, now)
        history.record_batch(
            conn,
            workspace_id=batch.workspace_id,
            day=batch.day,
            at_us=batch.at_us,
            changed=batch.changed,
            moves=batch.moves,
        )
        outbox.publish(conn, batch.workspace_id, now, lambda audience: _announced(conn, audience, batch))
    if batch.trends:
        # Not a change of the account (no `change_us`): the dashboard sorts by it, nothing syncs it.
        if conn.dialect.name == "postgresql":  # one statement over arrays, as for the scores
            ids, changes = (list(column) for column in zip(*batch.trends, strict=True))
            conn.exec_driver_sql(
                "UPDATE accounts SET score_change = v.c FROM unnest(%(i)s::integer[], %(c)s::integer[]) AS v(i, c) "
                "WHERE accounts.id = v.i",
                {"i": ids, "c": changes},
            )
        else:
            mark = param_mark(conn)
            conn.exec_driver_sql(
                f"UPDATE accounts SET score_change = {mark} WHERE id = {mark}", [(c, i) for i, c in batch.trends]
            )
    if batch.predictions:
        predictions.write_predictions(conn, batch.predictions)
    if batch.unchanged:
        conn.execute(
            update(accounts)
            .where(among(conn, accounts.c.id, batch.unchanged), accounts.c.score_dirty.is_(True))
            .values(score_dirty=False, scored_us=now)
        )


def _announced(conn: Connection, audience: outbox.Listeners, batch: ScoredBatch) -> list[Event]:
    """The batch's stage and score changes, for the subscriptions that want them (§8)."""
    moves = batch.moves if audience.want(STAGE_CHANGED) else []
    rescored = batch.rescored if audience.want(SCORE_CHANGED) else []
    ids = {account_id for account_id, *_ in (*moves, *rescored)}
    if not ids:
        return []
    known = outbox.account_summaries(conn, ids)
    scores = {row[0]: row[1] for row in batch.changed}
    events = [
        stage_changed(**known[i], from_stage=from_stage, to_stage=to_stage, score=scores[i])
        for i, from_stage, to_stage in moves
    ]
    events += [score_changed(**known[i], from_score=a, to_score=b) for i, a, b in rescored]
    return events


def score_batch(
    conn: Connection,
    workspace_id: int,
    rows: Sequence[Any],
    settings: ScoringSettings,
    today: int,
    now: int,
    *,
    contiguous: bool = False,
    at_us: int | None = None,
    model: predictions.ActiveModel | None = None,
) -> BatchResult:
    """`compute_batch` then `write_batch` on one connection, in its transaction."""
    scored = compute_batch(conn, workspace_id, rows, settings, today, contiguous=contiguous, at_us=at_us, model=model)
    write_batch(conn, scored, now)
    return BatchResult(scored=scored.scored, changed=len(scored.changed))


def next_batch(conn: Connection, workspace_id: int, *, after: str, only_dirty: bool) -> Sequence[Row[Any]]:
    """The next accounts to score in domain order (the signals index's order), after `after`."""
    query = select(*_CURRENT).where(accounts.c.workspace_id == workspace_id, accounts.c.domain > after)
    if only_dirty:
        query = query.where(accounts.c.score_dirty.is_(True))
    return conn.execute(query.order_by(accounts.c.domain).limit(BATCH_SIZE)).all()
