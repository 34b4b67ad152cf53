"""Import intent signals from vendors' CSV exports (contract §3.1; docs/importers.md).

One streaming pass over the file with the `csv` module: rows become signals, and every
1000 signals go to `push_signals` in one transaction, so memory stays constant however big
the file is, and a failure part-way leaves whole batches behind. Each signal carries an
externalSignalId derived from its own content, so importing a file again skips what is
already stored: an interrupted import is resumed by running it again.

Exports differ in their column names; each format lists the names it accepts for each
column, compared without regard to case, spaces or punctuation (`Company Domain`,
`company_domain` and `COMPANY-DOMAIN` are one name). A row that cannot be imported (a
missing value, a bad date or number, an invalid domain) is reported with its line number
and the import goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text

from abmhub.accounts.domains import normalize_domain
from abmhub.db.engine import Database
from abmhub.signals.schemas import MAX_SIGNALS_PER_PUSH, SignalItem
from abmhub.signals.service import occurred_day, push_signals
from abmhub.timefmt import format_us, parse_iso8601
from abmhub.web.validation import validation_issues

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "HeaderError",
    "ImportInterrupted",
    "ImportReport",
    "RowFailure",
    "import_file",
    "parse_export_date",
]

BATCH_SIZE = MAX_SIGNALS_PER_PUSH
MAX_REPORTED_FAILURES = 50
# The header is the first row (of this many) that has the format's required columns; the
# rows above it are a report preamble (LinkedIn puts a title and the date range there).
HEADER_SEARCH_ROWS = 20
PROGRESS_EVERY_ROWS = 1000
_SAMPLE_BYTES = 64 * 1024
_DELIMITERS = (",", ";", "\t")
_ENCODING = "utf-8-sig"  # Excel's "CSV UTF-8" starts with a byte-order mark


class RowFailure(Exception):
    """A row that cannot become signals; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HeaderError(Exception):
    """The file is not an export of the expected kind: nothing was imported."""


# --- column names ------------------------------------------------------------------------


def column_key(name: str) -> str:
    """A column name compared without case, spaces or punctuation: `Company_Domain` → `company domain`."""
    return re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()


@dataclass(frozen=True, slots=True)
class Column:
    role: str
    aliases: tuple[str, ...]  # preferred first; the first one is the name messages use

    @property
    def label(self) -> str:
        return self.aliases[0]


class Row:
    """One data row, read through the format's columns."""

    __slots__ = ("cells", "header")

    def __init__(self, cells: list[str], header: Header) -> None:
        self.cells = cells
        self.header = header

    def get(self, role: str) -> str:
        index = self.header.index.get(role)
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index].strip()

    def require(self, role: str) -> str:
        value = self.get(role)
        if not value:
            raise RowFailure(f"missing {self.header.names[role]}{self._company()}")
        return value

    def domain(self) -> str:
        raw = self.require("domain")
        domain = normalize_domain(raw)
        if domain is None:
            raise RowFailure(f"Invalid domain '{raw}'{self._company()}")
        return domain

    def occurred_us(self, role: str = "date") -> int:
        raw = self.require(role)
        try:
            return parse_export_date(raw)
        except ValueError:
            raise RowFailure(
                f"bad date '{raw}' in {self.header.names[role]} "
                "(expected ISO 8601, MM/DD/YYYY or YYYY/MM/DD, optionally with a time)"
            ) from None

    def number(self, role: str) -> int | float:
        raw = self.require(role)
        try:
            return parse_number(raw)
        except ValueError:
            raise RowFailure(f"{self.header.names[role]} is not a number: '{raw}'") from None

    def _company(self) -> str:
        company = self.get("company")
        return f" (company '{company}')" if company else ""


@dataclass(frozen=True, slots=True)
class Header:
    """Where each column of the format is in the file, and the file's own name for it."""

    index: dict[str, int]
    names: dict[str, str]


# --- the formats -------------------------------------------------------------------------

