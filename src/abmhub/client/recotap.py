"""`RecotapClient` / `AsyncRecotapClient`: Surface R (`/api/v1`), against abmhub or the vendor.

    with RecotapClient("http://127.0.0.1:8000", key) as client:
        report = client.push_accounts(rows, upsert=True)         # any iterable, chunked by 100
        for account in client.iter_accounts(min_score=60): ...   # every page, until hasNextPage is false
        for account in client.delta_sync("accounts", state="sync-state.json"): ...

The base URL may be the server's root or its `/api/v1`. Lists are read with
`limit=1000` (the contract's maximum) unless told otherwise, and page on `hasNextPage`
only: a non-null `nextCursor` on the last page (as the live vendor sends) ends nothing
by itself. Lookups that answer a bare JSON array (deal stages, journey stages) are read
with or without the envelope.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Literal, Self

import httpx

from abmhub.client import bulk
from abmhub.client.bulk import ABORTING_ERRORS, BulkEndpoint, ChunkOutcome, PushReport
from abmhub.client.delta import AsyncDeltaPass, DeltaPass, SyncState, as_state
from abmhub.client.errors import ClientError, ProtocolError
from abmhub.client.models import (
    Account,
    AccountIn,
    AccountResult,
    CustomField,
    Deal,
    DealIn,
    DealResult,
    ExternalIdMapping,
    ExternalIdMappingResult,
    MissingExternalId,
    Page,
    Pipeline,
    PipelineIn,
    Result,
    SalesActivity,
    SalesActivityIn,
    SalesActivityResult,
    ScoreExplanation,
    Segment,
    SignalIn,
    SignalResult,
)
from abmhub.client.transport import (
    DEFAULT_TIMEOUT,
    AsyncTransport,
    KeyAuth,
    RetryPolicy,
    SyncTransport,
    api_root,
)

PREFIX = "/api/v1"
LIST_LIMIT = 1000
MAX_DOMAINS_FILTER = 100
MAX_MAPPINGS = 100

# Lists that take `lastSync`, and what their records are.
SYNCABLE: dict[str, tuple[str, type[Any]]] = {
    "accounts": ("accounts", Account),
    "deals": ("deals", Deal),
    "sales-activities": ("sales-activities", SalesActivity),
}
Resource = Literal["accounts", "deals", "sales-activities"]

AccountItems = Iterable[AccountIn | Mapping[str, Any]]
DealItems = Iterable[DealIn | Mapping[str, Any]]
ActivityItems = Iterable[SalesActivityIn | Mapping[str, Any]]
SignalItems = Iterable[SignalIn | Mapping[str, Any]]


# --- the wire, without I/O ---------------------------------------------------------------------


def unwrap(body: Any) -> Any:
    """Surface R's `data` out of its envelope; a bare array (observed on lookups) as it is."""
    if isinstance(body, dict) and "data" in body and ("statusCode" in body or "timestamp" in body):
        return body["data"]
    return body


def read_page(path: str, data: Any) -> Page[dict[str, Any]]:
    """A list page; a bare array is a single, last page."""
    if isinstance(data, list):
        return Page(items=data)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ProtocolError(f"GET {path}: expected a page {{data, nextCursor, hasNextPage, syncTimestamp}}")
    return Page(
        items=data["data"],
        next_cursor=data.get("nextCursor"),
        has_next_page=data.get("hasNextPage") is True,
        sync_timestamp=data.get("syncTimestamp"),
    )


def next_cursor(path: str, page: Page[Any], previous: str | None) -> str | None:
    """The cursor of the next page, None when this was the last one (`hasNextPage` decides)."""
    if not page.has_next_page:
        return None
    if not page.next_cursor:
        raise ProtocolError(f"GET {path}: hasNextPage is true but nextCursor is empty")
    if page.next_cursor == previous:
        raise ProtocolError(f"GET {path}: the server returned the same nextCursor twice")
    return page.next_cursor


