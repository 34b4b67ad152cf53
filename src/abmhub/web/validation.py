"""Request validation with Pydantic, reported in class-validator's shape (contract §1.3, §6).

Request models are ordinary Pydantic models built from the field types below, validated in
strict mode so that a wrong JSON type is an error rather than a silent coercion. Rules that
Pydantic phrases differently raise `PydanticCustomError` whose *type* is the class-validator
constraint name; `validation_issues` turns any `ValidationError` into the contract's list of
`{property, path, constraints}`, one entry per offending field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from abmhub.timefmt import parse_iso8601


def _document_required(schema: dict[str, Any]) -> None:
    """Show fields marked `x-required` as required, non-null strings in the OpenAPI document.

    They are declared optional so that a missing value reaches our own check (and its
    class-validator wording) instead of Pydantic's generic "field required".
    """
    required = list(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if prop.pop("x-required", False):
            required.append(name)
            prop.pop("default", None)
            variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
            if len(variants) == 1:
                prop.update(variants[0])
            if prop.get("type") == "string":
                prop.setdefault("pattern", r"\S")  # not empty, not only white space
    if required:
        schema["required"] = required


class RequestModel(BaseModel):
    """Base for request bodies: unknown properties are rejected, as the vendor's whitelist does."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_document_required)


# --- field types -------------------------------------------------------------------------


def _not_empty(value: str | None) -> str:
    if value is None:
        raise PydanticCustomError("isDefined", "missing")
    if not value.strip():
        raise PydanticCustomError("isNotEmpty", "empty")
    return value


