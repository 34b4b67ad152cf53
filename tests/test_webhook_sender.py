"""One delivery attempt (contract §8), against a real HTTP server on 127.0.0.1.

The receiver (http.server in a thread) records every request and answers by path: /ok,
/fail (500), /redirect (302 to /ok), /slow (answers after 1.5 s), /hangup (closes the
connection without answering), /big (a 1 MiB answer). Names are made to resolve to
127.0.0.1 by replacing the resolver of `abmhub.webhooks.targets`, never through real DNS.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from abmhub import __version__
from abmhub.webhooks import targets
from abmhub.webhooks.sender import Sender
from abmhub.webhooks.targets import IPAddress

BODY = b'{"id": "evt_1", "type": "ping", "data": {}}'
HEADERS = {"Content-Type": "application/json", "X-Abmhub-Event-Type": "ping"}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


class Receiver:
    """An HTTP(S) server on 127.0.0.1 that records what it receives."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self.server_names: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                outer.seen.append(Seen(self.path, headers, body, self.client_address))
                if self.path == "/hangup":
                    self.close_connection = True
                    return
                if self.path == "/slow":
                    time.sleep(1.5)
                status, extra, payload = {
                    "/fail": (500, {}, b"boom"),
                    "/redirect": (302, {"Location": "/ok"}, b""),
                    "/big": (200, {}, b"x" * (1024 * 1024)),
                }.get(self.path, (200, {}, b"thanks"))
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender stopped reading: it is allowed to

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sender() -> Iterator[Sender]:
    with Sender(allow_private=True) as sender:
        yield sender


@pytest.fixture
def dns(monkeypatch):
    """`rebind.example` and `webhook.test` resolve to 127.0.0.1; `two.example` to two addresses."""
    table = {
        "rebind.example": ["127.0.0.1"],
        "webhook.test": ["127.0.0.1"],
        "other.test": ["127.0.0.1"],
        # 127.0.0.2 is loopback too, but nothing listens there on the receiver's port.
        "two.example": ["127.0.0.2", "127.0.0.1"],
    }

    def resolver(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(text) for text in table[host]]

    monkeypatch.setattr(targets, "resolver", resolver)


def test_a_delivery_arrives_with_its_body_host_and_user_agent(receiver, sender):
    attempt = sender.post(receiver.url("/ok?source=test"), BODY, HEADERS)

    assert attempt.ok and attempt.status_code == 200 and attempt.error is None, f"delivered: {attempt}"
    assert len(receiver.seen) == 1, "one attempt is one request"
    seen = receiver.seen[0]
    assert seen.path == "/ok?source=test", "path and query as given"
    assert seen.body == BODY, "the body as given, byte for byte"
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}", "the Host header of the URL"
    assert seen.headers["user-agent"] == f"abmhub-webhooks/{__version__}"
    assert seen.headers["x-abmhub-event-type"] == "ping", "the caller's headers are sent"
    assert seen.headers["content-type"] == "application/json"
    assert attempt.duration_s > 0


def test_connections_are_reused_between_deliveries(receiver, sender):
    first = sender.post(receiver.url("/ok"), BODY, HEADERS)
    second = sender.post(receiver.url("/ok"), BODY, HEADERS)
    assert first.ok and second.ok, f"both delivered: {first}, {second}"
    assert len(receiver.seen) == 2
    assert receiver.seen[0].peer == receiver.seen[1].peer, "the second came over the first one's connection"


def test_a_server_error_is_a_status_not_an_error(receiver, sender):
    attempt = sender.post(receiver.url("/fail"), BODY, HEADERS)
    assert attempt.status_code == 500 and attempt.error is None, f"the status is reported: {attempt}"
    assert not attempt.ok, "a 500 is not a delivery"


def test_a_redirect_is_not_followed(receiver, sender):
    attempt = sender.post(receiver.url("/redirect"), BODY, HEADERS)
    assert attempt.status_code == 302 and not attempt.ok, f"a 3xx is a failed attempt: {attempt}"
    assert [seen.path for seen in receiver.seen] == ["/redirect"], "the redirect's target was not requested"


def test_a_slow_receiver_times_out(receiver):
    with Sender(allow_private=True, timeout=0.5) as sender:
        attempt = sender.post(receiver.url("/slow"), BODY, HEADERS)
    assert attempt.status_code is None and attempt.error == "timeout after 0.5 s", f"timed out: {attempt}"
    assert 0.4 < attempt.duration_s < 1.4, f"gave up after the timeout, took {attempt.duration_s:.2f} s"


