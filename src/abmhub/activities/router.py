"""Surface R sales-activity endpoints (contract §2.11, §6.28)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from abmhub.accounts.domains import normalize_domain
from abmhub.activities import service
from abmhub.activities.schemas import (
    ActivityPage,
    PushActivitiesRequest,
    PushActivitiesResult,
)
from abmhub.db.engine import Database
from abmhub.paging import PageRequest
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_us
from abmhub.web.dependencies import caller, database, json_body, page_params
from abmhub.web.errors import ValidationFailed
from abmhub.web.paging import page_body
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope, request_body
from abmhub.web.validation import issue


def _number(value: float | None) -> float | int | None:
    """Whole numbers go back as integers, as they were most likely sent (`30`, not `30.0`)."""
    if value is not None and value.is_integer():
        return int(value)
    return value


def contact_record(row: Any) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "email": row.email,
        "externalContactId": row.external_contact_id,
        "name": row.name,
        "title": row.title,
        "department": row.department,
        "seniority": row.seniority,
        "phone": row.phone,
        "linkedinUrl": row.linkedin_url,
    }


def activity_record(view: service.ActivityView) -> dict[str, Any]:
    """An activity as GET /sales-activities returns it (§6.28); unset fields are null."""
    row = view.row
    sender = None
    if row.from_name is not None or row.from_email is not None:
        sender = {"name": row.from_name, "email": row.from_email}
    return {
        "id": row.uuid,
        "externalActivityId": row.external_activity_id,
        "activityType": row.kind,
        "occurredAt": format_us(row.occurred_us),
        "domain": row.domain,
        "rtp_aid": row.rtp_aid,
        "accountName": row.account_name,
        "subject": row.subject,
        "ownerEmail": row.owner_email,
        "ownerName": row.owner_name,
        "ownerId": row.owner_id,
        "from": sender,
        "callTitle": row.call_title,
        "durationMinutes": _number(row.duration_minutes),
        "outcome": row.outcome,
        "direction": row.direction,
        "openCount": _number(row.open_count),
        "clickCount": _number(row.click_count),
        "contacts": [contact_record(person) for person in view.contacts],
        "createdAt": format_us(row.created_us),
        "updatedAt": format_us(view.updated_us),
    }


def _domain_filter(raw: str | None) -> str | None:
    if raw is None:
        return None
    domain = normalize_domain(raw)
    if domain is None:
        raise ValidationFailed([issue("domain", "domain", {"isDomain": f"domain must be a valid domain, got '{raw}'"})])
    return domain


def build_router() -> APIRouter:
    router = APIRouter(tags=["sales activities"], responses=ERROR_RESPONSES)

    @router.post(
        "/sales-activities",
        summary="Push calls and emails (create-only)",
        response_model=Envelope[PushActivitiesResult],
        openapi_extra=request_body(PushActivitiesRequest),
    )
    def push_activities(
        request: Request,
        who: Caller = Depends(caller),
        body: PushActivitiesRequest = Depends(json_body(PushActivitiesRequest)),
        db: Database = Depends(database),
    ) -> Response:
        outcome = service.push_activities(db, workspace_id=who.workspace_id, items=body.activities)
        return envelope(request, {"results": outcome.results, "summary": outcome.summary})

    @router.get(
        "/sales-activities",
        summary="List calls and emails (keyset pages, delta sync)",
        response_model=Envelope[ActivityPage],
    )
    def list_activities(
        request: Request,
        page: PageRequest = Depends(page_params),
        domain: str | None = Query(None, description="Only activities of this domain (normalised)"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        found = service.list_activities(db, workspace_id=who.workspace_id, page=page, domain=_domain_filter(domain))
        return envelope(request, page_body(found, [activity_record(view) for view in found.items]))

    return router
