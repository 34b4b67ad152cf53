"""Point-in-time features: what was known about an account at the end of a day (§10).

A feature row describes an account as of day t from the records dated on or before t only:
signals by their `occurredAt`, sales activities by their time. Five channels — the four intent
sources and the sales activities — each give eight numbers from the year up to t: counts over
7, 30, 90 and 365 days (the year's level says what is usual for the account, so that a burst
stands out), sums decayed linearly over 7 and 30 days, momentum (the last 7 days against
the 21 before) and the days since the last one; plus the distinct contacts of the last 90
days' activities. Deals, journey stages, scores, tags and custom fields are never
features: they are known as they are now, not as they were at t.

The same numbers come from two places that must agree (a test holds them to it):
- training (`History.aggregates`): the workspace's records grouped per account, channel and day
  into arrays, then summed for any t with numpy;
- serving (`current_aggregates`): for one batch of accounts as of today, grouped in SQL.
Both give `Aggregates`; `design_matrix` turns them into the model's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, String, case, func, literal, select

from abmhub.db.queries import among
from abmhub.db.tables import activities, activity_contacts, signals
from abmhub.scoring.model import US_PER_DAY
from abmhub.scoring.settings import SOURCES

CHANNELS = (*SOURCES, "activities")
CHANNEL_WORDS = {
    "website": "Website visits",
    "g2": "G2 research",
    "bombora": "Bombora surges",
    "linkedin_ads": "LinkedIn ad engagement",
    "activities": "Sales activities",
}
LOOKBACK_DAYS = 365  # every feature looks at most this far back
CONTACT_DAYS = 90
RECENCY_WINDOWS = (7, 30)
# Per channel, in this order: counts over the last 7, 30, 90 and 365 days (age 0..6, 0..29, 0..89,
# 0..364 days), sums decayed linearly over 7 and 30 days (a record of age a counts (w − a) / w:
# today's fully, the last day's of the window 1/w), the count of the 21 days before the last 7
# (age 7..27), and the age in days of the most recent one (LOOKBACK_DAYS + 1 when none).
STATS = ("c7", "c30", "c90", "c365", "d7", "d30", "prev21", "age")
NO_RECORD_AGE = LOOKBACK_DAYS + 1

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    words: str  # what a marketer reads in an explanation


def _channel_features(channel: str) -> list[Feature]:
    what = CHANNEL_WORDS[channel]
    return [
        Feature(f"{channel}_7d", f"{what}, last 7 days"),
        Feature(f"{channel}_30d", f"{what}, last 30 days"),
        Feature(f"{channel}_90d", f"{what}, last 90 days"),
        Feature(f"{channel}_365d", f"{what}, last 12 months"),
        Feature(f"{channel}_recent_week_weighted", f"{what}, weighted to the last week"),
        Feature(f"{channel}_recent_month_weighted", f"{what}, weighted to the last month"),
        Feature(f"{channel}_momentum", f"{what}: last 7 days against the 3 weeks before"),
        Feature(f"{channel}_days_since", f"Days since the last of the {what.lower()}"),
    ]


FEATURES: tuple[Feature, ...] = (
    *(feature for channel in CHANNELS for feature in _channel_features(channel)),
    Feature("activity_contacts_90d", "Contacts in sales activities, last 90 days"),
)
FEATURE_NAMES = tuple(feature.name for feature in FEATURES)


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Per account: `stats[i, channel, stat]` (STATS order) and `contacts[i]`."""

    stats: Floats  # shape (n, len(CHANNELS), len(STATS))
    contacts: Floats  # shape (n,)

    @staticmethod
    def empty(n: int) -> Aggregates:
        stats = np.zeros((n, len(CHANNELS), len(STATS)))
        stats[:, :, STATS.index("age")] = NO_RECORD_AGE
        return Aggregates(stats, np.zeros(n))


def raw_values(agg: Aggregates) -> Floats:
    """The features as a person reads them (counts, days, the momentum as a ratio): shape (n, features)."""
    s = agg.stats
    per_channel = [
        *(s[:, :, k] for k in range(6)),
        (s[:, :, 0] + 1.0) / (s[:, :, 6] / 3.0 + 1.0),
        s[:, :, 7],
    ]
    columns = np.stack(per_channel, axis=2).reshape(len(s), -1)  # channel-major, as FEATURES
    return np.concatenate([columns, agg.contacts[:, None]], axis=1)


