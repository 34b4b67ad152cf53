"""What every `abmhub` sub-command shares: its options, its database, its way of failing.

Each domain keeps its commands beside its service (`tenancy/cli.py`, `signals/cli.py`, ...)
and imports only this module; `abmhub.cli` assembles them into the one command.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from abmhub.config import DEFAULT_DATABASE_URL, database_url_from_env
from abmhub.db.engine import Database
from abmhub.db.migrate import upgrade
from abmhub.tenancy import service as tenancy

out = Console()
err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=f"SQLAlchemy URL (sqlite:///FILE or postgresql://...). Env: ABMHUB_DATABASE_URL. "
        f"Default: {DEFAULT_DATABASE_URL}",
        show_default=False,
    ),
]
WorkspaceName = Annotated[str, typer.Option("--workspace", help="Workspace name.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the value, nothing else.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as an error and end the command with exit status `code`."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def open_database(url: str | None) -> Database:
    """The database of a command, migrated to the current schema, so any command can go first."""
    try:
        database = Database(database_url_from_env(url))
        upgrade(database)
    except Exception as exc:  # a CLI reports, it does not dump tracebacks
        fail(f"cannot open the database: {exc}")
    return database


def safe_url(url: str) -> str:
    """`url` with its password hidden, for printing."""
    return make_url(url).render_as_string(hide_password=True)


def workspace_id(database: Database, name: str) -> int:
    """The id of the workspace called `name`, or the command fails saying so."""
    for workspace in tenancy.list_workspaces(database):
        if workspace.name == name:
            return workspace.id
    fail(f"workspace '{name}' not found (see `abmhub workspaces list`)")
