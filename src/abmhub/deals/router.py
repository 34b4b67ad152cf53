"""Surface R deal, pipeline and journey-stage endpoints (contract §2.8–§2.10)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.deals import service
from abmhub.deals.records import deal_record
from abmhub.deals.schemas import (
    JOURNEY_STAGES,
    CreatePipelinesRequest,
    DealPage,
    PipelineRecord,
    PipelinesCreated,
    PushDealsRequest,
    PushDealsResult,
)
from abmhub.paging import PageRequest
from abmhub.tenancy.service import Caller
from abmhub.web.dependencies import caller, database, json_body, page_params
from abmhub.web.paging import page_body
from abmhub.web.responses import JSONBytes, envelope
from abmhub.web.schemas import CONFLICT_RESPONSE, ERROR_RESPONSES, Envelope, request_body


def build_router() -> APIRouter:
    router = APIRouter(tags=["deals"], responses=ERROR_RESPONSES)

    @router.post(
        "/deals",
        summary="Upsert deals by externalDealId (stage history kept)",
        response_model=Envelope[PushDealsResult],
        openapi_extra=request_body(PushDealsRequest),
    )
    def push_deals(
        request: Request,
        who: Caller = Depends(caller),
        body: PushDealsRequest = Depends(json_body(PushDealsRequest)),
        db: Database = Depends(database),
    ) -> Response:
        outcome = service.push_deals(db, workspace_id=who.workspace_id, items=body.deals)
        return envelope(request, {"results": outcome.results, "summary": outcome.summary})

    @router.get("/deals", summary="List deals (extension; keyset pages, delta sync)", response_model=Envelope[DealPage])
    def list_deals(
        request: Request,
        page: PageRequest = Depends(page_params),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        deals, extras = service.list_deals(db, workspace_id=who.workspace_id, page=page)
        return envelope(request, page_body(deals, [deal_record(row, extras) for row in deals.items]))

    @router.post(
        "/deal-stages",
        summary="Create pipelines with their stages (create-only, all or nothing)",
        response_model=Envelope[PipelinesCreated],
        responses=CONFLICT_RESPONSE,
        openapi_extra=request_body(CreatePipelinesRequest),
    )
    def create_pipelines(
        request: Request,
        who: Caller = Depends(caller),
        body: CreatePipelinesRequest = Depends(json_body(CreatePipelinesRequest)),
        db: Database = Depends(database),
    ) -> Response:
        created = service.create_pipelines(db, workspace_id=who.workspace_id, definitions=body.pipelines)
        return envelope(
            request,
            {
                "results": [{"pipelineId": p, "status": "created"} for p in created],
                "summary": {"total": len(created), "created": len(created)},
            },
        )

    @router.get(
        "/deal-stages",
        summary="Pipelines and their stages (a bare array, as the vendor answers)",
        response_model=list[PipelineRecord],
    )
    def list_pipelines(who: Caller = Depends(caller), db: Database = Depends(database)) -> Response:
        return JSONBytes(service.list_pipelines(db, workspace_id=who.workspace_id))

    @router.get(
        "/journey-stages",
        summary="The journey stages, in order (a bare array)",
        response_model=list[str],
    )
    def journey_stages(_: Caller = Depends(caller)) -> Response:
        return JSONBytes(list(JOURNEY_STAGES))

    return router
