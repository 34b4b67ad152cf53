"""The `abmhub` command: it only assembles the sub-commands that live beside their domains.

Every command migrates its database first, so any of them can go first (`abmhub.command`).
"""

from __future__ import annotations

import typer

from abmhub.client.cli import sync_app
from abmhub.predictions.cli import model_app
from abmhub.sandbox.cli import seed_sandbox
from abmhub.scoring.cli import score, scoring_settings_app
from abmhub.segments.cli import segments_app
from abmhub.serve import serve
from abmhub.signals.cli import import_signals
from abmhub.tenancy.cli import keys_app, workspaces_app
from abmhub.webhooks.cli import webhooks_app
from abmhub.website.cli import ip_data_app, ip_ranges_app, sites_app

app = typer.Typer(help="abmhub — a self-hostable account-based-marketing data hub.", no_args_is_help=True)
app.command()(serve)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(segments_app, name="segments")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(model_app, name="model")
app.add_typer(sites_app, name="sites")
app.add_typer(ip_ranges_app, name="ip-ranges")
app.add_typer(ip_data_app, name="ip-data")
app.add_typer(scoring_settings_app, name="scoring-settings")
app.command()(score)
app.command("import")(import_signals)
app.add_typer(sync_app, name="sync")
app.command("seed")(seed_sandbox)


def main() -> None:
    app()
