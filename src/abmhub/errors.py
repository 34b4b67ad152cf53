"""Domain errors. Services raise them; web/ maps each kind to the contract's error shape once.

Nothing here knows HTTP: `kind` says what went wrong in domain terms.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule about stored data failed. `message` is the text the caller sees."""

    kind = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    kind = "conflict"


class InvalidInput(DomainError):
    """A value that passed the request's shape but breaks a domain rule (e.g. a bad id format)."""

    kind = "bad_request"
