"""Segment requests and records (contract §2.12), including the rule of dynamic segments."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from abmhub.web.validation import (
    OptionalNonBlankStr,
    OptionalStr,
    RequestModel,
    RequiredStr,
    field_error,
    one_of,
    raise_field_errors,
    required_array,
)

RULE_FIELDS = (
    "rtp_account_score",
    "rtp_journey_stage",
    "rtp_advertising_activity_score",
    "rtp_website_intent_score",
    "rtp_g2_intent_score",
    "rtp_bombora_intent_score",
    "tags",
    # The active prediction model's answer for the account (§10): no prediction, no match.
    "predictedBand",
    "probability",
)
RULE_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains")
PREDICTED_BANDS = ("A", "B", "C", "D")
BAND_OPERATORS = ("eq", "ne", "in")
MAX_MEMBERS_PER_REQUEST = 1000


def _rule_field(value: str | None) -> str | None:
    if value is not None and value not in RULE_FIELDS and not value.startswith("customFields."):
        raise PydanticCustomError("isIn", "not allowed", {"values": ", ".join(RULE_FIELDS) + ", customFields.<KEY>"})
    return value


Scalar = str | int | float | bool | None


class RuleCondition(RequestModel):
    """One test on an account: `{"field": "rtp_account_score", "op": "gte", "value": 60}`.

    `in` takes an array of values; `contains` applies to `tags`; every other operator takes
    one value (a string, number, boolean or null). `predictedBand` takes `eq`, `ne` or `in`
    with bands `A`–`D`; `probability` a number from 0 to 1.
    """

    field: Annotated[RequiredStr, AfterValidator(_rule_field)]
    op: Annotated[RequiredStr, AfterValidator(one_of(*RULE_OPERATORS))]
    value: Scalar | list[Scalar] = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> RuleCondition:
        """Reported on the field at fault: `rule.all.0.value`, not `rule.all.0`."""
        many = isinstance(self.value, list)
        if self.op == "in" and not many:
            raise_field_errors(type(self), [field_error("value", self.value, "isArray")])
        if many and self.op != "in" and self.field != "tags":
            one = {"values": "a single value (use op 'in' for a list)"}
            raise_field_errors(type(self), [field_error("value", self.value, "isIn", one)])
        if self.op == "contains" and self.field != "tags":
            tags = {"values": "tags (for op 'contains')"}
            raise_field_errors(type(self), [field_error("field", self.field, "isIn", tags)])
        if self.field == "predictedBand":
            self._check_band()
        elif self.field == "probability":
            self._check_probability()
        return self

    def _check_band(self) -> None:
        if self.op not in BAND_OPERATORS:
            raise_field_errors(type(self), [field_error("op", self.op, "isIn", {"values": ", ".join(BAND_OPERATORS)})])
        values = self.value if isinstance(self.value, list) else [self.value]
        if not values or any(value not in PREDICTED_BANDS for value in values):
            bands = {"values": ", ".join(PREDICTED_BANDS)}
            raise_field_errors(type(self), [field_error("value", self.value, "isIn", bands)])

    def _check_probability(self) -> None:
        values = self.value if isinstance(self.value, list) else [self.value]
        for value in values:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise_field_errors(type(self), [field_error("value", self.value, "isNumber")])
            if value < 0:
                raise_field_errors(type(self), [field_error("value", self.value, "min", {"min": 0})])
            if value > 1:
                raise_field_errors(type(self), [field_error("value", self.value, "max", {"max": 1})])
        if not values:
            raise_field_errors(type(self), [field_error("value", self.value, "isNumber")])


class SegmentRule(RequestModel):
    """Members are the accounts that pass `all` of the conditions (and, if given, `any` of the others)."""

    all: list[RuleCondition] | None = None
    any: list[RuleCondition] | None = None


class CreateSegmentRequest(RequestModel):
    name: RequiredStr
    type: Annotated[RequiredStr, AfterValidator(one_of("static", "dynamic"))]
    status: Annotated[RequiredStr, AfterValidator(one_of("active", "draft", "archived"))]
    rule: SegmentRule | None = None


class UpdateSegmentRequest(RequestModel):
    name: OptionalNonBlankStr
    status: Annotated[OptionalStr, AfterValidator(one_of("active", "draft", "archived"))] = None
    rule: SegmentRule | None = None


class MembersRequest(RequestModel):
    rtp_aids: Annotated[list[str], required_array(1, MAX_MEMBERS_PER_REQUEST)]


class SegmentRecord(BaseModel):
    segmentId: str
    name: str
    type: str
    status: str
    rule: dict[str, Any] | None
    createdAt: str
    updatedAt: str


class MembersChanged(BaseModel):
    added: int | None = Field(default=None, description="POST: accounts that became members")
    removed: int | None = Field(default=None, description="DELETE: accounts that stopped being members")
    notFound: list[str] = Field(description="rtp_aids that name no account of the workspace")
