"""Surface R segment endpoints (contract §2.12)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.segments import service
from abmhub.tenancy.service import Caller
from abmhub.web.dependencies import caller, database
from abmhub.web.paging import page_body, page_request
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope


class SegmentSummary(BaseModel):
    segmentId: str
    name: str
    status: str


class SegmentPage(BaseModel):
    data: list[SegmentSummary]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


def build_router() -> APIRouter:
    router = APIRouter(tags=["segments"], responses=ERROR_RESPONSES)

    @router.get(
        "/segments",
        summary="Static segments that accept accounts (active or draft)",
        response_model=Envelope[SegmentPage],
    )
    def list_segments(
        request: Request,
        limit: str | None = Query(None, description="1–1000, default 100"),
        cursor: str | None = Query(None, description="nextCursor of the previous page"),
        lastSync: str | None = Query(None, description="ISO 8601: only segments changed after it"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        page = service.list_member_lists(
            db, workspace_id=who.workspace_id, page=page_request(limit, cursor, lastSync)
        )
        items = [{"segmentId": s.segment_id, "name": s.name, "status": s.status} for s in page.items]
        return envelope(request, page_body(page, items))

    return router
