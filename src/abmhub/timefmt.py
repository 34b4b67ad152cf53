"""Times on the wire and in storage.

abmhub stores every time as an integer number of microseconds since the Unix epoch
(UTC). On the wire times are ISO 8601: written as `2026-04-30T10:00:00.000Z`
(contract §6 item 15) and read in the forms class-validator's `isISO8601` accepts in
practice (§6 item 29).
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone

__all__ = ["format_us", "now_us", "parse_iso8601", "truncate_to_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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


def format_us(us: int) -> str:
    """Return `us` as ISO 8601 UTC with milliseconds and `Z`: `2026-04-30T10:00:00.000Z`.

    Sub-millisecond digits are truncated, not rounded, so a formatted time never lies
    after the stored one (a client using it as `lastSync` would skip that record).
    """
    moment = _EPOCH + timedelta(microseconds=us)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        f".{moment.microsecond // 1000:03d}Z"
    )


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
    seconds = (
        (day.toordinal() - _EPOCH_ORDINAL) * 86_400
        + hour * 3600
        + minute * 60
        + second
        - offset_seconds
    )
    return seconds * _US_PER_SECOND + micros
