"""The `abmhub` command. Every command migrates its database first, so any of them can go first."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from abmhub import __version__
from abmhub.client.cli import sync_app
from abmhub.config import DEFAULT_DATABASE_URL, Settings, database_url_from_env
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.errors import DomainError
from abmhub.sandbox.cli import seed_sandbox
from abmhub.scoring import service as scoring_service
from abmhub.scoring.schedule import ScoringSchedule
from abmhub.scoring.service import ScoringBusy, run_scoring
from abmhub.scoring.settings import InvalidSettings
from abmhub.segments import service as segments_service
from abmhub.signals.cli import import_signals
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import format_us

app = typer.Typer(help="abmhub — a self-hostable account-based-marketing data hub.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Manage workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue and revoke API keys.", no_args_is_help=True)
segments_app = typer.Typer(help="Manage segments.", no_args_is_help=True)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(segments_app, name="segments")
app.command("import")(import_signals)
app.add_typer(sync_app, name="sync")
app.command("seed")(seed_sandbox)

err = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=f"SQLAlchemy URL (sqlite:///FILE or postgresql://...). Env: ABMHUB_DATABASE_URL. "
        f"Default: {DEFAULT_DATABASE_URL}",
        show_default=False,
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the value, nothing else.")]


def open_database(url: str | None) -> Database:
    """The database of a command, migrated to the current schema."""
    try:
        database = Database(database_url_from_env(url))
        upgrade(database)
    except Exception as exc:
        fail(f"cannot open the database: {exc}")
    return database


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _workspace_id(database: Database, name: str) -> int:
    for workspace in tenancy.list_workspaces(database):
        if workspace.name == name:
            return workspace.id
    fail(f"workspace '{name}' not found (see `abmhub workspaces list`)")
    raise AssertionError  # unreachable


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    score_interval: Annotated[
        float, typer.Option(help="Seconds between scoring runs (0 turns the schedule off).")
    ] = 900,
    rate_limit: Annotated[
        float,
        typer.Option(
            help="Requests per second per API key, with a burst of the same size; over it: 429 with "
            "Retry-After. Counted per server process. 0 (the default) turns the limit off.",
            min=0,
        ),
    ] = 0,
) -> None:
    """Start the API server (migrating the database; on an empty one, creating a first key).

    SIGTERM or Ctrl-C stops it gracefully: no new connections, requests in flight finish
    (for up to 30 s), then it exits with status 0.
    """
    import signal

    import uvicorn

    from abmhub.app import create_app

    url = database_url_from_env(database_url)
    database = open_database(url)
    key = tenancy.bootstrap(database)
    if key is not None:
        out.print(
            f"Created workspace '{tenancy.DEFAULT_WORKSPACE}' and user {tenancy.DEFAULT_USER}.\n"
            "API key (shown once, store it now):",
            highlight=False,
        )
        print(key, flush=True)
    print(f"abmhub {__version__} on http://{host}:{port}  (database: {safe_url(database.url)})")
    print(f"API docs: http://{host}:{port}/docs", flush=True)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    application = create_app(Settings(database_url=url, rate_limit=rate_limit or None), database)
    schedule = ScoringSchedule(database, score_interval)
    schedule.start()
    # uvicorn drains the requests in flight on SIGTERM, then raises the signal again once its
    # own handler is gone: this handler turns that into a normal exit (status 0).
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    try:
        uvicorn.run(application, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
    finally:
        schedule.stop()


def _exit_after_shutdown(signum: int, _frame: object) -> None:
    raise SystemExit(0)


@workspaces_app.command("create")
def workspaces_create(name: str, database_url: DatabaseUrl = None, quiet: Quiet = False) -> None:
    """Create a workspace."""
    database = open_database(database_url)
    try:
        tenancy.create_workspace(database, name=name)
    except (DomainError, ValueError) as exc:
        fail(getattr(exc, "message", str(exc)))
    if not quiet:
        out.print(f"Created workspace '{name.strip()}'.", highlight=False)


@workspaces_app.command("list")
def workspaces_list(database_url: DatabaseUrl = None) -> None:
    """List workspaces."""
    database = open_database(database_url)
    table = Table("name", "users", "created")
    for workspace in tenancy.list_workspaces(database):
        table.add_row(workspace.name, str(workspace.users), format_us(workspace.created_us))
    out.print(table)


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    user: Annotated[str, typer.Option(help="User email; the user is created if new.")],
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Issue a new API key for a user (revoking the user's previous key at once)."""
    database = open_database(database_url)
    try:
        key = tenancy.create_key(database, workspace=workspace, user_email=user)
    except (DomainError, ValueError) as exc:
        fail(getattr(exc, "message", str(exc)))
    if quiet:
        print(key)
        return
    out.print(f"API key for {user} in workspace '{workspace}' (shown once, store it now):", highlight=False)
    print(key)