def design_matrix(agg: Aggregates) -> Floats:
    """The model's inputs: counts and sums on a log scale (the tenth visit says less than the
    first), momentum as a log ratio, recency as log days. Shape (n, len(FEATURES))."""
    s = agg.stats
    logs = np.log1p(s[:, :, :6])
    momentum = np.log1p(s[:, :, 0]) - np.log1p(s[:, :, 6] / 3.0)
    recency = np.log1p(s[:, :, 7])
    columns = np.concatenate([logs, momentum[:, :, None], recency[:, :, None]], axis=2).reshape(len(s), -1)
    return np.concatenate([columns, np.log1p(agg.contacts)[:, None]], axis=1)


# --- training: a workspace's records as arrays, summed as of any day ---------------------------


@dataclass(slots=True)
class Events:
    """Records grouped per (account, channel, day): `count` for the features, `points` (the
    hand-set score's undecayed points) for the hand-set score as of a day."""

    account: NDArray[np.int32]
    channel: NDArray[np.int8]
    day: NDArray[np.int32]
    count: Floats
    points: Floats


@dataclass(slots=True)
class ContactDays:
    """(account, contact, day) of every contact of an account's activities."""

    account: Ints
    contact: Ints
    day: Ints


def aggregates_as_of(events: Events, contacts: ContactDays, n: int, day: int) -> Aggregates:
    """The `Aggregates` of all n accounts at the end of `day` (records of later days unseen)."""
    age = day - events.day
    inside = np.flatnonzero((age >= 0) & (age < LOOKBACK_DAYS))
    age = age[inside]
    key = events.account[inside] * len(CHANNELS) + events.channel[inside]
    count = events.count[inside]
    size = n * len(CHANNELS)

    def total(weights: Floats) -> Floats:
        return np.asarray(np.bincount(key, weights=weights, minlength=size), dtype=np.float64)

    stats = np.empty((size, len(STATS)))
    stats[:, 0] = total(count * (age < 7))
    stats[:, 1] = total(count * (age < 30))
    stats[:, 2] = total(count * (age < 90))
    stats[:, 3] = total(count)
    for k, days in enumerate(RECENCY_WINDOWS):
        stats[:, 4 + k] = total(count * np.where(age < days, (days - age) / days, 0.0))
    stats[:, 6] = total(count * ((age >= 7) & (age < 28)))
    youngest = np.full(size, NO_RECORD_AGE, dtype=np.int64)
    np.minimum.at(youngest, key, age)
    stats[:, 7] = youngest
    c_age = day - contacts.day
    recent = (c_age >= 0) & (c_age < CONTACT_DAYS)
    pairs = np.unique(np.stack([contacts.account[recent], contacts.contact[recent]]), axis=1)
    distinct = np.bincount(pairs[0], minlength=n).astype(np.float64) if pairs.size else np.zeros(n)
    return Aggregates(stats.reshape(n, len(CHANNELS), len(STATS)), distinct)


# --- serving: one batch of accounts as of today, in SQL ----------------------------------------


def stats_sql(day_column: Any, count_column: Any, today: int) -> list[Any]:
    """The SQL twins of `aggregates_as_of`'s sums (STATS order) over the rows of a GROUP BY;
    rows outside the lookback (or dated after today) count for nothing, so the query may read a
    wider window (the scoring job's signal query does, and computes these in the same pass).

    Every condition is a range of days (`BETWEEN` two constants), every weight plain integer
    arithmetic: the scoring job evaluates these for each of millions of signals, and each CASE
    with an age computed again, or a `pow()`, cost it measurably (docs/performance.md,
    "Predictions"). The youngest record's day comes back as a day; `_fill` makes it an age.
    """

    def within(first_age: int, last_age: int) -> Any:
        return day_column.between(today - last_age, today - first_age)

    def counted(first_age: int, last_age: int) -> Any:
        return func.sum(case((within(first_age, last_age), count_column), else_=0))

    def weighted(days: int) -> Any:
        # Σ count · (days − age) / days over ages 0 … days − 1: (days − age) = day − (today − days).
        return func.sum(case((within(0, days - 1), count_column * (day_column - (today - days))), else_=0)) / float(
            days
        )

    return [
        counted(0, 6),
        counted(0, 29),
        counted(0, 89),
        counted(0, LOOKBACK_DAYS - 1),
        weighted(RECENCY_WINDOWS[0]),
        weighted(RECENCY_WINDOWS[1]),
        counted(7, 27),
        func.max(case((day_column <= today, day_column))),
    ]


