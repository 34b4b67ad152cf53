"""`/collect` answered on bare ASGI, ahead of FastAPI's routing and middleware.

A busy site sends thousands of tiny requests a second; through the full stack (routing,
dependency injection, the metrics and security-header middleware) each cost ~400 µs of the
server's CPU, ten times the collector's own work (measured: 1,400 events/s against 16,900
requests/s of a bare ASGI endpoint on the same uvicorn, `python -m benchmarks website`). The
route in `router.py` documents the endpoint in the OpenAPI document and shares `answer_collect`
with this path; in a running server this path answers first. `abmhub serve` puts it outside the
FastAPI object itself (`serve.py`), whose `__call__` costs every request a telemetry lookup;
`create_app` puts it first inside, for every other way of running the app.

A request decodes only the headers the collector reads, and the answers' constant headers are
bytes made once: each of those cost a few µs an event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
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
# The request headers the collector reads; ASGI servers give header names in lower case.
READ_HEADERS = {
    name.encode(): name for name in ("origin", "x-forwarded-for", "user-agent", "dnt", "sec-gpc", "content-length")
}
RawHeaders = list[tuple[bytes, bytes]]
_VARY = (b"vary", b"Origin")
_JSON = (b"content-type", b"application/json")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_RATE_LIMITED = b'{"error":"rate limited"}'
_TOO_BIG = b'{"error":"body over 8192 bytes"}'
_INTERNAL = b'{"error":"internal error"}'


def answer_collect(
    collector: Collector, body: bytes, peer: str | None, headers: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a POST /collect."""
    status, raw, content = _answer_collect(collector, body, peer, headers)
    return status, {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}, content


def _answer_collect(
    collector: Collector, body: bytes, peer: str | None, headers: Mapping[str, str]
) -> tuple[int, RawHeaders, bytes]:
    """`answer_collect` with the headers as an ASGI server takes them."""
    try:
        answer = collector.receive(body, peer=peer, headers=headers)
    except Malformed as problem:
        return 400, [_JSON], orjson.dumps({"error": str(problem)})
    origin = answer.allow_origin
    cors = [(b"access-control-allow-origin", origin.encode("latin-1")), _VARY] if origin else [_VARY]
    if answer.status == 429:
        return 429, [*cors, _JSON, (b"retry-after", b"1")], _RATE_LIMITED
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
            name = READ_HEADERS.get(raw_name)
            if name is not None:
                value = raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if scope["method"] == "OPTIONS":
            status, named, content = answer_preflight(self.collector, headers.get("origin"))
            raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in named.items()]
            await _respond(send, status, raw, content)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _respond(send, 413, [_JSON], _TOO_BIG)
            return
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            await _respond(send, 413, [_JSON], _TOO_BIG)
            return
        if message.get("more_body", False):
            whole = bytearray(body)
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                whole += message.get("body", b"")
                more = message.get("more_body", False)
                if len(whole) > MAX_BODY_BYTES:
                    await _respond(send, 413, [_JSON], _TOO_BIG)
                    return
            body = bytes(whole)
        client = scope.get("client")
        try:
            result = _answer_collect(self.collector, body, client[0] if client else None, headers)
        except Exception:  # never a traceback to a browser; the collector logged nothing personal
            log.exception("POST /collect failed")
            result = 500, [_JSON], _INTERNAL
        await _respond(send, *result)


async def _respond(send: Send, status: int, headers: RawHeaders, body: bytes) -> None:
    headers.append((b"content-length", b"%d" % len(body)))
    headers.append(_NOSNIFF)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
