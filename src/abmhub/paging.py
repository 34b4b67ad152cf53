"""Keyset pages and delta-sync passes, as services see them (no HTTP here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a caller asked for: page size, where the previous page ended, and the pass it belongs to."""

    limit: int = 100
    after: tuple[Any, ...] | None = None
    # The pass's sync stamp, carried by the cursor; None on the first page of a pass.
    sync_us: int | None = None
    # The `lastSync` filter: only records changed after it.
    changed_after_us: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: Sequence[Item]
    has_next: bool
    # The key of the last item (the next page starts after it); None for an empty page.
    last_key: tuple[Any, ...] | None
    sync_us: int | None = None
