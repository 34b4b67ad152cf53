"""`abmhub workspaces ...` and `abmhub keys ...`: tenancy is managed from the command line (§0)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from abmhub.command import DatabaseUrl, Quiet, WorkspaceName, fail, open_database, out
from abmhub.errors import DomainError
from abmhub.tenancy import service as tenancy
from abmhub.timefmt import format_us

workspaces_app = typer.Typer(help="Manage workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue and revoke API keys.", no_args_is_help=True)


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
    workspace: WorkspaceName,
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
    workspace: WorkspaceName,
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
