"""`abmhub sync push|pull`: files in and out of an abmhub (or Recotap) API, over the SDK.

Registered by `abmhub.cli` (`app.add_typer(sync_app, name="sync")`). Unlike the other
commands it never opens a database: it talks HTTP to `--base-url` with `--api-key`, so it
works against any server, local or hosted.

Both directions stream: a push reads one chunk of rows at a time, a pull writes each page
as it arrives, so memory stays flat however large the file or the workspace.
"""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from abmhub.client import bulk
from abmhub.client.bulk import BulkEndpoint
from abmhub.client.delta import CallbackState, StateFile
from abmhub.client.errors import ClientError, NotFound, Unauthorized
from abmhub.client.files import (
    CellTypes,
    FileProblem,
    RecordWriter,
    RowReader,
    model_fields,
    parse_mapping,
)
from abmhub.client.models import Account, Deal, ItemResult, SalesActivity
from abmhub.client.recotap import RecotapClient, Resource
from abmhub.client.transport import DEFAULT_TIMEOUT, RetryPolicy

sync_app = typer.Typer(
    help="Push CSV / JSON Lines files to an abmhub (or Recotap) API and pull records back with delta sync.",
    no_args_is_help=True,
)

SHOWN_FAILURES = 20
READ_AHEAD_CHUNKS = 2
EXIT_FAILURES = 1


class PushKind(StrEnum):
    accounts = "accounts"
    deals = "deals"
    activities = "activities"
    signals = "signals"


class PullKind(StrEnum):
    accounts = "accounts"
    deals = "deals"
    activities = "activities"


@dataclass(frozen=True, slots=True)
class PushTarget:
    method: str  # RecotapClient.iter_push_<method>
    endpoint: BulkEndpoint[Any]
    statuses: tuple[str, ...]  # the summary's rows, as the endpoint counts them
    identity: tuple[str, ...]  # result fields that name an item in the failure list


PUSH_TARGETS = {
    PushKind.accounts: PushTarget(
        "accounts", bulk.ACCOUNTS, ("created", "updated", "failed"), ("domain", "externalId")
    ),
    PushKind.deals: PushTarget("deals", bulk.DEALS, ("upserted", "failed"), ("externalDealId",)),
    PushKind.activities: PushTarget(
        "sales_activities", bulk.SALES_ACTIVITIES, ("created", "skipped", "failed"), ("externalActivityId",)
    ),
    PushKind.signals: PushTarget(
        "signals", bulk.SIGNALS, ("created", "skipped", "failed"), ("externalSignalId", "domain")
    ),
}
# Top-level fields whose CSV cell may hold a whole JSON object or list.
OBJECT_FIELDS = frozenset({"customFields", "associatedAccounts", "stageHistory", "contacts", "from"})

PULL_TARGETS: dict[PullKind, tuple[Resource, type[BaseModel]]] = {
    PullKind.accounts: ("accounts", Account),
    PullKind.deals: ("deals", Deal),
    PullKind.activities: ("sales-activities", SalesActivity),
}

BaseUrl = Annotated[
    str,
    typer.Option(
        "--base-url",
        envvar="ABMHUB_BASE_URL",
        help="The server, e.g. http://127.0.0.1:8000 (or its /api/v1). Env: ABMHUB_BASE_URL.",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar="ABMHUB_API_KEY",
        help="The API key. Prefer the environment variable ABMHUB_API_KEY: options show in process lists.",
        show_default=False,
        show_envvar=False,
    ),
]
Timeout = Annotated[float, typer.Option(help="Seconds per request.")]
Retries = Annotated[int, typer.Option(help="Retries of a request after 429, 5xx or a connection failure.")]