# What one row gives: (type, extra signal fields), then the common fields are added.
RowSignals = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str  # as the CLI names it
    title: str
    source: str  # the signals' source
    columns: tuple[Column, ...]
    required: tuple[str, ...]  # roles that must all be in the header
    any_of: tuple[str, ...]  # roles of which at least one must be in the header
    signals_of: Callable[[Row], RowSignals]
    # Roles whose value tells two otherwise identical rows apart (a visit id).
    identity: tuple[str, ...] = ()

    def find_header(self, cells: list[str]) -> Header | None:
        """The header, if `cells` has every required column (and one of `any_of`)."""
        positions: dict[str, int] = {}
        for index, cell in enumerate(cells):
            positions.setdefault(column_key(cell), index)
        found: dict[str, int] = {}
        names: dict[str, str] = {}
        for column in self.columns:
            names[column.role] = column.label
            for alias in column.aliases:
                if alias in positions:
                    found[column.role] = positions[alias]
                    names[column.role] = cells[positions[alias]].strip()
                    break
        if any(role not in found for role in self.required):
            return None
        if self.any_of and not any(role in found for role in self.any_of):
            return None
        return Header(found, names)

    def expected_columns(self) -> str:
        def describe(role: str) -> str:
            column = next(c for c in self.columns if c.role == role)
            return " / ".join(_title(alias) for alias in column.aliases)

        parts = [describe(role) for role in self.required]
        if self.any_of:
            parts.append("at least one of: " + "; ".join(describe(role) for role in self.any_of))
        return "; ".join(parts)


def _title(alias: str) -> str:
    return " ".join(word.capitalize() for word in alias.split())


COMPANY = Column("company", ("company name", "company", "account name", "organization name"))


def _bombora_signals(row: Row) -> RowSignals:
    score = row.number("score")
    if not 0 <= score <= 100:
        raise RowFailure(f"{row.header.names['score']} must be between 0 and 100, got '{row.get('score')}'")
    return [("surge", {"topic": row.require("topic"), "score": score})]


# G2 activity wording → signal type; the first pattern that matches wins, so "Compared
# profiles" is a comparison and "Viewed pricing page" a pricing view.
_G2_ACTIVITIES = (
    (re.compile(r"\bpricing\b"), "pricing_view"),
    (re.compile(r"\b(?:compar\w*|compet\w*|alternatives?|vs)\b"), "comparison"),
    (re.compile(r"\bcategor(?:y|ies)\b"), "category_view"),
    (re.compile(r"\b(?:profiles?|reviews?)\b"), "profile_view"),
)


def g2_signal_type(activity: str) -> str | None:
    """The g2 signal type of an activity as G2 exports word it, or None if it is none of them."""
    words = re.sub(r"[^0-9a-z]+", " ", activity.lower())
    for pattern, signal_type in _G2_ACTIVITIES:
        if pattern.search(words):
            return signal_type
    return None


def _g2_signals(row: Row) -> RowSignals:
    activity = row.require("activity")
    signal_type = g2_signal_type(activity)
    if signal_type is None:
        raise RowFailure(
            f"unknown G2 activity '{activity}' in {row.header.names['activity']} "
            "(expected a profile, comparison, pricing or category activity)"
        )
    return [(signal_type, {})]


_LINKEDIN_COUNTS = (("impressions", "impression"), ("clicks", "click"), ("engagements", "engagement"))


def _linkedin_signals(row: Row) -> RowSignals:
    found: RowSignals = []
    for role, signal_type in _LINKEDIN_COUNTS:
        if not row.get(role):
            continue
        count = row.number(role)
        name = row.header.names[role]
        if count < 0 or not float(count).is_integer():
            raise RowFailure(f"{name} must be a whole number of at least 0, got '{row.get(role)}'")
        if count:
            found.append((signal_type, {"count": int(count)}))
    return found


def _website_signals(row: Row) -> RowSignals:
    url = row.get("url")
    return [("page_view", {"url": url} if url else {})]


DOMAIN_ALIASES = ("domain", "company domain", "website", "company website")

EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            name="bombora",
            title="Bombora Company Surge",
            source="bombora",
            columns=(
                Column("domain", DOMAIN_ALIASES),
                Column("topic", ("topic name", "topic", "intent topic")),
                Column("score", ("composite score", "score", "surge score", "intent score", "topic score")),
                Column(
                    "date", ("date", "week", "week of", "week start", "week start date", "surge date", "report date")
                ),
                COMPANY,
            ),
            required=("domain", "topic", "score", "date"),
            any_of=(),
            signals_of=_bombora_signals,
        ),
        ExportFormat(
            name="g2",
            title="G2 buyer intent",
            source="g2",
            columns=(
                Column("domain", ("company domain", "domain", "website", "company website", "organization domain")),
                Column(
                    "activity",
                    (
                        "activity",
                        "activity type",
                        "signal",
                        "intent signal",
                        "signal type",
                        "page type",
                        "buyer activity",
                    ),
                ),
                Column(
                    "date",
                    ("date", "activity date", "last seen", "last activity", "last activity date", "timestamp"),
                ),
                COMPANY,
            ),
            required=("domain", "activity", "date"),
            any_of=(),
            signals_of=_g2_signals,
        ),
        ExportFormat(
            name="linkedin",
            title="LinkedIn company engagement",
            source="linkedin_ads",
            columns=(
                Column("domain", ("company website", "domain", "company domain", "website")),
                Column("impressions", ("impressions", "paid impressions", "total impressions", "ad impressions")),
                Column("clicks", ("clicks", "paid clicks", "total clicks", "ad clicks")),
                Column("engagements", ("engagements", "paid engagements", "total engagements", "ad engagements")),
                Column(
                    "date",
                    (
                        "date",
                        "day",
                        "start date",
                        "date utc",
                        "start date utc",
                        "start date in utc",
                        "report start date",
                    ),
                ),
                COMPANY,
            ),
            required=("domain", "date"),
            any_of=("impressions", "clicks", "engagements"),
            signals_of=_linkedin_signals,
        ),
        ExportFormat(
            name="website",
            title="website visits",
            source="website",
            columns=(
                Column("domain", ("domain", "company domain", "company website", "website")),
                Column("url", ("url", "page url", "page", "page path", "landing page")),
                Column(
                    "date",
                    ("timestamp", "visited at", "visit time", "date", "visit date", "time", "event time"),
                ),
                Column("visit", ("visit id", "session id", "visitor id", "event id")),
                COMPANY,
            ),
            required=("domain", "date"),
            any_of=(),
            signals_of=_website_signals,
            identity=("visit",),
        ),
    )
}


# --- values ------------------------------------------------------------------------------

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TIME = r"(?:[ T]+(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?\s*(?P<ampm>[AaPp][Mm])?)?"
_MDY = re.compile(r"(?P<month>[0-9]{1,2})/(?P<day>[0-9]{1,2})/(?P<year>[0-9]{4})" + _TIME)
_YMD = re.compile(r"(?P<year>[0-9]{4})/(?P<month>[0-9]{1,2})/(?P<day>[0-9]{1,2})" + _TIME)
_UTC_SUFFIX = re.compile(r"\s+(?:UTC|GMT)\Z", re.IGNORECASE)


def parse_export_date(text: str) -> int:
    """The time a date cell names, in µs since the epoch; a time without an offset is UTC.

    Accepts ISO 8601 (`2026-04-30`, `2026-04-30 10:00:00`, `2026-04-30T10:00:00Z`, ...),
    US-style `04/30/2026` or `4/30/2026 10:00 AM` (always month first: the vendors are
    American, and guessing per row would read one file two ways), and `2026/04/30`; a
    trailing ` UTC` or ` GMT` is allowed. Raises ValueError otherwise.
    """
    text = _UTC_SUFFIX.sub("", text.strip())
    try:
        return parse_iso8601(text)
    except ValueError:
        pass
    match = _MDY.fullmatch(text) or _YMD.fullmatch(text)
    if match is None:
        raise ValueError(f"not a date: {text!r}")
    day = date(int(match["year"]), int(match["month"]), int(match["day"]))  # ValueError if impossible
    hour, minute, second = int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0)
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise ValueError(f"not a 12-hour time: {text!r}")
        hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not a time of day: {text!r}")
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second
    return seconds * 1_000_000


