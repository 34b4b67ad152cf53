"""A minimal HTTP/1.1 keep-alive client: the benchmarks' load generator, nothing else.

Client and server share this machine's cores (2 when this was written) and a keyset scan
is sequential, so whatever the client spends on a request lands in every HTTP figure.
Measured round trip to a bare ASGI app on uvicorn (`benchmarks/floor_app.py`): httpx
0.65 ms, stdlib `http.client` 0.20 ms, raw socket send/recv 0.05 ms. Load generators such
as wrk exist for this reason; this is the same idea in ~200 lines of Python: one TCP
connection, request headers built once, one `sendall` per request, responses parsed from a
reused buffer (Content-Length and chunked bodies).

Only the benchmarks use it (docs/decisions.md §8); abmhub's own client stays on httpx, and
`python -m benchmarks accounts` reports the bare-app round trip of both clients.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Self
from urllib.parse import urlsplit

import orjson

RECV_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
NO_BODY_STATUSES = (204, 304)


class WireResponse:
    __slots__ = ("content", "first_byte_s", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: dict[str, str],
        content: bytes,
        first_byte_s: float,
    ) -> None:
        self.status_code = status_code
        # Header names lowercased; a repeated header's values joined with ", ".
        self.headers = headers
        self.content = content
        # time.perf_counter() when the first byte of the response arrived.
        self.first_byte_s = first_byte_s

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise WireStatusError(f"HTTP {self.status_code}: {self.text[:300]}")


class WireStatusError(RuntimeError):
    """An answer with status >= 400 (raise_for_status)."""


class WireClient:
    """One keep-alive HTTP/1.1 connection to `base_url`; `headers` go with every request."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"WireClient speaks plain http://host[:port] only, not {base_url!r}")
        self.address = (url.hostname, url.port or 80)
        self.timeout = timeout
        host = url.netloc.rpartition("@")[2]
        lines = [
            f"Host: {host}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._sock: socket.socket | None = None
        self._buf = bytearray()  # received, not yet consumed: self._buf[self._pos:]
        self._pos = 0
        self._chunk = bytearray(RECV_SIZE)
        self._chunk_view = memoryview(self._chunk)
        self._first_byte_s: float | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def connect(self) -> None:
        self.close()
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def get(self, path: str) -> WireResponse:
        return self.request("GET", path)

    def post(self, path: str, content: bytes) -> WireResponse:
        return self.request("POST", path, content)

    def request(self, method: str, path: str, content: bytes = b"") -> WireResponse:
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._head
        if content or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(content)
        head += b"\r\n"
        # One send for the usual request; no copy of a large body.
        small = len(content) <= 65536
        for attempt in (1, 2):
            reused = self._sock is not None
            if not reused:
                self.connect()
            self._buf.clear()  # nothing may precede an answer on an idle connection
            self._pos = 0
            self._first_byte_s = None
            try:
                sock = self._sock
                assert sock is not None
                if small:
                    sock.sendall(head + content if content else head)
                else:
                    sock.sendall(head)
                    sock.sendall(content)
                response, keep = self._read_response(method)
            except OSError as exc:
                self.close()
                # The keep-alive race: the server closed the idle connection as we reused it.
                # Only then is a retry safe: nothing of an answer came back.
                if attempt == 1 and reused and self._first_byte_s is None and not isinstance(exc, TimeoutError):
                    continue
                raise
            if not keep:
                self.close()
            return response
        raise AssertionError("unreachable")

    # --- reading ------------------------------------------------------------------------

    def _fill(self) -> None:
        """Append at least one received byte to the buffer, or raise if the peer closed."""
        assert self._sock is not None
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        n = self._sock.recv_into(self._chunk_view)
        if not n:
            raise ConnectionResetError("the server closed the connection")
        if self._first_byte_s is None:
            self._first_byte_s = time.perf_counter()
        self._buf += self._chunk_view[:n]

    def _read_until(self, delimiter: bytes, limit: int = MAX_HEAD) -> bytes:
        """The buffered bytes up to `delimiter` (consumed, not returned)."""
        searched = 0  # bytes after self._pos known not to start the delimiter
        while (end := self._buf.find(delimiter, self._pos + searched)) < 0:
            if len(self._buf) - self._pos > limit:
                raise ConnectionAbortedError(f"no {delimiter!r} within {limit} bytes of the response")
            searched = max(0, len(self._buf) - self._pos - len(delimiter) + 1)
            self._fill()
        data = bytes(self._buf[self._pos : end])
        self._pos = end + len(delimiter)
        return data

    def _read_exact(self, n: int) -> bytes:
        have = len(self._buf) - self._pos
        if have >= n:
            data = bytes(self._buf[self._pos : self._pos + n])
            self._pos += n
            return data
        out = bytearray(n)  # receive the rest straight into place
        out[:have] = self._buf[self._pos :]
        self._buf.clear()
        self._pos = 0
        view, got = memoryview(out), have
        assert self._sock is not None
        while got < n:
            k = self._sock.recv_into(view[got:])
            if not k:
                raise ConnectionResetError(f"the server closed the connection after {got} of {n} body bytes")
            got += k
        return bytes(out)

    def _read_to_close(self) -> bytes:
        while True:
            try:
                self._fill()
            except ConnectionResetError:
                break
        data = bytes(self._buf[self._pos :])
        self._pos = len(self._buf)
        return data

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = self._read_until(b"\r\n")
            # A chunk extension follows ";".
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._read_until(b"\r\n"):  # trailer fields, up to an empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            if self._read_exact(2) != b"\r\n":
                raise ConnectionAbortedError("a chunk does not end with CRLF")

    def _read_response(self, method: str) -> tuple[WireResponse, bool]:
        """The next answer and whether the connection stays open after it."""
        while True:
            head = self._read_until(b"\r\n\r\n").decode("latin-1")
            status_line, *lines = head.split("\r\n")
            version, _, rest = status_line.partition(" ")
            if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
                raise ConnectionAbortedError(f"not an HTTP/1.x status line: {status_line[:100]!r}")
            status = int(rest[:3])
            if not 100 <= status < 200 or status == 101:
                break  # 1xx interim answers (100 Continue) are skipped
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        if method == "HEAD" or status in NO_BODY_STATUSES or status < 200:
            content = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            content = self._read_chunked()
        elif "content-length" in headers:
            content = self._read_exact(int(headers["content-length"]))
        else:
            content, keep = self._read_to_close(), False
        assert self._first_byte_s is not None
        return WireResponse(status, headers, content, self._first_byte_s), keep