def _fail(console: Console, message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _client(base_url: str, api_key: str, timeout: float, retries: int, err: Console) -> RecotapClient:
    if retries < 0:
        _fail(err, "--retries cannot be negative", 2)
    try:
        return RecotapClient(base_url, api_key, timeout=timeout, retry=RetryPolicy(attempts=retries + 1))
    except ValueError as exc:
        _fail(err, str(exc), 2)
        raise AssertionError from exc  # unreachable


def _custom_field_types(client: RecotapClient, err: Console) -> dict[str, str]:
    """Custom-field types for typing CSV cells; checks the key and base URL on the way."""
    try:
        return {f.key: f.labelType for f in client.custom_fields()}
    except (Unauthorized, NotFound) as exc:
        _fail(err, str(exc))
    except ClientError:  # a server without this lookup: values stay text
        pass
    return {}


# --- push -----------------------------------------------------------------------------------------


@dataclass
class PushTally:
    """Counts and failures of a push, kept in constant memory (the failure file is streamed)."""

    target: PushTarget
    failures_out: TextIO | None
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    failed_requests: int = 0
    shown: list[tuple[int, str, str]] = field(default_factory=list)
    failed: int = 0
    _writer: Any = None

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(self.target.statuses, 0)
        if self.failures_out is not None:
            self._writer = csv.writer(self.failures_out)
            self._writer.writerow(["line", "item", "error"])

    def _failure(self, line: int, item: str, error: str) -> None:
        self.failed += 1
        if len(self.shown) < SHOWN_FAILURES:
            self.shown.append((line, item, error))
        if self._writer is not None:
            self._writer.writerow([line, item, error])

    def unreadable(self, line: int, problem: str) -> None:
        self.rows += 1
        self.counts["failed"] = self.counts.get("failed", 0) + 1
        self._failure(line, "", f"not sent: {problem}")

    def result(self, line: int, result: ItemResult) -> None:
        self.rows += 1
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if result.status == "failed":
            names = [str(getattr(result, n)) for n in self.target.identity if getattr(result, n, None)]
            self._failure(line, " ".join(names), result.error or "failed")

    def progress_text(self) -> str:
        return ", ".join(f"{n:,} {status}" for status, n in self.counts.items())


def push(
    kind: Annotated[PushKind, typer.Argument(help="What the file holds.", show_default=False)],
    file: Annotated[
        Path,
        typer.Argument(
            help="A .csv (or .tsv) file with a header, or a .jsonl file with one JSON object per line.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    base_url: BaseUrl,
    api_key: ApiKey,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="SRC=DEST: read column SRC as field DEST (dotted for nested: customFields.KEY, "
            "contacts.0.email); SRC= drops a column. Repeat for more.",
            show_default=False,
        ),
    ] = None,
    upsert: Annotated[bool, typer.Option(help="accounts: update accounts whose domain exists.")] = False,
    segment_id: Annotated[
        str | None, typer.Option(help="accounts: add the stored accounts to this static segment.", show_default=False)
    ] = None,
    failures: Annotated[
        Path | None,
        typer.Option(
            help="Write every failed row (line, item, error) to this CSV file.", show_default=False, dir_okay=False
        ),
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Items per request (default: the endpoint's limit).", show_default=False)
    ] = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    retries: Retries = 4,
) -> None:
    """Push a file of accounts, deals, activities (calls and emails) or signals, chunked to the API's limits.

    Prints a summary; failed rows are listed with their line numbers (all of them with
    --failures). Exit status 1 when any row failed.
    """
    out, err = Console(), Console(stderr=True)
    target = PUSH_TARGETS[kind]
    if kind is not PushKind.accounts and (upsert or segment_id):
        _fail(err, "--upsert and --segment-id are for accounts", 2)
    try:
        renames = parse_mapping(mapping or [])
        bulk.chunk_size_for(target.endpoint, chunk_size)
    except ValueError as exc:
        _fail(err, str(exc), 2)
    client = _client(base_url, api_key, timeout, retries, err)
    with client:
        custom_types = _custom_field_types(client, err) if kind is PushKind.accounts else {}
        try:
            reader = RowReader(
                file,
                fields=model_fields(target.endpoint.item_model),
                types=CellTypes(OBJECT_FIELDS, custom_types),
                mapping=renames,
            )
        except FileProblem as exc:
            _fail(err, str(exc), 2)
        failures_out = failures.open("w", newline="", encoding="utf-8") if failures else None
        tally = PushTally(target, failures_out)
        started = time.perf_counter()
        problem: str | None = None
        try:
            _run_push(client, kind, target, reader, tally, upsert, segment_id, chunk_size)
        except ClientError as exc:
            problem = f"{exc} — stopped; the rows before it were sent"
        except FileProblem as exc:
            problem = str(exc)
        except KeyboardInterrupt:
            problem = "interrupted; the rows before it were sent"
        finally:
            if failures_out is not None:
                failures_out.close()
        elapsed = time.perf_counter() - started
    _print_push_summary(out, err, kind, file, tally, reader, elapsed, failures)
    if problem is not None:
        _fail(err, problem)
    if tally.failed:
        raise typer.Exit(EXIT_FAILURES)


def _run_push(
    client: RecotapClient,
    kind: PushKind,
    target: PushTarget,
    reader: RowReader,
    tally: PushTally,
    upsert: bool,
    segment_id: str | None,
    chunk_size: int | None,
) -> None:
    # Rows read and not yet reported, in file order: (line, None) for a row that was sent,
    # (line, problem) for one that could not be; reporting in this order keeps the
    # failure list sorted by line.
    pending: deque[tuple[int, str | None]] = deque()

    def items() -> Iterator[dict[str, Any]]:
        for row in reader:
            if row.item is None:
                pending.append((row.line, row.problem or "unreadable"))
                continue
            pending.append((row.line, None))
            yield row.item

    def report(results: list[ItemResult] | None) -> None:
        answers = iter(results or ())
        while pending:
            line, problem = pending[0]
            if problem is not None:
                pending.popleft()
                tally.unreadable(line, problem)
                continue
            result = next(answers, None)
            if result is None:
                return
            pending.popleft()
            tally.result(line, result)

    # Reading and checking the next chunks overlaps with the request in flight; `items`
    # then runs in the read-ahead thread (the deque is safe to share, and only this
    # thread reports).
    options: dict[str, Any] = {"chunk_size": chunk_size, "read_ahead": READ_AHEAD_CHUNKS}
    if kind is PushKind.accounts:
        options.update(upsert=upsert, segment_id=segment_id)
    outcomes = getattr(client, f"iter_push_{target.method}")(items(), **options)
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]push {kind.value}[/bold]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task("push", total=max(reader.size, 1), counts="")
    with progress:
        for outcome in outcomes:
            report(outcome.results)
            if outcome.error is not None:
                tally.failed_requests += 1
            progress.update(task, completed=reader.bytes_read, counts=tally.progress_text())
        report(None)  # unreadable rows after the last one sent
        progress.update(task, completed=max(reader.size, 1), counts=tally.progress_text())


def _print_push_summary(
    out: Console,
    err: Console,
    kind: PushKind,
    file: Path,
    tally: PushTally,
    reader: RowReader,
    elapsed: float,
    failures: Path | None,
) -> None:
    table = Table(title=f"sync push {kind.value}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("file", Text(file.name))
    table.add_row("rows read", f"{tally.rows:,}")
    for status, count in tally.counts.items():
        table.add_row(status, f"{count:,}")
    if tally.failed_requests:
        table.add_row("requests failed (their rows counted as failed)", f"{tally.failed_requests:,}")
    table.add_row("elapsed", f"{elapsed:.1f} s")
    table.add_row("rows/s", f"{tally.rows / elapsed:,.0f}" if elapsed > 0 else "-")
    out.print(table)
    if reader.ignored:
        names = ", ".join(reader.ignored)
        err.print(
            Text(f"ignored (not a field of {kind.value}; use --map COLUMN=FIELD): {names}", style="yellow"),
        )
    if tally.shown:
        listing = Table("line", "item", "error", title="Failed rows")
        for line, item, error in tally.shown:
            listing.add_row(str(line), Text(item), Text(error))
        err.print(listing)
        hidden = tally.failed - len(tally.shown)
        if hidden > 0:
            more = f" (all of them are in {failures})" if failures else " (--failures FILE lists them all)"
            err.print(f"… and {hidden:,} more failed rows{more}", highlight=False)


# --- pull -----------------------------------------------------------------------------------------


def pull(
    kind: Annotated[PullKind, typer.Argument(help="What to pull.", show_default=False)],
    state: Annotated[
        Path,
        typer.Option(
            help="Delta-sync state file (JSON). The first run (no state yet) pulls everything; "
            "later runs only what changed since the last complete run.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file, .csv or .jsonl; replaced when the pull completes.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    base_url: BaseUrl,
    api_key: ApiKey,
    full: Annotated[
        bool, typer.Option(help="Pull everything, whatever the state says (the state is then updated).")
    ] = False,
    limit: Annotated[int, typer.Option(help="Records per page, 1–1000.")] = 1000,
    timeout: Timeout = DEFAULT_TIMEOUT,
    retries: Retries = 4,
) -> None:
    """Pull records (delta sync) into a CSV or JSON Lines file.

    The output file is written as pages arrive, under a temporary name, and renamed into
    place when the pass is complete; only then is the state file updated. An interrupted
    pull changes neither: run it again.
    """
    out_console, err = Console(), Console(stderr=True)
    resource, model = PULL_TARGETS[kind]
    client = _client(base_url, api_key, timeout, retries, err)
    store = StateFile(state, name=resource)
    try:
        store.load()
    except ValueError as exc:
        _fail(err, str(exc), 2)
    with client:
        custom = list(_custom_field_types(client, err)) if kind is PullKind.accounts else []
        try:
            writer = RecordWriter(
                out, columns=[f.alias or name for name, f in model.model_fields.items()], custom_fields=custom
            )
        except FileProblem as exc:
            _fail(err, str(exc), 2)
        started = time.perf_counter()

        def save(sync_timestamp: str) -> None:
            writer.commit()  # the output first: a state never runs ahead of the data
            store.records = writer.written
            store.save(sync_timestamp)

        try:
            pass_ = client.delta_sync(resource, state=CallbackState(store.load, save), full=full, limit=limit)
        except ValueError as exc:
            _fail(err, str(exc), 2)
        progress = Progress(
            SpinnerColumn(),
            TextColumn(f"[bold]pull {kind.value}[/bold]"),
            TextColumn("{task.completed:,} records, {task.fields[pages]:,} pages"),
            TimeElapsedColumn(),
            console=err,
        )
        task = progress.add_task("pull", total=None, pages=0)
        problem = None
        with writer, progress:
            try:
                for page in pass_.pages():
                    for record in page.items:
                        writer.write(record)
                    progress.update(task, completed=writer.written, pages=pass_.pages_read)
                writer.commit()
            except ClientError as exc:
                problem = f"{exc} — nothing written; the state is unchanged"
            except KeyboardInterrupt:
                problem = "interrupted — nothing written; the state is unchanged"
        elapsed = time.perf_counter() - started
    if problem is not None:
        _fail(err, problem)
    table = Table(title=f"sync pull {kind.value}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("output", Text(str(out)))
    table.add_row("pass", "full" if pass_.last_sync is None else f"changes since {pass_.last_sync}")
    table.add_row("records written", f"{writer.written:,}")
    table.add_row("pages", f"{pass_.pages_read:,}")
    table.add_row("syncTimestamp saved", pass_.sync_timestamp or "(none sent; state unchanged)")
    table.add_row("elapsed", f"{elapsed:.1f} s")
    table.add_row("records/s", f"{writer.written / elapsed:,.0f}" if elapsed > 0 else "-")
    out_console.print(table)


sync_app.command("push")(push)
sync_app.command("pull")(pull)
