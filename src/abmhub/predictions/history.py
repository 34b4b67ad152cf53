"""A workspace's history as arrays: who existed when, what they did, when opportunities opened.

Read once per training run (a handful of grouped queries), then every snapshot — features,
population, labels and the hand-set score as of a day — is computed from these arrays without
touching the database again. Records are grouped per account, channel and day, so memory
follows the number of active account-days, not of raw records.

The definitions (§10):
- an account exists from its earliest record: its creation, or its earliest signal, activity
  or deal, whichever is earlier (a CRM backfill pushes accounts today with months of history);
- an account opens a new opportunity when its first open deal appears: the deal's first
  stage-history entry, else its `startDate`, else its creation;
- the population at day t: accounts that exist at t with no open or won deal at t. A deal is
  open from its opening until it closes (`closedDate`, else its last stage entry when its stage
  is a won or lost one); a won deal keeps its account out for good.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, case, func, literal, select

from abmhub.db.queries import tuples_in_batches
from abmhub.db.tables import (
    accounts,
    activities,
    activity_contacts,
    deal_accounts,
    deal_stage_history,
    deals,
    pipeline_stages,
    pipelines,
    signals,
)
from abmhub.predictions.features import (
    CHANNELS,
    Aggregates,
    ContactDays,
    Events,
    Floats,
    Ints,
    aggregates_as_of,
)
from abmhub.scoring import engine as scoring_engine
from abmhub.scoring.model import US_PER_DAY, deal_score
from abmhub.scoring.settings import SOURCES, ScoringSettings

NDArrayBool = NDArray[np.bool_]
NEVER = np.iinfo(np.int64).max // 4  # a day that never comes
PARTITION = 50_000  # grouped rows read at a time


@dataclass(slots=True)
class History:
    ids: Ints  # accounts.id, in the arrays' order
    rtp_aids: list[str]
    exists_from: Ints  # the day each account exists from
    events: Events
    contacts: ContactDays
    # One row per (deal, account): the day the deal opened, the day it closed (NEVER: open), won.
    deal_account: Ints
    deal_opened: Ints
    deal_closed: Ints
    deal_won: NDArrayBool
    first_day: int  # the earliest record of the workspace
    settings: ScoringSettings

    @property
    def n(self) -> int:
        return len(self.ids)

    def aggregates(self, day: int) -> Aggregates:
        return aggregates_as_of(self.events, self.contacts, self.n, day)

    def population(self, day: int) -> NDArrayBool:
        """Accounts that exist at the end of `day` with no open or won deal then."""
        busy = (self.deal_opened <= day) & (self.deal_won | (self.deal_closed > day))
        taken = np.zeros(self.n, dtype=bool)
        taken[self.deal_account[busy]] = True
        return (self.exists_from <= day) & ~taken

    def opens_within(self, day: int, horizon_days: int) -> NDArrayBool:
        """Accounts with a deal opening in (day, day + horizon]."""
        opening = (self.deal_opened > day) & (self.deal_opened <= day + horizon_days)
        label = np.zeros(self.n, dtype=bool)
        label[self.deal_account[opening]] = True
        return label

    def hand_set_scores(self, day: int) -> Floats:
        """`rtp_account_score` as the scoring job would have computed it at the end of `day`
        from the records known then, for accounts with no open or won deal (the population)."""
        settings = self.settings
        e = self.events
        age = day - e.day
        known = age >= 0
        scores: dict[str, Ints] = {}
        for c, source in enumerate(SOURCES):
            model = settings.sources[source]
            take = known & (e.channel == c) & (age <= model.horizon_days)
            worth = e.points[take] * 0.5 ** (age[take] / model.half_life_days)
            scores[source] = _saturate(_sums(e.account[take], worth, self.n), model.saturation)
        engagement_model = settings.engagement
        take = known & (e.channel == CHANNELS.index("activities")) & (age <= engagement_model.horizon_days)
        worth = e.points[take] * 0.5 ** (age[take] / engagement_model.half_life_days)
        engagement = _saturate(_sums(e.account[take], worth, self.n), engagement_model.saturation)
        # `model.overall_score`, vectorised in its order of additions (same float result).
        weights = settings.weights
        total: Floats = np.zeros(self.n)
        for source in SOURCES:
            total = total + weights.get(source, 0.0) * scores[source]
        total = total + weights.get("engagement", 0.0) * engagement
        total = total + weights.get("deals", 0.0) * deal_score(settings, won=False, open_=False)
        result: Floats = np.clip(np.floor(total + 0.5), 0, 100)
        return result


def _sums(index: Ints, weights: Floats, n: int) -> Floats:
    return np.asarray(np.bincount(index, weights=weights, minlength=n), dtype=np.float64)


def _saturate(total: Floats, saturation: float) -> Ints:
    """`model.saturate` over an array (same rounding: half up)."""
    raw = np.floor(100 * (1 - np.exp(-np.maximum(total, 0) / saturation)) + 0.5)
    return np.where(total > 0, raw, 0).astype(np.int64)


def _base_points_sql(settings: ScoringSettings) -> Any:
    """A signal row's undecayed hand-set points (`model.base_points`), in SQL."""
    per_source = []
    for source in SOURCES:
        model = settings.sources[source]
        per_type = case(*((signals.c.type == name, points) for name, points in model.points.items()), else_=0.0)
        if source == "bombora":
            surge = case((signals.c.score > model.surge_baseline, signals.c.score - model.surge_baseline), else_=0)
            base = per_type * surge * signals.c.weight
        else:
            base = per_type * signals.c.weight * signals.c["count"]
        per_source.append((signals.c.source == source, base))
    return case(*per_source, else_=0.0)