_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")


def parse_number(text: str) -> int | float:
    """A number cell (`72`, `72.0`, `1,234`): whole numbers as int. Raises ValueError."""
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(f"not a number: {text!r}")
    value = float(text.replace(",", ""))
    return int(value) if value.is_integer() else value


def external_signal_id(source: str, day: int, parts: tuple[Any, ...]) -> str:
    """`<source>:<day>:<sha1>` of a signal's normalised content: the same row gives the same id.

    The UTC day (days since 1970-01-01) in front keeps one batch's ids close together in
    the unique index when the export is in date order, as exports are: a batch then
    touches a few index pages instead of one per signal (about twice the import speed).
    """
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()
    return f"{source}:{day}:{digest}"


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# --- the import --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedRow:
    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did. Only the first `MAX_REPORTED_FAILURES` failures are kept."""

    source: str
    rows: int = 0  # data rows read (blank lines not counted)
    rows_failed: int = 0
    rows_without_signals: int = 0  # e.g. a LinkedIn row whose counts are all 0
    created: int = 0
    skipped: int = 0
    batches: int = 0
    bytes_read: int = 0
    elapsed: float = 0.0
    failures: list[FailedRow] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    def fail(self, line: int, reason: str) -> None:
        self.rows_failed += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(FailedRow(line, reason))


class ImportInterrupted(Exception):
    """The import stopped part-way (e.g. the database went away); `report` says how far it got.

    The batches before the failure are stored; running the import again skips them.
    """

    def __init__(self, report: ImportReport, line: int, cause: BaseException) -> None:
        super().__init__(f"import stopped at line {line}: {cause}")
        self.report = report
        self.line = line
        self.cause = cause


Progress = Callable[[int], None]  # called with the bytes read so far


def import_file(
    db: Database,
    *,
    workspace_id: int,
    export: ExportFormat,
    path: Path,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import one export file into a workspace, streaming; see the module docstring.

    Raises HeaderError (nothing imported) when no header with the format's required
    columns is found, and ImportInterrupted when the database fails part-way.
    """
    started = time.monotonic()
    report = ImportReport(source=export.source)
    delimiter = _detect_delimiter(path, export)
    pending: list[SignalItem] = []
    lines: list[int] = []  # the line of each pending signal
    line = 0
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=_ENCODING, errors="replace", newline="") as text:
        rows = _rows(text, delimiter)
        header = _find_header(rows, export)
        if header is None:  # the sample had it, so the file changed under us
            raise HeaderError(f"{path}: no header found")
        try:
            for line, cells in rows:
                if isinstance(cells, Unreadable):
                    report.rows += 1
                    report.fail(line, f"unreadable CSV row: {cells.why}")
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                report.rows += 1
                if progress is not None and report.rows % PROGRESS_EVERY_ROWS == 0:
                    progress(raw.tell())
                try:
                    items = _signals_of(export, Row(cells, header))
                except RowFailure as failure:
                    report.fail(line, failure.reason)
                    continue
                if not items:
                    report.rows_without_signals += 1
                    continue
                if len(pending) + len(items) > batch_size:
                    _flush(db, workspace_id, pending, lines, report)
                pending.extend(items)
                lines.extend([line] * len(items))
            _flush(db, workspace_id, pending, lines, report)
        except Exception as exc:
            report.elapsed = time.monotonic() - started
            report.bytes_read = raw.tell()
            raise ImportInterrupted(report, line, exc) from exc
        report.bytes_read = raw.tell()
    if progress is not None:
        progress(report.bytes_read)
    report.elapsed = time.monotonic() - started
    return report


