"""Opaque keyset cursors for paginated lists (contract §1.5).

A cursor carries where the previous page ended (the sort-key values of its last row)
and the `syncTimestamp` of the pass, so every page of one pass reports the same
timestamp. To clients it is an opaque URL-safe string; anything that does not decode to
a well-formed cursor is `InvalidCursor`, which the web layer answers with 400
`"Invalid cursor"`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

__all__ = ["MAX_CURSOR_LENGTH", "Cursor", "InvalidCursor", "decode_cursor", "encode_cursor"]

MAX_CURSOR_LENGTH = 1024
"""Longest cursor text accepted (and produced); longer input is rejected unread."""

_VERSION = "v1"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a list plus the pass it belongs to."""

    after: tuple[str | int, ...]
    """The sort-key values of the last row of the previous page."""
    sync_us: int | None
    """The pass's syncTimestamp in µs since the epoch; None for lists without delta sync."""


class InvalidCursor(ValueError):
    """A cursor string that abmhub did not produce, or not for this list."""


def encode_cursor(cursor: Cursor) -> str:
    """Return the opaque, URL-safe text for `cursor`.

    The text is unpadded base64url of the compact JSON `["v1", [after...], sync_us]`.
    Raises ValueError for a cursor `decode_cursor` would reject (a bool, float or other
    value in `after`, a negative `sync_us`, or text over `MAX_CURSOR_LENGTH`): emitting
    a cursor that the next request cannot read would strand the client mid-list.
    """
    if not _is_keyset(cursor.after):
        raise ValueError(f"cursor keys must be str or int, got {cursor.after!r}")
    if not _is_sync_us(cursor.sync_us):
        raise ValueError(f"cursor sync_us must be a non-negative int or None, got {cursor.sync_us!r}")
    # ensure_ascii keeps any str (lone surrogates included) encodable as UTF-8.
    payload = json.dumps([_VERSION, list(cursor.after), cursor.sync_us], separators=(",", ":"))
    text = base64.urlsafe_b64encode(payload.encode("ascii")).rstrip(b"=").decode("ascii")
    if len(text) > MAX_CURSOR_LENGTH:
        raise ValueError(f"cursor text is {len(text)} characters, over {MAX_CURSOR_LENGTH}")
    return text


def decode_cursor(text: str, *, arity: int) -> Cursor:
    """Return the cursor encoded in `text`, whose `after` must hold `arity` sort keys.

    Raises InvalidCursor, and nothing else, for anything that `encode_cursor` could not
    have produced for a list sorted on `arity` keys.
    """
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is empty or too long")
    if _BASE64URL.fullmatch(text) is None:
        raise InvalidCursor("cursor is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    # binascii.Error, UnicodeDecodeError and JSONDecodeError are all ValueErrors;
    # RecursionError guards against deeply nested arrays.
    except (ValueError, RecursionError) as error:
        raise InvalidCursor("cursor does not decode") from error
    if not (isinstance(payload, list) and len(payload) == 3 and payload[0] == _VERSION):
        raise InvalidCursor("cursor has an unknown layout or version")
    _, after, sync_us = payload
    if not isinstance(after, list) or len(after) != arity or not _is_keyset(after):
        raise InvalidCursor("cursor does not belong to this list")
    if not _is_sync_us(sync_us):
        raise InvalidCursor("cursor has an invalid sync timestamp")
    return Cursor(after=tuple(after), sync_us=sync_us)


def _is_keyset(values: tuple[object, ...] | list[object]) -> bool:
    # `type(...) is` rather than isinstance: a bool is an int, and not a sort key.
    return all(type(value) is str or type(value) is int for value in values)


def _is_sync_us(value: object) -> bool:
    return value is None or (type(value) is int and value >= 0)
