"""History (contract §7): what the scoring job records, and how it is read back.

The scoring engine calls `record_batch` in the transaction that writes a batch's scores, so
history and scores commit together: every journey-stage change becomes a `stage_changes`
row, and each changed account's scores become its row of the day in `daily_scores` (the
day's last values win; a day on which nothing changed has no row, and readers carry the
previous day forward). `record_stage_counts` keeps, at the end of a run, the day's funnel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, tuple_

from abmhub.accounts.service import AccountNotFound, InvalidAccountId
from abmhub.db.engine import Database
from abmhub.db.queries import among, insert_rows, upsert_rows
from abmhub.db.tables import accounts, daily_scores, daily_stage_counts, stage_changes
from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.ids import is_object_id
from abmhub.paging import InvalidPosition, Page, PageRequest
from abmhub.scoring.model import US_PER_DAY, day_of
from abmhub.scoring.settings import SCORE_COLUMNS
from abmhub.timefmt import now_us

# The columns of a `daily_scores` row after its keys, in the order the engine hands them over
# (the order it writes `accounts`: overall, stage, then one score per source).
DAILY_VALUES = ("account_score", "journey_stage", *SCORE_COLUMNS.values())
_DAILY_COLUMNS = ("account_id", "day", "workspace_id", *DAILY_VALUES)
_STAGE_RANK = {stage: rank for rank, stage in enumerate(JOURNEY_STAGES, start=1)}
MAX_DAYS = 730
DEFAULT_DAYS = 90


# --- recording (the scoring engine) -----------------------------------------------------------


def record_batch(
    conn: Connection,
    *,
    workspace_id: int,
    day: int,
    at_us: int,
    changed: Sequence[tuple[Any, ...]],
    moves: Sequence[tuple[int, str, str]],
) -> None:
    """Record a scored batch: `changed` rows are `(account_id, *DAILY_VALUES)`, `moves` are
    `(account_id, from_stage, to_stage)`. Two statements, whatever the batch size."""
    if conn.dialect.name == "postgresql":
        _record_batch_postgresql(conn, workspace_id, day, at_us, changed, moves)
        return
    insert_rows(
        conn,
        stage_changes,
        ("workspace_id", "account_id", "from_stage", "to_stage", "at_us", "direction"),
        [(workspace_id, account_id, old, new, at_us, direction_of(old, new)) for account_id, old, new in moves],
    )
    upsert_rows(
        conn,
        daily_scores,
        _DAILY_COLUMNS,
        ("account_id", "day"),
        [(row[0], day, workspace_id, *row[1:]) for row in changed],
    )


def _record_batch_postgresql(
    conn: Connection,
    workspace_id: int,
    day: int,
    at_us: int,
    changed: Sequence[tuple[Any, ...]],
    moves: Sequence[tuple[int, str, str]],
) -> None:
    """PostgreSQL: each table's rows as one statement over arrays (`unnest`). An executemany of
    10,000 rows was 10,000 statements in psycopg's pipeline, which dominated a full run."""
    if moves:
        ids, old, new = (list(column) for column in zip(*moves, strict=True))
        conn.exec_driver_sql(
            "INSERT INTO stage_changes (workspace_id, account_id, from_stage, to_stage, at_us, direction) "
            "SELECT %(ws)s, v.a, v.f, v.t, %(at)s, v.d "
            "FROM unnest(%(a)s::integer[], %(f)s::text[], %(t)s::text[], %(d)s::text[]) AS v(a, f, t, d)",
            {"ws": workspace_id, "at": at_us, "a": ids, "f": old, "t": new, "d": list(map(direction_of, old, new))},
        )
    if changed:
        columns = [list(column) for column in zip(*changed, strict=True)]
        names = ("account_id", *DAILY_VALUES)
        arrays = ", ".join(
            f"%(c{i})s::{'text' if name == 'journey_stage' else 'integer'}[]" for i, name in enumerate(names)
        )
        updates = ", ".join(f"{name} = excluded.{name}" for name in DAILY_VALUES)
        conn.exec_driver_sql(
            f"INSERT INTO daily_scores (day, workspace_id, {', '.join(names)}) "
            f"SELECT %(day)s, %(ws)s, v.* FROM unnest({arrays}) AS v({', '.join(names)}) "
            f"ON CONFLICT (account_id, day) DO UPDATE SET {updates}",
            {"day": day, "ws": workspace_id, **{f"c{i}": column for i, column in enumerate(columns)}},
        )


