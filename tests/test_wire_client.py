"""benchmarks/wire.py, the benchmarks' load generator, against a real uvicorn and fake sockets.

The server is a tiny ASGI app on uvicorn (its default loop and HTTP parser, as abmhub
serve), in a thread of this process on a free port, with a 1 s keep-alive timeout so the
keep-alive race (the server closes an idle connection) can be provoked.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import uvicorn

from benchmarks.wire import WireClient, WireStatusError

KEEP_ALIVE_S = 1
# Pieces of the streamed answer: sizes across the 256 KiB receive buffer, odd bytes.
CHUNKS = [
    b"x",
    bytes(range(256)) * 16,
    bytes(range(255, -1, -1)) * 1200,
    b"tail\r\n0\r\n\r\n",
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]

    async def answer(status: int, body: bytes, headers: tuple = ()) -> None:
        length = [(b"content-length", str(len(body)).encode())] if status != 204 else []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*length, *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if path == "/hello":
        await answer(200, b"hello, world", [(b"content-type", b"text/plain"), (b"x-test", b"A")])
    elif path == "/echo":
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await answer(200, bytes(body))
    elif path == "/chunked":  # no content-length: uvicorn sends Transfer-Encoding: chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in CHUNKS:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/empty":
        await answer(204, b"")
    elif path == "/client":
        await answer(
            200,
            orjson.dumps({"port": scope["client"][1], "api_key": _header(scope, b"x-api-key")}),
        )
    elif path == "/close":
        await answer(200, b"bye", [(b"connection", b"close")])
    else:
        await answer(404, b"no such thing: " + path.encode() + b" " + b"." * 400)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    return next((v.decode() for k, v in scope["headers"] if k == name), None)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_get_with_content_length_body(base_url):
    with WireClient(base_url) as client:
        before = time.perf_counter()
        response = client.get("/hello")
    assert response.status_code == 200, response.text
    assert response.content == b"hello, world", "the body is exactly Content-Length bytes"
    assert response.text == "hello, world"
    assert response.headers["content-type"] == "text/plain", f"names are lowercased: {response.headers}"
    assert response.headers["x-test"] == "A"
    assert before < response.first_byte_s < time.perf_counter(), "first_byte_s is a perf_counter time in the request"


def test_post_echoes_a_1_mib_body(base_url):
    body = bytes(range(256)) * 4096
    with WireClient(base_url, headers={"Content-Type": "application/octet-stream"}) as client:
        response = client.post("/echo", content=body)
        small = client.post("/echo", content=b'{"a": 1}')
        empty = client.post("/echo", content=b"")
    assert response.status_code == 200
    assert len(response.content) == len(body) and response.content == body, "the 1 MiB body came back unchanged"
    assert small.json() == {"a": 1}, small.content
    assert empty.status_code == 200 and empty.content == b"", "an empty POST sends Content-Length: 0"


def test_chunked_response_is_reassembled_exactly(base_url):
    with WireClient(base_url) as client:
        for _ in range(3):  # the connection stays usable after a chunked answer
            response = client.get("/chunked")
            assert response.headers.get("transfer-encoding") == "chunked", response.headers
            assert response.content == b"".join(CHUNKS), "the chunks, joined, are the body"


def test_204_has_no_body_and_the_connection_stays_usable(base_url):
    with WireClient(base_url) as client:
        empty = client.get("/empty")
        after = client.get("/hello")
    assert empty.status_code == 204 and empty.content == b""
    assert after.content == b"hello, world", "the next answer is read from the right place"


def test_keep_alive_reuses_one_connection_and_sends_default_headers(base_url):
    with WireClient(base_url, headers={"X-Api-Key": "secret"}) as client:
        answers = [client.get("/client").json() for _ in range(200)]
        client.post("/echo", content=b"x" * 100_000)
        answers.append(client.get("/client").json())
    ports = {answer["port"] for answer in answers}
    assert len(ports) == 1, f"one connection for 202 requests, the server saw client ports {sorted(ports)}"
    assert {answer["api_key"] for answer in answers} == {"secret"}, "default headers go with every request"


def test_reconnects_after_the_server_sends_connection_close(base_url):
    with WireClient(base_url) as client:
        first = client.get("/client").json()["port"]
        bye = client.get("/close")
        assert bye.headers.get("connection") == "close" and bye.content == b"bye"
        assert client._sock is None, "the client drops a connection the server closes"
        second = client.get("/client").json()["port"]
    assert first != second, "the next request went over a new connection"


def test_keep_alive_race_is_retried_on_a_new_connection(base_url):
    with WireClient(base_url) as client:
        first = client.get("/client").json()["port"]
        time.sleep(KEEP_ALIVE_S + 0.5)  # uvicorn closes the idle connection meanwhile
        response = client.get("/client")
    assert response.status_code == 200, response.text
    assert response.json()["port"] != first, "the request was retried on a fresh connection"


def test_raise_for_status_on_404_names_status_and_body(base_url):
    with WireClient(base_url) as client:
        response = client.get("/nowhere")
        assert response.status_code == 404
        with pytest.raises(WireStatusError) as caught:
            response.raise_for_status()
        assert client.get("/hello").raise_for_status() is None, "2xx does not raise"
    message = str(caught.value)
    assert "404" in message and "no such thing: /nowhere" in message, message
    assert len(message) < 340, f"the body is cut to 300 characters: {len(message)}"


# --- the parser, byte by byte -------------------------------------------------------------


class FakeSocket:
    """Answers `data`, `step` bytes per recv_into; records what was sent."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self.data, self.step, self.pos = data, step, 0
        self.sent = bytearray()
        self.closed = False

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv_into(self, view: memoryview) -> int:
        n = min(len(view), self.step, len(self.data) - self.pos)
        view[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def close(self) -> None:
        self.closed = True


def fake_client(data: bytes, step: int = 1) -> tuple[WireClient, FakeSocket]:
    client = WireClient("http://example.test:8080", headers={"X-Api-Key": "k"})
    fake = FakeSocket(data, step)
    client._sock = fake  # type: ignore[assignment]
    return client, fake


def test_headers_and_bodies_split_across_one_byte_receives():
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n"
        b"X-Spaced:   value  \r\n\r\nhello"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"  # HEAD: the length of a body not sent
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    client, fake = fake_client(data)
    first = client.get("/a?b=c")
    assert (first.status_code, first.content) == (200, b"hello"), first.headers
    assert first.headers["set-cookie"] == "a=1, b=2", "repeated headers are joined"
    assert first.headers["x-spaced"] == "value", "values are stripped"
    chunked = client.get("/chunked")
    assert chunked.content == b"Wikipedia", "chunk extensions and trailers are skipped"
    head = client.request("HEAD", "/a")
    assert (head.status_code, head.content, head.headers["content-length"]) == (
        200,
        b"",
        "12",
    )
    not_modified = client.get("/a")
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    last = client.get("/a")
    assert last.content == b"ok", "every answer ended where the next one begins"
    assert fake.pos == len(data), "the client read exactly the answers, nothing more"
    assert fake.sent.startswith(b"GET /a?b=c HTTP/1.1\r\nHost: example.test:8080\r\nX-Api-Key: k\r\n\r\n"), fake.sent
    assert fake.closed is False, "keep-alive answers leave the connection open"


def test_a_failure_after_a_response_byte_is_not_retried():
    client, fake = fake_client(b"HTTP/1.1 200 OK\r\nContent-Le")  # then the peer closes
    connects = []
    client.connect = lambda: connects.append(1)  # type: ignore[method-assign]
    with pytest.raises(ConnectionResetError):
        client.get("/x")
    assert connects == [], "a request answered in part is not sent again"
    assert fake.closed and client._sock is None, "the broken connection is dropped"


def test_a_reused_connection_closed_before_any_byte_is_retried_once():
    client, stale = fake_client(b"")  # the server had closed the idle connection
    fresh = FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", step=7)

    def connect() -> None:
        client._sock = fresh  # type: ignore[assignment]

    client.connect = connect  # type: ignore[method-assign]
    response = client.post("/x", content=b"body")
    assert response.content == b"ok"
    assert stale.closed and stale.sent.endswith(b"\r\n\r\nbody"), "the stale connection got the request first"
    assert fresh.sent == stale.sent, "the same request was sent again on the new connection"