def load_history(conn: Connection, workspace_id: int, *, until_day: int, settings: ScoringSettings) -> History:
    """Everything of the workspace dated on or before `until_day`, as arrays."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.rtp_aid, accounts.c.domain, accounts.c.created_us)
        .where(accounts.c.workspace_id == workspace_id)
        .order_by(accounts.c.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    index = {r.id: i for i, r in enumerate(rows)}
    by_domain = {r.domain: i for i, r in enumerate(rows)}
    exists = np.array([r.created_us // US_PER_DAY for r in rows], dtype=np.int64)
    channel_of = {name: c for c, name in enumerate(CHANNELS)}

    # Typed arrays, not lists: millions of grouped rows as Python floats would take ~30 bytes
    # each per column (the training benchmark's peak memory); rows are read in partitions.
    account, channel, day = array("q"), array("q"), array("q")
    count, points = array("d"), array("d")
    signal_rows = tuples_in_batches(
        conn,
        select(
            signals.c.domain,
            signals.c.source,
            signals.c.occurred_day,
            func.sum(signals.c["count"]),
            func.sum(_base_points_sql(settings)),
        )
        .where(signals.c.workspace_id == workspace_id, signals.c.occurred_day <= until_day)
        .group_by(signals.c.domain, signals.c.source, signals.c.occurred_day),
        PARTITION,
    )
    for partition in signal_rows:  # column by column: ~1 µs a row less than row by row
        domains, sources, days, totals, worths = zip(*partition, strict=True)
        account.extend([by_domain.get(domain, -1) for domain in domains])
        channel.extend([channel_of.get(source, -1) for source in sources])
        day.extend(days)
        count.extend(totals)
        points.extend([worth or 0.0 for worth in worths])

    activity_day = activities.c.occurred_us // US_PER_DAY
    engagement = settings.engagement.points
    kind_points = case(*((activities.c.kind == kind, p) for kind, p in engagement.items()), else_=0.0)
    activity_channel = channel_of["activities"]
    activity_rows = tuples_in_batches(
        conn,
        select(activities.c.account_id, activity_day, func.count(), func.sum(kind_points))
        .where(
            activities.c.workspace_id == workspace_id,
            activities.c.account_id.is_not(None),
            activities.c.occurred_us < (until_day + 1) * US_PER_DAY,
        )
        .group_by(activities.c.account_id, activity_day),
        PARTITION,
    )
    for batch in activity_rows:
        account_ids, on_days, totals, worths = zip(*batch, strict=True)
        account.extend([index[account_id] for account_id in account_ids])
        channel.extend([activity_channel] * len(batch))
        day.extend(on_days)
        count.extend(totals)
        points.extend([worth or 0.0 for worth in worths])
    # In one order whatever order the database grouped them in: sums then add up in the same
    # order, to the last bit (the training rows' fingerprint is the same for the same data).
    # Narrow integers (an account's index and a day fit in 32 bits, a channel in 8): the events
    # are most of a large workspace's history in memory.
    key = (
        np.frombuffer(day, dtype=np.int64).astype(np.int32),
        np.frombuffer(channel, dtype=np.int64).astype(np.int8),
        np.frombuffer(account, dtype=np.int64).astype(np.int32),
    )
    del day, channel, account
    known = (key[1] >= 0) & (key[2] >= 0)  # a signal of a domain with no account, or of another source
    order = np.lexsort(key)
    order = order[known[order]]
    events = Events(
        key[2][order],
        key[1][order],
        key[0][order],
        np.frombuffer(count, dtype=np.float64)[order],
        np.frombuffer(points, dtype=np.float64)[order],
    )
    del key, known, order, count, points
    if len(events.account):
        np.minimum.at(exists, events.account, events.day)

    contact_rows = conn.execute(
        select(activities.c.account_id, activity_contacts.c.contact_id, activity_day)
        .join(activity_contacts, activity_contacts.c.activity_id == activities.c.id)
        .where(
            activities.c.workspace_id == workspace_id,
            activities.c.account_id.is_not(None),
            activities.c.occurred_us < (until_day + 1) * US_PER_DAY,
        )
        .distinct()
    ).all()
    contacts = ContactDays(
        np.array([index[r[0]] for r in contact_rows], dtype=np.int64),
        np.array([r[1] for r in contact_rows], dtype=np.int64),
        np.array([r[2] for r in contact_rows], dtype=np.int64),
    )

    deal_account, opened, closed, won = _deals(conn, workspace_id, index)
    known = opened <= until_day
    if known.any():
        np.minimum.at(exists, deal_account[known], opened[known])
    # A deal opened after the cut is not known at the cut: it only labels the snapshots before it.
    closed = np.where(closed > until_day, NEVER, closed)
    won = won & (closed != NEVER)
    first = int(min(exists.min(initial=until_day), until_day))
    return History(
        ids, [r.rtp_aid for r in rows], exists, events, contacts, deal_account, opened, closed, won, first, settings
    )


def _deals(conn: Connection, workspace_id: int, index: dict[int, int]) -> tuple[Ints, Ints, Ints, NDArrayBool]:
    """(account, opened day, closed day, won) per deal and associated account."""
    first_entry = (
        select(deal_stage_history.c.deal_id, func.min(deal_stage_history.c.entered_us).label("first_us"),
               func.max(deal_stage_history.c.entered_us).label("last_us"))
        .group_by(deal_stage_history.c.deal_id)
        .subquery()
    )  # fmt: skip
    meaning = {
        row.id: scoring_engine.deal_journey(row)
        for row in conn.execute(
            select(deals.c.id, *_journey_columns())
            .select_from(_journey_join())
            .where(deals.c.workspace_id == workspace_id)
        )
    }
    rows = conn.execute(
        select(
            deal_accounts.c.account_id,
            deals.c.id,
            func.coalesce(first_entry.c.first_us, deals.c.start_us, deals.c.created_us).label("opened_us"),
            func.coalesce(deals.c.closed_us, literal(None)).label("closed_us"),
            first_entry.c.last_us,
        )
        .join(deals, deals.c.id == deal_accounts.c.deal_id)
        .outerjoin(first_entry, first_entry.c.deal_id == deals.c.id)
        .where(deal_accounts.c.workspace_id == workspace_id, deal_accounts.c.account_id.is_not(None))
    ).all()
    account, opened, closed, won = [], [], [], []
    for account_id, deal_id, opened_us, closed_us, last_us in rows:
        if account_id not in index:
            continue
        journey = meaning.get(deal_id)
        is_open = journey == "Opportunity"
        end_us = None if is_open else (closed_us if closed_us is not None else (last_us or opened_us))
        account.append(index[account_id])
        opened.append(opened_us // US_PER_DAY)
        closed.append(NEVER if end_us is None else max(end_us // US_PER_DAY, opened_us // US_PER_DAY))
        won.append(journey == "Customer")
    return (
        np.array(account, dtype=np.int64),
        np.array(opened, dtype=np.int64),
        np.array(closed, dtype=np.int64),
        np.array(won, dtype=bool),
    )


def _journey_columns() -> list[Any]:
    return [
        deals.c.stage_id,
        deals.c.stage_label,
        pipeline_stages.c.journey_stage,
        (pipeline_stages.c.id.is_not(None)).label("defined"),
    ]


def _journey_join() -> Any:
    return deals.outerjoin(
        pipelines,
        (pipelines.c.workspace_id == deals.c.workspace_id) & (pipelines.c.pipeline_id == deals.c.pipeline_id),
    ).outerjoin(
        pipeline_stages,
        (pipeline_stages.c.pipeline_pk == pipelines.c.id) & (pipeline_stages.c.stage_id == deals.c.stage_id),
    )