def direction_of(from_stage: str, to_stage: str) -> str:
    """`first` for an account's first stage, else `progressed` (to a later stage) or `regressed`."""
    if not from_stage:
        return "first"
    return "progressed" if _STAGE_RANK.get(to_stage, 0) > _STAGE_RANK.get(from_stage, 0) else "regressed"


def record_stage_counts(conn: Connection, *, workspace_id: int, day: int) -> None:
    """Keep the workspace's funnel as it stands now as the funnel of `day` (the day's last run wins)."""
    counts = conn.execute(
        select(accounts.c.journey_stage, func.count(), func.coalesce(func.sum(accounts.c.account_score), 0))
        .where(accounts.c.workspace_id == workspace_id, accounts.c.journey_stage != "")
        .group_by(accounts.c.journey_stage)
    ).all()
    conn.execute(
        daily_stage_counts.delete().where(
            daily_stage_counts.c.workspace_id == workspace_id, daily_stage_counts.c.day == day
        )
    )
    if counts:
        conn.execute(
            daily_stage_counts.insert(),
            [
                {"workspace_id": workspace_id, "day": day, "journey_stage": stage, "accounts": n, "score_sum": points}
                for stage, n, points in counts
            ],
        )


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageChange:
    from_stage: str
    to_stage: str
    at_us: int


@dataclass(frozen=True, slots=True)
class DailyScores:
    day: int
    account_score: int
    journey_stage: str
    website_score: int
    g2_score: int
    bombora_score: int
    advertising_score: int


@dataclass(frozen=True, slots=True)
class AccountHistory:
    rtp_aid: str
    stage_changes: list[StageChange]
    daily: list[DailyScores]  # one per day of the window from the first scored day on


def account_history(
    db: Database, *, workspace_id: int, rtp_aid: str, days: int = DEFAULT_DAYS, today: int | None = None
) -> AccountHistory:
    """The account's stage changes and daily scores over the last `days` UTC days (today included)."""
    if not is_object_id(rtp_aid):
        raise InvalidAccountId(rtp_aid)
    last = day_of(now_us()) if today is None else today
    first = last - days + 1
    with db.read() as conn:
        account_id = conn.execute(
            select(accounts.c.id).where(accounts.c.workspace_id == workspace_id, accounts.c.rtp_aid == rtp_aid)
        ).scalar_one_or_none()
        if account_id is None:
            raise AccountNotFound(rtp_aid)
        moves = conn.execute(
            select(stage_changes.c.from_stage, stage_changes.c.to_stage, stage_changes.c.at_us)
            .where(stage_changes.c.account_id == account_id, stage_changes.c.at_us >= first * US_PER_DAY)
            .order_by(stage_changes.c.at_us, stage_changes.c.id)
        ).all()
        rows = _daily_rows(conn, [account_id], first, last)
    return AccountHistory(
        rtp_aid=rtp_aid,
        stage_changes=[StageChange(*row) for row in moves],
        daily=carried_forward(rows.get(account_id, []), first, last),
    )


def score_references(conn: Connection, account_ids: Sequence[int], day: int) -> dict[int, int]:
    """Per account, its overall score at the end of `day` (carried forward), or, for an account
    first scored after it, its first score: what a change over the days since is measured from.
    Accounts never scored are left out. Two index-range queries, whatever the number of ids."""
    if not account_ids:
        return {}
    found: dict[int, int] = {}
    for newest_by, bound in ((func.max, daily_scores.c.day <= day), (func.min, daily_scores.c.day > day)):
        picked = (
            select(daily_scores.c.account_id, newest_by(daily_scores.c.day).label("day"))
            .where(among(conn, daily_scores.c.account_id, account_ids), bound)
            .group_by(daily_scores.c.account_id)
            .subquery()
        )
        rows = conn.execute(
            select(daily_scores.c.account_id, daily_scores.c.account_score).join(
                picked,
                and_(daily_scores.c.account_id == picked.c.account_id, daily_scores.c.day == picked.c.day),
            )
        )
        for account_id, score in rows:
            found.setdefault(account_id, score)
    return found


