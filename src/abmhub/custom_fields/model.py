"""Custom fields: their types and the rule for values (contract §2.7, §2.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from abmhub.timefmt import parse_iso8601

LABEL_TYPES = ("singleLineText", "multiLineText", "singleSelection", "multiSelection", "number", "date")
SELECTION_TYPES = ("singleSelection", "multiSelection")


@dataclass(frozen=True, slots=True)
class CustomField:
    key: str
    label: str
    label_type: str
    description: str | None
    options: list[str]
    active: bool = True


def value_problem(field: CustomField, value: Any) -> str | None:
    """Why `value` cannot be stored in `field`, or None when it can. `null` always clears a value."""
    if value is None:
        return None
    match field.label_type:
        case "singleLineText" | "multiLineText":
            return None if isinstance(value, str) else "expected a string"
        case "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return None if ok else "expected a number"
        case "date":
            if not isinstance(value, str):
                return "expected an ISO 8601 date string"
            try:
                parse_iso8601(value)
            except ValueError:
                return "expected an ISO 8601 date string"
            return None
        case "singleSelection":
            if not isinstance(value, str):
                return "expected one of the options as a string"
            return None if value in field.options else f"'{value}' is not one of the options"
        case "multiSelection":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "expected an array of options"
            unknown = [v for v in value if v not in field.options]
            return f"'{unknown[0]}' is not one of the options" if unknown else None
    return "unsupported field type"


def wire(field: CustomField) -> dict[str, Any]:
    """The field as `GET /accounts/custom-fields` returns it."""
    return {
        "key": field.key,
        "label": field.label,
        "labelType": field.label_type,
        "description": field.description,
        "options": field.options,
        "objectType": "accounts",
        "status": "active" if field.active else "inactive",
    }
