"""Domain errors. Services raise them; web/ maps each kind to the contract's error shape once.

Nothing here knows HTTP: `kind` says what went wrong in domain terms.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class MissingRecord:
    """A record a request named by UUID that the workspace does not have.

    `role` says which reference it was (`account`, `opportunity`, `contact`), `position`
    its index when the request named several of that role.
    """

    role: str
    value: str
    position: int | None = None


class RecordsNotFound(DomainError):
    """Some referenced records do not exist in the caller's workspace (nothing was stored)."""

    kind = "bad_request"

    def __init__(self, missing: list[MissingRecord]) -> None:
        super().__init__(", ".join(f"{m.role.capitalize()} '{m.value}' not found" for m in missing))
        self.missing = missing
