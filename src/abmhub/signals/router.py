"""Surface R signals intake (contract §3.1, §6.21): an abmhub extension."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.signals import service
from abmhub.signals.schemas import PushSignalsRequest, PushSignalsResult
from abmhub.tenancy.service import Caller
from abmhub.web.dependencies import caller, database, json_body
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope, request_body


def build_router() -> APIRouter:
    router = APIRouter(tags=["signals"], responses=ERROR_RESPONSES)

    @router.post(
        "/signals",
        summary="Push intent signals (create-only; a known externalSignalId is skipped)",
        response_model=Envelope[PushSignalsResult],
        openapi_extra=request_body(PushSignalsRequest),
    )
    def push_signals(
        request: Request,
        who: Caller = Depends(caller),
        body: PushSignalsRequest = Depends(json_body(PushSignalsRequest)),
        db: Database = Depends(database),
    ) -> Response:
        outcome = service.push_signals(db, workspace_id=who.workspace_id, items=body.signals)
        return envelope(request, {"results": outcome.results, "summary": outcome.summary})

    return router
