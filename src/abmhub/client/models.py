"""Typed requests and results of the client, in the wire's own names (contract §2–§4).

Request models check what the server would refuse for the *whole request* (a missing
required field, a wrong type, an unknown key, a bad date), so that the client can fail
that one item locally instead of sending a chunk that the server rejects entirely. Rules
about stored data (duplicates, unknown custom-field keys, invalid domains) stay the
server's: they come back as per-item results.

Record models (what lists return) accept keys they do not know, so that a newer server's
extra keys pass through, and default the abmhub extensions the vendor does not send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# --- field types ---------------------------------------------------------------------------------

NonBlank = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


def iso_timestamp(value: Any) -> Any:
    """A datetime (naive = UTC) or date as the ISO 8601 text the API takes; text is checked."""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be a valid ISO 8601 date string") from None
    return value


Timestamp = Annotated[str, BeforeValidator(iso_timestamp)]


class RequestModel(BaseModel):
    """An item of a request body: unknown keys are refused, as the server's whitelist does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The item as JSON for the request: wire names, only the fields that were set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Record(BaseModel):
    """A record the server returned; keys this client does not know are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- accounts (§2.1–§2.7) ------------------------------------------------------------------------


class AccountIn(RequestModel):
    """An item of POST /accounts."""

    domain: NonBlank
    name: NonBlank
    externalId: NonBlank | None = None
    shortName: str | None = None
    linkedinUrl: str | None = None
    tags: list[str] | None = None
    customFields: dict[str, Any] | None = None


class Account(Record):
    """An account as GET /accounts returns it (§2.1)."""

    rtp_aid: str
    id: str | None = None  # extension: the UUID Surface V uses
    externalId: str | None = None
    name: str
    domain: str
    shortName: str | None = None
    linkedinUrl: str | None = None
    tags: list[str] = Field(default_factory=list)
    rtp_account_score: int | float = 0
    rtp_journey_stage: str = ""
    rtp_advertising_activity_score: int | float = 0
    rtp_website_intent_score: int | float = 0
    rtp_g2_intent_score: int | float = 0
    rtp_bombora_intent_score: int | float = 0
    rtp_last_account_date: str | None = None
    customFields: dict[str, Any] = Field(default_factory=dict)
    segmentIds: list[str] = Field(default_factory=list)


class ExternalIdMapping(RequestModel):
    domain: NonBlank
    externalId: NonBlank


class ExternalIdMappingResult(Record):
    matched: int
    updated: int
    notFound: list[str] = Field(default_factory=list)


class MissingExternalId(Record):
    name: str
    domain: str


LabelType = Literal["singleLineText", "multiLineText", "singleSelection", "multiSelection", "number", "date"]


class CustomField(Record):
    key: str
    label: str
    labelType: str
    description: str | None = None
    options: list[str] = Field(default_factory=list)
    objectType: str = "accounts"
    status: str = "active"


# --- deals and pipelines (§2.8–§2.10) -------------------------------------------------------------


class AssociatedAccountIn(RequestModel):
    externalId: NonBlank | None = None
    domain: str | None = None
    name: str | None = None


class StageEntryIn(RequestModel):
    stageId: NonBlank
    stageLabel: str | None = None
    enteredAt: Timestamp


class DealIn(RequestModel):
    """An item of POST /deals (upsert by externalDealId; omitted keys keep their value)."""

    externalDealId: NonBlank
    name: NonBlank
    amount: float | None = None
    dealCurrencyCode: str | None = None
    stageId: NonBlank | None = None
    stageLabel: str | None = None
    pipelineId: NonBlank | None = None
    pipelineLabel: str | None = None
    startDate: Timestamp | None = None
    closedDate: Timestamp | None = None
    ownerName: str | None = None
    ownerEmail: Email | None = None
    ownerId: NonBlank | None = None
    associatedAccounts: list[AssociatedAccountIn] | None = None
    stageHistory: list[StageEntryIn] | None = None


class AssociatedAccount(Record):
    externalId: str | None = None
    domain: str | None = None
    name: str | None = None
    rtp_aid: str | None = None


class StageEntry(Record):
    stageId: str
    stageLabel: str | None = None
    pipelineId: str | None = None
    enteredAt: str


class Deal(Record):
    """A deal as GET /deals returns it (§6.18)."""

    id: str | None = None
    externalDealId: str
    name: str
    amount: float | None = None
    dealCurrencyCode: str | None = None
    stageId: str | None = None
    stageLabel: str | None = None
    pipelineId: str | None = None
    pipelineLabel: str | None = None
    startDate: str | None = None
    closedDate: str | None = None
    ownerName: str | None = None
    ownerEmail: str | None = None
    ownerId: str | None = None
    associatedAccounts: list[AssociatedAccount] = Field(default_factory=list)
    stageHistory: list[StageEntry] = Field(default_factory=list)
    createdAt: str | None = None
    updatedAt: str | None = None


class StageIn(RequestModel):
    stageId: NonBlank
    stageLabel: NonBlank
    journeyStage: Literal["Opportunity", "Customer"] | None = None


class PipelineIn(RequestModel):
    pipelineId: NonBlank
    pipelineLabel: NonBlank
    stages: Annotated[list[StageIn], Field(min_length=1)]


class Stage(Record):
    stageId: str
    stageLabel: str
    journeyStage: str | None = None


class Pipeline(Record):
    pipelineId: str
    pipelineLabel: str
    stages: list[Stage] = Field(default_factory=list)


# --- sales activities (§2.11, §6.28) --------------------------------------------------------------


class ContactIn(RequestModel):
    email: Email
    externalContactId: NonBlank | None = None
    name: str | None = None
    title: str | None = None
    department: str | None = None
    seniority: str | None = None
    phone: str | None = None
    linkedinUrl: str | None = None


class SenderIn(RequestModel):
    name: str | None = None
    email: str | None = None


class SalesActivityIn(RequestModel):
    """An item of POST /sales-activities (create-only; `from_` is sent as `from`)."""

    externalActivityId: NonBlank
    activityType: NonBlank
    occurredAt: Timestamp
    domain: NonBlank
    ownerEmail: Email
    contacts: Annotated[list[ContactIn], Field(min_length=1)]
    accountName: str | None = None
    subject: str | None = None
    ownerName: str | None = None
    ownerId: NonBlank | None = None
    from_: SenderIn | None = Field(default=None, alias="from")
    callTitle: str | None = None
    durationMinutes: float | None = None
    outcome: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    openCount: float | None = None
    clickCount: float | None = None


class Contact(Record):
    id: str | None = None
    email: str
    externalContactId: str | None = None
    name: str | None = None
    title: str | None = None
    department: str | None = None
    seniority: str | None = None
    phone: str | None = None
    linkedinUrl: str | None = None


class Sender(Record):
    name: str | None = None
    email: str | None = None


class SalesActivity(Record):
    """A call or email as GET /sales-activities returns it (§6.28)."""

    id: str | None = None
    externalActivityId: str | None = None
    activityType: str
    occurredAt: str
    domain: str | None = None
    rtp_aid: str | None = None
    accountName: str | None = None
    subject: str | None = None
    ownerEmail: str | None = None
    ownerName: str | None = None
    ownerId: str | None = None
    from_: Sender | None = Field(default=None, alias="from")
    callTitle: str | None = None
    durationMinutes: float | None = None
    outcome: str | None = None
    direction: str | None = None
    openCount: float | None = None
    clickCount: float | None = None
    contacts: list[Contact] = Field(default_factory=list)
    createdAt: str | None = None
    updatedAt: str | None = None


# --- signals (§3.1, §6.21) -----------------------------------------------------------------------

SIGNAL_TYPES: dict[str, tuple[str, ...]] = {
    "website": ("page_view",),
    "g2": ("profile_view", "comparison", "pricing_view", "category_view"),
    "bombora": ("surge",),
    "linkedin_ads": ("impression", "click", "engagement"),
}
_SOURCE_FIELDS = {"url": "website", "topic": "bombora", "score": "bombora", "count": "linkedin_ads"}


def _whole(value: float | None) -> int | None:
    if value is None:
        return None
    if float(value) != int(value):
        raise ValueError("must be a whole number")
    return int(value)


class SignalIn(RequestModel):
    """An item of POST /signals; `externalSignalId` makes a repeat `skipped` instead of a duplicate."""

    source: Literal["website", "g2", "bombora", "linkedin_ads"]
    type: NonBlank
    domain: NonBlank
    occurredAt: Timestamp
    externalSignalId: NonBlank | None = None
    weight: Annotated[float, Field(ge=0)] | None = None
    url: str | None = None
    topic: str | None = None
    score: Annotated[float, Field(ge=0, le=100), AfterValidator(_whole)] | None = None
    count: Annotated[float, Field(ge=1), AfterValidator(_whole)] | None = None

    @model_validator(mode="after")
    def _fits_its_source(self) -> SignalIn:
        allowed = SIGNAL_TYPES[self.source]
        if self.type not in allowed:
            raise ValueError(f"type must be one of the following values: {', '.join(allowed)}")
        for name, owner in _SOURCE_FIELDS.items():
            if owner != self.source and getattr(self, name) is not None:
                raise ValueError(f"{name} is only for {owner} signals")
        if self.source == "bombora" and self.score is None:
            raise ValueError("score is required for a bombora surge")
        return self


# --- segments, journey stages, scores -------------------------------------------------------------


class Segment(Record):
    segmentId: str
    name: str
    status: str | None = None


class SourceScore(Record):
    source: str
    score: int | float
    weight: float | None = None
    contribution: float | None = None
    signals: int = 0


class ScoreExplanation(Record):
    """GET /accounts/:rtp_aid/score (§6.23)."""

    rtp_aid: str
    rtp_account_score: int | float
    rtp_journey_stage: str
    sources: list[SourceScore] = Field(default_factory=list)
    engagement: dict[str, Any] = Field(default_factory=dict)
    topSignals: list[dict[str, Any]] = Field(default_factory=list)
    computedAt: str | None = None


# --- bulk results (§1.4) -------------------------------------------------------------------------


class ItemResult(Record):
    """The outcome of one pushed item. `index` is its position in what you pushed (0-based)."""

    index: int
    status: str
    error: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class AccountResult(ItemResult):
    rtp_aid: str | None = None
    domain: str | None = None
    externalId: str | None = None


class DealResult(ItemResult):
    externalDealId: str | None = None


class SalesActivityResult(ItemResult):
    externalActivityId: str | None = None


class SignalResult(ItemResult):
    externalSignalId: str | None = None
    domain: str | None = None


Result = TypeVar("Result", bound=ItemResult)
Item = TypeVar("Item")


class Summary(BaseModel):
    """Counts by status over everything pushed (locally refused and failed chunks included)."""

    total: int = 0
    created: int = 0
    updated: int = 0
    upserted: int = 0
    skipped: int = 0
    failed: int = 0

    def count(self, status: str) -> None:
        self.total += 1
        if status in ("created", "updated", "upserted", "skipped"):
            setattr(self, status, getattr(self, status) + 1)
        else:
            self.failed += 1

    def add(self, other: Summary) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of a list (§1.5). Lists that answer a bare array are one page with no next."""

    items: list[Item]
    next_cursor: str | None = None
    has_next_page: bool = False
    sync_timestamp: str | None = None


