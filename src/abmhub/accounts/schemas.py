"""Request and response shapes of the account endpoints (contract §2.1–§2.7)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from abmhub.custom_fields.model import LABEL_TYPES
from abmhub.web.validation import (
    KEY_LENGTH,
    OptionalKey,
    OptionalNonBlankStr,
    OptionalStr,
    RequestModel,
    RequiredKey,
    RequiredStr,
    max_chars,
    one_of,
    required_array,
)

MAX_ACCOUNTS_PER_PUSH = 100
MAX_MAPPINGS = 100

# --- requests ----------------------------------------------------------------------------


class AccountItem(RequestModel):
    domain: RequiredStr
    name: RequiredStr
    externalId: OptionalKey
    shortName: OptionalStr
    linkedinUrl: OptionalStr
    tags: list[str] | None = None
    customFields: dict[str, Any] | None = None


class CrmAccountItem(AccountItem):
    """Under the `/crm` alias the CRM's id is required: it is the dedup key (§2.2)."""

    externalId: RequiredKey


class PushAccountsRequest(RequestModel):
    accounts: required_array(AccountItem, 1, MAX_ACCOUNTS_PER_PUSH)
    segmentId: OptionalStr
    upsert: bool = False


class CrmPushAccountsRequest(PushAccountsRequest):
    accounts: required_array(CrmAccountItem, 1, MAX_ACCOUNTS_PER_PUSH)


class UpdateAccountRequest(RequestModel):
    """PUT /accounts/:rtp_aid: the six keys the live service takes (§2.3)."""

    customFields: dict[str, Any] | None = None
    name: OptionalNonBlankStr
    shortName: OptionalStr
    linkedinUrl: OptionalStr
    tags: list[str] | None = None
    externalId: OptionalKey


class ExternalIdMapping(RequestModel):
    domain: RequiredStr
    externalId: RequiredKey


class MapExternalIdsRequest(RequestModel):
    mappings: required_array(ExternalIdMapping, 1, MAX_MAPPINGS)


class CreateCustomFieldRequest(RequestModel):
    label: Annotated[RequiredStr, max_chars(KEY_LENGTH)]
    labelType: Annotated[RequiredStr, AfterValidator(one_of(*LABEL_TYPES))]
    description: OptionalStr
    options: list[str] | None = None


# --- responses (documentation of the wire shapes; handlers build them directly) ----------


class AccountRecord(BaseModel):
    rtp_aid: str
    id: str = Field(description="The account's UUID, used by the /api/v2 surface")
    externalId: str | None
    name: str
    domain: str
    shortName: str | None
    linkedinUrl: str | None
    tags: list[str]
    rtp_account_score: int
    rtp_journey_stage: str
    rtp_advertising_activity_score: int
    rtp_website_intent_score: int
    rtp_g2_intent_score: int
    rtp_bombora_intent_score: int
    rtp_last_account_date: str
    customFields: dict[str, Any]
    segmentIds: list[str]


class AccountPage(BaseModel):
    data: list[AccountRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


class PushAccountResult(BaseModel):
    rtp_aid: str | None
    domain: str
    externalId: str | None = None
    status: str = Field(description="created | updated | failed")
    error: str | None = None


class PushAccountsSummary(BaseModel):
    total: int
    created: int
    updated: int
    failed: int


class PushAccountsResult(BaseModel):
    results: list[PushAccountResult]
    summary: PushAccountsSummary


class MessageResult(BaseModel):
    message: str


class MapExternalIdsResult(BaseModel):
    matched: int
    updated: int
    notFound: list[str]


class MissingExternalId(BaseModel):
    name: str
    domain: str


class CustomFieldRecord(BaseModel):
    key: str
    label: str
    labelType: str
    description: str | None
    options: list[str]
    objectType: str
    status: str