SignalStats = dict[str, dict[str, Sequence[Any]]]  # domain → source → STATS values (from SQL)


def signal_stats(conn: Connection, workspace_id: int, domains: Sequence[str], today: int) -> SignalStats:
    """The signals' STATS per domain and source, as of the end of `today`."""
    found: SignalStats = {}
    rows = conn.execute(
        select(signals.c.domain, signals.c.source, *stats_sql(signals.c.occurred_day, signals.c["count"], today))
        .where(
            signals.c.workspace_id == workspace_id,
            among(conn, signals.c.domain, list(domains), String),
            signals.c.occurred_day.between(today - LOOKBACK_DAYS + 1, today),
        )
        .group_by(signals.c.domain, signals.c.source)
    ).all()
    for domain, source, *values in rows:
        found.setdefault(domain, {})[source] = values
    return found


def _fill(agg: Aggregates, at: list[int], on: list[int], found: list[Sequence[Any]], today: int) -> None:
    """Put rows of `stats_sql` sums (accounts `at`, channels `on`) into `agg`, all at once:
    a NULL sum is 0; the youngest record's day becomes its age, NO_RECORD_AGE when there is
    none in the lookback."""
    if not found:
        return
    values = np.array(found, dtype=np.float64)  # None -> nan
    sums, age = values[:, :-1], today - values[:, -1]
    values[:, :-1] = np.where(np.isnan(sums), 0.0, sums)
    values[:, -1] = np.where(np.isnan(age) | (age >= LOOKBACK_DAYS), NO_RECORD_AGE, age)
    agg.stats[np.array(at), np.array(on)] = values


def current_aggregates(
    conn: Connection,
    workspace_id: int,
    batch: Mapping[str, int],
    ids: Sequence[int],
    today: int,
    *,
    signal_sums: SignalStats | None = None,
) -> Aggregates:
    """`Aggregates` as of the end of `today` for the accounts `ids` (`batch`: domain → id).
    `signal_sums`: the signals' part when the caller has it already (the scoring job)."""
    index = {account_id: i for i, account_id in enumerate(ids)}
    agg = Aggregates.empty(len(ids))
    oldest = today - LOOKBACK_DAYS + 1
    contacts_from = today - CONTACT_DAYS + 1
    channel_of = {channel: c for c, channel in enumerate(CHANNELS)}
    if signal_sums is None:
        signal_sums = signal_stats(conn, workspace_id, list(batch), today) if batch else {}
    at: list[int] = []
    on: list[int] = []
    found: list[Sequence[Any]] = []
    for domain, per_source in signal_sums.items():
        i = index.get(batch.get(domain, -1))
        if i is None:
            continue
        for source, values in per_source.items():
            channel = channel_of.get(source)
            if channel is not None:
                at.append(i)
                on.append(channel)
                found.append(values)
    _fill(agg, at, on, found, today)
    if ids:
        day = activities.c.occurred_us // US_PER_DAY
        window = activities.c.occurred_us.between(oldest * US_PER_DAY, (today + 1) * US_PER_DAY - 1)
        rows = conn.execute(
            select(activities.c.account_id, *stats_sql(day, literal(1), today))
            .where(among(conn, activities.c.account_id, list(ids)), window)
            .group_by(activities.c.account_id)
        ).all()
        activity_channel = channel_of["activities"]
        _fill(agg, [index[row[0]] for row in rows], [activity_channel] * len(rows), [row[1:] for row in rows], today)
        recent = activities.c.occurred_us.between(contacts_from * US_PER_DAY, (today + 1) * US_PER_DAY - 1)
        rows = conn.execute(
            select(activities.c.account_id, func.count(activity_contacts.c.contact_id.distinct()))
            .join(activity_contacts, activity_contacts.c.activity_id == activities.c.id)
            .where(among(conn, activities.c.account_id, list(ids)), recent)
            .group_by(activities.c.account_id)
        ).all()
        for account_id, distinct in rows:
            agg.contacts[index[account_id]] = distinct
    return agg
