"""`abmhub seed --workspace W --accounts N --seed S [--planted]`: a sandbox data set to integrate
against, or one with a planted truth to check predictions against.

Registered by `abmhub.cli` (`app.command("seed")(seed_sandbox)`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
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
from abmhub.sandbox.planted import HISTORY_DAYS
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
        int | None,
        typer.Option(
            help=f"Days of history: the data covers them and is replayed and scored day by day, so that "
            f"scores over time and stage changes show movement. 0: 90 days of data scored once (faster "
            f"for many accounts). Default: {DAYS}; {HISTORY_DAYS} with --planted (written at once).",
            min=0,
            max=3650,
            show_default=False,
        ),
    ] = None,
    planted: Annotated[
        bool,
        typer.Option(
            "--planted",
            help="Opportunities follow a hidden rule (buying episodes that raise each source's signals "
            "with its own lead time); the history is a backfill written at once, and the hidden truth "
            "is written to --truth-file.",
        ),
    ] = False,
    truth_file: Annotated[
        Path | None,
        typer.Option(
            help="With --planted: where to write the hidden truth (JSON). Default: "
            "planted-truth-WORKSPACE.json in the current directory.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Fill a workspace with a realistic, deterministic sandbox data set.

    Accounts with tags and custom fields, two pipelines with deals and their stage history,
    calls and emails with contacts, and website, G2, Bombora and LinkedIn intent signals
    over the last --history-days days, scored day by day; then today's scores. Seeding again
    with the same seed changes nothing.

    With --planted, the opportunities follow a hidden rule instead: latent fit, buying
    episodes whose Bombora, website, G2 and sales-activity signals rise ahead of the decision
    each with its own lead time, then an opportunity with a known probability; always-on
    noise and LinkedIn ads that favour low-fit accounts. The --history-days (default 540)
    are pushed at once, as a CRM backfill would be, and scored once. The hidden truth (every
    account's fit, episode rate and episodes) goes to --truth-file, from which the true
    probability of opening an opportunity within a horizon can be computed for any account
    and day (abmhub.sandbox.planted.PlantedTruth).
    """
    moment = None
    if as_of is not None:
        try:
            moment = datetime.strptime(as_of, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            fail(f"--as-of takes a date as YYYY-MM-DD, not '{as_of}'")
    if not workspace.strip():
        fail("--workspace needs a name")
    if planted and history_days == 0:
        fail("--planted needs history: --history-days of at least 1 (default 540)")
    if truth_file is not None and not planted:
        fail("--truth-file goes with --planted")
    truth_path = truth_file or Path(f"planted-truth-{workspace.strip()}.json")
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
                planted=planted,
                progress=show,
            )
    finally:
        database.dispose()
    if report.truth is not None:
        try:
            report.truth.save(truth_path)
        except OSError as exc:
            fail(f"cannot write the truth file {truth_path}: {exc}")
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
        elif history_days != 0 and not planted:
            out.print("No history replayed: the workspace had been scored before.", highlight=False)
    if report.truth is not None:
        summary = report.truth.summary()
        out.print(
            f"Planted: {summary['accounts']:,} accounts, {summary['episodes']:,} buying episodes "
            f"({summary['accounts_with_episode']:,} accounts with one), {summary['opened']:,} opportunities "
            f"opened ({summary['won']:,} won) over {report.truth.params['history_days']} days.",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"Planted truth: {truth_path.resolve()}", highlight=False, soft_wrap=True)
    out.print(f"Done in {report.seconds:.1f} s. A key for the workspace:", highlight=False)
    out.print(
        f"  abmhub keys create --workspace {report.workspace} --user you@example.com", highlight=False, soft_wrap=True
    )
