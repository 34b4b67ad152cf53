"""Times on the wire and in storage.

abmhub stores every time as an integer number of microseconds since the Unix epoch
(UTC). On the wire times are ISO 8601: written as `2026-04-30T10:00:00.000Z`
(contract §6 item 15) and read in the forms class-validator's `isISO8601` accepts in
practice (§6 item 29).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

__all__ = ["format_us", "format_us_seconds", "now_us", "parse_iso8601", "truncate_to_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_US_PER_SECOND = 1_000_000

# [0-9] rather than \d: \d would also match Arabic-Indic and other Unicode digits.
_ISO8601 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<off_hour>[0-9]{2})(?::?(?P<off_minute>[0-9]{2}))?)?"
    r")?"
)


def now_us() -> int:
    """Return the current time in microseconds since the epoch."""
    return time.time_ns() // 1000


def truncate_to_ms(us: int) -> int:
    """Return `us` cut down to whole milliseconds (towards the past, also before 1970)."""
    return us - us % 1000


def _utc_fields(us: int) -> tuple[int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, microsecond) of `us` in UTC.

    Any instant, also outside datetime's years 1-9999: `parse_iso8601` accepts
    `0001-01-01T00:00+01:00`, which lies in year 0, and such a stored time must still format.
    """
    try:
        moment = _EPOCH + timedelta(microseconds=us)
    except OverflowError:
        days, rest = divmod(us, 86_400 * _US_PER_SECOND)
        seconds, micros = divmod(rest, _US_PER_SECOND)
        year, month, day = _civil_from_days(days)
        return year, month, day, seconds // 3600, seconds // 60 % 60, seconds % 60, micros
    return moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, moment.microsecond


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The proleptic Gregorian (year, month, day) `days` after 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _date_and_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    sign = "-" if year < 0 else ""
    return f"{sign}{abs(year):04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def format_us(us: int) -> str:
    """Return `us` as ISO 8601 UTC with milliseconds and `Z`: `2026-04-30T10:00:00.000Z`.

    Sub-millisecond digits are truncated, not rounded, so a formatted time never lies
    after the stored one (a client using it as `lastSync` would skip that record).

    Every account record has one, so this is written for speed (~0.4 µs, a third of
    datetime's isoformat): the date part comes from a small cache of day strings, made by
    the same arithmetic as for instants outside datetime's years 1-9999, and the time of
    day is three lookups in tables.
    """
    days, rest = divmod(us, _US_PER_DAY)
    day = _DAY_TEXT.get(days)
    if day is None:
        day = _day_text(days)
    minute, rest = divmod(rest, 60 * _US_PER_SECOND)
    second, micros = divmod(rest, _US_PER_SECOND)
    return day + _HOUR_MINUTE_TEXT[minute] + _SECOND_TEXT[second] + _MILLI_TEXT[micros // 1000]


_US_PER_DAY = 86_400 * _US_PER_SECOND
_HOUR_MINUTE_TEXT = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECOND_TEXT = tuple(f"{second:02d}." for second in range(60))
_MILLI_TEXT = tuple(f"{milli:03d}Z" for milli in range(1000))
_DAY_TEXT: dict[int, str] = {}
_DAY_TEXT_MAX = 4096


def _day_text(days: int) -> str:
    """`2026-04-30T` for the day `days` after 1970-01-01 (any day, also outside years 1-9999)."""
    year, month, day = _civil_from_days(days)
    text = f"{'-' if year < 0 else ''}{abs(year):04d}-{month:02d}-{day:02d}T"
    if len(_DAY_TEXT) >= _DAY_TEXT_MAX:  # a bounded cache: start afresh (thread-safe enough: only a miss)
        _DAY_TEXT.clear()
    _DAY_TEXT[days] = text
    return text


def format_day(days: int) -> str:
    """`2026-04-30` for the UTC day `days` after 1970-01-01."""
    return _day_text(days)[:-1]


def format_us_seconds(us: int) -> str:
    """Return `us` as ISO 8601 UTC the way Pydantic writes a datetime: `2026-04-30T10:00:00Z`,
    with all six fraction digits only when there is a fraction (`...:00.123000Z`)."""
    *fields, micros = _utc_fields(us)
    return f"{_date_and_time(*fields)}.{micros:06d}Z" if micros else f"{_date_and_time(*fields)}Z"


def parse_iso8601(text: str) -> int:
    """Return the time `text` names, in microseconds since the epoch.

    Accepts a date (`2026-04-30`, midnight UTC) or a date and time separated by `T`, `t`
    or a space, with minutes or seconds, an optional fraction of 1-9 digits (cut to
    microseconds) after `.` or `,`, and an optional offset `Z`, `z`, `+02:00`, `+0200`
    or `+02`; a time without an offset is UTC. Raises ValueError for anything else,
    including impossible dates (`2026-02-30`) and times (`24:00`, `23:60`).
    """
    match = _ISO8601.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 date string: {text!r}")
    try:
        day = date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise ValueError(f"not a calendar date: {text!r}") from None
    hour = int(match["hour"] or 0)
    minute = int(match["minute"] or 0)
    second = int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not a time of day: {text!r}")
    offset_seconds = 0
    if match["sign"] is not None:
        off_hour = int(match["off_hour"])
        off_minute = int(match["off_minute"] or 0)
        if off_hour > 23 or off_minute > 59:
            raise ValueError(f"not a UTC offset: {text!r}")
        offset_seconds = (off_hour * 3600 + off_minute * 60) * (-1 if match["sign"] == "-" else 1)
    fraction = match["fraction"]
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    # Plain arithmetic instead of datetime: an offset may carry 0001-01-01T00:00+01:00
    # outside datetime's range, and the result is still a well-defined instant.
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds
    return seconds * _US_PER_SECOND + micros
