"""Website endpoints (contract §9): sites, page rules, IP ranges, stats (Surface R), and the two
public ones outside `/api`: the tracking script and `POST /collect`."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.paging import PageRequest
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_us, parse_iso8601
from abmhub.web.dependencies import caller, database, json_body, read_body, read_json
from abmhub.web.errors import ApiError, ValidationFailed
from abmhub.web.paging import keyset_page, page_body
from abmhub.web.responses import JSONBytes, envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope, request_body
from abmhub.web.validation import issue, validation_issues
from abmhub.website import ranges as ranges_service
from abmhub.website import sites as sites_service
from abmhub.website import stats as stats_service
from abmhub.website.asgi import answer_collect, answer_preflight
from abmhub.website.collect import MAX_BODY_BYTES, Collector
from abmhub.website.rules import PageRule
from abmhub.website.schemas import (
    CreateSiteRequest,
    PageRuleItem,
    PageRuleRecord,
    SiteRecord,
    UpdateSiteRequest,
)
from abmhub.website.script import render_script, script_etag

_RULES = TypeAdapter(list[PageRuleItem])


class SitePage(BaseModel):
    data: list[SiteRecord]
    nextCursor: str | None
    hasNextPage: bool
    syncTimestamp: str | None


def collect_url(request: Request) -> str:
    return str(request.url_for("collect"))


def site_record(request: Request, site: sites_service.Site) -> dict[str, Any]:
    script = str(request.url_for("tracking_script", site_key=site.site_key))
    return {
        "siteId": site.site_id,
        "siteKey": site.site_key,
        "name": site.name,
        "hostnames": site.hostnames,
        "snippet": f'<script defer src="{script}"></script>',
        "createdAt": format_us(site.created_us),
        "updatedAt": format_us(site.updated_us),
    }


def build_router() -> APIRouter:
    router = APIRouter(tags=["website"], responses=ERROR_RESPONSES)

    @router.post(
        "/sites",
        summary="Track a website (extension); the answer holds the snippet to paste",
        response_model=Envelope[SiteRecord],
        openapi_extra=request_body(CreateSiteRequest),
    )
    def create_site(
        request: Request,
        who: Caller = Depends(caller),
        body: CreateSiteRequest = Depends(json_body(CreateSiteRequest)),
        db: Database = Depends(database),
    ) -> Response:
        site = sites_service.create_site(
            db, workspace_id=who.workspace_id, name=body.name, hostnames=list(dict.fromkeys(body.hostnames))
        )
        request.app.state.collector.refresh()  # this process takes it at once; others within 5 s
        return envelope(request, site_record(request, site))

    @router.get("/sites", summary="The workspace's sites (extension)", response_model=Envelope[SitePage])
    def list_sites(
        request: Request,
        page: PageRequest = Depends(keyset_page),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        found = sites_service.list_sites(db, workspace_id=who.workspace_id, page=page)
        return envelope(request, page_body(found, [site_record(request, s) for s in found.items]))

    @router.get("/sites/{site_id}", summary="One site (extension)", response_model=Envelope[SiteRecord])
    def get_site(
        request: Request, site_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        return envelope(
            request, site_record(request, sites_service.get_site(db, workspace_id=who.workspace_id, site_id=site_id))
        )

    @router.patch(
        "/sites/{site_id}",
        summary="Rename a site or change its hostnames (extension)",
        response_model=Envelope[SiteRecord],
        openapi_extra=request_body(UpdateSiteRequest),
    )
    def update_site(
        request: Request,
        site_id: str,
        who: Caller = Depends(caller),
        body: UpdateSiteRequest = Depends(json_body(UpdateSiteRequest)),
        db: Database = Depends(database),
    ) -> Response:
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name
        if body.hostnames is not None:
            if not body.hostnames:
                raise ValidationFailed(
                    [issue("hostnames", "hostnames", {"arrayMinSize": "hostnames must contain at least 1 elements"})]
                )
            changes["hostnames"] = list(dict.fromkeys(body.hostnames))
        site = sites_service.update_site(db, workspace_id=who.workspace_id, site_id=site_id, changes=changes)
        request.app.state.collector.refresh()
        return envelope(request, site_record(request, site))

    @router.delete("/sites/{site_id}", summary="Stop tracking a site; its raw events go (extension)")
    def delete_site(
        request: Request, site_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        sites_service.delete_site(db, workspace_id=who.workspace_id, site_id=site_id)
        return envelope(request, {"siteId": site_id, "deleted": True})

    @router.get(
        "/sites/{site_id}/page-rules",
        summary="The site's page rules, in matching order (extension)",
        response_model=Envelope[list[PageRuleRecord]],
    )
    def get_page_rules(
        request: Request, site_id: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        site = sites_service.get_site(db, workspace_id=who.workspace_id, site_id=site_id)
        return envelope(request, [rule.as_dict() for rule in site.page_rules])

    @router.put(
        "/sites/{site_id}/page-rules",
        summary="Replace the site's page rules (extension): [{pattern, category, weight}]",
        response_model=Envelope[list[PageRuleRecord]],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": PageRuleItem.model_json_schema()}}
                },
            }
        },
    )
    async def put_page_rules(request: Request, site_id: str, who: Caller = Depends(caller)) -> Response:
        document = await read_json(request)
        if not isinstance(document, list):
            raise ValidationFailed([issue("", "", {"isArray": "request body must be an array of page rules"})])
        try:
            items = _RULES.validate_python(document)
        except ValidationError as exc:
            raise ValidationFailed(validation_issues(exc)) from None
        rules = [PageRule(item.pattern, item.category, float(item.weight or 0)) for item in items]
        db: Database = request.app.state.database
        site = sites_service.set_page_rules(db, workspace_id=who.workspace_id, site_id=site_id, rules=rules)
        request.app.state.collector.refresh()
        return envelope(request, [rule.as_dict() for rule in site.page_rules])

    @router.get("/sites/{site_id}/stats", summary="What the site's visits came to (extension)")
    def site_stats(
        request: Request,
        site_id: str,
        from_: str | None = Query(None, alias="from", description="ISO 8601 (default: 30 days ago)"),
        to: str | None = Query(None, description="ISO 8601, exclusive (default: now)"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        site = sites_service.get_site(db, workspace_id=who.workspace_id, site_id=site_id)
        since, until = _moment("from", from_), _moment("to", to)
        return envelope(request, stats_service.site_stats(db, site=site, since_us=since, until_us=until))

    @router.put(
        "/ip-ranges",
        summary="Replace the workspace's IP ranges (extension): CSV `cidr,domain`, Content-Type text/csv",
        openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def put_ip_ranges(request: Request, who: Caller = Depends(caller)) -> Response:
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "text/csv":
            raise ApiError(400, "Content-Type must be text/csv")
        raw = await read_body(request)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "The CSV must be UTF-8") from None
        db: Database = request.app.state.database
        stored = ranges_service.replace_ranges(db, workspace_id=who.workspace_id, text=text)
        request.app.state.collector.refresh()
        return envelope(request, {"ranges": stored})

    @router.get("/ip-ranges", summary="The workspace's IP ranges (extension)")
    def get_ip_ranges(request: Request, who: Caller = Depends(caller), db: Database = Depends(database)) -> Response:
        return envelope(request, ranges_service.list_ranges(db, workspace_id=who.workspace_id))

    return router


def _moment(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return parse_iso8601(raw.strip())
    except ValueError:
        raise ValidationFailed(
            [issue(name, name, {"isIso8601": f"{name} must be a valid ISO 8601 date string"})]
        ) from None


# --- public: the script and the collector ----------------------------------------------------------


_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
_SCRIPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The script (gzipped when accepted)",
        "content": {"text/javascript": {"schema": {"type": "string"}}},
    },
    304: {"description": "Not modified (If-None-Match)"},
    404: {"description": "No site has this key", "content": {"text/javascript": {"schema": {"type": "string"}}}},
}
_COLLECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Taken (also when the events are dropped and counted: bots, Do-Not-Track, another host)"},
    400: {"description": "Malformed: not what the script sends", "content": _ERROR},
    413: {"description": "Body over 8 KB", "content": _ERROR},
    429: {"description": "Too many events from one address", "content": _ERROR},
}
_COLLECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/CollectEvent"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/CollectEvent"}, "maxItems": 50},
                    ]
                }
            }
            for media in ("text/plain", "application/json")
        },
    }
}


def build_public_router() -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["website (public)"])

    @router.get(
        "/s/{site_key}.js",
        name="tracking_script",
        summary="The tracking script of a site (no key)",
        responses=_SCRIPT_RESPONSES,
        response_class=Response,
    )
    def tracking_script(request: Request, site_key: str) -> Response:
        collector: Collector = request.app.state.collector
        if collector.site_by_key(site_key) is None:
            return Response("/* unknown site */", status_code=404, media_type="text/javascript")
        body = render_script(site_key, collect_url(request))
        etag = script_etag(body)
        headers = {"Cache-Control": "public, max-age=3600", "ETag": etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in (request.headers.get("accept-encoding") or ""):
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(body, 9)
        return Response(body, media_type="text/javascript", headers=headers)

    @router.post(
        "/collect",
        name="collect",
        summary="Visit events from the tracking script (no key)",
        status_code=202,
        responses=_COLLECT_RESPONSES,
        response_class=Response,
        openapi_extra=_COLLECT_BODY,
    )
    async def collect(request: Request) -> Response:
        """Answered by `website/asgi.py` ahead of routing in a running server; the same answer."""
        collector: Collector = request.app.state.collector
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONBytes({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        peer = request.client.host if request.client else None
        status, headers, content = answer_collect(collector, body, peer, dict(request.headers))
        return Response(content, status_code=status, headers=headers)

    @router.options("/collect", include_in_schema=False)
    def collect_preflight(request: Request) -> Response:
        status, headers, content = answer_preflight(request.app.state.collector, request.headers.get("origin"))
        return Response(content, status_code=status, headers=headers)

    return router
