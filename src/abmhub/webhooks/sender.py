"""One delivery attempt: a POST to a subscriber, safe against DNS rebinding.

The URL's host is resolved and checked (`targets.check_target`) before every attempt, and
the request then goes to a checked address itself, never to the name again: a name that
answered with a public address for the check cannot answer with 10.0.0.1 for the connect.
The request carries the original `Host` header, and over https the original name is the
TLS server name (SNI), so the certificate is verified for the name, not the address.

Redirects are never followed (a 3xx is a failed attempt like any other non-2xx): following
one would be a request to a URL nobody checked. Errors become short fixed phrases, never
the body, the headers or the URL, which may hold a token (Slack's URLs are secrets).

Timeouts: `timeout` bounds connecting (all addresses together), each write and each read.
It cannot bound a server that trickles its response headers slowly but steadily; reading
the response body stops at the deadline, and at 64 KiB.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from abmhub import __version__
from abmhub.webhooks.targets import DEFAULT_PORTS, IPAddress, PrivateTarget, UnreachableTarget, check_target

DEFAULT_USER_AGENT = f"abmhub-webhooks/{__version__}"
DEFAULT_TIMEOUT = 10.0
# Nobody reads a webhook's answer; enough of it is read to end the exchange cleanly.
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to: an HTTP status, or an error in a few words."""

    status_code: int | None
    error: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Posts deliveries over one connection pool, from as many threads as like."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` replaces the default (certifi's CAs), e.g. to trust a private CA."""
        self.allow_private = allow_private
        self.timeout = timeout
        self._client = httpx.Client(
            transport=_ServerNameTransport(ssl_context or httpx.create_ssl_context(trust_env=False)),
            timeout=timeout,
            follow_redirects=False,
            # No proxy, .netrc or certificate settings from the environment: a proxy would
            # connect to whatever the name resolves to on its side, unchecked.
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        """POST `body` to `url` with `headers` (the signature, the event's id and type)."""
        started = time.monotonic()
        try:
            status = self._post(url, body, headers, deadline=started + self.timeout)
        except _Failed as failure:
            return Attempt(None, failure.reason, time.monotonic() - started)
        return Attempt(status, None, time.monotonic() - started)

    def _post(self, url: str, body: bytes, headers: dict[str, str], *, deadline: float) -> int:
        try:
            addresses = check_target(url, allow_private=self.allow_private)
        except PrivateTarget as exc:
            raise _Failed("private address") from exc
        except UnreachableTarget as exc:
            raise _Failed("could not resolve host") from exc
        except ValueError as exc:
            raise _Failed("invalid URL") from exc
        target = httpx.URL(url)
        server_name = target.raw_host.decode("ascii")
        port = target.port or DEFAULT_PORTS[target.scheme]
        extensions = {"sni_hostname": server_name} if target.scheme == "https" else {}
        sent_headers = {**headers, "Host": target.netloc.decode("ascii")}
        failure = _Failed("connection failed")
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failure = _Failed(f"timeout after {self.timeout:g} s")
                break
            request = self._client.build_request(
                "POST",
                _pinned(target, address, port),
                content=body,
                headers=sent_headers,
                extensions=extensions,
                timeout=min(self.timeout, remaining),
            )
            try:
                response = self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was sent: the next address is as good a try as the first.
                failure = _Failed(_describe(exc, self.timeout))
                continue
            except httpx.HTTPError as exc:
                raise _Failed(_describe(exc, self.timeout)) from exc
            try:
                _drain(response, deadline)
            finally:
                response.close()
            return response.status_code
        raise failure

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _pinned(target: httpx.URL, address: IPAddress, port: int) -> httpx.URL:
    return target.copy_with(host=str(address), port=port)


def _drain(response: httpx.Response, deadline: float) -> None:
    """Read and drop up to MAX_RESPONSE_BYTES of the answer, raw (no decompression bomb)."""
    received = 0
    try:
        for chunk in response.iter_raw():
            received += len(chunk)
            if received >= MAX_RESPONSE_BYTES or time.monotonic() >= deadline:
                break
    except httpx.HTTPError:
        pass  # the status has arrived, and it is the attempt's outcome


def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {timeout:g} s"
    causes = _causes(exc)
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes):
        return "TLS certificate not valid for the host"
    if any(isinstance(cause, ssl.SSLError) for cause in causes):
        return "TLS handshake failed"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return "connection closed" if _closed(exc) else "invalid HTTP response"
    return "request failed"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _closed(exc: httpx.HTTPError) -> bool:
    """A connection the server closed or reset, rather than an answer that is not HTTP."""
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return True
    return "disconnected" in str(exc).lower() or any(isinstance(cause, ConnectionError) for cause in _causes(exc))


class _ServerNameTransport(httpx.BaseTransport):
    """A connection pool per TLS server name, all sharing one SSL context.

    httpcore pools connections by scheme, address and port, and reads `sni_hostname` only
    when it opens one. Requests go to addresses here, so one pool would hand a connection
    opened (and verified) for one name to a request for another name on the same address.
    Plain http has no server name and shares one pool.
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._pools: dict[str | None, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        server_name = request.extensions.get("sni_hostname") if request.url.scheme == "https" else None
        with self._lock:
            pool = self._pools.get(server_name)
            if pool is None:
                pool = self._pools[server_name] = httpx.HTTPTransport(verify=self._ssl_context, trust_env=False)
        return pool.handle_request(request)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
