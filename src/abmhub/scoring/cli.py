"""`abmhub score` and `abmhub scoring-settings ...`: run the scoring job, tune its settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from abmhub.command import DatabaseUrl, WorkspaceName, fail, open_database, out, workspace_id
from abmhub.scoring import service as scoring_service
from abmhub.scoring.service import ScoringBusy, run_scoring
from abmhub.scoring.settings import InvalidSettings

scoring_settings_app = typer.Typer(
    help="Show or change a workspace's scoring settings (docs/scoring.md §9).", no_args_is_help=True
)


def score(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace (default: all).")] = None,
    all_accounts: Annotated[bool, typer.Option("--all", help="Rescore every account, not only changed ones.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the scoring job now."""
    database = open_database(database_url)
    if workspace is not None:
        workspace_id(database, workspace)
    try:
        report = run_scoring(database, workspace=workspace, full=all_accounts)
    except ScoringBusy as exc:
        fail(f"{exc}; try again when it has finished")
    table = Table("workspace", "run", "accounts scored", "changed", "segment changes", "seconds")
    for run in report.workspaces:
        table.add_row(
            run.workspace,
            "all accounts" if run.full else "changed inputs",
            str(run.scored),
            str(run.changed),
            str(run.memberships),
            f"{run.seconds:.2f}",
        )
    out.print(table)


@scoring_settings_app.command("show")
def scoring_settings_show(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """Print the workspace's effective settings (defaults with its overrides) as JSON."""
    database = open_database(database_url)
    _, settings = scoring_service.workspace_settings(database, workspace_id(database, workspace))
    print(json.dumps(settings.as_dict(), indent=2))


@scoring_settings_app.command("set")
def scoring_settings_set(
    file: Annotated[typer.FileText, typer.Argument(help="A JSON file of overrides ('-' for standard input).")],
    workspace: WorkspaceName,
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the workspace's overrides; only the keys given differ from the defaults."""
    try:
        overrides = json.loads(file.read())
    except json.JSONDecodeError as exc:
        fail(f"{file.name} is not JSON: {exc}")
    database = open_database(database_url)
    try:
        scoring_service.set_workspace_settings(database, workspace_id(database, workspace), overrides)
    except InvalidSettings as exc:
        fail("invalid settings:\n  " + "\n  ".join(exc.problems))
    out.print(
        f"Stored. The next scoring run rescores every account of '{workspace}' "
        f"(now: abmhub score --workspace {workspace} --all)."
    )


@scoring_settings_app.command("reset")
def scoring_settings_reset(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """Back to the default settings."""
    database = open_database(database_url)
    scoring_service.set_workspace_settings(database, workspace_id(database, workspace), None)
    out.print(f"'{workspace}' uses the default settings; the next scoring run rescores every account.")