def _daily_rows(conn: Connection, account_ids: Sequence[int], first: int, last: int) -> dict[int, list[DailyScores]]:
    """Per account, its rows in [first, last] oldest first, preceded by its last row before `first`."""
    carried_in = (
        select(daily_scores.c.account_id, func.max(daily_scores.c.day).label("day"))
        .where(daily_scores.c.account_id.in_(account_ids), daily_scores.c.day < first)
        .group_by(daily_scores.c.account_id)
        .subquery()
    )
    query = (
        select(daily_scores.c.account_id, daily_scores.c.day, *(daily_scores.c[name] for name in DAILY_VALUES))
        .where(
            daily_scores.c.account_id.in_(account_ids),
            or_(
                and_(daily_scores.c.day >= first, daily_scores.c.day <= last),
                tuple_(daily_scores.c.account_id, daily_scores.c.day).in_(
                    select(carried_in.c.account_id, carried_in.c.day)
                ),
            ),
        )
        .order_by(daily_scores.c.account_id, daily_scores.c.day)
    )
    found: dict[int, list[DailyScores]] = {}
    for row in conn.execute(query):
        values = dict(row._mapping)
        found.setdefault(values.pop("account_id"), []).append(DailyScores(**values))
    return found


def carried_forward(rows: Sequence[DailyScores], first: int, last: int) -> list[DailyScores]:
    """One entry per day from max(first, the first row's day) to `last`, each day carrying the
    latest row at or before it. `rows` are oldest first; the first may lie before `first`."""
    out: list[DailyScores] = []
    if not rows:
        return out
    start = max(first, rows[0].day)
    index, current = 0, rows[0]
    for day in range(start, last + 1):
        while index + 1 < len(rows) and rows[index + 1].day <= day:
            index += 1
            current = rows[index]
        out.append(replace(current, day=day))
    return out


def score_trends(
    db: Database, *, workspace_id: int, account_ids: Sequence[int], days: int = 30, today: int | None = None
) -> dict[int, list[int]]:
    """Per account, its overall score on each of the last `days` days, oldest first (carried
    forward; days before its first score are left out): the sparkline of a list row."""
    if not account_ids:
        return {}
    last = day_of(now_us()) if today is None else today
    first = last - days + 1
    with db.read() as conn:
        owned = set(
            conn.execute(
                select(accounts.c.id).where(accounts.c.workspace_id == workspace_id, accounts.c.id.in_(account_ids))
            ).scalars()
        )
        rows = _daily_rows(conn, [i for i in account_ids if i in owned], first, last) if owned else {}
    return {
        account_id: [entry.account_score for entry in carried_forward(rows.get(account_id, []), first, last)]
        for account_id in account_ids
        if account_id in owned
    }


@dataclass(frozen=True, slots=True)
class StageChangeFilter:
    since_us: int | None = None  # inclusive
    until_us: int | None = None  # exclusive
    direction: str | None = None  # "progressed" | "regressed"
    to_stage: str | None = None


@dataclass(frozen=True, slots=True)
class MovedAccount:
    id: int
    rtp_aid: str
    domain: str
    name: str
    from_stage: str
    to_stage: str
    at_us: int
    # Whole days between entering the previous stage and leaving it; None for a first stage.
    days_in_previous_stage: int | None


