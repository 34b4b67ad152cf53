"""`ReevoClient` / `AsyncReevoClient`: Surface V (`/api/v2`), the Reevo-compatible activities.

    with ReevoClient("http://127.0.0.1:8000", key) as reevo:
        logged = reevo.log_activity(activity_time=datetime.now(UTC), subject="Met at the booth",
                                    description="...", category="CONFERENCE", account_id=account.id)
        for activity in reevo.timeline(account_id=account.id):   # newest first, every page
            print(activity.ended_at, activity.type, activity.display_name)

Records are named by UUID: an account's, deal's or contact's `id` on Surface R. The key
goes in `Authorization: Bearer`. Errors are FastAPI-shaped (`{"detail": ...}`); a 422
whose items have `type: record_not_found` is an `Unprocessable` error naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Any, Self

import httpx

from abmhub.client.errors import ProtocolError
from abmhub.client.models import (
    ActivityRecord,
    Category,
    ManualActivityIn,
    TimelinePage,
    iso_timestamp,
)
from abmhub.client.transport import (
    DEFAULT_TIMEOUT,
    AsyncTransport,
    KeyAuth,
    RetryPolicy,
    SyncTransport,
    api_root,
)

PREFIX = "/api/v2"
TIMELINE_LIMIT = 200


def _log_body(
    *,
    activity_time: datetime | str,
    subject: str,
    description: str,
    category: Category,
    account_id: str | None,
    opportunity_id: str | None,
    contact_ids: Sequence[str] | None,
    sequence_id: str | None,
    pipeline_select_list_value_id: str | None,
) -> dict[str, Any]:
    metadata = ManualActivityIn(
        activity_time=activity_time, subject=subject, description=description, category=category
    ).wire()
    metadata.setdefault("category", category)
    attributes: dict[str, Any] = {"metadata": metadata}
    for name, value in (
        ("account_id", account_id),
        ("opportunity_id", opportunity_id),
        ("sequence_id", sequence_id),
        ("pipeline_select_list_value_id", pipeline_select_list_value_id),
    ):
        if value is not None:
            attributes[name] = str(value)
    if contact_ids is not None:
        attributes["contact_ids"] = [str(c) for c in contact_ids]
    return {"attributes": attributes}


def _query_body(
    *,
    account_id: str | None,
    contact_id: str | None,
    opportunity_id: str | None,
    created_from: datetime | str | None,
    created_to: datetime | str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    if account_id is None and contact_id is None and opportunity_id is None:
        raise ValueError("name at least one of account_id, contact_id or opportunity_id")
    if not 1 <= limit <= TIMELINE_LIMIT:
        raise ValueError(f"limit must be 1..{TIMELINE_LIMIT}, not {limit}")
    body: dict[str, Any] = {"limit": limit}
    for name, value in (("account_id", account_id), ("contact_id", contact_id), ("opportunity_id", opportunity_id)):
        if value is not None:
            body[name] = str(value)
    for name, moment in (("created_from", created_from), ("created_to", created_to)):
        if moment is not None:
            body[name] = iso_timestamp(moment)
    if cursor is not None:
        body["cursor"] = cursor
    return body


def _record(body: Any, what: str) -> ActivityRecord:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProtocolError(f'{what}: expected {{"data": ActivityObjectRecord}}')
    return ActivityRecord.model_validate(body["data"])


def _timeline_page(body: Any) -> TimelinePage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ProtocolError('POST /activity/_query: expected {"data": [...], "next_cursor": ...}')
    return TimelinePage([ActivityRecord.model_validate(r) for r in body["data"]], body.get("next_cursor"))


class _Common:
    base_url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class ReevoClient(_Common):
    """Surface V over a blocking httpx.Client (timeouts and retries as `RecotapClient`)."""

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
            self.base_url,
            KeyAuth("Authorization", f"Bearer {api_key}"),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            http=http,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def log_activity(
        self,
        *,
        activity_time: datetime | str,
        subject: str,
        description: str,
        category: Category = "OTHER",
        account_id: str | None = None,
        opportunity_id: str | None = None,
        contact_ids: Sequence[str] | None = None,
        sequence_id: str | None = None,
        pipeline_select_list_value_id: str | None = None,
    ) -> ActivityRecord:
        """POST /activity: log a manual activity; returns the stored record.

        Retried like every request. A manual activity has no idempotency key, so a retry
        after a lost answer (a timeout) may log it twice: give the client
        `retry=NO_RETRY` where that matters more than riding out a transient failure."""
        body = _log_body(
            activity_time=activity_time,
            subject=subject,
            description=description,
            category=category,
            account_id=account_id,
            opportunity_id=opportunity_id,
            contact_ids=contact_ids,
            sequence_id=sequence_id,
            pipeline_select_list_value_id=pipeline_select_list_value_id,
        )
        return _record(self._transport.request("POST", "activity", json=body), "POST /activity")

    def get_activity(self, activity_id: str) -> ActivityRecord:
        return _record(self._transport.request("GET", f"activity/{activity_id}"), "GET /activity/{id}")

    def timeline_page(
        self,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        opportunity_id: str | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TimelinePage:
        body = _query_body(
            account_id=account_id,
            contact_id=contact_id,
            opportunity_id=opportunity_id,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor,
        )
        return _timeline_page(self._transport.request("POST", "activity/_query", json=body))

    def timeline(
        self,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        opportunity_id: str | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        limit: int = TIMELINE_LIMIT,
    ) -> Iterator[ActivityRecord]:
        """Every activity of the timeline, newest first, page by page until `next_cursor` is null.
        `created_from` is inclusive, `created_to` exclusive (activity time)."""
        cursor: str | None = None
        while True:
            page = self.timeline_page(
                account_id=account_id,
                contact_id=contact_id,
                opportunity_id=opportunity_id,
                created_from=created_from,
                created_to=created_to,
                limit=limit,
                cursor=cursor,
            )
            yield from page.items
            if not page.next_cursor or not page.items or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def health(self) -> str:
        body = self._transport.request("GET", "health")
        return str(((body or {}).get("data") or {}).get("status", "unknown"))


class AsyncReevoClient(_Common):
    """Surface V over httpx.AsyncClient."""

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
            self.base_url,
            KeyAuth("Authorization", f"Bearer {api_key}"),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            http=http,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def log_activity(
        self,
        *,
        activity_time: datetime | str,
        subject: str,
        description: str,
        category: Category = "OTHER",
        account_id: str | None = None,
        opportunity_id: str | None = None,
        contact_ids: Sequence[str] | None = None,
        sequence_id: str | None = None,
        pipeline_select_list_value_id: str | None = None,
    ) -> ActivityRecord:
        body = _log_body(
            activity_time=activity_time,
            subject=subject,
            description=description,
            category=category,
            account_id=account_id,
            opportunity_id=opportunity_id,
            contact_ids=contact_ids,
            sequence_id=sequence_id,
            pipeline_select_list_value_id=pipeline_select_list_value_id,
        )
        return _record(await self._transport.request("POST", "activity", json=body), "POST /activity")

    async def get_activity(self, activity_id: str) -> ActivityRecord:
        return _record(await self._transport.request("GET", f"activity/{activity_id}"), "GET /activity/{id}")

    async def timeline_page(
        self,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        opportunity_id: str | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TimelinePage:
        body = _query_body(
            account_id=account_id,
            contact_id=contact_id,
            opportunity_id=opportunity_id,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor,
        )
        return _timeline_page(await self._transport.request("POST", "activity/_query", json=body))

    async def timeline(
        self,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        opportunity_id: str | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        limit: int = TIMELINE_LIMIT,
    ) -> AsyncIterator[ActivityRecord]:
        cursor: str | None = None
        while True:
            page = await self.timeline_page(
                account_id=account_id,
                contact_id=contact_id,
                opportunity_id=opportunity_id,
                created_from=created_from,
                created_to=created_to,
                limit=limit,
                cursor=cursor,
            )
            for record in page.items:
                yield record
            if not page.next_cursor or not page.items or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def health(self) -> str:
        body = await self._transport.request("GET", "health")
        return str(((body or {}).get("data") or {}).get("status", "unknown"))
