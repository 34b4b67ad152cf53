"""`abmhub segments ...`: create and list segments from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from abmhub.command import DatabaseUrl, Quiet, WorkspaceName, fail, open_database, out, workspace_id
from abmhub.segments import service as segments_service

segments_app = typer.Typer(help="Manage segments.", no_args_is_help=True)


@segments_app.command("create")
def segments_create(
    workspace: WorkspaceName,
    name: Annotated[str, typer.Option(help="Segment name.")],
    type: Annotated[str, typer.Option("--type", help="static or dynamic.")] = "static",
    status: Annotated[str, typer.Option(help="active, draft or archived.")] = "active",
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Create a segment and print its id."""
    database = open_database(database_url)
    owner = workspace_id(database, workspace)
    try:
        segment = segments_service.create_segment(database, workspace_id=owner, name=name, type=type, status=status)
    except ValueError as exc:
        fail(str(exc))
    if quiet:
        print(segment.segment_id)
        return
    out.print(f"Created {type} segment '{name}' ({status}):", highlight=False)
    print(segment.segment_id)


@segments_app.command("list")
def segments_list(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """List a workspace's segments (all types and statuses) with their member counts."""
    database = open_database(database_url)
    table = Table("id", "name", "type", "status", "members")
    for segment, members in segments_service.list_all(database, workspace_id=workspace_id(database, workspace)):
        table.add_row(segment.segment_id, segment.name, segment.type, segment.status, str(members))
    out.print(table)
