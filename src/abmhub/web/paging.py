"""Query parameters of paginated lists (`limit`, `cursor`, `lastSync`) and the page body (§1.5)."""

from __future__ import annotations

from typing import Any

from abmhub.paging import Page, PageRequest
from abmhub.timefmt import format_us, parse_iso8601, truncate_to_ms
from abmhub.web.cursors import Cursor, InvalidCursor, decode_cursor, encode_cursor
from abmhub.web.errors import ApiError, ValidationFailed
from abmhub.web.validation import constraint_text, issue

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    return parse_bounded_int("limit", raw, default=default, minimum=1, maximum=maximum)


def parse_bounded_int(name: str, raw: str | None, *, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter in [minimum, maximum] (`default` when absent); else the
    contract's 400 on property `name` (`isInt`, `min`, `max`)."""
    if raw is None:
        return default
    text = raw.strip()

    def refuse(constraint: str, ctx: dict[str, int] | None = None) -> ValidationFailed:
        return ValidationFailed([issue(name, name, {constraint: constraint_text(constraint, name, ctx)})])

    if not text.lstrip("-").isdigit():
        raise refuse("isInt")
    value = int(text)
    if value < minimum:
        raise refuse("min", {"min": minimum})
    if value > maximum:
        raise refuse("max", {"max": maximum})
    return value


def parse_last_sync(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return parse_iso8601(raw.strip())
    except ValueError:
        raise ApiError(400, "lastSync must be a valid ISO 8601 date string") from None


def parse_cursor(raw: str | None, *, arity: int = 1) -> Cursor | None:
    if raw is None:
        return None
    try:
        return decode_cursor(raw, arity=arity)
    except InvalidCursor:
        raise ApiError(400, "Invalid cursor") from None


def page_request(limit: str | None, cursor: str | None, last_sync: str | None = None, *, arity: int = 1) -> PageRequest:
    """Read the standard list parameters, answering the contract's 400s for bad values."""
    size = parse_limit(limit)
    position = parse_cursor(cursor, arity=arity)
    changed_after = parse_last_sync(last_sync)
    return PageRequest(
        limit=size,
        after=position.after if position else None,
        sync_us=position.sync_us if position else None,
        changed_after_us=changed_after,
    )


def page_body(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    """`{data, nextCursor, hasNextPage, syncTimestamp}`; nextCursor is set whenever the page has rows."""
    # The stamp is cut to milliseconds for the wire; cutting (never rounding up) keeps every
    # change stamped after it strictly greater than the `lastSync` a client sends back.
    sync_us = truncate_to_ms(page.sync_us) if page.sync_us is not None else None
    next_cursor = encode_cursor(Cursor(page.last_key, page.sync_us)) if page.last_key is not None else None
    return {
        "data": items,
        "nextCursor": next_cursor,
        "hasNextPage": page.has_next,
        "syncTimestamp": format_us(sync_us) if sync_us is not None else None,
    }


def keyset_page(limit: str | None = None, cursor: str | None = None) -> PageRequest:
    """`limit` (1-1000, default 100) and `cursor` of a list without delta sync (no `lastSync`)."""
    return page_request(limit, cursor)
