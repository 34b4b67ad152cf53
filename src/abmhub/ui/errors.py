"""How the dashboard answers what goes wrong: HTML pages and redirects, never the API's JSON.

app.py routes every error raised under /ui here (unknown pages included), so the API's
error shapes stay exactly as they are everywhere else.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from abmhub.errors import DomainError
from abmhub.ui.pages import page

log = logging.getLogger("abmhub.ui")

UI_PREFIX = "/ui"
SIGN_IN_PATH = f"{UI_PREFIX}/sign-in"


class UiError(Exception):
    """An answer of the dashboard that is not the page asked for."""


class SignInRequired(UiError):
    """No session, an expired one, or its key was revoked: off to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


class CrossSiteRequest(UiError):
    """A state-changing request that did not come from the dashboard's own pages."""


class BadRequest(UiError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sign_in_url(next_url: str | None) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': next_url})}" if next_url and next_url != UI_PREFIX else SIGN_IN_PATH


def render_error(request: Request, exc: Exception) -> Response:
    """The dashboard's answer to any exception raised while serving a /ui request."""
    if isinstance(exc, SignInRequired):
        target = sign_in_url(exc.next_url)
        if request.headers.get("hx-request") == "true":
            # A fragment request would swap the sign-in page into a table: htmx redirects the page.
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if isinstance(exc, CrossSiteRequest):
        return _error_page(
            request,
            403,
            "Request refused",
            "This request did not come from the dashboard's own pages, so nothing was changed. "
            "Reload the page and try again.",
        )
    if isinstance(exc, BadRequest):
        return _error_page(request, 400, "Bad request", exc.message)
    if isinstance(exc, DomainError):
        if exc.kind == "not_found":
            return _not_found(request)
        return _error_page(request, 400, "Bad request", exc.message)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code in (404, 405):
            return _not_found(request)
        return _error_page(request, exc.status_code, "Request failed", str(exc.detail))
    return _error_page(request, 500, "Something went wrong", "The error was logged. Try again in a moment.")


def _not_found(request: Request) -> Response:
    return _error_page(request, 404, "Not found", "There is nothing here, or it belongs to another workspace.")


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "error.html", {"title": title, "message": message, "status": status}, status=status)
