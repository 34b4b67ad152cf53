"""Keyset pages and delta-sync passes, as services see them (no HTTP here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from abmhub.errors import InvalidInput

Item = TypeVar("Item")


class InvalidPosition(InvalidInput):
    """A cursor that decodes but holds no position in this list (e.g. one issued by another list)."""

    def __init__(self) -> None:
        super().__init__("Invalid cursor")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a caller asked for: page size, where the previous page ended, and the pass it belongs to."""

    limit: int = 100
    after: tuple[Any, ...] | None = None
    # The pass's sync stamp, carried by the cursor; None on the first page of a pass.
    sync_us: int | None = None
    # The `lastSync` filter: only records changed after it.
    changed_after_us: int | None = None

    def start_after(self, key_type: type) -> Any:
        """The sort key the page starts after (None on a first page), of the list's key type.

        A cursor of another list carries a key of another type (an account's rtp_aid where
        deals are keyed by number): refused as an invalid cursor instead of being compared,
        which PostgreSQL answers with an error.
        """
        if self.after is None:
            return None
        if len(self.after) != 1 or type(self.after[0]) is not key_type:
            raise InvalidPosition()
        return self.after[0]


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: Sequence[Item]
    has_next: bool
    # The key of the last item (the next page starts after it); None for an empty page.
    last_key: tuple[Any, ...] | None
    sync_us: int | None = None
