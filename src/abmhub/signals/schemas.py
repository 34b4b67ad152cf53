"""Request and response shapes of the signals intake (contract §3.1, §6.21, §6.29)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from abmhub.web.validation import (
    OptionalKey,
    OptionalNumber,
    OptionalStr,
    RequestModel,
    RequiredIsoDate,
    RequiredStr,
    field_error,
    one_of,
    raise_field_errors,
    required_array,
    whole_number,
)

MAX_SIGNALS_PER_PUSH = 1000

# The signal types of each source, in the order error messages list them.
SIGNAL_TYPES: dict[str, tuple[str, ...]] = {
    "website": ("page_view",),
    "g2": ("profile_view", "comparison", "pricing_view", "category_view"),
    "bombora": ("surge",),
    "linkedin_ads": ("impression", "click", "engagement"),
}
SOURCES = tuple(SIGNAL_TYPES)

# Optional fields that only mean something for one source; sending one for another source
# is refused like an unknown property rather than silently ignored (a `count` on a website
# signal would otherwise look accepted and count for nothing).
SOURCE_FIELDS = {"url": "website", "topic": "bombora", "score": "bombora", "count": "linkedin_ads"}

MIN_SCORE, MAX_SCORE = 0, 100
# Stored in a 32-bit integer column: a larger count is a request-shape error, not a 500.
MAX_COUNT = 2**31 - 1
# A weight multiplies the signal's points; a bound keeps every product finite (a weight of
# 1e308 made the score explanation's numbers infinite, answered as null).
MAX_WEIGHT = 1_000_000


def _not_negative(value: float | None) -> float | None:
    if value is not None and value < 0:
        raise PydanticCustomError("min", "too small", {"min": 0})
    return value


def _at_most(maximum: float) -> AfterValidator:
    def check(value: float | None) -> float | None:
        if value is not None and value > maximum:
            raise PydanticCustomError("max", "too large", {"max": maximum})
        return value

    return AfterValidator(check)


_TYPES_DOC = "; ".join(f"{source}: {', '.join(types)}" for source, types in SIGNAL_TYPES.items())


class SignalItem(RequestModel):
    source: Annotated[RequiredStr, AfterValidator(one_of(*SOURCES)), Field(json_schema_extra={"enum": list(SOURCES)})]
    type: Annotated[RequiredStr, Field(description=f"Per source — {_TYPES_DOC}")]
    # An un-normalisable domain is a per-item `failed` (§1.6), not a 400.
    domain: RequiredStr
    occurredAt: RequiredIsoDate
    externalSignalId: OptionalKey
    weight: Annotated[OptionalNumber, AfterValidator(_not_negative), _at_most(MAX_WEIGHT)] = Field(
        default=None,
        description=f"0–{MAX_WEIGHT:,}; default 1",
        json_schema_extra={"minimum": 0, "maximum": MAX_WEIGHT},
    )
    url: Annotated[OptionalStr, Field(description="website: the page viewed")]
    topic: Annotated[OptionalStr, Field(description="bombora: the intent topic")]
    score: Annotated[OptionalNumber, whole_number(MIN_SCORE, MAX_SCORE)] = Field(
        default=None, description="bombora: integer 0–100, required for surge"
    )
    count: Annotated[OptionalNumber, whole_number(1, MAX_COUNT)] = Field(
        default=None, description=f"linkedin_ads: 1–{MAX_COUNT}; default 1"
    )

    @model_validator(mode="after")
    def _fits_its_source(self) -> SignalItem:
        """The rules that depend on the source, reported on the field they are about."""
        issues: list[InitErrorDetails] = []
        allowed = SIGNAL_TYPES[self.source]
        if self.type not in allowed:
            issues.append(field_error("type", self.type, "isIn", {"values": ", ".join(allowed)}))
        for field, owner in SOURCE_FIELDS.items():
            if owner != self.source and getattr(self, field) is not None:
                issues.append(field_error(field, getattr(self, field), "whitelistValidation"))
        if self.source == "bombora" and self.type == "surge" and self.score is None:
            # Required for a surge: missing is reported as a required number would be.
            issues.append(field_error("score", None, "missing"))
            issues.append(field_error("score", None, "isNumber"))
        if issues:
            raise_field_errors(type(self), issues)
        return self


class PushSignalsRequest(RequestModel):
    signals: Annotated[list[SignalItem], required_array(1, MAX_SIGNALS_PER_PUSH)]


# --- responses (documentation of the wire shapes; handlers build them directly) ----------


class PushSignalResult(BaseModel):
    externalSignalId: str | None = Field(default=None, description="Present when the item had one")
    domain: str = Field(description="Normalised; as sent when it could not be normalised")
    status: str = Field(description="created | skipped | failed")
    error: str | None = Field(default=None, description="Why a failed item failed")
    reason: str | None = Field(default=None, description="Why a skipped item was skipped")


class PushSignalsSummary(BaseModel):
    total: int
    created: int
    skipped: int
    failed: int


class PushSignalsResult(BaseModel):
    results: list[PushSignalResult]
    summary: PushSignalsSummary
