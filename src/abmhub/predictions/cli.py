"""`abmhub model ...`: train, inspect, activate (or roll back) a workspace's prediction model."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from abmhub.command import DatabaseUrl, WorkspaceName, err, fail, open_database, out, workspace_id
from abmhub.errors import DomainError
from abmhub.predictions import service
from abmhub.predictions.train import TrainingRefused
from abmhub.timefmt import format_us, parse_iso8601

model_app = typer.Typer(
    help="Prediction models: learn from the workspace's own history which accounts will open an opportunity.",
    no_args_is_help=True,
)


def _progress() -> tuple[Progress, service.Progress]:
    bar = Progress(
        TextColumn("[bold]{task.fields[step]}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    task = bar.add_task("model", total=None, step="starting")

    def show(step: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, step=step)

    return bar, show


def _number(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _interval(backtest: dict[str, Any], name: str) -> str:
    found = (backtest.get("intervals") or {}).get(name)
    return f" [{found[0]:.3f}, {found[1]:.3f}]" if found else ""


def _show_report(record: service.ModelRecord) -> None:
    report = record.report
    backtest = report["backtest"]
    trained = report["trainedOn"]
    state = (
        "active"
        if record.active
        else ("not active" if record.beats_hand_set else "not active: did not beat the hand-set score")
    )
    out.print(
        f"Model {record.model_id} ({state}): will an account open an opportunity within {record.horizon_days} days?",
        highlight=False,
    )
    out.print(
        f"Trained on {trained['snapshots']} monthly snapshots ({trained['firstSnapshot']} to {trained['lastSnapshot']}): "
        f"{trained['rows']:,} account snapshots of {trained['accounts']:,} accounts, {trained['positives']:,} followed "
        "by a new opportunity.",
        highlight=False,
    )
    table = Table("backtest (95 % interval)", "model", "hand-set score", title="Backtest on later snapshots, same rows")
    table.add_row(
        "ROC-AUC",
        _number(backtest["rocAuc"]) + _interval(backtest, "rocAuc"),
        _number(backtest["handSetRocAuc"]) + _interval(backtest, "handSetRocAuc"),
    )
    table.add_row("PR-AUC", _number(backtest["prAuc"]), _number(backtest.get("handSetPrAuc")))
    table.add_row(
        "top-decile lift",
        _number(backtest["topDecileLift"], 2) + _interval(backtest, "topDecileLift"),
        _number(backtest["handSetTopDecileLift"], 2),
    )
    table.add_row("Brier score", _number(backtest["brier"], 4), "")
    out.print(table)
    bands = Table("band", "accounts", "opened an opportunity", "predicted", title="Conversion per band (backtest)")
    for band in backtest["bands"]:
        bands.add_row(
            band["band"],
            f"{band['accounts']:,}",
            "—" if band["conversionRate"] is None else f"{band['conversionRate']:.1%}",
            "—" if band["predictedRate"] is None else f"{band['predictedRate']:.1%}",
        )
    out.print(bands)
    sources = Table("source", "direction", "effect (log-odds)", title="What the model learned, per source")
    for item in report["explanation"]["sources"]:
        sources.add_row(item["source"], item["direction"], f"{item['effect']:+.3f}")
    out.print(sources)
    drift = report["drift"]
    if drift["drifting"]:
        shifted = ", ".join(
            f"{f['words']} (PSI {f['psi']:.2f})" for f in drift["features"] if f["psi"] > drift["psiThreshold"]
        )
        out.print(
            f"[yellow]Drift:[/yellow] today's accounts differ from the training snapshots: {shifted or 'the base rate moved'}."
        )


@model_app.command("train")
def model_train(
    workspace: WorkspaceName,
    horizon_days: Annotated[
        int, typer.Option(help="Predict an opportunity within this many days.", min=7, max=365)
    ] = 90,
    as_of: Annotated[
        str | None,
        typer.Option(help="Train on what was known at this moment (ISO 8601); default: now.", show_default=False),
    ] = None,
    activate: Annotated[bool, typer.Option(help="Activate the model if its backtest beats the hand-set score.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the model's report as JSON.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Train a model on the workspace's history, backtest it against the hand-set score, store it,
    and activate it when it predicts better. Exits 1 saying what is missing when it cannot."""
    cut = None
    if as_of is not None:
        try:
            cut = parse_iso8601(as_of)
        except ValueError:
            fail(f"--as-of takes an ISO 8601 date or time, not '{as_of}'")
    database = open_database(database_url)
    owner = workspace_id(database, workspace)
    bar, show = _progress()
    try:
        with bar:
            record, _ = service.train_model(
                database, workspace_id=owner, horizon_days=horizon_days, as_of_us=cut, activate=activate, progress=show
            )
    except TrainingRefused as refused:
        fail(f"No model trained: {refused}")
    if json_output:
        out.print_json(orjson.dumps(record.report).decode())
        return
    _show_report(record)
    if record.active:
        out.print(f"Activated: predictions of every account now come from {record.model_id}.", highlight=False)
    elif record.beats_hand_set:
        out.print(
            f"Not activated (--no-activate): `abmhub model activate {record.model_id}` to use it.", highlight=False
        )
    else:
        out.print("Not activated: it did not predict better than the hand-set score on this workspace's history.")


@model_app.command("list")
def model_list(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """The workspace's models, newest first."""
    database = open_database(database_url)
    # The id is what `model show` and `model activate` take: never cut on a narrow terminal; the
    # other columns fold rather than lose digits.
    table = Table(
        Column("model", no_wrap=True, min_width=24),
        *(
            Column(header, overflow="fold")
            for header in ("created", "active", "horizon", "ROC-AUC", "hand-set", "lift", "positives")
        ),
        caption="Backtest ROC-AUC of the model and of the hand-set score on the same rows; top-decile lift.",
    )
    for record in service.list_models(database, workspace_id=workspace_id(database, workspace)):
        backtest = record.report["backtest"]
        table.add_row(
            record.model_id,
            format_us(record.created_us)[:10],
            "yes" if record.active else "",
            f"{record.horizon_days} d",
            _number(backtest["rocAuc"]),
            _number(backtest["handSetRocAuc"]),
            _number(backtest["topDecileLift"], 2),
            f"{record.report['trainedOn']['positives']:,}",
        )
    out.print(table)


@model_app.command("show")
def model_show(
    workspace: WorkspaceName,
    model_id: Annotated[str, typer.Argument(help="The model's id (see `abmhub model list`).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A model's backtest report: metrics against the hand-set score, bands, what it learned, drift."""
    database = open_database(database_url)
    try:
        record = service.get_model(database, workspace_id=workspace_id(database, workspace), model_id=model_id)
    except DomainError as problem:
        fail(problem.message)
    if json_output:
        out.print_json(orjson.dumps(record.report).decode())
        return
    _show_report(record)


@model_app.command("activate")
def model_activate(
    workspace: WorkspaceName,
    model_id: Annotated[str, typer.Argument(help="The model to use (an earlier one: a rollback).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Make a model the active one (only a model that beat the hand-set score) and predict every account with it."""
    database = open_database(database_url)
    owner = workspace_id(database, workspace)
    bar, show = _progress()
    try:
        with bar:
            count = service.activate_model(database, workspace_id=owner, model_id=model_id, progress=show)
    except DomainError as problem:
        fail(problem.message)
    out.print(f"Model {model_id} is active; {count:,} accounts predicted.", highlight=False)
