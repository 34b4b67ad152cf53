"""Request and response shapes of the sales-activity endpoints (contract §2.11, §6.28)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from abmhub.web.validation import (
    OptionalKey,
    OptionalNumber,
    OptionalStr,
    RequestModel,
    RequiredEmail,
    RequiredIsoDate,
    RequiredKey,
    RequiredStr,
    one_of,
    required_array,
)

MAX_ACTIVITIES_PER_PUSH = 50
# The vendor documents no upper bound; this one bounds the work of one request (at most
# 50,000 contact mentions) far below what a 5 MiB body could otherwise carry.
MAX_CONTACTS_PER_ACTIVITY = 1000
DIRECTIONS = ("inbound", "outbound")


# --- requests ----------------------------------------------------------------------------


class ActivityContactItem(RequestModel):
    email: RequiredEmail
    externalContactId: OptionalKey
    name: OptionalStr
    title: OptionalStr
    department: OptionalStr
    seniority: OptionalStr
    phone: OptionalStr
    linkedinUrl: OptionalStr


class ActivityFrom(RequestModel):
    name: OptionalStr
    email: OptionalStr


class ActivityItem(RequestModel):
    externalActivityId: RequiredKey
    # Any string: a type other than call/email is a per-item `skipped`, not a 400.
    activityType: RequiredStr
    occurredAt: RequiredIsoDate
    # An un-normalisable domain is a per-item `failed` (§1.6), not a 400.
    domain: RequiredStr
    ownerEmail: RequiredEmail
    contacts: Annotated[list[ActivityContactItem], required_array(1, MAX_CONTACTS_PER_ACTIVITY)]
    accountName: OptionalStr
    subject: OptionalStr
    ownerName: OptionalStr
    ownerId: OptionalKey
    from_: ActivityFrom | None = Field(default=None, alias="from")
    callTitle: OptionalStr
    durationMinutes: OptionalNumber
    outcome: OptionalStr
    direction: Annotated[OptionalStr, AfterValidator(one_of(*DIRECTIONS))]
    openCount: OptionalNumber
    clickCount: OptionalNumber


class PushActivitiesRequest(RequestModel):
    activities: Annotated[list[ActivityItem], required_array(1, MAX_ACTIVITIES_PER_PUSH)]


# --- responses (documentation of the wire shapes; handlers build them directly) ----------


class PushActivityResult(BaseModel):
    externalActivityId: str
    status: str = Field(description="created | failed | skipped")
    error: str | None = None
    reason: str | None = None


class PushActivitiesSummary(BaseModel):
    total: int
    created: int
    failed: int
    skipped: int


class PushActivitiesResult(BaseModel):
    results: list[PushActivityResult]
    summary: PushActivitiesSummary


class ActivitySender(BaseModel):
    name: str | None
    email: str | None


class ActivityContactRecord(BaseModel):
    id: str = Field(description="The contact's UUID")
    email: str = Field(description="Lowercased: the contact's key within the workspace")
    externalContactId: str | None
    name: str | None
    title: str | None
    department: str | None
    seniority: str | None
    phone: str | None
    linkedinUrl: str | None


class ActivityRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="The activity's UUID")
    externalActivityId: str | None
    activityType: str = Field(description="call | email")
    occurredAt: str
    domain: str | None = Field(description="Normalised")
    rtp_aid: str | None = Field(description="The linked account; null until an account has this domain")
    accountName: str | None
    subject: str | None
    ownerEmail: str | None
    ownerName: str | None
    ownerId: str | None
    from_: ActivitySender | None = Field(alias="from")
    callTitle: str | None
    durationMinutes: float | None
    outcome: str | None
    direction: str | None
    openCount: float | None
    clickCount: float | None
    contacts: list[ActivityContactRecord] = Field(description="As the contacts are now")
    createdAt: str
    updatedAt: str = Field(description="Last change of the activity or of one of its contacts")


class ActivityPage(BaseModel):
    data: list[ActivityRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None
