"""Request and response shapes of Surface V (contract §4; vendor page reevo-log-manual-activity.txt).

Requests are validated the way the vendor's FastAPI service does it (Pydantic's lax mode:
an ISO 8601 string is a datetime, a UUID string a UUID), and unknown keys are refused so
that a misspelt reference is an error rather than an activity silently logged without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from abmhub.web.cursors import InvalidCursor, decode_cursor

MAX_CONTACT_IDS = 1000
DEFAULT_QUERY_LIMIT = 50
MAX_QUERY_LIMIT = 200


class ActivityCategory(StrEnum):
    """What kind of touch a manual activity was."""

    # The members are activities.manual.CATEGORIES, written out for the type checker
    # (tests/unit/test_surface_v_records.py checks that they agree).
    TEXT = "TEXT"
    LINKEDIN = "LINKEDIN"
    SOCIAL_MEDIA = "SOCIAL_MEDIA"
    EVENT = "EVENT"
    CONFERENCE = "CONFERENCE"
    WEBINAR = "WEBINAR"
    CALL = "CALL"
    OTHER = "OTHER"


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("string_too_short", "String should have at least 1 character that is not white space")
    return value


NonBlank = Annotated[str, StringConstraints(min_length=1), AfterValidator(_not_blank)]


def _utc_representable(value: datetime) -> datetime:
    # `0001-01-01T00:00:00+01:00` parses, but lies before year 1 in UTC.
    try:
        (value if value.tzinfo is None else value.astimezone(UTC)).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("the time lies outside the years 1 to 9999 in UTC") from None
    return value


# Pydantic's lax mode, like the vendor's service, also takes Unix time as a number: say so.
Moment = Annotated[
    datetime,
    AfterValidator(_utc_representable),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number", "description": "Unix time"}]}
    ),
]


# --- POST /api/v2/activity -----------------------------------------------------------------


class ManualActivityMetadata(RequestModel):
    activity_time: Moment = Field(description="When it happened (ISO 8601; no offset means UTC)")
    subject: NonBlank = Field(description="Shown as the activity's display_name")
    description: str
    category: ActivityCategory = Field(default=ActivityCategory.OTHER)


class ActivityLogRequestAttributes(RequestModel):
    """Attributes block for POST /activity."""

    # The vendor's validator matches `metadata` to `type`; this endpoint logs one type only.
    type: Literal["MANUAL_ACTIVITY"] | None = Field(default=None, description="Only MANUAL_ACTIVITY")
    metadata: ManualActivityMetadata
    account_id: UUID | None = Field(default=None, description="An account of the workspace")
    opportunity_id: UUID | None = Field(default=None, description="A deal of the workspace (its UUID)")
    contact_ids: list[UUID] | None = Field(
        default=None, max_length=MAX_CONTACT_IDS, description="Contacts of the workspace"
    )
    sequence_id: UUID | None = Field(default=None, description="Stored as given")
    pipeline_select_list_value_id: UUID | None = Field(default=None, description="Stored as given")


class ActivityLogRequest(RequestModel):
    attributes: ActivityLogRequestAttributes


# --- POST /api/v2/activity/_query ------------------------------------------------------------


def timeline_cursor(text: str) -> tuple[int, str]:
    """The (occurred_us, uuid) a `next_cursor` names; ValueError for anything else."""
    try:
        cursor = decode_cursor(text, arity=2)
    except InvalidCursor:
        raise ValueError("Invalid cursor") from None
    occurred_us, uuid = cursor.after
    if type(occurred_us) is not int or type(uuid) is not str or cursor.sync_us is not None:
        raise ValueError("Invalid cursor")
    return occurred_us, uuid


class ActivityQueryRequest(RequestModel):
    """At least one of account_id, contact_id, opportunity_id."""

    account_id: UUID | None = None
    contact_id: UUID | None = None
    opportunity_id: UUID | None = None
    created_from: Moment | None = Field(default=None, description="Activity time on or after (inclusive)")
    created_to: Moment | None = Field(default=None, description="Activity time before (exclusive)")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int | None = Field(default=DEFAULT_QUERY_LIMIT, ge=1, le=MAX_QUERY_LIMIT)

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, value: str | None) -> str | None:
        if value is not None:
            timeline_cursor(value)
        return value


# --- responses (documentation of the wire shapes; handlers build them directly) ------------

Value = TypeVar("Value")


class TypedValue(BaseModel, Generic[Value]):
    value: Value
    value_type: str


class RecordReference(BaseModel):
    related_record_id: str
    related_record_type: str = Field(examples=["user"])


class ActivityAttributes(BaseModel):
    type: TypedValue[str] = Field(description="enum: MANUAL_ACTIVITY, CALL or EMAIL")
    sub_type: TypedValue[str | None] = Field(
        description="enum: the manual activity's category; null for calls and emails"
    )
    status: TypedValue[str] = Field(description="enum: COMPLETED")
    priority: TypedValue[str | None] = Field(description="enum: null")
    display_name: TypedValue[str] = Field(description="string: the subject (calls: callTitle, subject or 'Call')")
    owner_user_id: TypedValue[RecordReference | None] = Field(
        description="record_reference: the user whose key logged it; null for pushed calls and emails"
    )
    ended_at: TypedValue[str] = Field(description="timestamp: activity_time (calls and emails: occurredAt)")
    badge_status: TypedValue[str | None]
    location: TypedValue[str | None]


class ActivityObjectRecord(BaseModel):
    """Response record for a single activity."""

    id: str = Field(description="The activity's UUID")
    created_at: str
    updated_at: str
    attributes: ActivityAttributes
    record_type: Literal["activity"]
    metadata: dict[str, Any] | None = Field(
        description="null for manual activities (lean cards); for calls and emails the pushed "
        "fields as GET /api/v1/sales-activities shows them, plus kind: call|email"
    )


class ActivityRecordResponse(BaseModel):
    data: ActivityObjectRecord


class ActivityQueryResponse(BaseModel):
    data: list[ActivityObjectRecord]
    next_cursor: str | None = Field(description="null on the last page")


class HealthStatus(BaseModel):
    status: str = Field(examples=["healthy"])


class HealthResponse(BaseModel):
    data: HealthStatus


class ErrorItem(BaseModel):
    type: str = Field(examples=["record_not_found"])
    loc: list[str | int] = Field(examples=[["body", "attributes", "account_id"]])
    msg: str
    input: Any = None


class ValidationErrorResponse(BaseModel):
    detail: list[ErrorItem]


class ErrorResponse(BaseModel):
    detail: str = Field(examples=["Invalid API key"])
