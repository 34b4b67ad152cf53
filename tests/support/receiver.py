"""A real HTTP server on 127.0.0.1 that receives webhook deliveries, for tests.

It records every request (time, headers, raw body) and answers from a script: a list of
behaviours taken one per request (then the default), each a status code or ("sleep", s).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = int | tuple[str, float]


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    script: list[Behaviour] = field(default_factory=list)
    default: Behaviour = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json() for r in self.received]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        """Wait until `predicate(received)` holds; returns what was received (asserts on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver did not get what was expected in {timeout} s; got {len(snapshot)}")
            time.sleep(0.02)

    def wait_for_count(self, count: int, timeout: float = 10.0) -> list[Received]:
        return self.wait_for(lambda got: len(got) >= count, timeout)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up mid-answer (a timeout test) is expected here, not a traceback."""


@contextmanager
def running_receiver(path: str = "/hook") -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            behaviour = receiver.next_behaviour()
            # Recorded on arrival: a receiver that then hangs has still received it.
            with receiver.lock:
                receiver.received.append(Received(time.monotonic(), self.path, dict(self.headers.items()), body))
            if isinstance(behaviour, tuple):
                time.sleep(behaviour[1])
                behaviour = 200
            self.send_response(behaviour)
            self.send_header("Content-Length", "2")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = QuietServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