def list_stage_changes(
    db: Database, *, workspace_id: int, filters: StageChangeFilter, page: PageRequest
) -> Page[MovedAccount]:
    """GET /accounts/stage-changes: the workspace's stage changes, newest first (keyset pages)."""
    previous = stage_changes.alias("previous")
    entered_previous = (
        select(func.max(previous.c.at_us))
        .where(
            previous.c.account_id == stage_changes.c.account_id,
            tuple_(previous.c.at_us, previous.c.id) < tuple_(stage_changes.c.at_us, stage_changes.c.id),
        )
        .scalar_subquery()
    )
    query = (
        select(
            stage_changes.c.id.label("change_id"),
            accounts.c.id,
            accounts.c.rtp_aid,
            accounts.c.domain,
            accounts.c.name,
            stage_changes.c.from_stage,
            stage_changes.c.to_stage,
            stage_changes.c.at_us,
            entered_previous.label("entered_previous_us"),
        )
        .select_from(stage_changes.join(accounts, accounts.c.id == stage_changes.c.account_id))
        .where(stage_changes.c.workspace_id == workspace_id)
    )
    if filters.since_us is not None:
        query = query.where(stage_changes.c.at_us >= filters.since_us)
    if filters.until_us is not None:
        query = query.where(stage_changes.c.at_us < filters.until_us)
    if filters.to_stage is not None:
        query = query.where(stage_changes.c.to_stage == filters.to_stage)
    if filters.direction is not None:
        query = query.where(stage_changes.c.direction == filters.direction)
    if page.after is not None:
        query = query.where(tuple_(stage_changes.c.at_us, stage_changes.c.id) < tuple_(*_position(page.after)))
    sync_us = page.sync_us if page.sync_us is not None else now_us()
    with db.read() as conn:
        rows = conn.execute(
            query.order_by(stage_changes.c.at_us.desc(), stage_changes.c.id.desc()).limit(page.limit + 1)
        ).all()
    items = [
        MovedAccount(
            id=row.id,
            rtp_aid=row.rtp_aid,
            domain=row.domain,
            name=row.name,
            from_stage=row.from_stage,
            to_stage=row.to_stage,
            at_us=row.at_us,
            days_in_previous_stage=(
                (row.at_us - row.entered_previous_us) // US_PER_DAY if row.entered_previous_us is not None else None
            ),
        )
        for row in rows[: page.limit]
    ]
    last = rows[page.limit - 1] if len(rows) > page.limit else (rows[-1] if rows else None)
    return Page(
        items=items,
        has_next=len(rows) > page.limit,
        last_key=(last.at_us, last.change_id) if last is not None else None,
        sync_us=sync_us,
    )


def _position(after: tuple[Any, ...]) -> tuple[int, int]:
    if len(after) != 2 or not all(type(part) is int for part in after):
        raise InvalidPosition()
    return after[0], after[1]


@dataclass(frozen=True, slots=True)
class StageCounts:
    total: int
    # Accounts per journey stage; "" holds the accounts not scored yet.
    by_stage: dict[str, int]
    average_score: float | None


def stage_counts(db: Database, *, workspace_id: int) -> StageCounts:
    """How many accounts are in each journey stage now, and their average score.

    Stages and scores change only in scoring runs, and each run that changed any keeps the
    funnel it left (`record_stage_counts`): the latest one is the funnel now, a few rows. Only
    the accounts not scored yet are counted live (one index range), since pushes add them.
    No request reads every account.
    """
    with db.read() as conn:
        latest = (
            select(func.max(daily_stage_counts.c.day))
            .where(daily_stage_counts.c.workspace_id == workspace_id)
            .scalar_subquery()
        )
        rows = conn.execute(
            select(
                daily_stage_counts.c.journey_stage, daily_stage_counts.c.accounts, daily_stage_counts.c.score_sum
            ).where(daily_stage_counts.c.workspace_id == workspace_id, daily_stage_counts.c.day == latest)
        ).all()
        unscored = conn.execute(
            select(func.count()).where(accounts.c.workspace_id == workspace_id, accounts.c.journey_stage == "")
        ).scalar_one()
    by_stage = {stage: int(n) for stage, n, _ in rows}
    if unscored:
        by_stage[""] = int(unscored)
    total = sum(by_stage.values())
    score_sum = sum(int(points) for _, _, points in rows)  # an account not scored yet scores 0
    return StageCounts(total=total, by_stage=by_stage, average_score=score_sum / total if total else None)


def funnel_on(db: Database, *, workspace_id: int, day: int) -> dict[str, int] | None:
    """Accounts per journey stage at the end of `day` (the last funnel kept on or before it),
    or None when no scoring run had kept one by then."""
    with db.read() as conn:
        kept = conn.execute(
            select(func.max(daily_stage_counts.c.day)).where(
                daily_stage_counts.c.workspace_id == workspace_id, daily_stage_counts.c.day <= day
            )
        ).scalar_one_or_none()
        if kept is None:
            return None
        rows = conn.execute(
            select(daily_stage_counts.c.journey_stage, daily_stage_counts.c.accounts).where(
                daily_stage_counts.c.workspace_id == workspace_id, daily_stage_counts.c.day == kept
            )
        ).all()
    counts = dict.fromkeys(JOURNEY_STAGES, 0)
    counts.update({row.journey_stage: row.accounts for row in rows})
    return counts
