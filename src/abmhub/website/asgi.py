"""`/collect` answered on bare ASGI, ahead of FastAPI's routing and middleware.

A busy site sends thousands of tiny requests a second; through the full stack (routing,
dependency injection, the metrics and security-header middleware) each cost ~400 µs of the
server's CPU, ten times the collector's own work (measured: 1,400 events/s against 16,900
requests/s of a bare ASGI endpoint on the same uvicorn, `python -m benchmarks website`). The
route in `router.py` documents the endpoint in the OpenAPI document and shares `answer_collect`
with this path; in a running server this path answers first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from abmhub.website.collect import MAX_BODY_BYTES, Collector, Malformed

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/collect"


def answer_collect(
    collector: Collector, body: bytes, peer: str | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a POST /collect."""
    try:
        answer = collector.receive(body, peer=peer, headers=headers)
    except Malformed as problem:
        return 400, {"content-type": "application/json"}, orjson.dumps({"error": str(problem)})
    cors = {"access-control-allow-origin": answer.allow_origin} if answer.allow_origin else {}
    cors["vary"] = "Origin"
    if answer.status == 429:
        return 429, {**cors, "content-type": "application/json", "retry-after": "1"}, b'{"error":"rate limited"}'
    return 202, cors, b""


def answer_preflight(collector: Collector, origin: str | None) -> tuple[int, dict[str, str], bytes]:
    """OPTIONS /collect, for bodies sent as application/json (the script's text/plain needs none)."""
    if not origin or not collector.origin_allowed(origin):
        return 204, {"vary": "Origin"}, b""
    return (
        204,
        {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "Content-Type",
            "vary": "Origin",
        },
        b"",
    )


class CollectEndpoint:
    def __init__(self, app: ASGIApp, collector: Collector) -> None:
        self.app = app
        self.collector = collector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] not in ("POST", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if scope["method"] == "OPTIONS":
            await _respond(send, *answer_preflight(self.collector, headers.get("origin")))
            return
        too_big = 413, {"content-type": "application/json"}, b'{"error":"body over 8192 bytes"}'
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _respond(send, *too_big)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await _respond(send, *too_big)
                return
        client = scope.get("client")
        try:
            result = answer_collect(self.collector, bytes(body), client[0] if client else None, headers)
        except Exception:  # never a traceback to a browser; the collector logged nothing personal
            log.exception("POST /collect failed")
            result = 500, {"content-type": "application/json"}, b'{"error":"internal error"}'
        await _respond(send, *result)


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"x-content-type-options", b"nosniff"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
