"""Deals with stage history, and the pipelines they move through (contract §2.8–§2.10).

A push is one transaction: the deals it names are loaded in one query, every item is
applied in request order to that working set, and the outcome is written in batched
statements — the same shape as the account push.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from abmhub.accounts.domains import normalize_domain
from abmhub.bulk import PushOutcome, outcome
from abmhub.db.engine import Database, sync_pass
from abmhub.db.queries import insert_dicts
from abmhub.db.tables import (
    accounts,
    deal_accounts,
    deal_stage_history,
    deals,
    pipeline_stages,
    pipelines,
)
from abmhub.deals.records import DealExtras, deal_record
from abmhub.deals.schemas import DealItem, PipelineDefinition
from abmhub.errors import Conflict
from abmhub.ids import new_uuid7
from abmhub.paging import Page, PageRequest
from abmhub.scoring.inputs import mark_accounts, mark_selected
from abmhub.timefmt import parse_iso8601
from abmhub.webhooks import outbox
from abmhub.webhooks.events import DEAL_STAGE_CHANGED, Event, deal_stage_changed

# --- pipelines -----------------------------------------------------------------------------------


class PipelinesExist(Conflict):
    def __init__(self, pipeline_ids: Sequence[str]) -> None:
        super().__init__(f"Pipeline(s) already exist: {', '.join(pipeline_ids)}")


_WON = re.compile(r"(?<![a-z])won(?![a-z])")
_LOST = re.compile(r"(?<![a-z])lost(?![a-z])")


def journey_stage_for(label: str) -> str | None:
    """The journey stage a deal stage gives when none is configured (§6.19)."""
    lowered = label.lower()
    if _WON.search(lowered):
        return "Customer"
    if _LOST.search(lowered):
        return None
    return "Opportunity"


def create_pipelines(db: Database, *, workspace_id: int, definitions: Sequence[PipelineDefinition]) -> list[str]:
    """Create pipelines with their stages; all or nothing (a known pipelineId is a 409)."""
    wanted = [d.pipelineId for d in definitions]
    with db.write(workspace_id) as tx:
        existing = set(
            tx.conn.execute(
                select(pipelines.c.pipeline_id).where(
                    pipelines.c.workspace_id == workspace_id, pipelines.c.pipeline_id.in_(wanted)
                )
            ).scalars()
        )
        if existing:
            raise PipelinesExist([p for p in wanted if p in existing])
        stage_rows = []
        for definition in definitions:
            pipeline_pk = tx.conn.execute(
                insert(pipelines)
                .values(
                    workspace_id=workspace_id,
                    pipeline_id=definition.pipelineId,
                    label=definition.pipelineLabel,
                    created_us=tx.now_us,
                )
                .returning(pipelines.c.id)
            ).scalar_one()
            for position, stage in enumerate(definition.stages):
                journey = (
                    stage.journeyStage
                    if "journeyStage" in stage.model_fields_set
                    else journey_stage_for(stage.stageLabel)
                )
                stage_rows.append(
                    {
                        "pipeline_pk": pipeline_pk,
                        "stage_id": stage.stageId,
                        "label": stage.stageLabel,
                        "journey_stage": journey,
                        "position": position,
                    }
                )
        tx.conn.execute(insert(pipeline_stages), stage_rows)
        # Deals already in these pipelines now have defined stages: rescore their accounts.
        mark_selected(
            tx.conn,
            select(deal_accounts.c.account_id)
            .join(deals, deals.c.id == deal_accounts.c.deal_id)
            .where(deals.c.workspace_id == workspace_id, deals.c.pipeline_id.in_(wanted)),
        )
    return wanted


def list_pipelines(db: Database, *, workspace_id: int) -> list[dict[str, Any]]:
    """Every pipeline of the workspace with its stages in their defined order."""
    with db.read() as conn:
        rows = conn.execute(
            select(
                pipelines.c.pipeline_id,
                pipelines.c.label,
                pipeline_stages.c.stage_id,
                pipeline_stages.c.label.label("stage_label"),
                pipeline_stages.c.journey_stage,
            )
            .join(pipeline_stages, pipeline_stages.c.pipeline_pk == pipelines.c.id)
            .where(pipelines.c.workspace_id == workspace_id)
            .order_by(pipelines.c.id, pipeline_stages.c.position)
        ).all()
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        pipeline = result.setdefault(
            row.pipeline_id, {"pipelineId": row.pipeline_id, "pipelineLabel": row.label, "stages": []}
        )
        pipeline["stages"].append(
            {"stageId": row.stage_id, "stageLabel": row.stage_label, "journeyStage": row.journey_stage}
        )
    return list(result.values())


# --- the working set of a deal push --------------------------------------------------------------

_FIELDS = {  # request key -> column
    "name": "name",
    "amount": "amount",
    "dealCurrencyCode": "currency",
    "stageId": "stage_id",
    "stageLabel": "stage_label",
    "pipelineId": "pipeline_id",
    "pipelineLabel": "pipeline_label",
    "ownerName": "owner_name",
    "ownerEmail": "owner_email",
    "ownerId": "owner_id",
}
_DATES = {"startDate": "start_us", "closedDate": "closed_us"}
_COLUMNS = (*_FIELDS.values(), *_DATES.values())


@dataclass(slots=True, eq=False)
class DealState:
    id: int | None
    uuid: str
    external_deal_id: str
    values: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # new entries to insert
    known_history: set[tuple[str, int]] = field(default_factory=set)
    associations: list[dict[str, Any]] | None = None  # replacement, when pushed
    dirty: bool = False
    stored_stage: str | None = None  # the stage before this request (webhooks: deal.stage_changed)

    @property
    def stage_moved(self) -> bool:
        stage = self.values.get("stage_id")
        return stage is not None and stage != self.stored_stage


def _association(entry: Any) -> dict[str, Any]:
    domain = normalize_domain(entry.domain) if entry.domain is not None else None
    return {
        "domain": domain,
        "given_domain": entry.domain,
        "external_id": entry.externalId,
        "name": entry.name,
        "account_id": None,
    }


def _resolve_associations(conn: Connection, workspace_id: int, states: Sequence[DealState]) -> None:
    """Match the pushed associations to accounts: domain, then externalId, then a unique name."""
    pushed = [a for s in states if s.associations for a in s.associations]
    if not pushed:
        return
    domains = {a["domain"] for a in pushed if a["domain"]}
    external_ids = {a["external_id"] for a in pushed if a["external_id"]}
    names = {a["name"] for a in pushed if a["name"]}
    by_domain: dict[str, int] = {}
    by_external_id: dict[str, int] = {}
    by_name: dict[str, int] = {}
    scoped = accounts.c.workspace_id == workspace_id
    if domains:
        query = select(accounts.c.domain, accounts.c.id).where(scoped, accounts.c.domain.in_(domains))
        by_domain = dict(conn.execute(query).all())
    if external_ids:
        query = select(accounts.c.external_id, accounts.c.id).where(scoped, accounts.c.external_id.in_(external_ids))
        by_external_id = dict(conn.execute(query).all())
    if names:
        query = (
            select(accounts.c.name, func.min(accounts.c.id))
            .where(scoped, accounts.c.name.in_(names))
            .group_by(accounts.c.name)
            .having(func.count() == 1)
        )
        by_name = dict(conn.execute(query).all())
    for association in pushed:
        association["account_id"] = (
            by_domain.get(association["domain"])
            or by_external_id.get(association["external_id"])
            or by_name.get(association["name"])
        )


def _latest_stage(state: DealState) -> str | None:
    """The stage the recorded history ends in (a backfill may already end in the new stage)."""
    if not state.known_history:
        return None
    return max(state.known_history, key=lambda entry: entry[1])[0]


def _apply(state: DealState, item: DealItem, now: int) -> None:
    given = item.model_fields_set
    before = dict(state.values)
    for key, column in _FIELDS.items():
        if key in given:
            state.values[column] = getattr(item, key)
    for key, column in _DATES.items():
        if key in given:
            value = getattr(item, key)
            state.values[column] = parse_iso8601(value) if value is not None else None
    for entry in item.stageHistory or []:
        entered = parse_iso8601(entry.enteredAt)
        if (entry.stageId, entered) not in state.known_history:
            state.known_history.add((entry.stageId, entered))
            state.history.append(
                {
                    "stage_id": entry.stageId,
                    "stage_label": entry.stageLabel,
                    "pipeline_id": state.values.get("pipeline_id"),
                    "entered_us": entered,
                }
            )
    stage = state.values.get("stage_id")
    if stage is not None and stage != before.get("stage_id") and _latest_stage(state) != stage:
        if "stageLabel" not in given:  # the old stage's label would be wrong; look it up
            state.values["stage_label"] = None
        state.known_history.add((stage, now))
        state.history.append(
            {
                "stage_id": stage,
                "stage_label": state.values.get("stage_label"),
                "pipeline_id": state.values.get("pipeline_id"),
                "entered_us": now,
            }
        )
    if item.associatedAccounts is not None:
        state.associations = [_association(entry) for entry in item.associatedAccounts]
    state.dirty = state.dirty or before != state.values or bool(state.history) or state.associations is not None


def push_deals(db: Database, *, workspace_id: int, items: Sequence[DealItem]) -> PushOutcome:
    """Upsert deals by externalDealId, in request order, in one transaction."""
    with db.write(workspace_id) as tx:
        conn, now = tx.conn, tx.now_us
        wanted = list(dict.fromkeys(item.externalDealId for item in items))
        loaded = conn.execute(
            select(deals.c.id, deals.c.uuid, deals.c.external_deal_id, *[deals.c[c] for c in _COLUMNS]).where(
                deals.c.workspace_id == workspace_id, deals.c.external_deal_id.in_(wanted)
            )
        ).all()
        states: dict[str, DealState] = {
            row.external_deal_id: DealState(
                row.id,
                row.uuid,
                row.external_deal_id,
                {c: row._mapping[c] for c in _COLUMNS},
                stored_stage=row.stage_id,
            )
            for row in loaded
        }
        by_id = {s.id: s for s in states.values()}
        if by_id:
            for deal_id, stage_id, entered in conn.execute(
                select(
                    deal_stage_history.c.deal_id, deal_stage_history.c.stage_id, deal_stage_history.c.entered_us
                ).where(deal_stage_history.c.deal_id.in_(list(by_id)))
            ):
                by_id[deal_id].known_history.add((stage_id, entered))
        results: list[dict[str, Any]] = []
        for item in items:
            problem = _item_problem(item)
            if problem:
                results.append({"externalDealId": item.externalDealId, "status": "failed", "error": problem})
                continue
            state = states.get(item.externalDealId)
            if state is None:
                state = DealState(None, new_uuid7(), item.externalDealId, dict.fromkeys(_COLUMNS))
                states[item.externalDealId] = state
            _apply(state, item, now)
            results.append({"externalDealId": item.externalDealId, "status": "upserted"})
        changed = [s for s in states.values() if s.dirty]
        _fill_stage_labels(conn, workspace_id, changed)
        _resolve_associations(conn, workspace_id, changed)
        _write_deals(conn, workspace_id, changed, now)
        moved = [s for s in changed if s.stage_moved]
        if moved:
            outbox.publish(conn, workspace_id, now, lambda audience: _stage_events(conn, audience, moved))
    return outcome(results, ("upserted", "failed"))


def _stage_events(conn: Connection, audience: outbox.Listeners, moved: Sequence[DealState]) -> list[Event]:
    """`deal.stage_changed` for each deal whose stage this request changed (or first set)."""
    if not audience.want(DEAL_STAGE_CHANGED):
        return []
    ids = [s.id for s in moved if s.id is not None]
    rows = {row.id: row for row in conn.execute(select(deals).where(deals.c.id.in_(ids)))}
    extras = deal_extras(conn, ids)
    return [deal_stage_changed(deal_record(rows[s.id], extras), s.stored_stage) for s in moved if s.id is not None]


def _item_problem(item: DealItem) -> str | None:
    """Why an item cannot be stored, or None. (Shape errors never get here: they are 400s.)"""
    for index, entry in enumerate(item.associatedAccounts or []):
        if entry.domain is None and entry.externalId is None and entry.name is None:
            return f"associatedAccounts.{index} needs a domain, externalId or name"
    return None


def _fill_stage_labels(conn: Connection, workspace_id: int, states: Sequence[DealState]) -> None:
    """Stage labels left out of a push come from the pipeline definitions (POST /deal-stages)."""
    wanted = {s.values["stage_id"] for s in states if s.values.get("stage_id") and not s.values.get("stage_label")}
    wanted |= {h["stage_id"] for s in states for h in s.history if not h["stage_label"]}
    if not wanted:
        return
    rows = conn.execute(
        select(pipelines.c.pipeline_id, pipeline_stages.c.stage_id, pipeline_stages.c.label)
        .join(pipeline_stages, pipeline_stages.c.pipeline_pk == pipelines.c.id)
        .where(pipelines.c.workspace_id == workspace_id, pipeline_stages.c.stage_id.in_(sorted(wanted)))
    ).all()
    exact: dict[tuple[str | None, str], str] = {(row.pipeline_id, row.stage_id): row.label for row in rows}
    by_stage: dict[str, set[str]] = {}
    for row in rows:
        by_stage.setdefault(row.stage_id, set()).add(row.label)

    def label(pipeline_id: str | None, stage_id: str) -> str | None:
        if (pipeline_id, stage_id) in exact:
            return exact[(pipeline_id, stage_id)]
        labels = by_stage.get(stage_id, set())
        return next(iter(labels)) if len(labels) == 1 else None  # unambiguous across pipelines

    for state in states:
        if state.values.get("stage_id") and not state.values.get("stage_label"):
            state.values["stage_label"] = label(state.values.get("pipeline_id"), state.values["stage_id"])
        for entry in state.history:
            if not entry["stage_label"]:
                entry["stage_label"] = label(entry["pipeline_id"], entry["stage_id"])


def _write_deals(conn: Connection, workspace_id: int, changed: Sequence[DealState], now: int) -> None:
    new = [s for s in changed if s.id is None]
    old = [s for s in changed if s.id is not None]
    if new:
        insert_dicts(
            conn,
            deals,
            [
                {
                    "workspace_id": workspace_id,
                    "uuid": s.uuid,
                    "external_deal_id": s.external_deal_id,
                    "created_us": now,
                    "change_us": now,
                    **s.values,
                }
                for s in new
            ],
        )
        ids = dict(conn.execute(select(deals.c.uuid, deals.c.id).where(deals.c.uuid.in_([s.uuid for s in new]))).all())
        for state in new:
            state.id = ids[state.uuid]
    if old:
        conn.execute(
            update(deals)
            .where(deals.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in (*_COLUMNS, "change_us")}),
            [{"_id": s.id, "change_us": now, **s.values} for s in old],
        )
    history = [{"deal_id": s.id, **entry} for s in changed for entry in s.history]
    if history:
        insert_dicts(conn, deal_stage_history, history)
    # Accounts a changed deal was or is associated with are rescored (deals drive stages).
    associated = select(deal_accounts.c.account_id).where(deal_accounts.c.deal_id.in_([s.id for s in changed]))
    if changed:
        mark_selected(conn, associated)
    replaced = [s for s in changed if s.associations is not None]
    if replaced:
        conn.execute(delete(deal_accounts).where(deal_accounts.c.deal_id.in_([s.id for s in replaced])))
        rows = [
            {"workspace_id": workspace_id, "deal_id": s.id, "position": position, **association}
            for s in replaced
            for position, association in enumerate(s.associations or [])
        ]
        if rows:
            insert_dicts(conn, deal_accounts, rows)
            mark_accounts(conn, [row["account_id"] for row in rows])


# --- reads ---------------------------------------------------------------------------------------


def list_deals(db: Database, *, workspace_id: int, page: PageRequest) -> tuple[Page[Any], DealExtras]:
    """One keyset page of deals (by creation), with their associations and stage history."""
    with sync_pass(db, workspace_id, page.sync_us) as (conn, sync_us):
        query = select(deals).where(deals.c.workspace_id == workspace_id)
        if (after := page.start_after(int)) is not None:
            query = query.where(deals.c.id > after)
        if page.changed_after_us is not None:
            query = query.where(deals.c.change_us > page.changed_after_us)
        rows = conn.execute(query.order_by(deals.c.id).limit(page.limit + 1)).all()
        has_next = len(rows) > page.limit
        rows = rows[: page.limit]
        extras = deal_extras(conn, [row.id for row in rows])
    last_key = (rows[-1].id,) if rows else None
    return Page(items=rows, has_next=has_next, last_key=last_key, sync_us=sync_us), extras


def deal_extras(conn: Connection, ids: Sequence[int]) -> DealExtras:
    """The associations (with their accounts' rtp_aid) and stage history of these deals."""
    associations: dict[int, list[Any]] = {}
    history: dict[int, list[Any]] = {}
    if ids:
        for row in conn.execute(
            select(
                deal_accounts.c.deal_id,
                deal_accounts.c.external_id,
                deal_accounts.c.domain,
                deal_accounts.c.given_domain,
                deal_accounts.c.name,
                accounts.c.rtp_aid,
            )
            .outerjoin(accounts, accounts.c.id == deal_accounts.c.account_id)
            .where(deal_accounts.c.deal_id.in_(ids))
            .order_by(deal_accounts.c.deal_id, deal_accounts.c.position)
        ):
            associations.setdefault(row.deal_id, []).append(row)
        for row in conn.execute(
            select(deal_stage_history)
            .where(deal_stage_history.c.deal_id.in_(ids))
            .order_by(deal_stage_history.c.deal_id, deal_stage_history.c.entered_us, deal_stage_history.c.id)
        ):
            history.setdefault(row.deal_id, []).append(row)
    return DealExtras(associations, history)


# --- the dashboard's reads ----------------------------------------------------------------------

# A deal's current stage with what the stage means, when its pipeline defines it (one join).
_DEAL_MEANING = (
    deals.c.stage_id,
    deals.c.stage_label,
    pipeline_stages.c.journey_stage,
    pipeline_stages.c.id.is_not(None).label("defined"),
)


def _with_stage_meaning(query: Any) -> Any:
    return query.outerjoin(
        pipelines, (pipelines.c.workspace_id == deals.c.workspace_id) & (pipelines.c.pipeline_id == deals.c.pipeline_id)
    ).outerjoin(
        pipeline_stages,
        (pipeline_stages.c.pipeline_pk == pipelines.c.id) & (pipeline_stages.c.stage_id == deals.c.stage_id),
    )


def deal_journey(row: Any) -> str | None:
    """What a deal's current stage means: Customer (won), Opportunity (open) or None (lost).

    The same reading as the scoring engine's: the pipeline's definition when there is one, a
    deal without a stage is open, otherwise the stage label decides (`journey_stage_for`).
    """
    if row.defined:
        stage: str | None = row.journey_stage
        return stage
    if row.stage_id is None:
        return "Opportunity"
    return journey_stage_for(row.stage_label or "")


def open_deal_count(db: Database, *, workspace_id: int) -> int:
    """How many deals of the workspace are open (their stage is neither won nor lost).

    Counted per distinct stage meaning (what `deal_journey` reads): a few rows, not one per
    deal (20,000 deals read one by one took 90 ms of the overview, benchmarks/dashboard.py).
    """
    with db.read() as conn:
        rows = conn.execute(
            _with_stage_meaning(select(*_DEAL_MEANING, func.count().label("deals")).select_from(deals))
            .where(deals.c.workspace_id == workspace_id)
            .group_by(*_DEAL_MEANING)
        ).all()
    return sum(int(row.deals) for row in rows if deal_journey(row) == "Opportunity")


@dataclass(frozen=True, slots=True)
class AccountDeal:
    """A deal an account is associated with, what its stage means, and its stage history (oldest first)."""

    row: Any
    journey: str | None
    history: list[Any]


def deals_of_account(db: Database, *, workspace_id: int, account_id: int) -> list[AccountDeal]:
    """The deals associated with one account of the workspace, newest first."""
    with db.read() as conn:
        rows = conn.execute(
            _with_stage_meaning(
                select(
                    deals.c.id,
                    deals.c.external_deal_id,
                    deals.c.name,
                    deals.c.amount,
                    deals.c.currency,
                    deals.c.pipeline_id,
                    deals.c.pipeline_label,
                    deals.c.owner_name,
                    deals.c.owner_email,
                    deals.c.start_us,
                    deals.c.closed_us,
                    deals.c.created_us,
                    *_DEAL_MEANING,
                ).select_from(deals.join(deal_accounts, deal_accounts.c.deal_id == deals.c.id))
            )
            .where(deals.c.workspace_id == workspace_id, deal_accounts.c.account_id == account_id)
            .distinct()
            .order_by(deals.c.created_us.desc(), deals.c.id.desc())
        ).all()
        history: dict[int, list[Any]] = {}
        if rows:
            for entry in conn.execute(
                select(deal_stage_history)
                .where(deal_stage_history.c.deal_id.in_([row.id for row in rows]))
                .order_by(deal_stage_history.c.deal_id, deal_stage_history.c.entered_us, deal_stage_history.c.id)
            ):
                history.setdefault(entry.deal_id, []).append(entry)
    return [AccountDeal(row, deal_journey(row), history.get(row.id, [])) for row in rows]