def _not_blank_when_given(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise PydanticCustomError("isNotEmpty", "empty")
    return value


# A required string: missing, null, empty or only white space is an error (§6 item 1). It is
# declared optional so that a missing value reaches `_not_empty`; once validated it is a `str`,
# which is what the type checker is told.
if TYPE_CHECKING:
    RequiredStr = str
else:
    RequiredStr = Annotated[
        str | None,
        Field(default=None, validate_default=True, json_schema_extra={"x-required": True}),
        AfterValidator(_not_empty),
    ]
# An optional string that, when given, must not be blank (identifiers such as externalId).
OptionalNonBlankStr = Annotated[str | None, Field(default=None), AfterValidator(_not_blank_when_given)]
OptionalStr = Annotated[str | None, Field(default=None)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise PydanticCustomError("isEmail", "not an email")
    return value


def max_chars(limit: int) -> AfterValidator:
    """At most `limit` characters (class-validator's `maxLength`): values stored in keyed,
    length-limited columns are refused as a request-shape error, never half-stored."""

    def check(value: str | None) -> str | None:
        if value is not None and len(value) > limit:
            raise PydanticCustomError("maxLength", "too long", {"max": limit})
        return value

    return AfterValidator(check)


KEY_LENGTH = 500  # identifiers from other systems: externalId, externalDealId, stageId, ...
EMAIL_LENGTH = 320

OptionalEmail = Annotated[str | None, Field(default=None), AfterValidator(_email), max_chars(EMAIL_LENGTH)]
# An identifier of another system, optional / required.
OptionalKey = Annotated[OptionalNonBlankStr, max_chars(KEY_LENGTH)]
RequiredKey = Annotated[RequiredStr, max_chars(KEY_LENGTH)]
# An optional JSON number; NaN and infinities are not numbers (isNumber).
OptionalNumber = Annotated[float | None, Field(default=None, allow_inf_nan=False)]


def _iso8601(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_iso8601(value)
        except ValueError:
            raise PydanticCustomError("isIso8601", "not ISO 8601") from None
    return value


OptionalIsoDate = Annotated[str | None, Field(default=None), AfterValidator(_iso8601)]
RequiredIsoDate = Annotated[RequiredStr, AfterValidator(_iso8601)]
RequiredEmail = Annotated[RequiredStr, AfterValidator(_email), max_chars(EMAIL_LENGTH)]


def whole_number(minimum: int, maximum: int | None = None) -> AfterValidator:
    """A JSON number that is a whole number within bounds (`isInt`, `min`, `max`), as an int.

    `55.0` is accepted as 55: JavaScript, and so the vendor's validator, cannot tell them apart.
    """

    def check(value: float | None) -> int | None:
        if value is None:
            return None
        if not value.is_integer():
            raise PydanticCustomError("isInt", "not an integer")
        if value < minimum:
            raise PydanticCustomError("min", "too small", {"min": minimum})
        if maximum is not None and value > maximum:
            raise PydanticCustomError("max", "too large", {"max": maximum})
        return int(value)

    return AfterValidator(check)


def one_of(*values: str) -> Callable[[str | None], str | None]:
    """A validator accepting only `values` (class-validator's `isIn`)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise PydanticCustomError("isIn", "not allowed", {"values": ", ".join(values)})
        return value

    return check


def unique_by(attribute: str) -> AfterValidator:
    """Items of an array must differ in `attribute` (e.g. stageId within a pipeline)."""

    def check(items: list[Any] | None) -> list[Any] | None:
        seen: set[Any] = set()
        for item in items or []:
            value = getattr(item, attribute)
            if value in seen:
                raise PydanticCustomError("isUnique", "duplicate", {"what": f"{attribute} '{value}'"})
            seen.add(value)
        return items

    return AfterValidator(check)


def not_an_array(min_items: int) -> PydanticCustomError:
    """A required array that is missing, null or not an array: `isArray`, and `arrayMinSize`
    too, as class-validator reports for a value that is no array of at least `min_items`."""
    return PydanticCustomError("notAnArray", "not an array", {"min": min_items})


def bounded_array(min_items: int, max_items: int) -> WrapValidator:
    """A required array of `min_items`..`max_items` items: `isArray`, `arrayMinSize`, `arrayMaxSize`.

    The size is checked before the items, so an oversized request is refused without
    validating thousands of items first.
    """

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(value, list):
            raise not_an_array(min_items)
        if len(value) < min_items:
            raise PydanticCustomError("arrayMinSize", "too few", {"min": min_items})
        if len(value) > max_items:
            raise PydanticCustomError("arrayMaxSize", "too many", {"max": max_items})
        return handler(value)

    return WrapValidator(check)


def required_array(min_items: int, max_items: int) -> FieldInfo:
    """A required array of `min_items`..`max_items` items, as metadata of its type:
    `items: Annotated[list[Item], required_array(1, 100)]` (see `bounded_array`).

    Declared with a `None` default so that a missing array reaches the size check and its
    class-validator wording instead of Pydantic's generic "field required".
    """
    info: FieldInfo = Field(
        default=None,
        validate_default=True,
        min_length=min_items,
        max_length=max_items,
        json_schema_extra={"x-required": True},
    )
    info.metadata.append(bounded_array(min_items, max_items))
    return info


def field_error(field: str, value: Any, kind: str, ctx: dict[str, Any] | None = None) -> InitErrorDetails:
    """An error located on `field`, for rules a model checks across its fields."""
    error = PydanticCustomError(kind, kind, ctx)
    return {"type": error, "loc": (field,), "input": value}


def raise_field_errors(model: type[BaseModel], errors: list[InitErrorDetails]) -> NoReturn:
    """Raise `errors` from a model validator, each reported on its own field (`signals.3.score`,
    not `signals.3`): Pydantic prefixes the model's own location."""
    raise ValidationError.from_exception_data(model.__name__, errors)


# --- reporting ---------------------------------------------------------------------------

_TYPE_CONSTRAINTS = {
    "string_type": "isString",
    "int_type": "isNumber",
    "float_type": "isNumber",
    "int_from_float": "isNumber",
    "finite_number": "isNumber",
    "bool_type": "isBoolean",
    "list_type": "isArray",
    "dict_type": "isObject",
    "model_type": "isObject",
    "model_attributes_type": "isObject",
    "extra_forbidden": "whitelistValidation",
}


def constraint_text(constraint: str, prop: str, ctx: dict[str, Any] | None = None) -> str:
    """The class-validator wording of one constraint for property `prop`."""
    ctx = ctx or {}
    match constraint:
        case "isNotEmpty":
            return f"{prop} should not be empty"
        case "isString":
            return f"{prop} must be a string"
        case "isNumber":
            return f"{prop} must be a number conforming to the specified constraints"
        case "isInt":
            return f"{prop} must be an integer number"
        case "isBoolean":
            return f"{prop} must be a boolean value"
        case "isArray":
            return f"{prop} must be an array"
        case "isObject":
            return f"{prop} must be an object"
        case "arrayMinSize":
            return f"{prop} must contain at least {ctx.get('min')} elements"
        case "arrayMaxSize":
            return f"{prop} must contain no more than {ctx.get('max')} elements"
        case "isEmail":
            return f"{prop} must be an email"
        case "isIn":
            return f"{prop} must be one of the following values: {ctx.get('values')}"
        case "isIso8601":
            return f"{prop} must be a valid ISO 8601 date string"
        case "isUrl":
            return f"{prop} must be a URL address"
        case "isFqdn":
            return f"{prop} must be a valid domain name"
        case "whitelistValidation":
            return f"property {prop} should not exist"
        case "min":
            return f"{prop} must not be less than {ctx.get('min')}"
        case "max":
            return f"{prop} must not be greater than {ctx.get('max')}"
        case "maxLength":
            return f"{prop} must be shorter than or equal to {ctx.get('max')} characters"
        case "isUnique":
            return f"{prop} must not contain duplicate {ctx.get('what', 'values')}"
        case _:
            return f"{prop} is invalid"


def issue(prop: str, path: str, constraints: dict[str, str]) -> dict[str, Any]:
    return {"property": prop, "path": path, "constraints": constraints}


def validation_issues(error: ValidationError) -> list[dict[str, Any]]:
    """Translate Pydantic's errors into class-validator's, grouped by field, in input order."""
    grouped: dict[str, dict[str, Any]] = {}
    for err in error.errors(include_url=False):
        loc = list(err["loc"])
        kind = err["type"]
        constraint = _TYPE_CONSTRAINTS.get(kind, kind)
        each = False
        # An error on an element of a string array (tags.1) is reported on the array itself.
        if loc and isinstance(loc[-1], int) and constraint in ("isString", "isNumber", "isIn"):
            loc.pop()
            each = True
        path = ".".join(str(part) for part in loc)
        prop = str(loc[-1]) if loc else ""
        entry = grouped.setdefault(path, issue(prop, path, {}))
        if constraint == "isDefined":  # missing or null required string
            entry["constraints"]["isNotEmpty"] = constraint_text("isNotEmpty", prop)
            entry["constraints"]["isString"] = constraint_text("isString", prop)
            continue
        if constraint == "missing":
            entry["constraints"]["isNotEmpty"] = constraint_text("isNotEmpty", prop)
            continue
        if constraint == "notAnArray":
            entry["constraints"]["isArray"] = constraint_text("isArray", prop)
            entry["constraints"]["arrayMinSize"] = constraint_text("arrayMinSize", prop, err.get("ctx"))
            continue
        text = constraint_text(constraint, prop, err.get("ctx"))
        if each:
            text = f"each value in {text}"
        entry["constraints"][constraint] = text
    return list(grouped.values())
