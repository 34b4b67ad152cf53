"""`abmhub seed --workspace W --accounts N --seed S`: a sandbox data set to integrate against.

Registered by `abmhub.cli` (`app.command("seed")(seed_sandbox)`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from abmhub.command import DatabaseUrl, err, fail, open_database, out
from abmhub.sandbox.data import DAYS
from abmhub.sandbox.seed import seed_workspace


def seed_sandbox(
    workspace: Annotated[
        str, typer.Option(help="Workspace to fill (created if it does not exist).", show_default=False)
    ],
    accounts: Annotated[int, typer.Option(help="How many accounts.", min=0)] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed (and day) gives the same data.")] = 1,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Date the data ends (YYYY-MM-DD, UTC); the data covers the --history-days before it. Default: today.",
            show_default=False,
        ),
    ] = None,
    score: Annotated[bool, typer.Option(help="Run the scoring job afterwards, so that accounts have scores.")] = True,
    history_days: Annotated[
        int,
        typer.Option(
            help="Days of history: the data covers them and is replayed and scored day by day, so that "
            "scores over time and stage changes show movement. 0: 90 days of data scored once (faster "
            "for many accounts).",
            min=0,
            max=3650,
        ),
    ] = DAYS,
    database_url: DatabaseUrl = None,
) -> None:
    """Fill a workspace with a realistic, deterministic sandbox data set.

    Accounts with tags and custom fields, two pipelines with deals and their stage history,
    calls and emails with contacts, and website, G2, Bombora and LinkedIn intent signals
    over the last --history-days days, scored day by day; then today's scores. Seeding again
    with the same seed changes nothing.
    """
    moment = None
    if as_of is not None:
        try:
            moment = datetime.strptime(as_of, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            fail(f"--as-of takes a date as YYYY-MM-DD, not '{as_of}'")
    if not workspace.strip():
        fail("--workspace needs a name")
    database = open_database(database_url)
    progress = Progress(
        TextColumn("[bold]seed[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=err,
    )
    task = progress.add_task("seed", total=accounts, step="accounts")

    def show(done: int, total: int, step: str) -> None:
        progress.update(task, completed=done, total=total, step=step)

    try:
        with progress:
            report = seed_workspace(
                database,
                workspace=workspace.strip(),
                accounts=accounts,
                seed=seed,
                as_of=moment,
                score=score,
                history_days=history_days,
                progress=show,
            )
    finally:
        database.dispose()
    table = Table(title=f"Seeded workspace '{report.workspace}'" + (" (new)" if report.created_workspace else ""))
    table.add_column("records")
    table.add_column("total", justify="right")
    table.add_column("outcome")
    for kind, counts in report.counts.items():
        outcome = ", ".join(f"{n:,} {status}" for status, n in counts.items() if status != "total" and n)
        table.add_row(kind, f"{counts.get('total', 0):,}", outcome)
    out.print(table)
    if not score:
        out.print("Not scored (--no-score): run `abmhub score --workspace ...` for scores.", highlight=False)
    elif report.scored is None:
        out.print(
            "Scoring was busy (another run holds the lock); the accounts get scores with its next run.", highlight=False
        )
    else:
        out.print(f"Scored {report.scored:,} accounts in {report.scoring_seconds:.1f} s.", highlight=False)
        if report.replayed_days:
            out.print(f"History: {report.replayed_days} days replayed and scored one by one.", highlight=False)
        elif history_days:
            out.print("No history replayed: the workspace had been scored before.", highlight=False)
    out.print(f"Done in {report.seconds:.1f} s. A key for the workspace:", highlight=False)
    out.print(
        f"  abmhub keys create --workspace {report.workspace} --user you@example.com", highlight=False, soft_wrap=True
    )
