"""Request and response shapes of the account endpoints (contract §2.1–§2.7)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

from abmhub.custom_fields.model import LABEL_TYPES, SELECTION_TYPES
from abmhub.web.validation import (
    KEY_LENGTH,
    OptionalKey,
    OptionalNonBlankStr,
    OptionalStr,
    RequestModel,
    RequiredKey,
    RequiredStr,
    max_chars,
    not_an_array,
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
    accounts: Annotated[list[AccountItem], required_array(1, MAX_ACCOUNTS_PER_PUSH)]
    segmentId: OptionalStr
    upsert: bool = False


class CrmPushAccountsRequest(PushAccountsRequest):
    # A push whose items also require an externalId. Narrowing the items' type is what Pydantic
    # validates by; readers only need them as AccountItems, so the override is safe.
    accounts: Annotated[list[CrmAccountItem], required_array(1, MAX_ACCOUNTS_PER_PUSH)]  # type: ignore[assignment]


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
    mappings: Annotated[list[ExternalIdMapping], required_array(1, MAX_MAPPINGS)]


class CreateCustomFieldRequest(RequestModel):
    label: Annotated[RequiredStr, max_chars(KEY_LENGTH)]
    labelType: Annotated[RequiredStr, AfterValidator(one_of(*LABEL_TYPES))]
    description: OptionalStr
    options: Annotated[
        list[str] | None,
        Field(default=None, validate_default=True, description="Required, with at least 1 option, for selections"),
    ]

    @field_validator("options", mode="wrap")
    @classmethod
    def _selections_have_options(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """A selection's options are a required array of at least one option (§6 rule 1)."""
        if info.data.get("labelType") in SELECTION_TYPES:
            if not isinstance(value, list):
                raise not_an_array(1)
            if not value:
                raise PydanticCustomError("arrayMinSize", "too few", {"min": 1})
        return handler(value)


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
