"""What FastAPI cannot infer for the OpenAPI document, stated once.

Surface R reads its query parameters as raw strings (so that a bad value gets the contract's
400 in class-validator's words, not FastAPI's 422); this module documents the values they
accept, the statuses each surface really answers (Surface R never answers 422; every
authenticated operation may answer 429 when rate limiting is on), and the operations that
need no key. The fuzzing tests (tests/reliability) hold the server to this document.
"""

from __future__ import annotations

from typing import Any

from abmhub.web.paging import MAX_LIMIT

SURFACE_R = "/api/v1"
SURFACE_V = "/api/v2"
PUBLIC_PATHS = ("/healthz", f"{SURFACE_V}/health")

# Surface R query parameters by name: the values the handlers accept.
QUERY_PARAMETERS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    "minScore": {"type": "integer", "minimum": 0, "maximum": 100},
    "lastSync": {"type": "string", "format": "date-time"},
    "cursor": {"type": "string", "minLength": 1},
}


def refine(document: dict[str, Any], *, surface_r_error: str, surface_v_error: str) -> None:
    """Correct `document` in place; the two names are the error schemas of each surface."""
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if path in PUBLIC_PATHS:
                operation["security"] = []
                operation.setdefault("responses", {}).setdefault("503", {"description": "The database is unreachable"})
                continue
            responses = operation.setdefault("responses", {})
            if path.startswith(SURFACE_R + "/"):
                responses.pop("422", None)
                _document_query(operation)
                error = surface_r_error
            else:
                error = surface_v_error
            responses.setdefault(
                "429",
                {
                    "description": "Over the key's rate limit (only with `serve --rate-limit`); see Retry-After",
                    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1, "maximum": 60}}},
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}},
                },
            )


def _document_query(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        accepted = QUERY_PARAMETERS.get(parameter.get("name"))
        if parameter.get("in") == "query" and accepted is not None:
            parameter["schema"] = dict(accepted)
