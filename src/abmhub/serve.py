"""`abmhub serve`: the API server, with the scoring schedule and the webhook workers beside it."""

from __future__ import annotations

import copy
import gc
import json
import logging
import os
import signal
from typing import Annotated, Any

import typer

from abmhub import __version__
from abmhub.accounts.search import SearchIndexer
from abmhub.command import DatabaseUrl, open_database, out, safe_url
from abmhub.config import Settings, database_url_from_env, session_secret_from_env
from abmhub.db.engine import Database
from abmhub.scoring.schedule import ScoringSchedule
from abmhub.supervisor import supervise
from abmhub.tenancy import service as tenancy
from abmhub.webhooks.dispatcher import DEFAULT_RETRY_BASE_S, DEFAULT_WORKERS, Dispatcher


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
    webhook_workers: Annotated[
        int,
        typer.Option(
            help="Threads delivering webhooks in this process (0: none here; other processes on the same "
            "database deliver).",
            min=0,
        ),
    ] = DEFAULT_WORKERS,
    webhook_retry_base: Annotated[
        float,
        typer.Option(
            help="Seconds before a failed webhook delivery's first retry; each next wait doubles (at most 1 h), "
            "for 24 h.",
            min=0.01,
        ),
    ] = DEFAULT_RETRY_BASE_S,
    webhook_allow_private_targets: Annotated[
        bool,
        typer.Option(
            help="Let webhooks target loopback and private addresses (a receiver on this machine or network). "
            "Off: refused, when created and at every delivery (SSRF guard)."
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses (or CIDRs, or *) of the proxies whose X-Forwarded-For is believed: "
            "the visitor's address for website visits and rate limits."
        ),
    ] = "127.0.0.1",
    website_retention_days: Annotated[
        int, typer.Option(help="Days raw website visit events are kept (their signals stay).", min=1)
    ] = 90,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port (as uvicorn's and gunicorn's --workers). The scoring "
            "schedule and the webhook workers run once, in the parent process; each server process buffers "
            "and writes its own website visits, and counts its own rate limits.",
            min=1,
        ),
    ] = 1,
) -> None:
    """Start the API server (migrating the database; on an empty one, creating a first key).

    SIGTERM or Ctrl-C stops it gracefully: no new connections, requests in flight finish
    (for up to 30 s), then it exits with status 0. With --workers N, a parent process
    supervises N server processes (restarting one that dies) and runs the scoring schedule
    and the webhook workers.
    """
    import uvicorn

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
    processes = f", {workers} server processes" if workers > 1 else ""
    print(f"abmhub {__version__} on http://{host}:{port}  (database: {safe_url(database.url)}{processes})")
    print(f"API docs: http://{host}:{port}/docs")
    print(f"Dashboard: http://{host}:{port}/ui (sign in with an API key)", flush=True)
    spec = {
        "database_url": url,
        "log_level": log_level,
        "rate_limit": rate_limit,
        "webhook_allow_private_targets": webhook_allow_private_targets,
        "forwarded_allow_ips": forwarded_allow_ips,
        "website_retention_days": website_retention_days,
    }
    _configure_logging(log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
        # Applied by `_serving_app` to everything but /collect (it reads X-Forwarded-For
        # itself, from the same trusted proxies).
        "proxy_headers": False,
        # The access log without the client's address: a visitor's IP is never written down.
        "log_config": _log_config_without_addresses(),
        # uvicorn builds an access line's arguments for every request whenever the access
        # logger has a handler, even at a level that drops the line: no handler unless the
        # lines are wanted.
        "access_log": _logs_access(log_level),
    }
    if workers > 1:
        # Each server process builds the app itself, from the settings in its environment.
        os.environ[WORKER_SPEC] = json.dumps(spec)
    schedule = ScoringSchedule(database, score_interval)
    schedule.start()
    indexer = SearchIndexer(database)
    indexer.start()
    dispatcher = Dispatcher(
        database,
        workers=webhook_workers,
        retry_base_s=webhook_retry_base,
        allow_private=webhook_allow_private_targets,
    )
    dispatcher.start()
    try:
        if workers > 1:
            served = {**options, "app": f"{__name__}:{worker_app.__name__}", "factory": True}
            try:
                supervise(served, workers=workers, host=host, port=port)
            except OSError as error:  # as uvicorn says it for one process
                out.print(f"[red]Cannot listen on {host}:{port}: {error.strerror or error}[/red]")
                raise typer.Exit(1) from None
        else:
            # uvicorn drains the requests in flight on SIGTERM, then raises the signal again once
            # its own handler is gone: this handler turns that into a normal exit (status 0).
            signal.signal(signal.SIGTERM, _exit_after_shutdown)
            uvicorn.run(_serving_app(spec, database), **options)
    finally:
        schedule.stop()
        indexer.stop()
        dispatcher.stop()


# The environment variable that hands a server process its settings (`--workers` above 1).
WORKER_SPEC = "ABMHUB_SERVE_WORKER"


def worker_app() -> Any:
    """The app of one server process under `--workers` (uvicorn's factory, in that process).

    The parent migrated the database and runs the schedule and the webhook workers: a server
    process only serves, its website collector buffering and writing its own visits.
    """
    spec = json.loads(os.environ[WORKER_SPEC])
    _configure_logging(spec["log_level"])
    return _serving_app(spec, Database(spec["database_url"]))


def _serving_app(spec: dict[str, Any], database: Database) -> Any:
    """What uvicorn runs: `/collect` first, then the app behind the trusted proxies.

    /collect is answered before FastAPI's own __call__ (which looks up the telemetry tracer for
    every request) and before uvicorn's proxy-header middleware, which only the rest of the app
    needs: website/asgi.py says why.
    """
    from abmhub.app import create_app
    from abmhub.website.asgi import CollectEndpoint

    trusted = spec["forwarded_allow_ips"]
    settings = Settings(
        database_url=spec["database_url"],
        rate_limit=spec["rate_limit"] or None,
        session_secret=session_secret_from_env(),
        webhook_allow_private_targets=spec["webhook_allow_private_targets"],
        forwarded_allow_ips=frozenset(part.strip() for part in trusted.split(",") if part.strip()),
        website_retention_days=spec["website_retention_days"],
    )
    application = create_app(settings, database)
    served = CollectEndpoint(_behind_proxies(application, trusted), application.state.collector)
    # What start-up loaded lives as long as the process: out of the garbage collector's sight,
    # so that its full collections walk what requests allocate, not every module's objects.
    gc.collect()
    gc.freeze()
    return served


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _behind_proxies(application: Any, trusted: str) -> Any:
    """The app as uvicorn would wrap it with `forwarded_allow_ips`: client and scheme from the
    trusted proxies' X-Forwarded-For and X-Forwarded-Proto. (`Any`: uvicorn's and Starlette's
    ASGI type aliases differ for the same protocol.)"""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    return ProxyHeadersMiddleware(application, trusted_hosts=trusted)


def _exit_after_shutdown(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _logs_access(log_level: str) -> bool:
    """Access lines are info lines: written at info and debug (and uvicorn's trace) only."""
    return log_level.lower() in ("trace", "debug", "info")


def _log_config_without_addresses() -> dict[str, Any]:
    """uvicorn's logging configuration, its access lines without `%(client_addr)s`."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    return config
