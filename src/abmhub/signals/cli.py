"""`abmhub import SOURCE FILE --workspace W`: load a vendor's CSV export as signals.

Registered by `abmhub.cli` (`app.command("import")(import_signals)`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from abmhub.command import DatabaseUrl, WorkspaceName, fail, open_database, workspace_id
from abmhub.signals.importers import (
    EXPORT_FORMATS,
    HeaderError,
    ImportInterrupted,
    ImportReport,
    import_file,
)


class ImportSource(StrEnum):
    bombora = "bombora"
    g2 = "g2"
    linkedin = "linkedin"
    website = "website"


def import_signals(
    source: Annotated[
        ImportSource,
        typer.Argument(
            help="Which export: bombora (Company Surge), g2 (buyer intent), linkedin (company "
            "engagement) or website (visits).",
            show_default=False,
        ),
    ],
    file: Annotated[
        Path,
        typer.Argument(help="The CSV file.", exists=True, dir_okay=False, readable=True, show_default=False),
    ],
    workspace: WorkspaceName,
    database_url: DatabaseUrl = None,
) -> None:
    """Import signals from a vendor's CSV export (columns and aliases: docs/importers.md).

    Streams the file in batches of 1000 signals; importing a file again skips what is stored.
    """
    export = EXPORT_FORMATS[source.value]
    database = open_database(database_url)
    owner = workspace_id(database, workspace)
    out = Console()
    progress = Progress(
        TextColumn(f"[bold]{export.title}[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("import", total=file.stat().st_size)

    def show(done: int) -> None:
        # Started on the first report, so a refused header leaves no empty bar behind.
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done)

    try:
        report = import_file(database, workspace_id=owner, export=export, path=file, progress=show)
    except HeaderError as exc:
        fail(escape(str(exc)))
    except ImportInterrupted as exc:
        progress.stop()
        print_report(out, exc.report)
        fail(
            f"{escape(str(exc))} — the batches before it are stored; run the same command again "
            "to resume (signals already imported are skipped)"
        )
    finally:
        progress.stop()
        database.dispose()
    print_report(out, report)


def print_report(console: Console, report: ImportReport) -> None:
    """The summary table, then the first failures with their line numbers."""
    summary = Table(title="Import summary", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("rows read", f"{report.rows:,}")
    summary.add_row("signals created", f"{report.created:,}")
    summary.add_row("signals skipped (already imported)", f"{report.skipped:,}")
    summary.add_row("rows failed", f"{report.rows_failed:,}")
    if report.rows_without_signals:
        summary.add_row("rows with nothing to import", f"{report.rows_without_signals:,}")
    summary.add_row("elapsed", f"{report.elapsed:.1f} s")
    summary.add_row("rows/s", f"{report.rows_per_second:,.0f}")
    console.print(summary)
    if report.failures:
        failures = Table("line", "reason", title="Rows not imported")
        for failure in report.failures:
            failures.add_row(str(failure.line), Text(failure.reason))
        console.print(failures)
        hidden = report.rows_failed - len(report.failures)
        if hidden > 0:
            console.print(
                f"… and {hidden:,} more rows not imported (only the first {len(report.failures)} are listed)."
            )