def test_a_closed_port_is_a_connection_error(sender):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempt = sender.post(f"http://127.0.0.1:{port}/ok", BODY, HEADERS)
    assert attempt.status_code is None and attempt.error == "connection refused", f"refused: {attempt}"


def test_a_hang_up_is_reported_as_such(receiver, sender):
    attempt = sender.post(receiver.url("/hangup"), BODY, HEADERS)
    assert attempt.status_code is None and attempt.error == "connection closed", f"closed: {attempt}"


def test_a_large_answer_is_not_read_whole(receiver, sender):
    attempt = sender.post(receiver.url("/big"), BODY, HEADERS)
    assert attempt.ok, f"the status decides, whatever the body: {attempt}"


def test_a_private_target_is_refused_without_a_request(receiver):
    with Sender(allow_private=False) as sender:
        attempt = sender.post(receiver.url("/ok"), BODY, HEADERS)
    assert attempt.status_code is None and attempt.error == "private address", f"refused: {attempt}"
    assert receiver.seen == [], "nothing was sent to the private address"


def test_an_unknown_host_is_reported(dns, sender):
    attempt = sender.post("http://nowhere.example/hook", BODY, HEADERS)
    assert attempt.error == "could not resolve host", f"unresolved: {attempt}"


def test_an_invalid_url_is_reported(sender):
    attempt = sender.post("ftp://example.com/hook", BODY, HEADERS)
    assert attempt.error == "invalid URL", f"not sent: {attempt}"


def test_localhost_is_resolved_and_delivered_to(receiver, sender):
    attempt = sender.post(receiver.url("/ok", host="localhost"), BODY, HEADERS)
    assert attempt.ok, f"delivered through the name's addresses: {attempt}"
    assert receiver.seen[0].headers["host"] == f"localhost:{receiver.port}", "the Host header keeps the name"


def test_the_request_goes_to_the_checked_address_not_the_name_again(dns, receiver, sender):
    # rebind.example exists only in the test's resolver: a second lookup by the HTTP client
    # (through the system's DNS) would fail.
    attempt = sender.post(receiver.url("/ok", host="rebind.example"), BODY, HEADERS)
    assert attempt.ok, f"delivered to the checked address: {attempt}"
    assert receiver.seen[0].headers["host"] == f"rebind.example:{receiver.port}"


def test_the_next_address_is_tried_when_one_refuses(dns, receiver, sender):
    attempt = sender.post(receiver.url("/ok", host="two.example"), BODY, HEADERS)
    assert attempt.ok, f"127.0.0.2 refused, 127.0.0.1 took it: {attempt}"
    assert len(receiver.seen) == 1


# --- https: the name is the TLS server name, the connection goes to the address -------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for webhook.test (only), made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=webhook.test"),
            *("-addext", "subjectAltName=DNS:webhook.test"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate) -> Iterator[Receiver]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Receiver(tls=context)
    yield server
    server.stop()


@pytest.fixture
def tls_sender(certificate) -> Iterator[Sender]:
    with Sender(allow_private=True, ssl_context=ssl.create_default_context(cafile=certificate[0])) as sender:
        yield sender


def test_https_verifies_the_certificate_for_the_name_not_the_address(dns, tls_receiver, tls_sender):
    attempt = tls_sender.post(tls_receiver.url("/ok", host="webhook.test", scheme="https"), BODY, HEADERS)
    assert attempt.ok, f"the certificate (for webhook.test, not 127.0.0.1) was accepted: {attempt}"
    assert tls_receiver.server_names == ["webhook.test"], "the TLS server name (SNI) is the URL's host"
    assert tls_receiver.seen[0].headers["host"] == f"webhook.test:{tls_receiver.port}"


def test_https_refuses_a_certificate_for_another_name(dns, tls_receiver, tls_sender):
    attempt = tls_sender.post(tls_receiver.url("/ok", host="other.test", scheme="https"), BODY, HEADERS)
    assert attempt.error == "TLS certificate not valid for the host", f"refused: {attempt}"
    assert tls_receiver.seen == []


def test_a_connection_verified_for_one_name_is_not_reused_for_another(dns, tls_receiver, tls_sender):
    first = tls_sender.post(tls_receiver.url("/ok", host="webhook.test", scheme="https"), BODY, HEADERS)
    assert first.ok, f"{first}"
    # Same address and port, another name: a pooled connection would skip verification.
    second = tls_sender.post(tls_receiver.url("/ok", host="other.test", scheme="https"), BODY, HEADERS)
    assert second.error == "TLS certificate not valid for the host", f"verified again for other.test: {second}"
    assert len(tls_receiver.seen) == 1, "nothing reached the receiver under the other name"