@keys_app.command("revoke")
def keys_revoke(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    user: Annotated[str, typer.Option(help="User email.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a user's API key."""
    database = open_database(database_url)
    try:
        revoked = tenancy.revoke_key(database, workspace=workspace, user_email=user)
    except DomainError as exc:
        fail(exc.message)
    out.print("Key revoked." if revoked else "The user had no active key.", highlight=False)


@segments_app.command("create")
def segments_create(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    name: Annotated[str, typer.Option(help="Segment name.")],
    type: Annotated[str, typer.Option("--type", help="static or dynamic.")] = "static",
    status: Annotated[str, typer.Option(help="active, draft or archived.")] = "active",
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Create a segment and print its id."""
    database = open_database(database_url)
    workspace_id = _workspace_id(database, workspace)
    try:
        segment = segments_service.create_segment(
            database, workspace_id=workspace_id, name=name, type=type, status=status
        )
    except ValueError as exc:
        fail(str(exc))
    if quiet:
        print(segment.segment_id)
        return
    out.print(f"Created {type} segment '{name}' ({status}):", highlight=False)
    print(segment.segment_id)


@segments_app.command("list")
def segments_list(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """List a workspace's segments (all types and statuses) with their member counts."""
    database = open_database(database_url)
    table = Table("id", "name", "type", "status", "members")
    for segment, members in segments_service.list_all(database, workspace_id=_workspace_id(database, workspace)):
        table.add_row(segment.segment_id, segment.name, segment.type, segment.status, str(members))
    out.print(table)


scoring_settings_app = typer.Typer(help="Show or change a workspace's scoring settings (docs/scoring.md §9).")
app.add_typer(scoring_settings_app, name="scoring-settings", no_args_is_help=True)


@scoring_settings_app.command("show")
def scoring_settings_show(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Print the workspace's effective settings (defaults with its overrides) as JSON."""
    database = open_database(database_url)
    _, settings = scoring_service.workspace_settings(database, _workspace_id(database, workspace))
    print(json.dumps(settings.as_dict(), indent=2))


@scoring_settings_app.command("set")
def scoring_settings_set(
    file: Annotated[typer.FileText, typer.Argument(help="A JSON file of overrides ('-' for standard input).")],
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the workspace's overrides; only the keys given differ from the defaults."""
    try:
        overrides = json.loads(file.read())
    except json.JSONDecodeError as exc:
        fail(f"{file.name} is not JSON: {exc}")
    database = open_database(database_url)
    try:
        scoring_service.set_workspace_settings(database, _workspace_id(database, workspace), overrides)
    except InvalidSettings as exc:
        fail("invalid settings:\n  " + "\n  ".join(exc.problems))
    out.print(
        f"Stored. The next scoring run rescores every account of '{workspace}' "
        f"(now: abmhub score --workspace {workspace} --all)."
    )


@scoring_settings_app.command("reset")
def scoring_settings_reset(
    workspace: Annotated[str, typer.Option(help="Workspace name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Back to the default settings."""
    database = open_database(database_url)
    scoring_service.set_workspace_settings(database, _workspace_id(database, workspace), None)
    out.print(f"'{workspace}' uses the default settings; the next scoring run rescores every account.")


@app.command()
def score(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace (default: all).")] = None,
    all_accounts: Annotated[bool, typer.Option("--all", help="Rescore every account, not only changed ones.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the scoring job now."""
    database = open_database(database_url)
    if workspace is not None:
        _workspace_id(database, workspace)
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


def main() -> None:
    app()
