"""HTTP for both clients: the key, timeouts, retries with backoff, and error bodies.

One request = up to `RetryPolicy.attempts` tries. A try is retried when the server answers
429 or 5xx, or when there is no answer at all (connection refused or reset, timeouts);
every other error status is raised at once. The wait before a retry is the server's
`Retry-After` when it sent one (never less), else an exponential backoff with jitter, so
that many clients that failed together do not come back together.

A retried push is safe on abmhub: a request is one transaction, so a 429 or 5xx wrote
nothing. After a timeout the first try may have been stored; its items then come back as
`failed` (accounts without upsert, activities: "already exists") or `skipped` (signals with
an externalSignalId) rather than duplicated.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from abmhub import __version__
from abmhub.client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    Issue,
    ProtocolError,
    RetriesExhausted,
    error_class,
)

log = logging.getLogger("abmhub.client")

USER_AGENT = f"abmhub-client/{__version__}"
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# Network failures worth another try; an invalid URL or a local protocol misuse is not.
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a request is retried.

    attempts     tries in all, the first included (1 = never retry)
    backoff      the first wait in seconds; it doubles with every retry ...
    max_backoff  ... up to this; the wait is then jittered between half and all of it
    max_wait     the longest single wait, `Retry-After` included: a server that asks for
                 more makes the client give up at once rather than retry too early
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_wait < 0:
            raise ValueError("waits cannot be negative")

    def wait(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry number `retry` (1 for the first retry)."""
        if retry_after is not None:
            # At least what the server asked for; a little more spreads clients apart.
            return retry_after + rng.uniform(0, min(1.0, 0.1 * retry_after))
        growth: int = 2 ** (retry - 1)  # retry >= 1: a whole power of two
        ceiling = min(self.max_backoff, self.backoff * growth)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


NO_RETRY = RetryPolicy(attempts=1)


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):  # an unreadable date raises ValueError
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    return httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))


class KeyAuth(httpx.Auth):
    """Puts the key in its header on every request; its repr never shows the key.

    Keeping the key out of the client's default headers also keeps it out of anything
    that prints them.
    """

    def __init__(self, header: str, value: str) -> None:
        if not value or not value.strip():
            raise ValueError("an API key is required")
        self._header = header
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value
        yield request

    def __repr__(self) -> str:
        return f"KeyAuth({self._header}: ***)"


