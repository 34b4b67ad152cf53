"""Surface R account endpoints (contract §2.1–§2.7), also served under the `/crm` alias."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from abmhub.accounts import service
from abmhub.accounts.domains import normalize_domain
from abmhub.accounts.schemas import (
    AccountPage,
    CreateCustomFieldRequest,
    CrmPushAccountsRequest,
    CustomFieldRecord,
    MapExternalIdsRequest,
    MapExternalIdsResult,
    MessageResult,
    MissingExternalId,
    PushAccountsRequest,
    PushAccountsResult,
    UpdateAccountRequest,
)
from abmhub.custom_fields import service as custom_fields_service
from abmhub.custom_fields.model import wire
from abmhub.db.engine import Database
from abmhub.paging import Page, PageRequest
from abmhub.tenancy.service import Caller, key_lookup
from abmhub.timefmt import format_us
from abmhub.web.dependencies import (
    admit,
    admitted,
    caller,
    database,
    json_body,
    presented_api_key,
    reader,
    url_holds_nul,
)
from abmhub.web.errors import ValidationFailed
from abmhub.web.paging import page_body, page_request, parse_limit
from abmhub.web.responses import envelope
from abmhub.web.schemas import (
    CONFLICT_RESPONSE,
    ERROR_RESPONSES,
    PAGE_PARAMETERS,
    Envelope,
    query_parameters,
    request_body,
)
from abmhub.web.validation import constraint_text, issue

MAX_DOMAINS_FILTER = 100
ACCOUNT_LIST_PARAMETERS = {
    "domains": 'JSON array of up to 100 domains, e.g. ["acme.com"]',
    "journeyStage": "Extension: only this journey stage",
    "minScore": "Extension: rtp_account_score >= minScore",
    "segmentId": "Extension: only members of this segment",
    "tag": "Extension: only accounts with this tag",
    **PAGE_PARAMETERS,
}


def account_records(rows: Sequence[Any], extras: service.RecordExtras) -> list[dict[str, Any]]:
    """Accounts as GET /accounts returns them (§2.1), from rows of `service.record_columns`.

    The hot loop of every account page: rows are unpacked by position (not read by attribute
    name), `tags` and `custom_fields` arrive as JSON text. The values most rows of a page share
    are worked out once per page: the accounts of one push or one scoring batch share their
    `change_us`, and a workspace has few distinct tag lists and field values. A tag list goes
    into the response as JSON text (`orjson.Fragment`): the stored text itself where the
    database holds it as orjson wrote it (SQLite), else the list written again by orjson
    (PostgreSQL's jsonb text has other spacing); a falsy value is `[]`. Records may share those
    values: they are only serialised.
    """
    field_keys = extras.field_keys
    segment_ids = extras.segment_ids.get
    stored_as_written = extras.compact_json
    loads = orjson.loads
    fragment = orjson.Fragment
    dumps = orjson.dumps
    empty_fields = dict.fromkeys(field_keys)
    stamps: dict[int, str] = {}
    tag_lists: dict[str, Any] = {}
    field_values: dict[str, dict[str, Any]] = {"{}": empty_fields}
    records = []
    for (
        id_,
        rtp_aid,
        uuid,
        external_id,
        name,
        domain,
        short_name,
        linkedin_url,
        tags_json,
        fields_json,
        account_score,
        journey_stage,
        advertising_score,
        website_score,
        g2_score,
        bombora_score,
        change_us,
    ) in rows:
        tags = tag_lists.get(tags_json)
        if tags is None:
            if stored_as_written and tags_json[0] == "[":
                tags = fragment(tags_json)
            else:
                tags = fragment(dumps(loads(tags_json) or []))
            tag_lists[tags_json] = tags
        fields = field_values.get(fields_json)
        if fields is None:
            stored = loads(fields_json) or {}
            fields = field_values[fields_json] = {key: stored.get(key) for key in field_keys}
        stamp = stamps.get(change_us)
        if stamp is None:
            stamp = stamps[change_us] = format_us(change_us)
        records.append(
            {
                "rtp_aid": rtp_aid,
                "id": uuid,
                "externalId": external_id,
                "name": name,
                "domain": domain,
                "shortName": short_name,
                "linkedinUrl": linkedin_url,
                "tags": tags,
                "rtp_account_score": account_score,
                "rtp_journey_stage": journey_stage,
                "rtp_advertising_activity_score": advertising_score,
                "rtp_website_intent_score": website_score,
                "rtp_g2_intent_score": g2_score,
                "rtp_bombora_intent_score": bombora_score,
                "rtp_last_account_date": stamp,
                "customFields": fields,
                "segmentIds": segment_ids(id_, []),
            }
        )
    return records


def account_page_body(page: Page[Any], extras: service.RecordExtras) -> dict[str, Any]:
    return page_body(page, account_records(page.items, extras))


def _domains_filter(raw: str | None) -> list[str] | None:
    """The `domains` query parameter: a JSON array of up to 100 domains, normalised."""
    if raw is None:
        return None

    def refuse(constraint: str, text: str) -> ValidationFailed:
        return ValidationFailed([issue("domains", "domains", {constraint: text})])

    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise refuse("isJson", "domains must be a JSON array of domain strings") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise refuse("isArray", "domains must be a JSON array of domain strings")
    if len(values) > MAX_DOMAINS_FILTER:
        raise refuse("arrayMaxSize", constraint_text("arrayMaxSize", "domains", {"max": MAX_DOMAINS_FILTER}))
    domains = []
    for value in values:
        domain = normalize_domain(value)
        if domain is None:
            raise refuse("isDomain", f"domains contains an invalid domain '{value}'")
        domains.append(domain)
    return domains


def _min_score(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text.isdigit() or int(text) > 100:
        raise ValidationFailed([issue("minScore", "minScore", {"isInt": "minScore must be an integer from 0 to 100"})])
    return int(text)


def _list_parameters(request: Request) -> tuple[PageRequest, service.AccountFilter]:
    """GET /accounts' parameters, checked in the order FastAPI checked them when it parsed
    them: the page's first."""
    query = request.query_params
    page = page_request(query.get("limit"), query.get("cursor"), query.get("lastSync"))
    filters = service.AccountFilter(
        domains=_domains_filter(query.get("domains")),
        journey_stage=query.get("journeyStage"),
        min_score=_min_score(query.get("minScore")),
        segment_id=query.get("segmentId"),
        tag=query.get("tag"),
    )
    return page, filters


def build_router(*, crm: bool) -> APIRouter:
    """The account routes; with `crm` the push and update use the older `/crm` semantics (§2.2, §2.3)."""
    router = APIRouter(tags=["accounts"], responses=ERROR_RESPONSES)
    push_model = CrmPushAccountsRequest if crm else PushAccountsRequest

    @router.post(
        "/accounts",
        summary="Push accounts (keyed by externalId)" if crm else "Push accounts",
        response_model=Envelope[PushAccountsResult],
        openapi_extra=request_body(push_model),
    )
    def push_accounts(
        request: Request,
        who: Caller = Depends(caller),
        body: PushAccountsRequest = Depends(json_body(push_model)),
        db: Database = Depends(database),
    ) -> Response:
        outcome = service.push_accounts(
            db,
            workspace_id=who.workspace_id,
            items=body.accounts,
            upsert=body.upsert,
            segment_id=body.segmentId,
            keyed_by_external_id=crm,
        )
        return envelope(request, {"results": outcome.results, "summary": outcome.summary})

    @router.put(
        "/accounts/{account_key}",
        summary="Update one account by externalId" if crm else "Update one account",
        response_model=Envelope[MessageResult],
        responses=CONFLICT_RESPONSE,
        openapi_extra=request_body(UpdateAccountRequest),
    )
    def update_account(
        request: Request,
        account_key: str,
        who: Caller = Depends(caller),
        body: UpdateAccountRequest = Depends(json_body(UpdateAccountRequest)),
        db: Database = Depends(database),
    ) -> Response:
        key = {"external_id": account_key} if crm else {"rtp_aid": account_key}
        service.update_account(db, workspace_id=who.workspace_id, changes=body, **key)
        return envelope(request, {"message": "Account updated successfully"})

    @router.get(
        "/accounts",
        summary="List accounts (keyset pages, delta sync)",
        response_model=Envelope[AccountPage],
        openapi_extra=query_parameters(ACCOUNT_LIST_PARAMETERS),
    )
    async def list_accounts(request: Request, db: Database = Depends(database)) -> Response:
        # The key is looked up here, not by the `caller` dependency: with a later page's.
        key = presented_api_key(request)
        try:
            page, filters = _list_parameters(request)
        except ValidationFailed:
            await admitted(request, key)  # an unknown key, the rate limit, a NUL: their errors come first
            raise
        if service.is_later_plain_page(page, filters) and not url_holds_nul(request):
            # The hottest read: the key and the page in one snapshot, on the event loop.
            dialect = db.engine.dialect.name
            read = await reader(request).run(service.later_page_of_key(dialect, key_lookup(key), page))
            admit(request, key, read[0] if read else None)
            assert read is not None  # admit refused an unknown key
            return envelope(request, account_page_body(*read[1]))
        who = await admitted(request, key)

        def body() -> dict[str, Any]:
            found, extras = service.list_accounts(db, workspace_id=who.workspace_id, page=page, filters=filters)
            return account_page_body(found, extras)

        return envelope(request, await run_in_threadpool(body))

    @router.patch(
        "/accounts/external-ids",
        summary="Map domains to your CRM's ids",
        response_model=Envelope[MapExternalIdsResult],
        responses=CONFLICT_RESPONSE,
        openapi_extra=request_body(MapExternalIdsRequest),
    )
    def map_external_ids(
        request: Request,
        who: Caller = Depends(caller),
        body: MapExternalIdsRequest = Depends(json_body(MapExternalIdsRequest)),
        db: Database = Depends(database),
    ) -> Response:
        outcome = service.map_external_ids(db, workspace_id=who.workspace_id, mappings=body.mappings)
        return envelope(
            request, {"matched": outcome.matched, "updated": outcome.updated, "notFound": outcome.not_found}
        )

    @router.get(
        "/accounts/missing-external-ids",
        summary="Accounts without an externalId",
        response_model=Envelope[list[MissingExternalId]],
    )
    def missing_external_ids(
        request: Request,
        limit: str | None = Query(None, description="1–1000, default 100"),
        who: Caller = Depends(caller),
        db: Database = Depends(database),
    ) -> Response:
        rows = service.missing_external_ids(db, workspace_id=who.workspace_id, limit=parse_limit(limit))
        return envelope(request, [{"name": name, "domain": domain} for name, domain in rows])

    @router.get(
        "/accounts/custom-fields",
        summary="Active account custom fields",
        response_model=Envelope[list[CustomFieldRecord]],
    )
    def list_custom_fields(
        request: Request, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        fields = custom_fields_service.list_fields(db, workspace_id=who.workspace_id)
        return envelope(request, [wire(f) for f in fields])

    @router.post(
        "/accounts/custom-field",
        summary="Define an account custom field",
        response_model=Envelope[list[CustomFieldRecord]],
        responses=CONFLICT_RESPONSE,
        openapi_extra=request_body(CreateCustomFieldRequest),
    )
    def create_custom_field(
        request: Request,
        who: Caller = Depends(caller),
        body: CreateCustomFieldRequest = Depends(json_body(CreateCustomFieldRequest)),
        db: Database = Depends(database),
    ) -> Response:
        field = custom_fields_service.create_field(
            db,
            workspace_id=who.workspace_id,
            label=body.label,
            label_type=body.labelType,
            description=body.description,
            options=body.options or [],
        )
        return envelope(request, [wire(field)])

    @router.delete(
        "/accounts/custom-fields/{key}",
        summary="Deactivate a custom field (extension; values are kept)",
        response_model=Envelope[MessageResult],
    )
    def deactivate_custom_field(
        request: Request, key: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        custom_fields_service.deactivate_field(db, workspace_id=who.workspace_id, key=key)
        return envelope(request, {"message": f"Custom field '{key}' deactivated"})

    return router
