"""Security headers on every response (both surfaces, health, metrics, the docs).

API responses are JSON for programs: nothing may sniff them into HTML, frame them, cache them
in a shared cache, or leak the URL (which may hold domains or cursors) as a referrer. The
interactive docs page needs its own script and styles (served locally, see app.py) and an
inline bootstrap script, so it gets a content security policy that allows exactly that and
still forbids framing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATH = "/docs"
DOCS_ASSETS = "/docs-assets"

COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI: its bundle and stylesheet from /docs-assets, one inline script that starts it,
# inline styles it sets itself, the favicon and data: images, and /openapi.json via fetch.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def headers_for(path: str) -> dict[str, str]:
    """The security headers of a response to `path`."""
    headers = dict(COMMON)
    if path == DOCS_PATH:
        headers["content-security-policy"] = DOCS_POLICY
        headers["cache-control"] = "no-store"
    elif path.startswith(DOCS_ASSETS + "/"):
        headers["content-security-policy"] = API_POLICY
        # Versioned static files of an installed package: caching them is harmless.
    else:
        headers["content-security-policy"] = API_POLICY
        headers["cache-control"] = "no-store"
    return headers


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers when the response starts (errors included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
