"""Wire shapes shared by every Surface R endpoint, for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

Data = TypeVar("Data")


class Envelope(BaseModel, Generic[Data]):
    statusCode: int = Field(examples=[200])
    timestamp: str = Field(examples=["2026-04-30T10:00:00.000Z"])
    path: str = Field(description="The request path with its query string", examples=["/api/v1/accounts?limit=1"])
    data: Data


class ValidationIssue(BaseModel):
    property: str
    path: str = Field(examples=["accounts.0.domain"])
    constraints: dict[str, str] = Field(examples=[{"isNotEmpty": "domain should not be empty"}])


class ErrorEnvelope(BaseModel):
    statusCode: int
    timestamp: str
    path: str
    data: list[ValidationIssue] | None = Field(description="Validation issues for a 400 validation error, else null")
    message: str = Field(examples=["Bad Request"])
    customMessage: str | None = Field(default=None, examples=["Invalid API key"])


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": text}
    for code, text in (
        (400, "Validation error (data lists the issues) or a business rule (customMessage)"),
        (401, "Missing or invalid X-Api-Key"),
        (404, "Unknown route or record"),
        (413, "Request body exceeds 5 MiB"),
    )
}


# For the operations that can refuse a write because of stored data (§2.3, §2.5, §2.7, §2.9).
CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorEnvelope, "description": "Conflicts with stored data (customMessage says which)"}
}


# Request models documented through `request_body`, added to the document's components.
BODY_MODELS: dict[str, type[BaseModel]] = {}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body that the handler reads and validates itself."""
    BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


# The list parameters of §1.5, as `page_params` declares them.
PAGE_PARAMETERS = {
    "limit": "Page size, 1–1000 (default 100)",
    "cursor": "`nextCursor` of the previous page",
    "lastSync": "ISO 8601: only records changed after it (delta sync)",
}


def query_parameters(descriptions: dict[str, str]) -> dict[str, Any]:
    """`openapi_extra` documenting optional query parameters that the handler reads itself from
    `request.query_params`, in this order (web/openapi.py states the values each accepts).

    For the hottest lists: FastAPI parses and validates each declared parameter on every
    request, ~20 µs apiece (measured: 8 parameters were a tenth of a page of 100 accounts).
    """
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
            for name, text in descriptions.items()
        ]
    }
