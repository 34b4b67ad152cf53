"""Surface V's request dependencies: the caller (Bearer or X-Api-Key) and the JSON body.

Order of checks, as on Surface R: body size (413) → authentication (401) → rate limit (429) →
body shape (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Depends
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from abmhub.reevo import errors
from abmhub.tenancy.service import Caller, authenticate_on
from abmhub.web.dependencies import (
    MAX_JSON_DEPTH,
    holds_nul,
    is_json,
    nests_within,
    read_body,
    reader,
    refuse_declared_oversize,
    take_rate_token,
    url_holds_nul,
)
from abmhub.web.ratelimit import RateLimited

Model = TypeVar("Model", bound=BaseModel)

_NUL_MESSAGE = "NUL characters (\\u0000) are not allowed"
# How much of a body that is not JSON a 422 echoes back.
_ECHO_CHARS = 1000


def presented_key(request: Request) -> str | None:
    """The key a request carries: `Authorization: Bearer <key>`, else `X-Api-Key`."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


async def v_caller(request: Request) -> Caller:
    """The authenticated caller of a Surface V request (its key read on the event loop, as
    Surface R's: `web.dependencies.caller`)."""
    refuse_declared_oversize(request)
    key = presented_key(request)
    if key is None:
        raise errors.not_authenticated()
    found = await authenticate_on(reader(request), key)
    if found is None:
        raise errors.invalid_key()
    try:
        take_rate_token(request, key)
    except RateLimited as exc:
        raise errors.too_many_requests(exc.retry_after) from None
    if url_holds_nul(request):
        raise errors.invalid([errors.detail_item("string_pattern_mismatch", ["path"], _NUL_MESSAGE, None)])
    return found


async def read_document(request: Request) -> Any:
    """The body as FastAPI would hand it to a model: JSON when the Content-Type says so (or
    says nothing), else the raw text, which then fails validation like any non-object."""
    raw = await read_body(request)
    if not raw:
        raise errors.invalid([errors.detail_item("missing", ["body"], "Field required", None)])
    content_type = request.headers.get("content-type")
    if content_type and not (is_json(content_type) or content_type.split(";", 1)[0].strip().lower().endswith("+json")):
        text = raw[:_ECHO_CHARS].decode("utf-8", errors="replace")
        raise errors.invalid(
            [
                errors.detail_item(
                    "model_attributes_type",
                    ["body"],
                    "Input should be a valid dictionary or object to extract fields from",
                    text,
                )
            ]
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid([errors.detail_item("json_invalid", ["body", exc.pos], "JSON decode error", {})]) from None
    if not nests_within(document):
        raise errors.invalid(
            [errors.detail_item("json_invalid", ["body"], f"JSON nests deeper than {MAX_JSON_DEPTH} levels", {})]
        )
    if holds_nul(document, raw):  # no database stores it alike (see web/dependencies.py)
        raise errors.invalid([errors.detail_item("string_pattern_mismatch", ["body"], _NUL_MESSAGE, None)])
    return document


def v_json_body(model: type[Model]) -> Callable[..., Any]:
    """A dependency yielding the body validated as `model` (after authentication)."""

    async def dependency(request: Request, _: Caller = Depends(v_caller)) -> Model:
        document = await read_document(request)
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            raise errors.invalid_fields(exc) from None

    return dependency
