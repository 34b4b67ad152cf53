"""Surface V's error shapes (contract §4.1): FastAPI's `{"detail": ...}` conventions.

Every exception raised while serving a path under `/api/v2` comes here (web/errors.py
dispatches on the path), so Surface V never answers in Surface R's envelope: its own
errors, the shared kit's (a body over the size limit), domain errors, unknown routes and
unexpected faults alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from abmhub.errors import DomainError, MissingRecord, RecordsNotFound
from abmhub.web.errors import DOMAIN_STATUS, ApiError
from abmhub.web.responses import JSONBytes

PREFIX = "/api/v2"
RECORD_NOT_FOUND = "record_not_found"

Loc = Sequence[str | int]


class SurfaceVError(Exception):
    """An error answered as `{"detail": detail}` with `status`."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else f"{status} error")
        self.status = status
        self.detail = detail
        self.headers = headers


def not_authenticated() -> SurfaceVError:
    return SurfaceVError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})


def invalid_key() -> SurfaceVError:
    return SurfaceVError(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})


def too_many_requests(retry_after: int) -> SurfaceVError:
    return SurfaceVError(429, "Too Many Requests", {"Retry-After": str(retry_after)})


def record_not_found() -> SurfaceVError:
    return SurfaceVError(404, RECORD_NOT_FOUND)


def detail_item(type_: str, loc: Loc, msg: str, input_: Any) -> dict[str, Any]:
    """One entry of a 422 `detail` list, in FastAPI's shape."""
    return {"type": type_, "loc": list(loc), "msg": msg, "input": _jsonable(input_)}


def invalid(items: list[dict[str, Any]]) -> SurfaceVError:
    return SurfaceVError(422, items)


def invalid_fields(exc: ValidationError, prefix: Loc = ("body",)) -> SurfaceVError:
    """A Pydantic validation failure as FastAPI reports it: one item per offending field."""
    return invalid(
        [
            detail_item(error["type"], [*prefix, *error["loc"]], error["msg"], error.get("input"))
            for error in exc.errors(include_url=False, include_context=False)
        ]
    )


def records_not_found(
    missing: Iterable[MissingRecord], locations: dict[str, Loc], *, listed: frozenset[str] = frozenset()
) -> SurfaceVError:
    """422 with a `record_not_found` item per unknown reference; `locations` maps each
    reference's role to the request field that named it, and for the `listed` roles (a
    list in the request) the item's index follows."""
    items = []
    for record in missing:
        index = [record.position] if record.role in listed and record.position is not None else []
        loc = [*locations[record.role], *index]
        kind = "Opportunity" if record.role == "opportunity" else record.role.capitalize()
        items.append(detail_item(RECORD_NOT_FOUND, loc, f"{kind} '{record.value}' not found", record.value))
    return invalid(items)


def _jsonable(value: Any) -> Any:
    """Echoed input, made safe to serialise (it normally is: it came from a JSON body)."""
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return str(value)
    return value


def _respond(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONBytes({"detail": detail}, status_code=status, headers=headers)


def render_error(request: Request, exc: Exception) -> Response:
    """Any exception raised under /api/v2, in Surface V's shape."""
    if isinstance(exc, SurfaceVError):
        return _respond(exc.status, exc.detail, exc.headers)
    if isinstance(exc, ApiError):
        # The shared HTTP kit (e.g. a body over the size limit): its specific text.
        return _respond(exc.status, exc.custom_message or exc.message, exc.headers)
    if isinstance(exc, RecordsNotFound):  # a reference the router did not place: name the role
        return render_error(request, records_not_found(exc.missing, {m.role: ("body", m.role) for m in exc.missing}))
    if isinstance(exc, DomainError):
        status = DOMAIN_STATUS[exc.kind]
        return _respond(status, exc.message)
    if isinstance(exc, StarletteHTTPException):
        return _respond(exc.status_code, exc.detail, getattr(exc, "headers", None))
    if isinstance(exc, RequestValidationError):
        items = [
            detail_item(e.get("type", "value_error"), e.get("loc", ()), e.get("msg", ""), e.get("input"))
            for e in exc.errors()
        ]
        return _respond(422, items)
    if isinstance(exc, ValidationError):
        return render_error(request, invalid_fields(exc))
    # Unexpected: web/errors.py has logged it; the client gets no internals.
    return _respond(500, "Internal Server Error")
