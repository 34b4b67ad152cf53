"""Surface R segment endpoints (contract §2.12)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from abmhub.accounts import service as accounts_service
from abmhub.accounts.router import account_page_body
from abmhub.accounts.schemas import AccountPage
from abmhub.db.engine import Database
from abmhub.paging import PageRequest
from abmhub.segments import service
from abmhub.segments.schemas import (
    CreateSegmentRequest,
    MembersChanged,
    MembersRequest,
    SegmentRecord,
    UpdateSegmentRequest,
)
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_us
from abmhub.web.dependencies import caller, database, json_body, page_params
from abmhub.web.paging import page_body
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope, request_body


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
        page: PageRequest = Depends(page_params),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        segments = service.list_member_lists(db, workspace_id=who.workspace_id, page=page)
        items = [{"segmentId": s.segment_id, "name": s.name, "status": s.status} for s in segments.items]
        return envelope(request, page_body(segments, items))

    @router.post(
        "/segments",
        summary="Create a segment (extension)",
        response_model=Envelope[SegmentRecord],
        openapi_extra=request_body(CreateSegmentRequest),
    )
    def create_segment(
        request: Request,
        who: Caller = Depends(caller),
        body: CreateSegmentRequest = Depends(json_body(CreateSegmentRequest)),
        db: Database = Depends(database),
    ) -> Response:
        segment = service.create_segment(
            db,
            workspace_id=who.workspace_id,
            name=body.name,
            type=body.type,
            status=body.status,
            rule=body.rule.model_dump(exclude_none=True) if body.rule is not None else None,
        )
        return envelope(request, segment_record(segment))

    @router.get("/segments/{segment_id}", summary="One segment (extension)", response_model=Envelope[SegmentRecord])
    def get_segment(
        request: Request, segment_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        segment = service.get_segment(db, workspace_id=who.workspace_id, segment_id=segment_id)
        return envelope(request, segment_record(segment))

    @router.patch(
        "/segments/{segment_id}",
        summary="Rename a segment, change its status or its rule (extension)",
        response_model=Envelope[SegmentRecord],
        openapi_extra=request_body(UpdateSegmentRequest),
    )
    def update_segment(
        request: Request,
        segment_id: str,
        who: Caller = Depends(caller),
        body: UpdateSegmentRequest = Depends(json_body(UpdateSegmentRequest)),
        db: Database = Depends(database),
    ) -> Response:
        changes = body.model_dump(include=body.model_fields_set, exclude_none=False)
        if body.rule is not None:
            changes["rule"] = body.rule.model_dump(exclude_none=True)
        segment = service.update_segment(db, workspace_id=who.workspace_id, segment_id=segment_id, changes=changes)
        return envelope(request, segment_record(segment))

    @router.get(
        "/segments/{segment_id}/accounts",
        summary="The segment's member accounts (extension; keyset pages, delta sync)",
        response_model=Envelope[AccountPage],
    )
    def list_members(
        request: Request,
        segment_id: str,
        page: PageRequest = Depends(page_params),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        service.get_segment(db, workspace_id=who.workspace_id, segment_id=segment_id)  # 404 when unknown
        found, extras = accounts_service.list_accounts(
            db, workspace_id=who.workspace_id, page=page, filters=accounts_service.AccountFilter(segment_id=segment_id)
        )
        return envelope(request, account_page_body(found, extras))

    @router.post(
        "/segments/{segment_id}/accounts",
        summary="Add accounts to a static segment (extension)",
        response_model=Envelope[MembersChanged],
        openapi_extra=request_body(MembersRequest),
    )
    def add_members(
        request: Request,
        segment_id: str,
        who: Caller = Depends(caller),
        body: MembersRequest = Depends(json_body(MembersRequest)),
        db: Database = Depends(database),
    ) -> Response:
        change = service.add_members(db, workspace_id=who.workspace_id, segment_id=segment_id, rtp_aids=body.rtp_aids)
        return envelope(request, {"added": change.changed, "notFound": change.not_found})

    @router.delete(
        "/segments/{segment_id}/accounts",
        summary="Remove accounts from a static segment (extension)",
        response_model=Envelope[MembersChanged],
        openapi_extra=request_body(MembersRequest),
    )
    def remove_members(
        request: Request,
        segment_id: str,
        who: Caller = Depends(caller),
        body: MembersRequest = Depends(json_body(MembersRequest)),
        db: Database = Depends(database),
    ) -> Response:
        change = service.remove_members(
            db, workspace_id=who.workspace_id, segment_id=segment_id, rtp_aids=body.rtp_aids
        )
        return envelope(request, {"removed": change.changed, "notFound": change.not_found})

    return router


def segment_record(segment: service.Segment) -> dict[str, Any]:
    return {
        "segmentId": segment.segment_id,
        "name": segment.name,
        "type": segment.type,
        "status": segment.status,
        "rule": segment.rule,
        "createdAt": format_us(segment.created_us),
        "updatedAt": format_us(segment.change_us),
    }
