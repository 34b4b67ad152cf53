"""Small helpers shared by the black-box contract tests.

Everything here is written from `API.md` (the contract), not from the implementation:
envelope checks (§1.3), error shapes, and a few builders for account pushes.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24_RE = re.compile(r"^[0-9a-f]{24}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

REASON = {
    400: "Bad Request",
    401: "Unauthorized access",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
}

# Every key of an account record (§2.1, §6.15: keys are always present).
ACCOUNT_KEYS = {
    "rtp_aid",
    "id",
    "externalId",
    "name",
    "domain",
    "shortName",
    "linkedinUrl",
    "tags",
    "rtp_account_score",
    "rtp_journey_stage",
    "rtp_advertising_activity_score",
    "rtp_website_intent_score",
    "rtp_g2_intent_score",
    "rtp_bombora_intent_score",
    "rtp_last_account_date",
    "customFields",
    "segmentIds",
}
SCORE_KEYS = (
    "rtp_account_score",
    "rtp_advertising_activity_score",
    "rtp_website_intent_score",
    "rtp_g2_intent_score",
    "rtp_bombora_intent_score",
)


# --------------------------------------------------------------------------- identifiers


def unique_domain(prefix: str = "acct") -> str:
    """A domain that is already normalised and unique across the whole run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}.com"


def unique_name(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def random_hex24() -> str:
    return secrets.token_hex(12)


def parse_ts(value: str) -> datetime:
    assert isinstance(value, str) and TIMESTAMP_RE.match(value), f"not an ISO 8601 UTC ms timestamp: {value!r}"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --------------------------------------------------------------------------- envelope


def describe(r: httpx.Response) -> str:
    return f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:2000]}"


def envelope(r: httpx.Response, status: int, path: str | None = None) -> dict[str, Any]:
    """Assert the §1.3 envelope and the HTTP status; return the parsed body."""
    assert r.status_code == status, describe(r)
    assert "application/json" in r.headers.get("content-type", ""), describe(r)
    body = r.json()
    assert isinstance(body, dict), f"envelope must be a JSON object: {describe(r)}"
    assert body.get("statusCode") == status, f"statusCode must equal the HTTP status: {describe(r)}"
    assert "timestamp" in body and TIMESTAMP_RE.match(str(body["timestamp"])), f"bad timestamp: {describe(r)}"
    assert "path" in body, describe(r)
    assert "data" in body, f"envelope must carry 'data': {describe(r)}"
    if path is not None:
        assert body["path"] == path, f"path: expected {path!r}, got {body['path']!r}"
    return body


def ok(r: httpx.Response, path: str | None = None) -> Any:
    """Assert a 200 success envelope and return its `data`."""
    body = envelope(r, 200, path)
    return body["data"]


def error(
    r: httpx.Response,
    status: int,
    custom_message: str | None,
    message: str | None = None,
) -> dict[str, Any]:
    """Assert a business/auth error envelope (`data: null`, `message`, `customMessage`)."""
    body = envelope(r, status)
    assert body["data"] is None, f"error data must be null: {describe(r)}"
    assert body.get("message") == (message or REASON[status]), describe(r)
    if custom_message is not None:
        assert body.get("customMessage") == custom_message, describe(r)
    return body


def error_prefix(r: httpx.Response, status: int, prefix: str) -> dict[str, Any]:
    body = error(r, status, None)
    cm = body.get("customMessage")
    assert isinstance(cm, str) and cm.startswith(prefix), f"customMessage should start with {prefix!r}: {describe(r)}"
    return body


def not_found_route(r: httpx.Response, method: str, path: str, full_path: str | None = None) -> None:
    """§6.3: unknown route → 404 with `message: "Cannot <METHOD> <path>"`."""
    body = envelope(r, 404, full_path if full_path is not None else path)
    assert body["message"] == f"Cannot {method} {path}", describe(r)
    assert body["data"] is None, describe(r)
    assert "customMessage" not in body, f"unknown-route errors carry no customMessage: {describe(r)}"


