"""Surface V endpoints: the Reevo-compatible activity API under /api/v2 (contract §4)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from sqlalchemy import text
from starlette.responses import Response

from abmhub.activities import manual, timeline
from abmhub.db.engine import Database
from abmhub.errors import RecordsNotFound
from abmhub.reevo import errors
from abmhub.reevo.dependencies import v_caller, v_json_body
from abmhub.reevo.records import activity_object_record, to_us
from abmhub.reevo.schemas import (
    DEFAULT_QUERY_LIMIT,
    ActivityLogRequest,
    ActivityQueryRequest,
    ActivityQueryResponse,
    ActivityRecordResponse,
    ErrorResponse,
    HealthResponse,
    ValidationErrorResponse,
    timeline_cursor,
)
from abmhub.tenancy.service import Caller
from abmhub.web.cursors import Cursor, encode_cursor
from abmhub.web.dependencies import database
from abmhub.web.responses import JSONBytes
from abmhub.web.schemas import request_body

SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"ApiKey": []}]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing (`Not authenticated`) or invalid key (`Invalid API key`)"},
    413: {"model": ErrorResponse, "description": "Request body exceeds 5 MiB"},
    422: {
        "model": ValidationErrorResponse,
        "description": "The body's shape, or a referenced record that the workspace does not have "
        "(`type: record_not_found`, `loc` naming the field)",
    },
}
# Where each kind of reference sits in the request bodies, for record_not_found items.
LOG_LOCATIONS: dict[str, errors.Loc] = {
    "account": ("body", "attributes", "account_id"),
    "opportunity": ("body", "attributes", "opportunity_id"),
    "contact": ("body", "attributes", "contact_ids"),
}
QUERY_LOCATIONS: dict[str, errors.Loc] = {
    "account": ("body", "account_id"),
    "opportunity": ("body", "opportunity_id"),
    "contact": ("body", "contact_id"),
}


def _operation(model: type) -> dict[str, Any]:
    return {"security": SECURITY, **request_body(model)}


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def build_router() -> APIRouter:
    router = APIRouter(tags=["Surface V: activities"])

    @router.get(
        "/health",
        summary="Health (no key needed)",
        response_model=HealthResponse,
        openapi_extra={"security": []},
    )
    def health(db: Database = Depends(database)) -> Response:
        try:
            with db.read() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONBytes({"data": {"status": "unhealthy"}}, status_code=503)
        return JSONBytes({"data": {"status": "healthy"}})

    @router.post(
        "/activity",
        summary="Log a manual activity",
        status_code=201,
        response_model=ActivityRecordResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=_operation(ActivityLogRequest),
    )
    def log_activity(
        who: Caller = Depends(v_caller),
        body: ActivityLogRequest = Depends(v_json_body(ActivityLogRequest)),
        db: Database = Depends(database),
    ) -> Response:
        attributes = body.attributes
        logged = manual.ManualActivity(
            occurred_us=to_us(attributes.metadata.activity_time),
            subject=attributes.metadata.subject,
            description=attributes.metadata.description,
            category=attributes.metadata.category.value,
            account_uuid=_str(attributes.account_id),
            deal_uuid=_str(attributes.opportunity_id),
            contact_uuids=[str(value) for value in attributes.contact_ids or ()],
            sequence_id=_str(attributes.sequence_id),
            pipeline_select_list_value_id=_str(attributes.pipeline_select_list_value_id),
        )
        try:
            entry = manual.log_manual_activity(db, workspace_id=who.workspace_id, user_id=who.user_id, activity=logged)
        except RecordsNotFound as exc:
            raise errors.records_not_found(exc.missing, LOG_LOCATIONS, listed=frozenset({"contact"})) from None
        return JSONBytes({"data": activity_object_record(entry)}, status_code=201)

    @router.post(
        "/activity/_query",
        summary="The activity timeline of an account, contact or opportunity (newest first)",
        response_model=ActivityQueryResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=_operation(ActivityQueryRequest),
    )
    def query_activities(
        who: Caller = Depends(v_caller),
        body: ActivityQueryRequest = Depends(v_json_body(ActivityQueryRequest)),
        db: Database = Depends(database),
    ) -> Response:
        if body.account_id is None and body.contact_id is None and body.opportunity_id is None:
            raise errors.invalid(
                [
                    errors.detail_item(
                        "value_error",
                        ["body"],
                        "Value error, at least one of account_id, contact_id or opportunity_id is required",
                        body.model_dump(mode="json", exclude_unset=True),
                    )
                ]
            )
        query = timeline.TimelineQuery(
            account_uuid=_str(body.account_id),
            contact_uuid=_str(body.contact_id),
            deal_uuid=_str(body.opportunity_id),
            from_us=to_us(body.created_from) if body.created_from is not None else None,
            to_us=to_us(body.created_to) if body.created_to is not None else None,
            after=timeline_cursor(body.cursor) if body.cursor is not None else None,
            limit=body.limit if body.limit is not None else DEFAULT_QUERY_LIMIT,
        )
        try:
            page = timeline.timeline(db, workspace_id=who.workspace_id, query=query)
        except RecordsNotFound as exc:
            raise errors.records_not_found(exc.missing, QUERY_LOCATIONS) from None
        next_cursor = encode_cursor(Cursor(page.next_key, None)) if page.next_key is not None else None
        return JSONBytes(
            {"data": [activity_object_record(entry) for entry in page.entries], "next_cursor": next_cursor}
        )

    @router.get(
        "/activity/{activity_id}",
        summary="One activity (extension)",
        response_model=ActivityRecordResponse,
        responses={
            401: ERROR_RESPONSES[401],
            404: {"model": ErrorResponse, "description": "`record_not_found` (also for an id that is not a UUID)"},
        },
        openapi_extra={"security": SECURITY},
    )
    def get_activity(
        activity_id: str,
        who: Caller = Depends(v_caller),
        db: Database = Depends(database),
    ) -> Response:
        try:
            uuid = str(UUID(activity_id))
        except ValueError:
            raise errors.record_not_found() from None
        entry = timeline.get_entry(db, workspace_id=who.workspace_id, uuid=uuid)
        if entry is None:
            raise errors.record_not_found()
        return JSONBytes({"data": activity_object_record(entry)})

    return router
