"""HTTP errors of Surface R and the one place where every error becomes the contract's shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from abmhub.errors import DomainError
from abmhub.web.responses import error_envelope

log = logging.getLogger("abmhub.web")

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
}
DOMAIN_STATUS = {"bad_request": 400, "not_found": 404, "conflict": 409}


class ApiError(Exception):
    """An error answered in the envelope: `message` is the reason, `custom_message` the detail."""

    def __init__(
        self,
        status: int,
        custom_message: str | None = None,
        *,
        message: str | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(custom_message or message)
        self.status = status
        self.message = message or REASONS.get(status, "Error")
        self.custom_message = custom_message
        self.data = data
        self.headers = headers


class ValidationFailed(ApiError):
    """The request's shape is wrong: 400 with class-validator issues in `data`."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__(400, None, message="Bad Request", data=issues)


def unauthorized(custom_message: str) -> ApiError:
    return ApiError(401, custom_message, message="Unauthorized access")


def too_many_requests(retry_after: int) -> ApiError:
    """§5.1: 429 with `Retry-After`, the same number in the message (§6 item 34)."""
    return ApiError(
        429,
        f"Rate limit exceeded; retry after {retry_after} s",
        message="Too Many Requests",
        headers={"Retry-After": str(retry_after)},
    )


# Renders any exception raised under another surface's path prefix in that surface's shape.
ErrorRenderer = Callable[[Request, Exception], Response]


def install_error_handlers(app: FastAPI, *, surfaces: Mapping[str, ErrorRenderer] | None = None) -> None:
    """Map every exception to the contract's error shape; never leak a stack trace.

    Surface R's envelope is the default. A request whose path lies under one of `surfaces`'
    prefixes (Surface V: `/api/v2`) gets that surface's renderer instead, for every kind of
    error, unknown routes included.
    """
    others = dict(surfaces or {})

    def other_surface(request: Request) -> ErrorRenderer | None:
        path = request.url.path
        for prefix, render in others.items():
            if path == prefix or path.startswith(prefix + "/"):
                return render
        return None

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        if (render := other_surface(request)) is not None:
            return render(request, exc)
        return error_envelope(request, exc.status, exc.message, exc.custom_message, exc.data, exc.headers)

    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> Response:
        if (render := other_surface(request)) is not None:
            return render(request, exc)
        status = DOMAIN_STATUS[exc.kind]
        return error_envelope(request, status, REASONS[status], exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if (render := other_surface(request)) is not None:
            return render(request, exc)
        if exc.status_code in (404, 405):
            # Unknown path, or a method the path does not serve: NestJS's wording.
            return error_envelope(request, 404, f"Cannot {request.method} {request.url.path}")
        return error_envelope(request, exc.status_code, REASONS.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(request: Request, exc: RequestValidationError) -> Response:
        if (render := other_surface(request)) is not None:
            return render(request, exc)
        # Surface R handlers validate their own input; this is FastAPI's unchanged fallback.
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server log (which never holds keys or bodies), not to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if (render := other_surface(request)) is not None:
            return render(request, exc)
        return error_envelope(request, 500, "Internal server error")
