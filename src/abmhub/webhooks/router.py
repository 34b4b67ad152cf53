"""Webhook endpoints (contract §8): subscriptions, their deliveries, a test ping, redelivery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.paging import PageRequest
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_us
from abmhub.web.dependencies import caller, database, json_body
from abmhub.web.paging import keyset_page, page_body
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope, request_body
from abmhub.webhooks import service
from abmhub.webhooks.schemas import (
    CreatedWebhookRecord,
    CreateWebhookRequest,
    DeliveryRecord,
    UpdateWebhookRequest,
    WebhookRecord,
)


class WebhookPage(BaseModel):
    data: list[WebhookRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


class DeliveryPage(BaseModel):
    data: list[DeliveryRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


class Deleted(BaseModel):
    webhookId: str
    deleted: bool


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhook_allow_private_targets)


def build_router() -> APIRouter:
    router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)

    @router.post(
        "/webhooks",
        summary="Subscribe a URL to events (extension); the answer holds the signing secret, once",
        response_model=Envelope[CreatedWebhookRecord],
        openapi_extra=request_body(CreateWebhookRequest),
    )
    def create_webhook(
        request: Request,
        who: Caller = Depends(caller),
        body: CreateWebhookRequest = Depends(json_body(CreateWebhookRequest)),
        db: Database = Depends(database),
    ) -> Response:
        created, secret = service.create_webhook(
            db,
            workspace_id=who.workspace_id,
            url=body.url,
            events=body.events,
            description=body.description,
            format=body.format or "json",
            min_score_delta=int(body.minScoreDelta)
            if body.minScoreDelta is not None
            else service.DEFAULT_MIN_SCORE_DELTA,
            allow_private=_allow_private(request),
        )
        return envelope(request, {**webhook_record(created), "secret": secret})

    @router.get("/webhooks", summary="The workspace's webhooks (extension)", response_model=Envelope[WebhookPage])
    def list_webhooks(
        request: Request,
        page: PageRequest = Depends(keyset_page),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        found = service.list_webhooks(db, workspace_id=who.workspace_id, page=page)
        return envelope(request, page_body(found, [webhook_record(w) for w in found.items]))

    @router.get("/webhooks/{webhook_id}", summary="One webhook (extension)", response_model=Envelope[WebhookRecord])
    def get_webhook(
        request: Request, webhook_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        found = service.get_webhook(db, workspace_id=who.workspace_id, webhook_id=webhook_id)
        return envelope(request, webhook_record(found))

    @router.patch(
        "/webhooks/{webhook_id}",
        summary="Change a webhook's URL, events, description or minScoreDelta; pause or resume it (extension)",
        response_model=Envelope[WebhookRecord],
        openapi_extra=request_body(UpdateWebhookRequest),
    )
    def update_webhook(
        request: Request,
        webhook_id: str,
        who: Caller = Depends(caller),
        body: UpdateWebhookRequest = Depends(json_body(UpdateWebhookRequest)),
        db: Database = Depends(database),
    ) -> Response:
        given = body.model_fields_set
        names = {"url": "url", "events": "events", "description": "description", "status": "status"}
        changes: dict[str, Any] = {column: getattr(body, key) for key, column in names.items() if key in given}
        if "minScoreDelta" in given and body.minScoreDelta is not None:
            changes["min_score_delta"] = int(body.minScoreDelta)
        updated = service.update_webhook(
            db,
            workspace_id=who.workspace_id,
            webhook_id=webhook_id,
            changes=changes,
            allow_private=_allow_private(request),
        )
        return envelope(request, webhook_record(updated))

    @router.delete(
        "/webhooks/{webhook_id}",
        summary="Delete a webhook and its deliveries (extension)",
        response_model=Envelope[Deleted],
    )
    def delete_webhook(
        request: Request, webhook_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        service.delete_webhook(db, workspace_id=who.workspace_id, webhook_id=webhook_id)
        return envelope(request, {"webhookId": webhook_id, "deleted": True})

    @router.post(
        "/webhooks/{webhook_id}/test",
        summary="Queue a `ping` event to this webhook alone (extension)",
        response_model=Envelope[DeliveryRecord],
    )
    def test_webhook(
        request: Request, webhook_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        queued = service.send_test(db, workspace_id=who.workspace_id, webhook_id=webhook_id)
        return envelope(request, delivery_record(queued))

    @router.get(
        "/webhooks/{webhook_id}/deliveries",
        summary="A webhook's deliveries, newest first (extension; keyset pages)",
        response_model=Envelope[DeliveryPage],
    )
    def list_deliveries(
        request: Request,
        webhook_id: str,
        page: PageRequest = Depends(keyset_page),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        found = service.list_deliveries(db, workspace_id=who.workspace_id, webhook_id=webhook_id, page=page)
        return envelope(request, page_body(found, [delivery_record(d) for d in found.items]))

    @router.post(
        "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        summary="Queue a delivery again, now (extension)",
        response_model=Envelope[DeliveryRecord],
    )
    def redeliver(
        request: Request,
        webhook_id: str,
        delivery_id: str,
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        queued = service.redeliver(db, workspace_id=who.workspace_id, webhook_id=webhook_id, delivery_id=delivery_id)
        return envelope(request, delivery_record(queued))

    return router


def webhook_record(webhook: service.Webhook) -> dict[str, Any]:
    return {
        "webhookId": webhook.webhook_id,
        "url": webhook.url,
        "events": webhook.events,
        "description": webhook.description,
        "format": webhook.format,
        "minScoreDelta": webhook.min_score_delta,
        "status": webhook.status,
        "createdAt": format_us(webhook.created_us),
        "updatedAt": format_us(webhook.updated_us),
    }


def delivery_record(found: service.Delivery) -> dict[str, Any]:
    return {
        "deliveryId": found.delivery_id,
        "eventId": found.event_id,
        "eventType": found.event_type,
        "status": found.status,
        "attempts": found.attempts,
        "lastStatusCode": found.last_status_code,
        "lastError": found.last_error,
        "nextAttemptAt": format_us(found.next_attempt_us) if found.next_attempt_us is not None else None,
        "createdAt": format_us(found.created_us),
    }
