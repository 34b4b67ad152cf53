"""`abmhub sites ...`, `abmhub ip-ranges import`, `abmhub ip-data import`: website visits (§9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from abmhub.command import DatabaseUrl, Quiet, WorkspaceName, fail, open_database, out, workspace_id
from abmhub.errors import DomainError
from abmhub.website import networks, ranges
from abmhub.website import sites as sites_service
from abmhub.website.schemas import Hostname

sites_app = typer.Typer(help="Websites whose visits abmhub collects.", no_args_is_help=True)
ip_ranges_app = typer.Typer(help="A workspace's IP ranges: which company an address belongs to.", no_args_is_help=True)
ip_data_app = typer.Typer(help="The network-owner dataset (iptoasn) for matching visits.", no_args_is_help=True)

_HOSTNAMES = TypeAdapter(list[Hostname])


@sites_app.command("create")
def sites_create(
    workspace: WorkspaceName,
    name: Annotated[str, typer.Option(help="The site's name.")],
    hostname: Annotated[list[str], typer.Option("--hostname", "-H", help="A hostname of the site (repeat).")],
    base_url: Annotated[
        str, typer.Option(help="Where this abmhub is reached by browsers (for the snippet).")
    ] = "http://127.0.0.1:8000",
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Create a site; prints its key and the snippet to paste into every page."""
    try:
        hostnames = _HOSTNAMES.validate_python(hostname)
    except ValidationError:
        fail("every --hostname must be a host name, e.g. www.example.com")
    database = open_database(database_url)
    site = sites_service.create_site(
        database, workspace_id=workspace_id(database, workspace), name=name, hostnames=list(dict.fromkeys(hostnames))
    )
    if quiet:
        print(site.site_key)
        return
    out.print(f"Created site '{escape(site.name)}' ({site.site_id}), key {site.site_key}. Paste into every page:")
    print(f'<script defer src="{base_url.rstrip("/")}/s/{site.site_key}.js"></script>')


@sites_app.command("list")
def sites_list(workspace: WorkspaceName, database_url: DatabaseUrl = None) -> None:
    """List a workspace's sites."""
    database = open_database(database_url)
    table = Table("id", "key", "name", "hostnames", "page rules")
    for site in sites_service.all_sites(database, workspace_id=workspace_id(database, workspace)):
        rules = f"{len(site.page_rules)} (own)" if site.custom_rules else "built-in"
        table.add_row(site.site_id, site.site_key, escape(site.name), ", ".join(site.hostnames), rules)
    out.print(table)


@ip_ranges_app.command("import")
def ip_ranges_import(
    workspace: WorkspaceName,
    file: Annotated[Path, typer.Argument(help="CSV of `cidr,domain` lines.", exists=True, dir_okay=False)],
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the workspace's IP ranges with the file's (all or nothing)."""
    database = open_database(database_url)
    try:
        stored = ranges.replace_ranges(
            database, workspace_id=workspace_id(database, workspace), text=file.read_text(encoding="utf-8")
        )
    except ranges.InvalidRanges as exc:
        fail("\n".join(escape(problem) for problem in exc.problems))
    except (UnicodeDecodeError, DomainError) as exc:
        fail(escape(str(exc)))
    out.print(f"Stored {stored:,} IP ranges for workspace '{escape(workspace)}'.")


@ip_data_app.command("import")
def ip_data_import(
    file: Annotated[
        Path,
        typer.Argument(help="An iptoasn TSV (ip2asn-v4.tsv, -v6, -combined; .gz too).", exists=True, dir_okay=False),
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the server's network-owner dataset with the file's, streamed (progress on stderr)."""
    database = open_database(database_url)
    progress = Progress(
        TextColumn("[bold]iptoasn[/bold]"),
        BarColumn(),
        TextColumn("{task.completed:,} ranges"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("import", total=None)
    try:
        with progress, networks.open_lines(file) as lines:
            stored, skipped = networks.import_iptoasn(database, lines, progress=lambda n: progress.advance(task, n))
    finally:
        database.dispose()
    out.print(f"Stored {stored:,} network ranges" + (f"; skipped {skipped:,} lines" if skipped else "") + ".")
