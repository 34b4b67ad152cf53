"""Request and response shapes of deals and pipelines (contract §2.8–§2.10)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from abmhub.web.validation import (
    OptionalEmail,
    OptionalIsoDate,
    OptionalKey,
    OptionalNumber,
    OptionalStr,
    RequestModel,
    RequiredIsoDate,
    RequiredKey,
    RequiredStr,
    max_chars,
    one_of,
    required_array,
    unique_by,
)

MAX_DEALS_PER_PUSH = 100
MAX_PIPELINES = 20
JOURNEY_STAGES = ("Unaware", "Aware", "Consideration", "Opportunity", "Customer")
DEAL_JOURNEY_STAGES = ("Opportunity", "Customer")


class AssociatedAccount(RequestModel):
    externalId: OptionalKey
    domain: OptionalStr
    name: OptionalStr


class StageEntry(RequestModel):
    stageId: RequiredKey
    stageLabel: OptionalStr
    enteredAt: RequiredIsoDate


class DealItem(RequestModel):
    externalDealId: RequiredKey
    name: RequiredStr
    amount: OptionalNumber
    dealCurrencyCode: Annotated[OptionalStr, max_chars(16)]
    stageId: OptionalKey
    stageLabel: OptionalStr
    pipelineId: OptionalKey
    pipelineLabel: OptionalStr
    startDate: OptionalIsoDate
    closedDate: OptionalIsoDate
    ownerName: OptionalStr
    ownerEmail: OptionalEmail
    ownerId: OptionalKey
    associatedAccounts: list[AssociatedAccount] | None = None
    stageHistory: list[StageEntry] | None = None


class PushDealsRequest(RequestModel):
    deals: Annotated[list[DealItem], required_array(1, MAX_DEALS_PER_PUSH)]


class StageDefinition(RequestModel):
    stageId: RequiredKey
    stageLabel: RequiredStr
    journeyStage: Annotated[OptionalStr, AfterValidator(one_of(*DEAL_JOURNEY_STAGES))] = None


class PipelineDefinition(RequestModel):
    pipelineId: RequiredKey
    pipelineLabel: RequiredStr
    stages: Annotated[list[StageDefinition], required_array(1, 1000), unique_by("stageId")]


class CreatePipelinesRequest(RequestModel):
    pipelines: Annotated[list[PipelineDefinition], required_array(1, MAX_PIPELINES), unique_by("pipelineId")]


# --- responses (documentation) ------------------------------------------------------------


class PushDealResult(BaseModel):
    externalDealId: str
    status: str = Field(description="upserted | failed")
    error: str | None = None


class PushDealsSummary(BaseModel):
    total: int
    upserted: int
    failed: int


class PushDealsResult(BaseModel):
    results: list[PushDealResult]
    summary: PushDealsSummary


class AssociatedAccountRecord(BaseModel):
    externalId: str | None
    domain: str | None
    name: str | None
    rtp_aid: str | None


class StageHistoryRecord(BaseModel):
    stageId: str
    stageLabel: str | None
    pipelineId: str | None
    enteredAt: str


class DealRecord(BaseModel):
    id: str
    externalDealId: str
    name: str
    amount: float | None
    dealCurrencyCode: str | None
    stageId: str | None
    stageLabel: str | None
    pipelineId: str | None
    pipelineLabel: str | None
    startDate: str | None
    closedDate: str | None
    ownerName: str | None
    ownerEmail: str | None
    ownerId: str | None
    associatedAccounts: list[AssociatedAccountRecord]
    stageHistory: list[StageHistoryRecord]
    createdAt: str
    updatedAt: str


class DealPage(BaseModel):
    data: list[DealRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


class StageRecord(BaseModel):
    stageId: str
    stageLabel: str
    journeyStage: str | None = Field(description="Opportunity, Customer, or null for a lost stage")


class PipelineRecord(BaseModel):
    pipelineId: str
    pipelineLabel: str
    stages: list[StageRecord]


class PipelineCreated(BaseModel):
    pipelineId: str
    status: str


class PipelinesCreatedSummary(BaseModel):
    total: int
    created: int


class PipelinesCreated(BaseModel):
    results: list[PipelineCreated]
    summary: PipelinesCreatedSummary
