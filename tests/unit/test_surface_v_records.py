"""Pure parts of Surface V: its time format, how a timeline names an activity (API.md §6.27),
and times beyond datetime's range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abmhub import timefmt
from abmhub.reevo.records import display_name, to_us
from abmhub.reevo.schemas import timeline_cursor
from abmhub.timefmt import format_us, format_us_seconds, parse_iso8601
from abmhub.web.cursors import Cursor, encode_cursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (123_000, "1970-01-01T00:00:00.123000Z"),
        (1, "1970-01-01T00:00:00.000001Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (1_699_335_116_000_000, "2023-11-07T05:31:56Z"),
    ],
)
def test_surface_v_writes_times_as_pydantic_does(us, text):
    assert format_us_seconds(us) == text


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)))
def test_the_seconds_format_reads_back_to_the_same_instant(moment):
    us = to_us(moment)
    assert datetime.fromisoformat(format_us_seconds(us)) == moment.replace(tzinfo=UTC)


@given(st.integers(min_value=-719_162, max_value=2_932_896))
def test_calendar_arithmetic_matches_datetime(days):
    expected = EPOCH + timedelta(days=days)
    assert timefmt._civil_from_days(days) == (expected.year, expected.month, expected.day)


def test_times_outside_datetimes_years_still_format():
    # Surface R accepts this time (it is 0000-12-31T23:00Z); a timeline must still show it.
    us = parse_iso8601("0001-01-01T00:00:00+01:00")
    assert format_us(us) == "0000-12-31T23:00:00.000Z"
    assert format_us_seconds(us) == "0000-12-31T23:00:00Z"
    assert format_us_seconds(parse_iso8601("9999-12-31T23:59:59-01:00")) == "10000-01-01T00:59:59Z"


def test_a_time_without_offset_is_utc():
    assert to_us(datetime(2026, 4, 22, 10, 30)) == to_us(
        datetime(2026, 4, 22, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    )


def row(kind: str, **fields: str | None) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, **{"subject": None, "call_title": None, **fields})


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        (row("manual", subject="Booth chat"), "Booth chat"),
        (row("call", call_title="Discovery", subject="Re: pricing"), "Discovery"),
        (row("call", subject="Re: pricing"), "Re: pricing"),
        (row("call", call_title="  ", subject=""), "Call"),
        (row("call"), "Call"),
        (row("email", subject="Follow up", call_title="a call-only field"), "Follow up"),
        (row("email", call_title="a call-only field"), "Email"),
    ],
)
def test_display_names(entry, name):
    assert display_name(entry) == name


def test_timeline_cursors_are_only_the_timelines_own():
    key = (1_776_000_000_000_000, "01a21396-9836-798f-afa2-6f24b071ae44")
    assert timeline_cursor(encode_cursor(Cursor(key, None))) == key
    for foreign in (
        encode_cursor(Cursor((42,), 1)),  # a Surface R list cursor
        encode_cursor(Cursor((key[1], key[0]), None)),
        encode_cursor(Cursor(key, 5)),
        "not-a-cursor",
    ):
        with pytest.raises(ValueError, match="Invalid cursor"):
            timeline_cursor(foreign)


def test_the_category_enum_lists_the_manual_activity_categories_in_order():
    from abmhub.activities.manual import CATEGORIES
    from abmhub.reevo.schemas import ActivityCategory

    assert tuple(ActivityCategory) == CATEGORIES
