"""`abmhub webhooks ...`: an operator's view of a workspace's webhooks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from abmhub.command import DatabaseUrl, Quiet, WorkspaceName, fail, open_database, out, workspace_id
from abmhub.errors import DomainError
from abmhub.webhooks import service
from abmhub.webhooks.events import EVENT_TYPES
from abmhub.webhooks.schemas import FORMATS

webhooks_app = typer.Typer(
    help="Manage webhooks (signed HTTP callbacks on account, deal and activity events).", no_args_is_help=True
)


@webhooks_app.command("list")
def webhooks_list(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """List a workspace's webhooks (never their secrets)."""
    database = open_database(database_url)
    table = Table("id", "url", "events", "format", "min score delta", "status")
    for hook in service.all_webhooks(database, workspace_id=workspace_id(database, workspace)):
        table.add_row(
            hook.webhook_id, hook.url, ", ".join(hook.events), hook.format, str(hook.min_score_delta), hook.status
        )
    out.print(table)


@webhooks_app.command("create")
def webhooks_create(
    workspace: WorkspaceName,
    url: Annotated[str, typer.Option(help="Where to POST the events (http or https).")],
    event: Annotated[
        list[str], typer.Option("--event", "-e", help=f"An event type (repeat the option): {', '.join(EVENT_TYPES)}.")
    ],
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    format: Annotated[str, typer.Option("--format", help="json, or slack for a Slack incoming webhook.")] = "json",
    min_score_delta: Annotated[
        int, typer.Option(help="account.score_changed only when the score moves by at least this.", min=1, max=100)
    ] = service.DEFAULT_MIN_SCORE_DELTA,
    allow_private_target: Annotated[
        bool, typer.Option(help="Accept a URL on a loopback or private address (as the server's flag does).")
    ] = False,
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Create a webhook; prints its id and its signing secret (shown once)."""
    if format not in FORMATS:
        fail(f"--format must be one of: {', '.join(FORMATS)}")
    database = open_database(database_url)
    owner = workspace_id(database, workspace)
    try:
        created, secret = service.create_webhook(
            database,
            workspace_id=owner,
            url=url,
            events=list(dict.fromkeys(event)),
            description=description,
            format=format,
            min_score_delta=min_score_delta,
            allow_private=allow_private_target,
        )
    except (ValueError, DomainError) as exc:
        fail(str(exc))
    if quiet:
        print(created.webhook_id)
        print(secret)
        return
    out.print(f"Created webhook {created.webhook_id} -> {created.url}", highlight=False)
    out.print("Signing secret (shown once, store it now):", highlight=False)
    print(secret, flush=True)


@webhooks_app.command("delete")
def webhooks_delete(
    workspace: WorkspaceName,
    webhook_id: Annotated[str, typer.Argument(help="The webhook's id (see `abmhub webhooks list`).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a webhook and its deliveries."""
    database = open_database(database_url)
    try:
        service.delete_webhook(database, workspace_id=workspace_id(database, workspace), webhook_id=webhook_id)
    except DomainError as exc:
        fail(exc.message)
    out.print(f"Deleted webhook {webhook_id}", highlight=False)
