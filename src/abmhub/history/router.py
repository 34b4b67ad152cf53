"""History endpoints (contract §7): an account's scores over time, and who moved stage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.history import service
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_day, format_us, parse_iso8601
from abmhub.web.dependencies import caller, database
from abmhub.web.errors import ValidationFailed
from abmhub.web.paging import page_body, page_request, parse_bounded_int
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope
from abmhub.web.validation import constraint_text, issue

DIRECTIONS = ("progressed", "regressed")


class StageChangeEntry(BaseModel):
    from_: str = Field(alias="from", description="The stage left; '' for an account's first stage")
    to: str
    at: str


class DailyEntry(BaseModel):
    date: str = Field(examples=["2026-04-30"])
    rtp_account_score: int
    rtp_website_intent_score: int
    rtp_g2_intent_score: int
    rtp_bombora_intent_score: int
    rtp_advertising_activity_score: int
    rtp_journey_stage: str


class AccountHistoryBody(BaseModel):
    rtp_aid: str
    stageChanges: list[StageChangeEntry] = Field(description="Oldest first")
    daily: list[DailyEntry] = Field(description="One per day of the window from the first scored day on")


class MovedAccountEntry(BaseModel):
    rtp_aid: str
    domain: str
    name: str
    from_: str = Field(alias="from")
    to: str
    at: str
    daysInPreviousStage: int | None


class StageChangePage(BaseModel):
    data: list[MovedAccountEntry]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


def _refuse(name: str, constraint: str, ctx: dict[str, Any] | None = None) -> ValidationFailed:
    return ValidationFailed([issue(name, name, {constraint: constraint_text(constraint, name, ctx)})])


def _moment(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return parse_iso8601(raw.strip())
    except ValueError:
        raise _refuse(name, "isIso8601") from None


def _one_of(name: str, raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is not None and raw not in allowed:
        raise _refuse(name, "isIn", {"values": ", ".join(allowed)})
    return raw


def daily_entry(entry: service.DailyScores) -> dict[str, Any]:
    return {
        "date": format_day(entry.day),
        "rtp_account_score": entry.account_score,
        "rtp_website_intent_score": entry.website_score,
        "rtp_g2_intent_score": entry.g2_score,
        "rtp_bombora_intent_score": entry.bombora_score,
        "rtp_advertising_activity_score": entry.advertising_score,
        "rtp_journey_stage": entry.journey_stage,
    }


def build_router() -> APIRouter:
    router = APIRouter(tags=["history"], responses=ERROR_RESPONSES)

    @router.get(
        "/accounts/stage-changes",
        summary="Accounts that changed journey stage, newest first (extension; keyset pages)",
        response_model=Envelope[StageChangePage],
    )
    def stage_changes(
        request: Request,
        since: str | None = Query(None, description="ISO 8601: changes at or after it"),
        until: str | None = Query(None, description="ISO 8601: changes before it"),
        direction: str | None = Query(None, description="progressed (a later stage) or regressed"),
        to: str | None = Query(None, description="Only changes into this journey stage"),
        limit: str | None = Query(None, description="Page size, 1–1000 (default 100)"),
        cursor: str | None = Query(None, description="`nextCursor` of the previous page"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        filters = service.StageChangeFilter(
            since_us=_moment("since", since),
            until_us=_moment("until", until),
            direction=_one_of("direction", direction, DIRECTIONS),
            to_stage=_one_of("to", to, JOURNEY_STAGES),
        )
        page = page_request(limit, cursor, arity=2)
        moved = service.list_stage_changes(db, workspace_id=who.workspace_id, filters=filters, page=page)
        items = [
            {
                "rtp_aid": m.rtp_aid,
                "domain": m.domain,
                "name": m.name,
                "from": m.from_stage,
                "to": m.to_stage,
                "at": format_us(m.at_us),
                "daysInPreviousStage": m.days_in_previous_stage,
            }
            for m in moved.items
        ]
        return envelope(request, page_body(moved, items))

    @router.get(
        "/accounts/{rtp_aid}/history",
        summary="An account's daily scores and stage changes (extension)",
        response_model=Envelope[AccountHistoryBody],
    )
    def account_history(
        request: Request,
        rtp_aid: str,
        days: str | None = Query(None, description=f"Days back, today included: 1–{service.MAX_DAYS} (default 90)"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        window = parse_bounded_int("days", days, default=service.DEFAULT_DAYS, minimum=1, maximum=service.MAX_DAYS)
        found = service.account_history(db, workspace_id=who.workspace_id, rtp_aid=rtp_aid, days=window)
        return envelope(
            request,
            {
                "rtp_aid": found.rtp_aid,
                "stageChanges": [
                    {"from": c.from_stage, "to": c.to_stage, "at": format_us(c.at_us)} for c in found.stage_changes
                ],
                "daily": [daily_entry(entry) for entry in found.daily],
            },
        )

    return router
