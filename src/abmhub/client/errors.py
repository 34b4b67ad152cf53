"""What the client raises. No message, repr or attribute of these ever holds the API key.

Errors are built from what the server answered (status, the contract's error body) and the
request's method and path; never from the request's headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ClientError(Exception):
    """Base of everything `abmhub.client` raises."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem a validation error names: where (`accounts.3.domain`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ApiError(ClientError):
    """The server answered with an error status.

    `message` and `custom_message` come from Surface R's envelope (§1.3); on Surface V the
    `detail` text is the message. `issues` lists the fields a validation error names.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int,
        message: str,
        custom_message: str | None = None,
        issues: tuple[Issue, ...] = (),
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.custom_message = custom_message
        self.issues = issues
        self.retry_after = retry_after
        self.body = body
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.method} {self.path}: HTTP {self.status} {self.message}"
        if self.custom_message and self.custom_message != self.message:
            text += f": {self.custom_message}"
        if self.issues:
            shown = "; ".join(str(issue) for issue in self.issues[:3])
            more = f" (and {len(self.issues) - 3} more)" if len(self.issues) > 3 else ""
            text += f" — {shown}{more}"
        return text

    @property
    def text(self) -> str:
        """The most specific text the server gave."""
        return self.custom_message or self.message


class BadRequest(ApiError):
    """400: the request's shape or a rule about the whole request (nothing was written)."""


class Unauthorized(ApiError):
    """401: no key, or a key the server does not know (revoked, mistyped)."""


class Forbidden(ApiError):
    """403."""


class NotFound(ApiError):
    """404: an unknown record, or a path the server does not serve (check the base URL)."""


class Conflict(ApiError):
    """409."""


class PayloadTooLarge(ApiError):
    """413: the body is over the server's limit (5 MiB on abmhub)."""


class Unprocessable(ApiError):
    """422: Surface V's validation errors, including `record_not_found` references."""


class RateLimited(ApiError):
    """429: over the key's rate limit; `retry_after` is the server's delay in seconds."""


class ServerError(ApiError):
    """5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


class ConnectionFailed(ClientError):
    """The request got no HTTP answer: connection refused or reset, or a timeout."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"{method} {path}: {reason}")


class RetriesExhausted(ClientError):
    """The request failed in a retryable way every time it was tried; `last` is the final failure."""

    def __init__(self, method: str, path: str, attempts: int, elapsed: float, last: ClientError, why: str = "") -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        self.elapsed = elapsed
        self.last = last
        reason = why or f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s"
        super().__init__(f"{method} {path}: {reason}; last failure: {last}")

    @property
    def status(self) -> int | None:
        """The HTTP status of the last attempt (None when it got no answer)."""
        return self.last.status if isinstance(self.last, ApiError) else None


class ProtocolError(ClientError):
    """The server answered 2xx with something the contract does not allow (not JSON, a
    result list of the wrong length, `hasNextPage` without a cursor, ...)."""