def list_params(limit: int, last_sync: str | None, filters: Mapping[str, Any]) -> dict[str, Any]:
    if not 1 <= limit <= LIST_LIMIT:
        raise ValueError(f"limit must be 1..{LIST_LIMIT}, not {limit}")
    params: dict[str, Any] = {"limit": limit}
    if last_sync is not None:
        params["lastSync"] = last_sync
    params.update({k: v for k, v in filters.items() if v is not None})
    return params


def account_filters(
    *,
    domains: Sequence[str] | None = None,
    journey_stage: str | None = None,
    min_score: int | None = None,
    segment_id: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    if domains is not None and len(domains) > MAX_DOMAINS_FILTER:
        raise ValueError(f"at most {MAX_DOMAINS_FILTER} domains per filter")
    return {
        "domains": json.dumps(list(domains)) if domains is not None else None,
        "journeyStage": journey_stage,
        "minScore": min_score,
        "segmentId": segment_id,
        "tag": tag,
    }


def domain_batches(domains: Sequence[str] | None) -> list[Sequence[str] | None]:
    if domains is None:
        return [None]
    return [domains[i : i + MAX_DOMAINS_FILTER] for i in range(0, len(domains), MAX_DOMAINS_FILTER)] or [[]]


def account_push_extra(upsert: bool, segment_id: str | None) -> dict[str, Any]:
    # Only what differs from the defaults, so a server that lacks an extension is not bothered.
    extra: dict[str, Any] = {}
    if segment_id is not None:
        extra["segmentId"] = segment_id
    if upsert:
        extra["upsert"] = True
    return extra


def mapping_payloads(mappings: Iterable[ExternalIdMapping | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [(m if isinstance(m, ExternalIdMapping) else ExternalIdMapping.model_validate(m)).wire() for m in mappings]


def merge_mappings(results: Sequence[Any]) -> ExternalIdMappingResult:
    merged = ExternalIdMappingResult(matched=0, updated=0, notFound=[])
    for data in results:
        part = ExternalIdMappingResult.model_validate(data)
        merged.matched += part.matched
        merged.updated += part.updated
        merged.notFound.extend(part.notFound)
    return merged


def pipeline_payloads(pipelines: Iterable[PipelineIn | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [(p if isinstance(p, PipelineIn) else PipelineIn.model_validate(p)).wire() for p in pipelines]


def syncable(resource: str) -> tuple[str, type[Any]]:
    try:
        return SYNCABLE[resource]
    except KeyError:
        raise ValueError(f"delta sync works on {', '.join(SYNCABLE)}, not {resource!r}") from None


class _Common:
    base_url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


# --- sync ----------------------------------------------------------------------------------------


class RecotapClient(_Common):
    """Surface R over a blocking httpx.Client. Use it as a context manager, or `close()` it.

    timeout  seconds per request (or an httpx.Timeout); connecting gets at most 10 s
    retry    how 429/5xx and connection failures are retried (`RetryPolicy`; NO_RETRY to turn off)
    http     an httpx.Client of your own (proxies, certificates); its base_url and auth are set here
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = api_root(base_url, PREFIX)
        self._transport = SyncTransport(
            self.base_url, KeyAuth("X-Api-Key", api_key), timeout=timeout, retry=retry or RetryPolicy(), http=http
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    # --- plumbing --------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        """Any Surface R call; returns its `data` (or a bare array as it is). Raises ApiError & co."""
        return unwrap(self._transport.request(method, path.lstrip("/"), params=dict(params or {}), json=json))

    def pages(
        self, path: str, *, limit: int = LIST_LIMIT, last_sync: str | None = None, **filters: Any
    ) -> Iterator[Page[dict[str, Any]]]:
        """Every page of a list, as raw records; stops when `hasNextPage` is false."""
        params = list_params(limit, last_sync, filters)
        cursor: str | None = None
        while True:
            page = read_page(
                path, self.request("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            )
            yield page
            cursor = next_cursor(path, page, cursor)
            if cursor is None:
                return

    def _records(self, path: str, model: type[Any], **kwargs: Any) -> Iterator[Any]:
        for page in self.pages(path, **kwargs):
            for raw in page.items:
                yield model.model_validate(raw)

    def _push(
        self,
        endpoint: BulkEndpoint[Result],
        items: Iterable[Any],
        chunk_size: int | None,
        extra: Mapping[str, Any],
        read_ahead: int = 0,
    ) -> Iterator[ChunkOutcome[Result]]:
        size = bulk.chunk_size_for(endpoint, chunk_size)
        for prepared in bulk.prepared_chunks(endpoint, items, size, read_ahead):
            if not prepared.payloads:
                yield bulk.local_only(prepared)
                continue
            try:
                data = self.request("POST", endpoint.path, json=prepared.body(extra))
            except ABORTING_ERRORS:
                raise
            except ClientError as exc:
                yield bulk.fail(prepared, exc)
            else:
                yield bulk.settle(prepared, data)

    @staticmethod
    def _collect(outcomes: Iterable[ChunkOutcome[Result]]) -> PushReport[Result]:
        report: PushReport[Result] = PushReport()
        for outcome in outcomes:
            report.add(outcome)
        return report

    # --- accounts --------------------------------------------------------------------------

    def iter_push_accounts(
        self,
        accounts: AccountItems,
        *,
        upsert: bool = False,
        segment_id: str | None = None,
        chunk_size: int | None = None,
        read_ahead: int = 0,
    ) -> Iterator[ChunkOutcome[AccountResult]]:
        """Push accounts chunk by chunk (100 per request), yielding each chunk's outcome as it
        comes: constant memory however many accounts there are.

        `read_ahead=N` builds up to N chunks ahead in a background thread while a request
        is in flight (see `bulk.prepared_chunks`; not for thread-bound iterables)."""
        return self._push(bulk.ACCOUNTS, accounts, chunk_size, account_push_extra(upsert, segment_id), read_ahead)

    def push_accounts(
        self,
        accounts: AccountItems,
        *,
        upsert: bool = False,
        segment_id: str | None = None,
        chunk_size: int | None = None,
        read_ahead: int = 0,
    ) -> PushReport[AccountResult]:
        """Push accounts; one result per account, in order, and the summary.

        Without `upsert` a known domain is `failed` (with the existing account's rtp_aid);
        with it, the account is `updated`. `segment_id` adds every stored account to a static segment.
        """
        return self._collect(
            self.iter_push_accounts(
                accounts, upsert=upsert, segment_id=segment_id, chunk_size=chunk_size, read_ahead=read_ahead
            )
        )

    def update_account(self, rtp_aid: str, **changes: Any) -> None:
        """PUT /accounts/:rtp_aid with any of customFields, name, shortName, linkedinUrl, tags, externalId."""
        self.request("PUT", f"accounts/{rtp_aid}", json=changes)

    def iter_accounts(
        self,
        *,
        last_sync: str | None = None,
        limit: int = LIST_LIMIT,
        domains: Sequence[str] | None = None,
        journey_stage: str | None = None,
        min_score: int | None = None,
        segment_id: str | None = None,
        tag: str | None = None,
    ) -> Iterator[Account]:
        """Every account (changed after `last_sync`, when given) matching the filters.
        More than 100 `domains` are looked up 100 at a time."""
        for batch in domain_batches(domains):
            filters = account_filters(
                domains=batch, journey_stage=journey_stage, min_score=min_score, segment_id=segment_id, tag=tag
            )
            yield from self._records("accounts", Account, limit=limit, last_sync=last_sync, **filters)

    def map_external_ids(self, mappings: Iterable[ExternalIdMapping | Mapping[str, Any]]) -> ExternalIdMappingResult:
        """PATCH /accounts/external-ids, 100 mappings per request; the counts are summed."""
        payloads = mapping_payloads(mappings)
        return merge_mappings(
            [
                self.request("PATCH", "accounts/external-ids", json={"mappings": payloads[i : i + MAX_MAPPINGS]})
                for i in range(0, len(payloads), MAX_MAPPINGS)
            ]
        )

    def missing_external_ids(self, *, limit: int = 100) -> list[MissingExternalId]:
        return [
            MissingExternalId.model_validate(r)
            for r in self.request("GET", "accounts/missing-external-ids", params={"limit": limit})
        ]

    def custom_fields(self) -> list[CustomField]:
        return [CustomField.model_validate(r) for r in self.request("GET", "accounts/custom-fields")]

    def create_custom_field(
        self, label: str, label_type: str, *, description: str | None = None, options: Sequence[str] | None = None
    ) -> CustomField:
        body: dict[str, Any] = {"label": label, "labelType": label_type}
        if description is not None:
            body["description"] = description
        if options is not None:
            body["options"] = list(options)
        created = self.request("POST", "accounts/custom-field", json=body)
        return CustomField.model_validate(created[0] if isinstance(created, list) else created)

    def score(self, rtp_aid: str) -> ScoreExplanation:
        """Why an account scores what it does (abmhub extension)."""
        return ScoreExplanation.model_validate(self.request("GET", f"accounts/{rtp_aid}/score"))

    # --- deals -----------------------------------------------------------------------------

    def iter_push_deals(
        self, deals: DealItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> Iterator[ChunkOutcome[DealResult]]:
        return self._push(bulk.DEALS, deals, chunk_size, {}, read_ahead)

    def push_deals(
        self, deals: DealItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> PushReport[DealResult]:
        """Upsert deals by externalDealId (100 per request); results are `upserted` or `failed`."""
        return self._collect(self.iter_push_deals(deals, chunk_size=chunk_size, read_ahead=read_ahead))

    def iter_deals(self, *, last_sync: str | None = None, limit: int = LIST_LIMIT) -> Iterator[Deal]:
        return self._records("deals", Deal, limit=limit, last_sync=last_sync)

    def create_pipelines(self, pipelines: Iterable[PipelineIn | Mapping[str, Any]]) -> list[str]:
        """POST /deal-stages (create-only, all or nothing); returns the created pipelineIds."""
        data = self.request("POST", "deal-stages", json={"pipelines": pipeline_payloads(pipelines)})
        return [r["pipelineId"] for r in data.get("results", [])]

    def deal_stages(self) -> list[Pipeline]:
        return [Pipeline.model_validate(p) for p in self.request("GET", "deal-stages")]

    def journey_stages(self) -> list[str]:
        return list(self.request("GET", "journey-stages"))

    # --- sales activities ------------------------------------------------------------------

    def iter_push_sales_activities(
        self, activities: ActivityItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> Iterator[ChunkOutcome[SalesActivityResult]]:
        return self._push(bulk.SALES_ACTIVITIES, activities, chunk_size, {}, read_ahead)

    def push_sales_activities(
        self, activities: ActivityItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> PushReport[SalesActivityResult]:
        """Create calls and emails (50 per request). A known externalActivityId is `failed`;
        an activityType other than call/email is `skipped`."""
        return self._collect(self.iter_push_sales_activities(activities, chunk_size=chunk_size, read_ahead=read_ahead))

    def iter_sales_activities(
        self, *, domain: str | None = None, last_sync: str | None = None, limit: int = LIST_LIMIT
    ) -> Iterator[SalesActivity]:
        return self._records("sales-activities", SalesActivity, limit=limit, last_sync=last_sync, domain=domain)

    # --- signals ---------------------------------------------------------------------------

    def iter_push_signals(
        self, signals: SignalItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> Iterator[ChunkOutcome[SignalResult]]:
        return self._push(bulk.SIGNALS, signals, chunk_size, {}, read_ahead)

    def push_signals(
        self, signals: SignalItems, *, chunk_size: int | None = None, read_ahead: int = 0
    ) -> PushReport[SignalResult]:
        """Push intent signals (abmhub extension, 1000 per request); a known externalSignalId is `skipped`."""
        return self._collect(self.iter_push_signals(signals, chunk_size=chunk_size, read_ahead=read_ahead))

    # --- segments --------------------------------------------------------------------------

    def iter_segments(self, *, limit: int = LIST_LIMIT) -> Iterator[Segment]:
        return self._records("segments", Segment, limit=limit)

    def iter_segment_accounts(self, segment_id: str, *, limit: int = LIST_LIMIT) -> Iterator[Account]:
        return self._records(f"segments/{segment_id}/accounts", Account, limit=limit)

    # --- delta sync ------------------------------------------------------------------------

    def delta_sync(
        self,
        resource: Resource = "accounts",
        *,
        state: SyncState | str | os.PathLike[str],
        full: bool = False,
        limit: int = LIST_LIMIT,
        **filters: Any,
    ) -> DeltaPass[Any]:
        """One delta-sync pass over `resource`: iterate it; the pass's syncTimestamp is saved
        to `state` (a file path, or any object with load()/save()) once it has been read to
        the end. The first pass (nothing saved yet), or `full=True`, reads everything."""
        path, model = syncable(resource)
        if resource == "accounts":
            filters = account_filters(**filters)

        def fetch(last_sync: str | None) -> Iterator[Page[dict[str, Any]]]:
            return self.pages(path, limit=limit, last_sync=last_sync, **filters)

        return DeltaPass(fetch, model.model_validate, as_state(state, resource), full=full)


# --- async ---------------------------------------------------------------------------------------


async def _achunked(items: Iterable[Any] | AsyncIterable[Any], size: int) -> AsyncIterator[tuple[int, list[Any]]]:
    if not isinstance(items, AsyncIterable):
        for pair in bulk.chunked(items, size):
            yield pair
        return
    chunk: list[Any] = []
    start = 0
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield start, chunk
            start += size
            chunk = []
    if chunk:
        yield start, chunk


class AsyncRecotapClient(_Common):
    """Surface R over httpx.AsyncClient: the same methods as `RecotapClient`, awaited.

    Pushes take sync or async iterables; `concurrency` > 1 keeps that many chunks in
    flight (results still come in item order; chunks may then be applied by the server in
    any order, so keep it at 1 when a later item must win over an earlier one).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = api_root(base_url, PREFIX)
        self._transport = AsyncTransport(
            self.base_url, KeyAuth("X-Api-Key", api_key), timeout=timeout, retry=retry or RetryPolicy(), http=http
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # --- plumbing --------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        return unwrap(await self._transport.request(method, path.lstrip("/"), params=dict(params or {}), json=json))

    async def pages(
        self, path: str, *, limit: int = LIST_LIMIT, last_sync: str | None = None, **filters: Any
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        params = list_params(limit, last_sync, filters)
        cursor: str | None = None
        while True:
            data = await self.request("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            page = read_page(path, data)
            yield page
            cursor = next_cursor(path, page, cursor)
            if cursor is None:
                return

    async def _records(self, path: str, model: type[Any], **kwargs: Any) -> AsyncIterator[Any]:
        async for page in self.pages(path, **kwargs):
            for raw in page.items:
                yield model.model_validate(raw)

    async def _send(self, prepared: bulk.PreparedChunk[Result], extra: Mapping[str, Any]) -> ChunkOutcome[Result]:
        if not prepared.payloads:
            return bulk.local_only(prepared)
        try:
            data = await self.request("POST", prepared.endpoint.path, json=prepared.body(extra))
        except ABORTING_ERRORS:
            raise
        except ClientError as exc:
            return bulk.fail(prepared, exc)
        return bulk.settle(prepared, data)

    async def _push(
        self,
        endpoint: BulkEndpoint[Result],
        items: Iterable[Any] | AsyncIterable[Any],
        chunk_size: int | None,
        extra: Mapping[str, Any],
        concurrency: int,
    ) -> AsyncIterator[ChunkOutcome[Result]]:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        size = bulk.chunk_size_for(endpoint, chunk_size)
        in_flight: deque[asyncio.Task[ChunkOutcome[Result]]] = deque()
        try:
            async for start, chunk in _achunked(items, size):
                in_flight.append(asyncio.ensure_future(self._send(bulk.prepare(endpoint, start, chunk), extra)))
                if len(in_flight) >= concurrency:
                    yield await in_flight.popleft()
            while in_flight:
                yield await in_flight.popleft()
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    @staticmethod
    async def _collect(outcomes: AsyncIterator[ChunkOutcome[Result]]) -> PushReport[Result]:
        report: PushReport[Result] = PushReport()
        async for outcome in outcomes:
            report.add(outcome)
        return report

    # --- accounts --------------------------------------------------------------------------

    def iter_push_accounts(
        self,
        accounts: AccountItems | AsyncIterable[Any],
        *,
        upsert: bool = False,
        segment_id: str | None = None,
        chunk_size: int | None = None,
        concurrency: int = 1,
    ) -> AsyncIterator[ChunkOutcome[AccountResult]]:
        return self._push(bulk.ACCOUNTS, accounts, chunk_size, account_push_extra(upsert, segment_id), concurrency)

    async def push_accounts(
        self,
        accounts: AccountItems | AsyncIterable[Any],
        *,
        upsert: bool = False,
        segment_id: str | None = None,
        chunk_size: int | None = None,
        concurrency: int = 1,
    ) -> PushReport[AccountResult]:
        return await self._collect(
            self.iter_push_accounts(
                accounts, upsert=upsert, segment_id=segment_id, chunk_size=chunk_size, concurrency=concurrency
            )
        )

    async def update_account(self, rtp_aid: str, **changes: Any) -> None:
        await self.request("PUT", f"accounts/{rtp_aid}", json=changes)

    async def iter_accounts(
        self,
        *,
        last_sync: str | None = None,
        limit: int = LIST_LIMIT,
        domains: Sequence[str] | None = None,
        journey_stage: str | None = None,
        min_score: int | None = None,
        segment_id: str | None = None,
        tag: str | None = None,
    ) -> AsyncIterator[Account]:
        for batch in domain_batches(domains):
            filters = account_filters(
                domains=batch, journey_stage=journey_stage, min_score=min_score, segment_id=segment_id, tag=tag
            )
            async for account in self._records("accounts", Account, limit=limit, last_sync=last_sync, **filters):
                yield account

    async def map_external_ids(
        self, mappings: Iterable[ExternalIdMapping | Mapping[str, Any]]
    ) -> ExternalIdMappingResult:
        payloads = mapping_payloads(mappings)
        return merge_mappings(
            [
                await self.request("PATCH", "accounts/external-ids", json={"mappings": payloads[i : i + MAX_MAPPINGS]})
                for i in range(0, len(payloads), MAX_MAPPINGS)
            ]
        )

    async def missing_external_ids(self, *, limit: int = 100) -> list[MissingExternalId]:
        data = await self.request("GET", "accounts/missing-external-ids", params={"limit": limit})
        return [MissingExternalId.model_validate(r) for r in data]

    async def custom_fields(self) -> list[CustomField]:
        return [CustomField.model_validate(r) for r in await self.request("GET", "accounts/custom-fields")]

    async def create_custom_field(
        self, label: str, label_type: str, *, description: str | None = None, options: Sequence[str] | None = None
    ) -> CustomField:
        body: dict[str, Any] = {"label": label, "labelType": label_type}
        if description is not None:
            body["description"] = description
        if options is not None:
            body["options"] = list(options)
        created = await self.request("POST", "accounts/custom-field", json=body)
        return CustomField.model_validate(created[0] if isinstance(created, list) else created)

    async def score(self, rtp_aid: str) -> ScoreExplanation:
        return ScoreExplanation.model_validate(await self.request("GET", f"accounts/{rtp_aid}/score"))

    # --- deals -----------------------------------------------------------------------------

    def iter_push_deals(
        self, deals: DealItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> AsyncIterator[ChunkOutcome[DealResult]]:
        return self._push(bulk.DEALS, deals, chunk_size, {}, concurrency)

    async def push_deals(
        self, deals: DealItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> PushReport[DealResult]:
        return await self._collect(self.iter_push_deals(deals, chunk_size=chunk_size, concurrency=concurrency))

    def iter_deals(self, *, last_sync: str | None = None, limit: int = LIST_LIMIT) -> AsyncIterator[Deal]:
        return self._records("deals", Deal, limit=limit, last_sync=last_sync)

    async def create_pipelines(self, pipelines: Iterable[PipelineIn | Mapping[str, Any]]) -> list[str]:
        data = await self.request("POST", "deal-stages", json={"pipelines": pipeline_payloads(pipelines)})
        return [r["pipelineId"] for r in data.get("results", [])]

    async def deal_stages(self) -> list[Pipeline]:
        return [Pipeline.model_validate(p) for p in await self.request("GET", "deal-stages")]

    async def journey_stages(self) -> list[str]:
        return list(await self.request("GET", "journey-stages"))

    # --- sales activities ------------------------------------------------------------------

    def iter_push_sales_activities(
        self, activities: ActivityItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> AsyncIterator[ChunkOutcome[SalesActivityResult]]:
        return self._push(bulk.SALES_ACTIVITIES, activities, chunk_size, {}, concurrency)

    async def push_sales_activities(
        self, activities: ActivityItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> PushReport[SalesActivityResult]:
        return await self._collect(
            self.iter_push_sales_activities(activities, chunk_size=chunk_size, concurrency=concurrency)
        )

    def iter_sales_activities(
        self, *, domain: str | None = None, last_sync: str | None = None, limit: int = LIST_LIMIT
    ) -> AsyncIterator[SalesActivity]:
        return self._records("sales-activities", SalesActivity, limit=limit, last_sync=last_sync, domain=domain)

    # --- signals ---------------------------------------------------------------------------

    def iter_push_signals(
        self, signals: SignalItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> AsyncIterator[ChunkOutcome[SignalResult]]:
        return self._push(bulk.SIGNALS, signals, chunk_size, {}, concurrency)

    async def push_signals(
        self, signals: SignalItems | AsyncIterable[Any], *, chunk_size: int | None = None, concurrency: int = 1
    ) -> PushReport[SignalResult]:
        return await self._collect(self.iter_push_signals(signals, chunk_size=chunk_size, concurrency=concurrency))

    # --- segments --------------------------------------------------------------------------

    def iter_segments(self, *, limit: int = LIST_LIMIT) -> AsyncIterator[Segment]:
        return self._records("segments", Segment, limit=limit)

    def iter_segment_accounts(self, segment_id: str, *, limit: int = LIST_LIMIT) -> AsyncIterator[Account]:
        return self._records(f"segments/{segment_id}/accounts", Account, limit=limit)

    # --- delta sync ------------------------------------------------------------------------

    def delta_sync(
        self,
        resource: Resource = "accounts",
        *,
        state: SyncState | str | os.PathLike[str],
        full: bool = False,
        limit: int = LIST_LIMIT,
        **filters: Any,
    ) -> AsyncDeltaPass[Any]:
        """As `RecotapClient.delta_sync`; iterate it with `async for`."""
        path, model = syncable(resource)
        if resource == "accounts":
            filters = account_filters(**filters)

        def fetch(last_sync: str | None) -> AsyncIterator[Page[dict[str, Any]]]:
            return self.pages(path, limit=limit, last_sync=last_sync, **filters)

        return AsyncDeltaPass(fetch, model.model_validate, as_state(state, resource), full=full)
