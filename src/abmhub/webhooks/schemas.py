"""Webhook requests and records (contract §8)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from abmhub.web.validation import (
    OptionalNumber,
    OptionalStr,
    RequestModel,
    RequiredStr,
    max_chars,
    one_of,
    required_array,
    whole_number,
)
from abmhub.webhooks.events import EVENT_TYPES
from abmhub.webhooks.targets import url_problem

FORMATS = ("json", "slack")
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 1000


def _url(value: str | None) -> str | None:
    if value is not None and url_problem(value.strip()) is not None:
        raise PydanticCustomError("isUrl", "not a URL")
    return value.strip() if value is not None else None


def _distinct(values: list[str] | None) -> list[str] | None:
    """The event types once each, in the order given; a list given must hold one at least."""
    if values is None:
        return None
    if not values:
        raise PydanticCustomError("arrayMinSize", "too few", {"min": 1})
    return list(dict.fromkeys(values))


EventType = Annotated[str, AfterValidator(one_of(*EVENT_TYPES))]
Url = Annotated[RequiredStr, max_chars(MAX_URL_LENGTH), AfterValidator(_url)]
OptionalUrl = Annotated[OptionalStr, max_chars(MAX_URL_LENGTH), AfterValidator(_url)]
Events = Annotated[list[EventType], required_array(1, len(EVENT_TYPES)), AfterValidator(_distinct)]
Description = Annotated[OptionalStr, max_chars(MAX_DESCRIPTION_LENGTH)]
MinScoreDelta = Annotated[OptionalNumber, whole_number(1, 100)]


class CreateWebhookRequest(RequestModel):
    """`{"url", "events": [...], "description"?, "format"?: "json" | "slack", "minScoreDelta"?: 1-100}`."""

    url: Url
    events: Events
    description: Description = None
    format: Annotated[OptionalStr, AfterValidator(one_of(*FORMATS))] = None
    minScoreDelta: MinScoreDelta = None


class UpdateWebhookRequest(RequestModel):
    """Only the keys given change; `status` pauses or resumes (a disabled one resumes too)."""

    url: OptionalUrl = None
    events: Annotated[list[EventType] | None, AfterValidator(_distinct)] = None
    description: Description = None
    minScoreDelta: MinScoreDelta = None
    status: Annotated[OptionalStr, AfterValidator(one_of("active", "paused"))] = None


class WebhookRecord(BaseModel):
    webhookId: str
    url: str
    events: list[str]
    description: str | None
    format: str
    minScoreDelta: int
    status: str = Field(description="active, paused, or disabled (after 3 days of failed deliveries)")
    createdAt: str
    updatedAt: str


class CreatedWebhookRecord(WebhookRecord):
    secret: str = Field(description="Signs every delivery (whsec_...). Returned only here: store it now.")


class DeliveryRecord(BaseModel):
    deliveryId: str
    eventId: str
    eventType: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    lastStatusCode: int | None
    lastError: str | None
    nextAttemptAt: str | None
    createdAt: str
