"""Time formatting and ISO 8601 parsing (contract §6 items 15 and 29)."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from abmhub.timefmt import format_us, now_us, parse_iso8601, truncate_to_ms

# 2026-04-30T10:00:00Z
TEN_AM = 1_777_543_200_000_000


def _us(moment: datetime) -> int:
    """Microseconds since the epoch, computed independently of the module under test."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_reference_instant() -> None:
    assert _us(datetime(2026, 4, 30, 10, tzinfo=UTC)) == TEN_AM, "the test's own constant is wrong"


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (TEN_AM, "2026-04-30T10:00:00.000Z"),
        (TEN_AM + 123_000, "2026-04-30T10:00:00.123Z"),
        (TEN_AM + 123_999, "2026-04-30T10:00:00.123Z"),
        (TEN_AM + 999_999, "2026-04-30T10:00:00.999Z"),
        (999, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (_us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)), "9999-12-31T23:59:59.999Z"),
        (_us(datetime(1, 1, 1, tzinfo=UTC)), "0001-01-01T00:00:00.000Z"),
        (_us(datetime(2024, 2, 29, 23, 5, 7, tzinfo=UTC)), "2024-02-29T23:05:07.000Z"),
    ],
)
def test_format_us(us: int, text: str) -> None:
    assert format_us(us) == text, f"format_us({us}) should be {text!r} (milliseconds truncated)"


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("2026-04-30", TEN_AM - 10 * 3600 * 1_000_000),
        ("2026-04-30T10:00Z", TEN_AM),
        ("2026-04-30T10:00:00Z", TEN_AM),
        ("2026-04-30T10:00:00.000Z", TEN_AM),
        ("2026-04-30T10:00:00.123Z", TEN_AM + 123_000),
        ("2026-04-30T10:00:00.1Z", TEN_AM + 100_000),
        ("2026-04-30T10:00:00.123456789Z", TEN_AM + 123_456),
        ("2026-04-30T10:00:00,5Z", TEN_AM + 500_000),
        ("2026-04-30T12:00:00.123456+02:00", TEN_AM + 123_456),
        ("2026-04-30T12:00:00+0200", TEN_AM),
        ("2026-04-30T12:00:00+02", TEN_AM),
        ("2026-04-30T05:30:00-04:30", TEN_AM),
        ("2026-04-30T10:00:00+00:00", TEN_AM),
        ("2026-04-30T10:00:00-00:00", TEN_AM),
        ("2026-04-30t10:00:00z", TEN_AM),
        ("2026-04-30T10:00:00", TEN_AM),
        ("2026-04-30T10:00", TEN_AM),
        ("2026-04-30 10:00:00", TEN_AM),
        ("2026-04-30 10:00:00.123Z", TEN_AM + 123_000),
        ("2026-05-01T00:00:00+14:00", TEN_AM),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1_000),
        ("2024-02-29", _us(datetime(2024, 2, 29, tzinfo=UTC))),
        ("0001-01-01T00:00:00Z", _us(datetime(1, 1, 1, tzinfo=UTC))),
        ("9999-12-31T23:59:59.999999Z", _us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))),
        ("0001-01-01T00:00:00+01:00", _us(datetime(1, 1, 1, tzinfo=UTC)) - 3600 * 1_000_000),
    ],
)
def test_parse_iso8601(text: str, us: int) -> None:
    assert parse_iso8601(text) == us, f"parse_iso8601({text!r}) should be {us}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "yesterday",
        "2026-13-01",
        "2026-00-10",
        "2026-02-30",
        "2025-02-29",
        "2026-04-31",
        "2026-04-00",
        "0000-01-01",
        "10000-01-01",
        "26-04-30",
        "2026-4-30",
        "2026-04-30T",
        "2026-04-30T10",
        "2026-04-30T10:00:00.Z",
        "2026-04-30T10:00:00.1234567890Z",
        "2026-04-30T24:00:00Z",
        "2026-04-30T10:60:00Z",
        "2026-04-30T10:00:60Z",
        "2026-04-30T10:00:00+24:00",
        "2026-04-30T10:00:00+02:60",
        "2026-04-30T10:00:00+2:00",
        "2026-04-30T10:00:00 Z",
        "2026-04-30T10:00:00ZZ",
        " 2026-04-30",
        "2026-04-30\n",
        "2026-04-30X10:00:00Z",
        "２０２６-04-30",  # full-width digits
        "٢٠٢٦-04-30",  # Arabic-Indic digits
        "2026/04/30",
        "1777543200000",
    ],
)
def test_parse_iso8601_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso8601(text)
        pytest.fail(f"{text!r} is not a valid ISO 8601 date string and should be rejected")


