"""The ASGI application: both API surfaces, the error handlers, health and the OpenAPI document."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from abmhub import __version__
from abmhub.accounts.router import build_router as account_routes
from abmhub.activities.router import build_router as activity_routes
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.readers import SyncReader, open_pool_reader
from abmhub.deals.router import build_router as deal_routes
from abmhub.history.router import build_router as history_routes
from abmhub.predictions.router import build_router as prediction_routes
from abmhub.reevo import errors as surface_v_errors
from abmhub.reevo.router import build_router as surface_v_routes
from abmhub.scoring.router import build_router as scoring_routes
from abmhub.segments.router import build_router as segment_routes
from abmhub.signals.router import build_router as signal_routes
from abmhub.ui import errors as ui_errors
from abmhub.ui.router import build_router as dashboard_routes
from abmhub.ui.static import dashboard_static_files
from abmhub.web import openapi
from abmhub.web.errors import install_error_handlers
from abmhub.web.headers import SecurityHeaders
from abmhub.web.metrics import Metrics, MetricsMiddleware
from abmhub.web.ratelimit import RateLimiter
from abmhub.web.responses import JSONBytes
from abmhub.web.schemas import BODY_MODELS
from abmhub.webhooks.router import build_router as webhook_routes
from abmhub.website.asgi import CollectEndpoint
from abmhub.website.collect import Collector
from abmhub.website.router import build_public_router as website_public_routes
from abmhub.website.router import build_router as website_routes

SURFACE_R = "/api/v1"
CRM_ALIAS = f"{SURFACE_R}/crm"
SURFACE_V = surface_v_errors.PREFIX  # /api/v2
DESCRIPTION = """\
abmhub is a self-hostable account-based-marketing data hub.

* **Surface R** (`/api/v1`, header `X-Api-Key`) is wire-compatible with the Recotap External
  API; every path is also served under the legacy alias `/api/v1/crm`, where pushing and
  updating accounts use the older externalId-keyed semantics.
* **Surface V** (`/api/v2`, `Authorization: Bearer <key>` or `X-Api-Key`) is wire-compatible
  with the activity part of Reevo's Public API v2: log manual activities and read one
  timeline that also holds the calls and emails pushed on Surface R. Errors follow FastAPI's
  `{"detail": ...}` conventions there.

The same key works on both surfaces. Accounts, contacts and deals carry a UUID (`id` on
Surface R records) that Surface V uses to name them.
"""


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    """Build the application. Migrations are the caller's job (the CLI runs them on start)."""
    database = database or Database(settings.database_url)
    # The website collector's buffer is written every second while the app runs, and once
    # more when it stops.
    collector = Collector(
        database, trusted_proxies=settings.forwarded_allow_ips, retention_days=settings.website_retention_days
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        collector.start()
        try:
            async with open_pool_reader(database) as pool_reader:
                if pool_reader is not None:
                    app.state.reader = pool_reader
                try:
                    yield
                finally:
                    app.state.reader = SyncReader(database.engine)
        finally:
            collector.stop()

    app = FastAPI(
        title="abmhub",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=JSONBytes,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.reader = SyncReader(database.engine)  # PostgreSQL's PoolReader while the app runs
    app.state.rate_limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    app.state.collector = collector

    # Surface R, and all of it again under the /crm alias, where only the account push and
    # update differ (§1.1).
    for prefix, crm in ((SURFACE_R, False), (CRM_ALIAS, True)):
        for router in (
            account_routes(crm=crm),
            deal_routes(),
            activity_routes(),
            segment_routes(),
            signal_routes(),
            scoring_routes(),
            history_routes(),
            prediction_routes(),
            webhook_routes(),
            website_routes(),
        ):
            app.include_router(router, prefix=prefix)
    app.include_router(surface_v_routes(), prefix=SURFACE_V)
    app.include_router(website_public_routes())
    _serve_dashboard(app)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database reachability")
    def healthz() -> Response:
        try:
            with app.state.database.read() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONBytes({"status": "unhealthy", "database": "unreachable"}, status_code=503)
        return JSONBytes({"status": "ok", "database": "reachable", "version": __version__})

    metrics = Metrics()
    app.add_route("/metrics", metrics.response, include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(IgnoreTrailingSlash)
    _serve_docs_offline(app)

    install_error_handlers(
        app, surfaces={SURFACE_V: surface_v_errors.render_error, ui_errors.UI_PREFIX: ui_errors.render_error}
    )
    app.add_exception_handler(surface_v_errors.SurfaceVError, surface_v_errors.render_error)
    app.add_exception_handler(ui_errors.UiError, ui_errors.render_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Outside Starlette's own outermost layer (which answers unexpected errors), so that a
    # 500 carries the security headers too.
    # /collect (website visits) is answered before all of it: website/asgi.py says why.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: CollectEndpoint(SecurityHeaders(build_stack()), collector)  # type: ignore[method-assign]
    return app


class IgnoreTrailingSlash:
    """Route `/api/v1/accounts/` like `/api/v1/accounts`, as the vendor's Express server does
    (non-strict routing), instead of answering a redirect. The envelope's `path` still shows
    the path as sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


def _serve_dashboard(app: FastAPI) -> None:
    """The dashboard at /ui, its files at /ui/static, and `/` leading to it (nothing else there)."""
    app.mount(f"{ui_errors.UI_PREFIX}/static", dashboard_static_files(), name="ui-static")
    app.include_router(dashboard_routes())

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse(ui_errors.UI_PREFIX, status_code=302)


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI at /docs from assets shipped in a Python package: no CDN, works offline."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="abmhub API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request bodies the handlers validate themselves."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path, operations in schema["paths"].items():
        if path.startswith(f"{CRM_ALIAS}/"):  # one group of its own in the docs
            for operation in operations.values():
                operation["tags"] = ["crm alias"]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in BODY_MODELS.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[name] = body
    schema["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        # Surface V operations list both (their own `security`); Surface R takes X-Api-Key only.
        "BearerAuth": {"type": "http", "scheme": "bearer", "description": "The API key as a Bearer token"},
    }
    schema["security"] = [{"ApiKey": []}]
    openapi.refine(schema, surface_r_error="ErrorEnvelope", surface_v_error="ErrorResponse")
    app.openapi_schema = schema
    return schema