def api_root(base_url: str, prefix: str) -> str:
    """The URL requests are relative to: `base_url` itself when it already ends with
    `prefix` (`/api/v1`, as the vendor documents its base URL), else `base_url` + `prefix`."""
    url = httpx.URL(base_url.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
    path = url.path.rstrip("/")
    if not path.endswith(prefix):
        path += prefix
    return str(url.copy_with(path=path + "/", query=None, fragment=None))


# --- answers -------------------------------------------------------------------------------


def decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return _NotJson(response.text[:200])


@dataclass(frozen=True, slots=True)
class _NotJson:
    text: str


def _issues(data: Any) -> tuple[Issue, ...]:
    """Validation items of either surface as (path, text) pairs."""
    if not isinstance(data, list):
        return ()
    found = []
    for item in data:
        if not isinstance(item, dict):
            continue
        if "constraints" in item:  # Surface R: {property, path, constraints}
            constraints = item.get("constraints") or {}
            text = (
                "; ".join(str(v) for v in constraints.values()) if isinstance(constraints, dict) else str(constraints)
            )
            found.append(Issue(str(item.get("path") or item.get("property") or ""), text))
        elif "msg" in item:  # Surface V (FastAPI): {type, loc, msg, input}
            loc = [str(part) for part in item.get("loc") or () if part != "body"]
            found.append(Issue(".".join(loc), str(item["msg"])))
    return tuple(found)


def api_error(method: str, path: str, response: httpx.Response) -> ApiError:
    """The exception for an error answer, read from either surface's error body."""
    body = decode(response)
    message = response.reason_phrase or f"HTTP {response.status_code}"
    custom = None
    issues: tuple[Issue, ...] = ()
    if isinstance(body, dict):
        if "detail" in body:  # Surface V
            detail = body["detail"]
            if isinstance(detail, str):
                custom = detail
            else:
                issues = _issues(detail)
        else:  # Surface R's envelope (§1.3)
            message = str(body.get("message") or message)
            custom = body.get("customMessage")
            issues = _issues(body.get("data"))
    elif isinstance(body, _NotJson) and body.text.strip():
        custom = body.text.strip()
        body = None
    return error_class(response.status_code)(
        method=method,
        path=path,
        status=response.status_code,
        message=message,
        custom_message=str(custom) if custom is not None else None,
        issues=issues,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        body=body,
    )


def success_body(method: str, path: str, response: httpx.Response) -> Any:
    body = decode(response)
    if isinstance(body, _NotJson):
        raise ProtocolError(f"{method} {path}: HTTP {response.status_code} with a body that is not JSON: {body.text!r}")
    return body


# --- the request loop ---------------------------------------------------------------------------


class _Attempts:
    """The bookkeeping of one request's tries, shared by the sync and async loops."""

    def __init__(self, method: str, path: str, policy: RetryPolicy, rng: random.Random) -> None:
        self.method = method
        self.path = path
        self.policy = policy
        self.rng = rng
        self.tries = 0
        self.started = time.monotonic()

    def failed_without_answer(self, exc: httpx.HTTPError) -> ConnectionFailed:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ConnectionFailed(self.method, self.path, reason)

    def next_wait(self, failure: ClientError, retry_after: float | None) -> float:
        """Seconds to wait before the next try; raises RetriesExhausted when there is none."""
        elapsed = time.monotonic() - self.started
        if self.tries >= self.policy.attempts:
            raise RetriesExhausted(self.method, self.path, self.tries, elapsed, failure) from failure
        if retry_after is not None and retry_after > self.policy.max_wait:
            raise RetriesExhausted(
                self.method,
                self.path,
                self.tries,
                elapsed,
                failure,
                why=f"the server asked to retry after {retry_after:g} s, more than max_wait {self.policy.max_wait:g} s",
            ) from failure
        wait = min(self.policy.wait(self.tries, retry_after, self.rng), self.policy.max_wait)
        if retry_after is not None:
            wait = max(wait, retry_after)
        log.warning(
            "%s %s: %s; retry %d of %d in %.2f s",
            self.method,
            self.path,
            _short(failure),
            self.tries,
            self.policy.attempts - 1,
            wait,
        )
        return wait


def _short(failure: ClientError) -> str:
    if isinstance(failure, ApiError):
        return f"HTTP {failure.status} {failure.message}"
    return str(failure)


def _body_bytes(json_body: Any) -> bytes | None:
    return None if json_body is None else orjson.dumps(json_body)


_JSON_HEADERS = {"Content-Type": "application/json"}


class SyncTransport:
    """An httpx.Client with the key, the retry loop and error mapping."""

    def __init__(
        self,
        root: str,
        auth: KeyAuth,
        *,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        http: httpx.Client | None = None,
    ) -> None:
        self.retry = retry
        self._rng = random.Random()
        self._owned = http is None
        self.http = http or httpx.Client(timeout=make_timeout(timeout), headers={"User-Agent": USER_AGENT})
        self.http.base_url = root
        self.http.auth = auth

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        attempts = _Attempts(method, "/" + self.http.base_url.path.strip("/") + "/" + path, self.retry, self._rng)
        content = _body_bytes(json)
        headers = _JSON_HEADERS if content is not None else None
        while True:
            attempts.tries += 1
            retry_after = None
            try:
                response = self.http.request(method, path, params=params, content=content, headers=headers)
            except _RETRYABLE_TRANSPORT as exc:
                failure: ClientError = attempts.failed_without_answer(exc)
            except httpx.HTTPError as exc:
                raise attempts.failed_without_answer(exc) from exc
            else:
                if response.is_success:
                    return success_body(method, attempts.path, response)
                failure = api_error(method, attempts.path, response)
                if not retryable_status(response.status_code):
                    raise failure
                retry_after = failure.retry_after
            time.sleep(attempts.next_wait(failure, retry_after))

    def close(self) -> None:
        if self._owned:
            self.http.close()


class AsyncTransport:
    """The same over httpx.AsyncClient."""

    def __init__(
        self,
        root: str,
        auth: KeyAuth,
        *,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry = retry
        self._rng = random.Random()
        self._owned = http is None
        self.http = http or httpx.AsyncClient(timeout=make_timeout(timeout), headers={"User-Agent": USER_AGENT})
        self.http.base_url = root
        self.http.auth = auth

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        attempts = _Attempts(method, "/" + self.http.base_url.path.strip("/") + "/" + path, self.retry, self._rng)
        content = _body_bytes(json)
        headers = _JSON_HEADERS if content is not None else None
        while True:
            attempts.tries += 1
            retry_after = None
            try:
                response = await self.http.request(method, path, params=params, content=content, headers=headers)
            except _RETRYABLE_TRANSPORT as exc:
                failure: ClientError = attempts.failed_without_answer(exc)
            except httpx.HTTPError as exc:
                raise attempts.failed_without_answer(exc) from exc
            else:
                if response.is_success:
                    return success_body(method, attempts.path, response)
                failure = api_error(method, attempts.path, response)
                if not retryable_status(response.status_code):
                    raise failure
                retry_after = failure.retry_after
            await asyncio.sleep(attempts.next_wait(failure, retry_after))

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()