# --- Surface V (§4) --------------------------------------------------------------------------------

Category = Literal["TEXT", "LINKEDIN", "SOCIAL_MEDIA", "EVENT", "CONFERENCE", "WEBINAR", "CALL", "OTHER"]


class ManualActivityIn(RequestModel):
    activity_time: Timestamp
    subject: NonBlank
    description: str
    category: Category = "OTHER"


class TypedValue(Record):
    value: Any = None
    value_type: str | None = None


class ActivityRecord(Record):
    """A Surface V ActivityObjectRecord: manual activities, and calls and emails from Surface R."""

    id: str
    created_at: str | None = None
    updated_at: str | None = None
    record_type: str = "activity"
    attributes: dict[str, TypedValue] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None

    def value(self, attribute: str) -> Any:
        """The `value` of one typed attribute, None when absent."""
        typed = self.attributes.get(attribute)
        return typed.value if typed is not None else None

    @property
    def type(self) -> str | None:
        """MANUAL_ACTIVITY, CALL or EMAIL."""
        return cast(str | None, self.value("type"))

    @property
    def display_name(self) -> str | None:
        return cast(str | None, self.value("display_name"))

    @property
    def ended_at(self) -> str | None:
        return cast(str | None, self.value("ended_at"))


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """One page of POST /api/v2/activity/_query; `next_cursor` is None on the last page."""

    items: list[ActivityRecord]
    next_cursor: str | None = None
