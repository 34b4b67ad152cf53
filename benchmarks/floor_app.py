"""The smallest HTTP server there is to measure the load generator against.

A bare ASGI app on the same uvicorn as abmhub: no routing, no middleware, no database. A
client's round trip to it is what this machine's loopback, uvicorn and the client itself
cost; no abmhub request can be faster (`python -m benchmarks accounts` reports it).
"""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