def test_truncate_to_ms() -> None:
    assert truncate_to_ms(TEN_AM + 123_999) == TEN_AM + 123_000, "sub-millisecond digits are dropped"
    assert truncate_to_ms(TEN_AM) == TEN_AM, "a whole millisecond stays as it is"
    assert truncate_to_ms(-1) == -1_000, "before 1970 truncation still goes towards the past"


def test_now_us_is_the_wall_clock_in_microseconds() -> None:
    before = time.time_ns() // 1000
    now = now_us()
    after = time.time_ns() // 1000
    assert before <= now <= after, f"now_us() = {now} should lie between {before} and {after}"


# --- properties -------------------------------------------------------------------------

_MS_DATETIMES = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_000)).map(
    lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
)


@settings(max_examples=300)
@given(_MS_DATETIMES)
@example(datetime(1970, 1, 1, tzinfo=UTC))
@example(datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC))
def test_format_then_parse_round_trips(moment: datetime) -> None:
    us = _us(moment)
    text = format_us(us)
    assert parse_iso8601(text) == us, f"{text!r} should parse back to {us}"
    assert text == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"), (
        f"format_us({us}) should agree with datetime.isoformat"
    )


@settings(max_examples=300)
@given(
    st.integers(
        min_value=_us(datetime(1, 1, 1, tzinfo=UTC)),
        max_value=_us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    )
)
def test_parse_of_format_is_truncation_to_ms(us: int) -> None:
    assert parse_iso8601(format_us(us)) == truncate_to_ms(us), (
        f"formatting {us} should lose exactly its sub-millisecond digits"
    )


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS),
    st.sampled_from(["T", "t", " "]),
)
def test_parses_what_isoformat_writes(moment: datetime, separator: str) -> None:
    text = moment.isoformat(sep=separator)
    assert parse_iso8601(text) == _us(moment), f"{text!r} should name the instant {moment!r}"


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_parse_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_iso8601(text)


def _format_us_by_fields(us: int) -> str:
    """format_us as it was before its table-driven rewrite: datetime's fields (the civil-day
    arithmetic outside years 1-9999), formatted one by one."""
    from abmhub.timefmt import _date_and_time, _utc_fields

    *fields, micros = _utc_fields(us)
    return f"{_date_and_time(*fields)}.{micros // 1000:03d}Z"


_YEAR_1_US = _us(datetime(1, 1, 1, tzinfo=UTC))
_YEAR_10000_US = _us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) + 1


@settings(max_examples=1000)
@given(
    st.one_of(
        st.integers(),
        st.integers(min_value=_YEAR_1_US - 10**12, max_value=_YEAR_10000_US + 10**12),
        st.integers(min_value=-(10**10), max_value=10**10),
        st.sampled_from([_YEAR_1_US, _YEAR_10000_US]).flatmap(lambda b: st.integers(b - 2000, b + 2000)),
    )
)
@example(0)
@example(-1)
@example(-999)
@example(-1000)
@example(-1001)
@example(_YEAR_1_US)
@example(_YEAR_1_US - 1)
@example(_YEAR_10000_US)
@example(_YEAR_10000_US - 1)
@example(86_400_000_000 * 999_999_999)
@example(86_400_000_000 * 1_000_000_000)
@example(-(86_400_000_000 * 1_000_000_000))
def test_format_us_matches_the_field_by_field_format(us: int) -> None:
    assert format_us(us) == _format_us_by_fields(us)
    assert format_us(us) == _format_us_by_fields(us), "and again, from the cache of day strings"


def test_format_us_is_right_across_refills_of_its_day_cache() -> None:
    from abmhub import timefmt

    start = TEN_AM - 3000 * 86_400_000_000
    for day in range(2 * timefmt._DAY_TEXT_MAX + 7):
        us = start + day * 86_400_000_000 + day * 1_234_567
        assert format_us(us) == _format_us_by_fields(us)
    assert len(timefmt._DAY_TEXT) <= timefmt._DAY_TEXT_MAX