def validation_errors(r: httpx.Response) -> list[dict[str, Any]]:
    """Assert a §1.3 validation error; return the list of `{property, path, constraints}`."""
    body = envelope(r, 400)
    assert body.get("message") == "Bad Request", describe(r)
    assert "customMessage" not in body, f"validation errors carry no customMessage: {describe(r)}"
    errors = body["data"]
    assert isinstance(errors, list) and errors, f"validation data must be a non-empty array: {describe(r)}"
    for e in errors:
        assert isinstance(e, dict), describe(r)
        assert {"property", "path", "constraints"} <= set(e), f"validation item keys: {e}"
        assert isinstance(e["path"], str) and isinstance(e["property"], str), e
        assert e["property"] == e["path"].split(".")[-1], f"property must be the leaf of path: {e}"
        assert isinstance(e["constraints"], dict) and e["constraints"], e
        assert all(isinstance(v, str) for v in e["constraints"].values()), e
    return errors


def errors_at(errors: list[dict[str, Any]], path: str) -> dict[str, str]:
    """All constraints reported at `path` (merged)."""
    found: dict[str, str] = {}
    for e in errors:
        if e["path"] == path:
            found.update(e["constraints"])
    assert found, f"no validation error at path {path!r}; got {json.dumps(errors)}"
    return found


def assert_constraint(r_or_errors, path: str, key: str | None, text: str | None) -> None:
    """Assert that a validation error at `path` has constraint `key` (when given) with `text` (when given)."""
    errors = r_or_errors if isinstance(r_or_errors, list) else validation_errors(r_or_errors)
    cons = errors_at(errors, path)
    if key is not None:
        assert key in cons, f"expected constraint {key!r} at {path!r}; got {cons}"
        if text is not None:
            assert cons[key] == text, f"constraint {key!r} at {path!r}: expected {text!r}, got {cons[key]!r}"
    elif text is not None:
        assert text in cons.values(), f"expected constraint text {text!r} at {path!r}; got {cons}"


# --------------------------------------------------------------------------- accounts


def account(domain: str | None = None, name: str | None = None, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "domain": unique_domain() if domain is None else domain,
        "name": unique_name("Co") if name is None else name,
    }
    item.update(fields)
    return item


def push_raw(api: httpx.Client, accounts: list[dict[str, Any]], prefix: str = "", **extra: Any) -> httpx.Response:
    return api.post(f"{prefix}/accounts", json={"accounts": accounts, **extra})


def push(api: httpx.Client, accounts: list[dict[str, Any]], prefix: str = "", **extra: Any) -> dict[str, Any]:
    """POST /accounts; assert the bulk-write shape (§1.4); return `data`."""
    r = push_raw(api, accounts, prefix, **extra)
    data = ok(r, f"/api/v1{prefix}/accounts")
    assert set(data) >= {"results", "summary"}, describe(r)
    results, summary = data["results"], data["summary"]
    assert len(results) == len(accounts), f"one result per item, in request order: {describe(r)}"
    for item in results:
        assert item["status"] in ("created", "updated", "failed"), item
        assert "rtp_aid" in item and "domain" in item, item
        if item["status"] == "failed":
            assert isinstance(item.get("error"), str) and item["error"], item
        else:
            assert isinstance(item["rtp_aid"], str) and HEX24_RE.match(item["rtp_aid"]), item
            assert item.get("error") is None, item
    counts = {s: sum(1 for i in results if i["status"] == s) for s in ("created", "updated", "failed")}
    assert {k: summary.get(k) for k in ("total", "created", "updated", "failed")} == {
        "total": len(accounts),
        **counts,
    }, f"summary does not match results: {describe(r)}"
    return data


def push_ok(api: httpx.Client, accounts: list[dict[str, Any]], prefix: str = "", **extra: Any) -> list[dict[str, Any]]:
    """Push accounts that must all be created; return the results."""
    data = push(api, accounts, prefix, **extra)
    bad = [i for i in data["results"] if i["status"] != "created"]
    assert not bad, f"expected every item created: {bad}"
    return data["results"]