def _rows(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str] | Unreadable]]:
    """(line where the row starts, its cells) of each CSV row."""
    reader = csv.reader(text, delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # e.g. a field over csv.field_size_limit(); the reader resumes on the next line.
            yield start, Unreadable(str(exc))
            continue
        yield start, cells


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A row the csv module could not parse."""

    why: str


def _find_header(rows: Iterator[tuple[int, list[str] | Unreadable]], export: ExportFormat) -> Header | None:
    for _, (_line, cells) in zip(range(HEADER_SEARCH_ROWS), rows, strict=False):
        if isinstance(cells, list) and (found := export.find_header(cells)) is not None:
            return found
    return None


def _detect_delimiter(path: Path, export: ExportFormat) -> str:
    """The delimiter under which the start of the file has the format's header."""
    with path.open("rb") as raw:
        head = raw.read(_SAMPLE_BYTES)
    sample = head.decode(_ENCODING, errors="replace")
    if not sample.strip():
        raise HeaderError(f"{path} is empty")
    if len(head) == _SAMPLE_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # whole lines only
    first: list[str] = []
    for delimiter in _DELIMITERS:
        rows = _rows(io.StringIO(sample, newline=""), delimiter)
        if _find_header(rows, export) is not None:
            return delimiter
        rows = _rows(io.StringIO(sample, newline=""), delimiter)
        cells = next((c for _, c in rows if isinstance(c, list) and any(c)), [])
        if len(cells) > len(first):
            first = cells
    found = ", ".join(cell.strip() for cell in first if cell.strip()) or "nothing"
    raise HeaderError(
        f"{path} does not look like a {export.title} export: no header with the required columns "
        f"in its first {HEADER_SEARCH_ROWS} rows. Expected columns: {export.expected_columns()}. "
        f"Found: {found}."
    )


def _signals_of(export: ExportFormat, row: Row) -> list[SignalItem]:
    # The row's own values first: a row with nothing to import (all counts 0) is not a
    # failure even when it lacks a domain, as LinkedIn's rows for unknown companies do.
    found = export.signals_of(row)
    if not found:
        return []
    domain = row.domain()
    occurred_us = row.occurred_us()
    identity = tuple(row.get(role) for role in export.identity)
    items = []
    for signal_type, extra in found:
        parts = (
            export.source,
            signal_type,
            domain,
            occurred_us,
            extra.get("url", ""),
            _fold(extra.get("topic", "")),
            extra.get("score", ""),
            extra.get("count", ""),
            *identity,
        )
        document = {
            "source": export.source,
            "type": signal_type,
            "domain": domain,
            "occurredAt": format_us(occurred_us),
            "externalSignalId": external_signal_id(export.source, occurred_day(occurred_us), parts),
            **extra,
        }
        try:
            items.append(SignalItem.model_validate(document))
        except ValidationError as exc:  # a rule of the intake the format's checks did not catch
            reasons = [text for issue in validation_issues(exc) for text in issue["constraints"].values()]
            raise RowFailure("; ".join(reasons)) from None
    return items


def _flush(db: Database, workspace_id: int, pending: list[SignalItem], lines: list[int], report: ImportReport) -> None:
    """Push the pending signals in one transaction and account for their results."""
    if not pending:
        return
    outcome = push_signals(db, workspace_id=workspace_id, items=pending)
    report.batches += 1
    if report.batches in _REFRESH_STATISTICS_AFTER:
        _refresh_statistics(db)
    report.created += outcome.summary["created"]
    report.skipped += outcome.summary["skipped"]
    failed_lines: dict[int, str] = {}
    for line, result in zip(lines, outcome.results, strict=True):
        if result["status"] == "failed":
            failed_lines.setdefault(line, result["error"])
    for line, reason in failed_lines.items():
        report.fail(line, reason)
    pending.clear()
    lines.clear()


# After these batches (the table grows 4× between two of them) PostgreSQL's statistics of
# the signals table are refreshed; see `_refresh_statistics`.
_REFRESH_STATISTICS_AFTER = frozenset(4**n for n in range(7))


def _refresh_statistics(db: Database) -> None:
    """Let PostgreSQL's planner see how the signals table grew.

    A big import outgrows the statistics within seconds, long before autovacuum's next
    ANALYZE; planned from stale ones, the lookup of known externalSignalIds scans every
    signal of the workspace instead of using the unique index, and each batch gets slower
    than the last (measured: 200,000 signals took 90 s instead of 25). SQLite needs nothing:
    its planner prefers the unique index for that lookup anyway.
    """
    if db.is_sqlite:
        return
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE signals"))
        conn.commit()
