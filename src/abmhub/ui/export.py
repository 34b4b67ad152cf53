"""The accounts list as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

HEADER = (
    "rtp_aid",
    "name",
    "domain",
    "journey_stage",
    "account_score",
    "score_change_7d",
    "advertising_score",
    "website_score",
    "g2_score",
    "bombora_score",
    "tags",
)
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (tab and carriage return too, which some of them skip before looking).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as it is: a would-be formula gets a leading apostrophe."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def account_cells(row: Any) -> list[str | int]:
    """One CSV line of an account (a row of `accounts.service.SUMMARY_COLUMNS`)."""
    return [
        row.rtp_aid,
        neutralise(row.name),
        neutralise(row.domain),
        row.journey_stage,
        row.account_score,
        row.score_change,
        row.advertising_score,
        row.website_score,
        row.g2_score,
        row.bombora_score,
        neutralise("; ".join(row.tags or [])),
    ]


def accounts_csv(rows: Iterable[Any], *, lines_per_chunk: int = 200) -> Iterator[str]:
    """The CSV text of `rows`, header first, in chunks (a response streams it as it is read)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    pending = 1
    for row in rows:
        writer.writerow(account_cells(row))
        pending += 1
        if pending >= lines_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
