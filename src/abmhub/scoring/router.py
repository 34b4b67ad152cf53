"""GET /accounts/:rtp_aid/score — the score explanation (extension, contract §3.5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.scoring.explain import explain_account
from abmhub.tenancy.service import Caller
from abmhub.web.dependencies import caller, database
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope


class SourceContribution(BaseModel):
    source: str
    score: int
    weight: float
    contribution: float
    signals: int


class Engagement(BaseModel):
    score: int
    weight: float
    contribution: float
    activities: int = Field(description="Calls, emails and manual activities of the account")
    deals: int = Field(description="Open and won deals associated with the account")


class DealComponent(BaseModel):
    score: int
    weight: float
    contribution: float
    won: bool
    open: bool


class TopSignal(BaseModel):
    source: str
    type: str
    occurredAt: str
    weight: float


class ScoreExplanation(BaseModel):
    rtp_aid: str
    rtp_account_score: int
    rtp_journey_stage: str
    sources: list[SourceContribution]
    engagement: Engagement
    deals: DealComponent
    topSignals: list[TopSignal]
    computedAt: str | None


def build_router() -> APIRouter:
    router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES)

    @router.get(
        "/accounts/{rtp_aid}/score",
        summary="Why an account scores what it does (extension)",
        response_model=Envelope[ScoreExplanation],
    )
    def explain(
        request: Request, rtp_aid: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        body: dict[str, Any] = explain_account(db, workspace_id=who.workspace_id, rtp_aid=rtp_aid)
        return envelope(request, body)

    return router