def create_accounts(api: httpx.Client, n: int, prefix: str = "bulk", **fields: Any) -> list[dict[str, Any]]:
    """Create n accounts in batches of 100; return their push results in creation order."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        batch = [account(unique_domain(prefix), **fields) for _ in range(min(100, n - len(out)))]
        out.extend(push_ok(api, batch))
    return out


def page(api: httpx.Client, path: str = "/accounts", **params: Any) -> dict[str, Any]:
    """One page of a §1.5 list; asserts the page shape and returns `data`."""
    r = api.get(path, params=params)
    data = ok(r)
    assert isinstance(data, dict) and {"data", "nextCursor", "hasNextPage", "syncTimestamp"} <= set(data), describe(r)
    assert isinstance(data["data"], list), describe(r)
    assert isinstance(data["hasNextPage"], bool), describe(r)
    assert TIMESTAMP_RE.match(str(data["syncTimestamp"])), f"syncTimestamp format: {describe(r)}"
    if data["data"]:
        assert isinstance(data["nextCursor"], str) and data["nextCursor"], (
            f"nextCursor non-null on a page with rows: {describe(r)}"
        )
    else:
        assert data["nextCursor"] is None, f"nextCursor null on an empty page: {describe(r)}"
        assert data["hasNextPage"] is False, describe(r)
    return data


def list_pass(
    api: httpx.Client, path: str = "/accounts", max_pages: int = 50, **params: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow cursors until hasNextPage is false; return (rows, pages)."""
    rows: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(max_pages):
        p = page(api, path, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(p)
        rows.extend(p["data"])
        if not p["hasNextPage"]:
            return rows, pages
        cursor = p["nextCursor"]
    raise AssertionError(f"pagination did not end within {max_pages} pages")


def all_accounts(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows, _ = list_pass(api, limit=1000, **params)
    return rows


def accounts_by_domain(api: httpx.Client, domains: Iterable[str]) -> dict[str, dict[str, Any]]:
    """GET /accounts?domains=[...] → {domain: record}."""
    domains = list(domains)
    p = page(api, "/accounts", domains=json.dumps(domains), limit=1000)
    return {row["domain"]: row for row in p["data"]}


def get_account(api: httpx.Client, domain: str) -> dict[str, Any]:
    found = accounts_by_domain(api, [domain])
    assert domain in found, f"account {domain!r} not found via GET /accounts?domains"
    return found[domain]


def assert_account_record(rec: dict[str, Any]) -> None:
    missing = ACCOUNT_KEYS - set(rec)
    assert not missing, f"account record lacks keys {sorted(missing)}: {rec}"
    assert HEX24_RE.match(rec["rtp_aid"]), rec
    assert UUID_RE.match(rec["id"]), rec
    assert isinstance(rec["tags"], list), rec
    assert isinstance(rec["customFields"], dict), rec
    assert isinstance(rec["segmentIds"], list), rec
    parse_ts(rec["rtp_last_account_date"])


# --------------------------------------------------------------------------- other resources


def create_field(
    api: httpx.Client, label: str, label_type: str = "singleLineText", prefix: str = "", **extra: Any
) -> dict[str, Any]:
    r = api.post(f"{prefix}/accounts/custom-field", json={"label": label, "labelType": label_type, **extra})
    data = ok(r, f"/api/v1{prefix}/accounts/custom-field")
    assert isinstance(data, list) and len(data) == 1, f"data must be an array holding the created field: {describe(r)}"
    return data[0]


def field_key(label: str) -> str:
    """§2.7 key derivation."""
    return label.replace(" ", "_").upper() + "_C"


def create_segment(
    cli, workspace_name: str, type_: str = "static", status: str = "active", name: str | None = None
) -> str:
    proc = cli(
        "segments",
        "create",
        "--workspace",
        workspace_name,
        "--name",
        name or unique_name("Seg"),
        "--type",
        type_,
        "--status",
        status,
        "--quiet",
    )
    assert proc.returncode == 0, (
        f"segments create failed: rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    )
    seg_id = proc.stdout.strip()
    assert HEX24_RE.match(seg_id), f"segments create --quiet must print only a 24-hex id, got {proc.stdout!r}"
    return seg_id


def client_for(server, key: str | None, base: str = "/api/v1") -> httpx.Client:
    headers = {"X-Api-Key": key} if key is not None else {}
    return httpx.Client(base_url=f"{server.base_url}{base}", headers=headers, timeout=30)


def no_stack_trace(r: httpx.Response) -> None:
    text = r.text
    for needle in ("Traceback", 'File "', "sqlalchemy.", "psycopg", "sqlite3."):
        assert needle not in text, f"response leaks internals ({needle!r}): {describe(r)}"


# --------------------------------------------------------------------------- CLI


def create_key(cli, workspace_name: str, user_email: str) -> str:
    """`abmhub keys create --workspace W --user EMAIL --quiet` → the key alone on stdout (§5)."""
    proc = cli("keys", "create", "--workspace", workspace_name, "--user", user_email, "--quiet")
    assert proc.returncode == 0, (
        f"keys create failed: rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    )
    key = proc.stdout.strip()
    assert proc.stdout.strip("\n") == key and len(key) == 64 and not any(c.isspace() for c in key), (
        f"keys create --quiet must print only a 64-character key, got {proc.stdout!r}"
    )
    return key


def revoke_key(cli, workspace_name: str, user_email: str):
    """`abmhub keys revoke` — §5 names the command but not its arguments; we address the key by
    workspace and user, like `keys create` (a user holds at most one active key, §0)."""
    return cli("keys", "revoke", "--workspace", workspace_name, "--user", user_email)


# --------------------------------------------------------------------------- deals (§2.8, §6.18)

DEAL_KEYS = {
    "id",
    "externalDealId",
    "name",
    "amount",
    "dealCurrencyCode",
    "stageId",
    "stageLabel",
    "pipelineId",
    "pipelineLabel",
    "startDate",
    "closedDate",
    "ownerName",
    "ownerEmail",
    "ownerId",
    "associatedAccounts",
    "stageHistory",
    "createdAt",
    "updatedAt",
}
ASSOCIATION_KEYS = {"externalId", "domain", "name", "rtp_aid"}
STAGE_HISTORY_KEYS = {"stageId", "stageLabel", "pipelineId", "enteredAt"}


def deal(external_id: str | None = None, name: str | None = None, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "externalDealId": unique_name("deal") if external_id is None else external_id,
        "name": unique_name("Deal") if name is None else name,
    }
    item.update(fields)
    return item


def push_deals_raw(api: httpx.Client, deals: Any) -> httpx.Response:
    return api.post("/deals", json={"deals": deals})


def push_deals(api: httpx.Client, deals: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /deals; assert the §2.8 bulk-write shape; return `data`."""
    r = push_deals_raw(api, deals)
    data = ok(r, "/api/v1/deals")
    assert isinstance(data, dict) and {"results", "summary"} <= set(data), describe(r)
    results, summary = data["results"], data["summary"]
    assert len(results) == len(deals), f"one result per item, in request order: {describe(r)}"
    for sent, item in zip(deals, results, strict=True):
        assert item.get("externalDealId") == sent.get("externalDealId"), f"results in request order: {item} vs {sent}"
        assert item["status"] in ("upserted", "failed"), item
        if item["status"] == "failed":
            assert isinstance(item.get("error"), str) and item["error"], item
        else:
            assert item.get("error") is None, item
    counts = {s: sum(1 for i in results if i["status"] == s) for s in ("upserted", "failed")}
    assert {k: summary.get(k) for k in ("total", "upserted", "failed")} == {"total": len(deals), **counts}, (
        f"summary does not match results: {describe(r)}"
    )
    return data


def push_deals_ok(api: httpx.Client, deals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = push_deals(api, deals)
    bad = [i for i in data["results"] if i["status"] != "upserted"]
    assert not bad, f"expected every deal upserted: {bad}"
    return data["results"]


def all_deals(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows, _ = list_pass(api, "/deals", limit=1000, **params)
    return rows


def deals_by_ext(api: httpx.Client, **params: Any) -> dict[str, dict[str, Any]]:
    rows = all_deals(api, **params)
    out = {row["externalDealId"]: row for row in rows}
    assert len(out) == len(rows), f"GET /deals returned an externalDealId twice: {[r['externalDealId'] for r in rows]}"
    return out


def get_deal(api: httpx.Client, external_deal_id: str) -> dict[str, Any]:
    found = deals_by_ext(api)
    assert external_deal_id in found, f"deal {external_deal_id!r} not in GET /deals"
    return found[external_deal_id]


# --------------------------------------------------------------------------- sales activities (§2.11, §6.28)

ACTIVITY_KEYS = {
    "id",
    "externalActivityId",
    "activityType",
    "occurredAt",
    "domain",
    "rtp_aid",
    "accountName",
    "subject",
    "ownerEmail",
    "ownerName",
    "ownerId",
    "from",
    "callTitle",
    "durationMinutes",
    "outcome",
    "direction",
    "openCount",
    "clickCount",
    "contacts",
    "createdAt",
    "updatedAt",
}
CONTACT_KEYS = {"id", "email", "externalContactId", "name", "title", "department", "seniority", "phone", "linkedinUrl"}
SKIPPED_REASON = "Only call and email activity types are supported"


def activity_exists_error(external_activity_id: str) -> str:
    return f"Activity with externalActivityId '{external_activity_id}' already exists."


def activity(
    domain: str | None = None,
    external_id: str | None = None,
    activity_type: str = "call",
    contacts: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A minimal valid activity (only the required fields) plus `fields`."""
    item: dict[str, Any] = {
        "externalActivityId": unique_name("act") if external_id is None else external_id,
        "activityType": activity_type,
        "occurredAt": "2026-04-22T10:30:00Z",
        "domain": unique_domain("act") if domain is None else domain,
        "ownerEmail": "rep@yourcompany.com",
        "contacts": [{"email": f"{unique_name('c')}@example.com"}] if contacts is None else contacts,
    }
    item.update(fields)
    return item


def push_activities_raw(api: httpx.Client, activities: Any) -> httpx.Response:
    return api.post("/sales-activities", json={"activities": activities})


def check_activity_results(r: httpx.Response, activities: list[dict[str, Any]]) -> dict[str, Any]:
    data = ok(r, "/api/v1/sales-activities")
    assert isinstance(data, dict) and {"results", "summary"} <= set(data), describe(r)
    results, summary = data["results"], data["summary"]
    assert len(results) == len(activities), f"one result per item, in request order: {describe(r)}"
    for sent, item in zip(activities, results, strict=True):
        assert item.get("externalActivityId") == sent.get("externalActivityId"), f"request order: {item} vs {sent}"
        assert item["status"] in ("created", "failed", "skipped"), item
        if item["status"] == "failed":
            assert isinstance(item.get("error"), str) and item["error"], item
        else:
            assert item.get("error") is None, item
        if item["status"] == "skipped":
            assert isinstance(item.get("reason"), str) and item["reason"], item
        else:
            assert item.get("reason") is None, item
    counts = {s: sum(1 for i in results if i["status"] == s) for s in ("created", "failed", "skipped")}
    assert {k: summary.get(k) for k in ("total", "created", "failed", "skipped")} == {
        "total": len(activities),
        **counts,
    }, f"summary does not match results: {describe(r)}"
    return data


def push_activities(api: httpx.Client, activities: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /sales-activities; assert the §2.11 bulk-write shape; return `data`."""
    return check_activity_results(push_activities_raw(api, activities), activities)


def push_activities_ok(api: httpx.Client, activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = push_activities(api, activities)
    bad = [i for i in data["results"] if i["status"] != "created"]
    assert not bad, f"expected every activity created: {bad}"
    return data["results"]


def all_activities(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows, _ = list_pass(api, "/sales-activities", limit=1000, **params)
    return rows


def activities_by_ext(api: httpx.Client, **params: Any) -> dict[str, dict[str, Any]]:
    rows = all_activities(api, **params)
    out = {row["externalActivityId"]: row for row in rows}
    assert len(out) == len(rows), (
        f"GET /sales-activities returned an id twice: {[r['externalActivityId'] for r in rows]}"
    )
    return out


# --------------------------------------------------------------------------- deal stages (§2.9)


def pipeline(
    pipeline_id: str | None = None, label: str | None = None, stages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    pid = unique_name("pipe") if pipeline_id is None else pipeline_id
    return {
        "pipelineId": pid,
        "pipelineLabel": label or f"Pipeline {pid}",
        "stages": stages
        if stages is not None
        else [{"stageId": "s1", "stageLabel": "Discovery"}, {"stageId": "s2", "stageLabel": "Closed Won"}],
    }


def deal_stages(api: httpx.Client) -> list[dict[str, Any]]:
    """GET /deal-stages: a bare JSON array (no envelope)."""
    r = api.get("/deal-stages")
    assert r.status_code == 200, describe(r)
    assert "application/json" in r.headers.get("content-type", ""), describe(r)
    body = r.json()
    assert isinstance(body, list), f"GET /deal-stages must be a bare array, not an envelope: {describe(r)}"
    return body


# --------------------------------------------------------------------------- segments management (§2.12)


def create_segment_api(
    api: httpx.Client, type_: str = "static", status: str = "active", name: str | None = None, **extra: Any
) -> dict[str, Any]:
    """POST /segments; return `data` (asserted to carry a 24-hex `segmentId`)."""
    body = {"name": name or unique_name("Seg"), "type": type_, "status": status, **extra}
    r = api.post("/segments", json=body)
    data = ok(r, "/api/v1/segments")
    assert isinstance(data, dict), f"POST /segments data must be the segment object: {describe(r)}"
    assert isinstance(data.get("segmentId"), str) and HEX24_RE.match(data["segmentId"]), (
        f"POST /segments must return the new segmentId (24 hex): {describe(r)}"
    )
    return data


def segment_members(api: httpx.Client, segment_id: str, **params: Any) -> list[dict[str, Any]]:
    rows, _ = list_pass(api, f"/segments/{segment_id}/accounts", limit=1000, **params)
    return rows


def assert_write_route_conventions(server, key: str, method: str, path: str, valid_body: dict[str, Any]) -> None:
    """§1.2, §1.3, §6.5 on one write route: auth → Content-Type → JSON syntax, each an enveloped error.

    `path` is relative to /api/v1. Every request here is refused, so nothing is written.
    """
    raw = json.dumps(valid_body).encode()
    with client_for(server, None) as anon:
        r = anon.request(method, path, content=b"{not json", headers={"Content-Type": "text/plain"})
        error(r, 401, "X-Api-Key header is required")  # auth first, before Content-Type / JSON / validation
    with client_for(server, key) as c:
        r = c.request(method, path, content=raw, headers={"Content-Type": "text/plain"})
        error(r, 400, "Content-Type must be application/json", "Bad Request")
        r = c.request(method, path, content=raw)
        error(r, 400, "Content-Type must be application/json", "Bad Request")
        r = c.request(method, path, content=b'{"oops": ', headers={"Content-Type": "application/json"})
        error(r, 400, "Request body is not valid JSON", "Bad Request")
        r = c.request(method, path, content=b'{"oops": ', headers={"Content-Type": "application/json; charset=utf-8"})
        error(r, 400, "Request body is not valid JSON", "Bad Request")


# --------------------------------------------------------------------------- signals and scoring (§3, §6.21–23)

SIGNAL_SOURCES = ("website", "g2", "bombora", "linkedin_ads")
SIGNAL_TYPES = {
    "website": ("page_view",),
    "g2": ("profile_view", "comparison", "pricing_view", "category_view"),
    "bombora": ("surge",),
    "linkedin_ads": ("impression", "click", "engagement"),
}
SUB_SCORE_KEY = {
    "website": "rtp_website_intent_score",
    "g2": "rtp_g2_intent_score",
    "bombora": "rtp_bombora_intent_score",
    "linkedin_ads": "rtp_advertising_activity_score",
}
JOURNEY_STAGES = ["Unaware", "Aware", "Consideration", "Opportunity", "Customer"]


def iso_days_ago(days: float = 0, minutes: float = 1) -> str:
    """An ISO 8601 UTC time `days` days (and `minutes` minutes) before now, e.g. 2026-11-25T14:59:00.000Z."""
    from datetime import UTC, timedelta

    when = datetime.now(UTC) - timedelta(days=days, minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def signal(source: str, type_: str, domain: str, days_ago: float = 0, **fields: Any) -> dict[str, Any]:
    """A valid signal item (§3.1) with the fields its type needs: website `url`, bombora `topic` and
    `score`, linkedin_ads `count`. `fields` override or add (e.g. `externalSignalId`, `weight`)."""
    item: dict[str, Any] = {"source": source, "type": type_, "domain": domain, "occurredAt": iso_days_ago(days_ago)}
    if source == "website":
        item["url"] = f"https://www.example.com/{uuid.uuid4().hex[:6]}"
    elif source == "bombora":
        item["topic"] = "Customer Data Platforms"
        item["score"] = 75
    elif source == "linkedin_ads":
        item["count"] = 10
    item.update(fields)
    return item


def push_signals_raw(api: httpx.Client, signals: Any) -> httpx.Response:
    return api.post("/signals", json={"signals": signals})


def check_signal_results(r: httpx.Response, signals: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert the bulk-write shape of POST /signals (§1.4, §6.21); return `data`."""
    data = ok(r, "/api/v1/signals")
    assert isinstance(data, dict) and {"results", "summary"} <= set(data), describe(r)
    results, summary = data["results"], data["summary"]
    assert isinstance(results, list) and len(results) == len(signals), (
        f"one result per item, in request order: {describe(r)}"
    )
    for sent, item in zip(signals, results, strict=True):
        assert isinstance(item, dict) and item.get("status") in ("created", "skipped", "failed"), (
            f"bad result item {item}"
        )
        if "externalSignalId" in item and sent.get("externalSignalId") is not None:
            assert item["externalSignalId"] == sent["externalSignalId"], f"results in request order: {item} vs {sent}"
        if item["status"] == "failed":
            assert isinstance(item.get("error"), str) and item["error"], f"a failed item carries an error text: {item}"
        else:
            assert item.get("error") is None, f"only failed items carry an error: {item}"
    counts = {s: sum(1 for i in results if i["status"] == s) for s in ("created", "skipped", "failed")}
    got = {k: summary.get(k) for k in ("total", "created", "skipped", "failed")}
    assert got == {"total": len(signals), **counts}, (
        f"summary must be {{total, created, skipped, failed}} matching the results: {describe(r)}"
    )
    return data


def push_signals(api: httpx.Client, signals: list[dict[str, Any]]) -> dict[str, Any]:
    return check_signal_results(push_signals_raw(api, signals), signals)


def push_signals_ok(api: httpx.Client, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Push signals in requests of at most 1000; every item must be `created`."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(signals), 1000):
        batch = signals[start : start + 1000]
        data = push_signals(api, batch)
        bad = [(s, i) for s, i in zip(batch, data["results"], strict=True) if i["status"] != "created"]
        assert not bad, f"expected every signal created: {bad[:5]}"
        out.extend(data["results"])
    return out


def run_score(cli, workspace_name: str, *flags: str):
    """`abmhub score --workspace W [--all]` (§3.4, §5) must succeed."""
    proc = cli("score", "--workspace", workspace_name, *flags)
    assert proc.returncode == 0, (
        f"abmhub score --workspace {workspace_name} {' '.join(flags)} failed: rc={proc.returncode} "
        f"stdout={proc.stdout!r} stderr={proc.stderr!r}"
    )
    return proc


def score_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """The scoring fields of an account record (§2.1)."""
    return {k: rec[k] for k in (*SCORE_KEYS, "rtp_journey_stage")}


def assert_scored_record(rec: dict[str, Any]) -> None:
    """§3.2/§3.3: after a run every score is an integer 0–100 and the stage one of §2.10's."""
    for k in SCORE_KEYS:
        v = rec[k]
        assert isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100, (
            f"{k} must be an integer 0–100, got {v!r} for {rec['domain']}"
        )
    assert rec["rtp_journey_stage"] in JOURNEY_STAGES, (
        f"a scored account has a journey stage from {JOURNEY_STAGES}, got {rec['rtp_journey_stage']!r} for {rec['domain']}"
    )


def explain_raw(api: httpx.Client, rtp_aid: str) -> httpx.Response:
    return api.get(f"/accounts/{rtp_aid}/score")
