"""Opaque keyset cursors (contract §1.5)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from abmhub.web.cursors import (
    MAX_CURSOR_LENGTH,
    Cursor,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)


def _raw(payload: object) -> str:
    """Base64url text of `payload` as JSON, the way a forger would build a cursor."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def test_round_trip_of_a_typical_cursor() -> None:
    cursor = Cursor(after=("6a21b8855a81c58936372c2d",), sync_us=1_777_543_200_000_000)
    text = encode_cursor(cursor)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text), f"{text!r} should be unpadded base64url"
    assert decode_cursor(text, arity=1) == cursor, "decoding should give back the encoded cursor"


def test_round_trip_keeps_types_and_order() -> None:
    cursor = Cursor(after=(1_777_543_200_000_000, "b", -7, ""), sync_us=None)
    assert decode_cursor(encode_cursor(cursor), arity=4) == cursor, (
        "ints stay ints, strings stay strings, order and a None sync_us are kept"
    )


def test_cursor_is_compact_and_versioned() -> None:
    text = encode_cursor(Cursor(after=("6a21b8855a81c58936372c2d",), sync_us=1_777_543_200_000_000))
    assert len(text) < 80, f"a one-key cursor should be short, got {len(text)} characters"
    payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    assert payload[0] == "v1", f"the payload should start with its version, got {payload!r}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "white space"),
        ("not a cursor!", "not base64url"),
        ("abc=", "padded"),
        ("a+b/", "standard, not URL-safe, base64"),
        ("a", "base64 of impossible length"),
        ("A" * (MAX_CURSOR_LENGTH + 1), "over the length limit"),
        (base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), "not UTF-8"),
        (_raw("hello")[:-1] + "!", "bad character at the end"),
        (base64.urlsafe_b64encode(b"{not json").rstrip(b"=").decode(), "not JSON"),
        (_raw({"v": 1, "a": ["x"], "s": 1}), "an object, not the v1 layout"),
        (_raw(["v2", ["x"], 1]), "an unknown version"),
        (_raw(["v1", ["x"]]), "too few parts"),
        (_raw(["v1", ["x"], 1, 2]), "too many parts"),
        (_raw(["v1", "x", 1]), "after is not an array"),
        (_raw(["v1", [], 1]), "arity 0 for a one-key list"),
        (_raw(["v1", ["x", "y"], 1]), "arity 2 for a one-key list"),
        (_raw(["v1", [True], 1]), "a bool key"),
        (_raw(["v1", [1.5], 1]), "a float key"),
        (_raw(["v1", [None], 1]), "a null key"),
        (_raw(["v1", [["x"]], 1]), "a nested key"),
        (_raw(["v1", ["x"], -1]), "a negative sync timestamp"),
        (_raw(["v1", ["x"], 1.0]), "a float sync timestamp"),
        (_raw(["v1", ["x"], False]), "a bool sync timestamp"),
        (_raw(["v1", ["x"], "1"]), "a string sync timestamp"),
        (base64.urlsafe_b64encode(b"[" * 700).rstrip(b"=").decode(), "deeply nested"),
    ],
)
def test_rejects_malformed_cursors(text: str, why: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(text, arity=1)
        pytest.fail(f"a cursor that is {why} should be rejected")


def test_invalid_cursor_is_a_value_error() -> None:
    assert issubclass(InvalidCursor, ValueError), "callers catching ValueError should see it"


def test_rejects_non_string_input() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(None, arity=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(after=(True,), sync_us=None),
        Cursor(after=(1.5,), sync_us=None),  # type: ignore[arg-type]
        Cursor(after=("x",), sync_us=-1),
        Cursor(after=("x",), sync_us=True),  # type: ignore[arg-type]
        Cursor(after=("x" * MAX_CURSOR_LENGTH,), sync_us=None),
    ],
)
def test_refuses_to_encode_what_it_could_not_decode(cursor: Cursor) -> None:
    with pytest.raises(ValueError):
        encode_cursor(cursor)
        pytest.fail(f"encoding {cursor!r} should fail: the next request could not decode it")


# --- properties -------------------------------------------------------------------------

_KEYS = st.one_of(st.text(max_size=30), st.integers(min_value=-(2**63), max_value=2**63))
_CURSORS = st.builds(
    Cursor,
    after=st.lists(_KEYS, max_size=4).map(tuple),
    sync_us=st.none() | st.integers(min_value=0, max_value=2**62),
)


@settings(max_examples=300)
@given(_CURSORS)
@example(Cursor(after=("\ud800",), sync_us=0))
def test_round_trip(cursor: Cursor) -> None:
    text = encode_cursor(cursor)
    assert len(text) <= MAX_CURSOR_LENGTH, "an encoded cursor should be within the accepted length"
    assert "=" not in text and "+" not in text and "/" not in text, f"{text!r} should be URL-safe"
    assert decode_cursor(text, arity=len(cursor.after)) == cursor, f"{cursor!r} should survive encoding as {text!r}"


@settings(max_examples=300)
@given(_CURSORS)
def test_wrong_arity_is_rejected(cursor: Cursor) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(cursor), arity=len(cursor.after) + 1)


@settings(max_examples=300)
@given(st.text(max_size=200), st.integers(min_value=0, max_value=4))
def test_arbitrary_text_is_a_cursor_or_invalid(text: str, arity: int) -> None:
    try:
        decoded = decode_cursor(text, arity=arity)
    except InvalidCursor:
        return
    assert len(decoded.after) == arity, f"{text!r} decoded to {decoded!r} with the wrong arity"


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=4))
@example(b'["v1",["x"],1]', 1)
@example(b'["v1",[1e999],1]', 1)
@example(b'["v1",[NaN],1]', 1)
@example(b'["v1",["x"],' + b"9" * 700 + b"]", 1)
def test_arbitrary_bytes_are_a_cursor_or_invalid(raw: bytes, arity: int) -> None:
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    try:
        decoded = decode_cursor(text, arity=arity)
    except InvalidCursor:
        return
    assert len(decoded.after) == arity, f"{raw!r} decoded to {decoded!r} with the wrong arity"
    assert all(type(key) in (str, int) for key in decoded.after), f"{decoded!r} holds a non-key"
