"""Surface R conventions: envelope, unknown routes, authentication, order of checks,
body limits, Content-Type, JSON syntax, list query parameters (API.md §1, §6.1–§6.8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from contract_helpers import (
    account,
    assert_constraint,
    client_for,
    create_key,
    describe,
    envelope,
    error,
    no_stack_trace,
    not_found_route,
    ok,
    parse_ts,
    random_hex24,
    revoke_key,
    validation_errors,
)

FIVE_MIB = 5 * 1024 * 1024
OVERSIZED = b"x" * (FIVE_MIB + 1)
JSON_CT = {"Content-Type": "application/json"}

MISSING_KEY = "X-Api-Key header is required"
INVALID_KEY = "Invalid API key"
CT_MESSAGE = "Content-Type must be application/json"
NOT_JSON = "Request body is not valid JSON"
TOO_LARGE = "Request body exceeds 5 MiB"


def valid_push_body() -> bytes:
    return json.dumps({"accounts": [account()]}).encode()


def assert_auth_error(r: httpx.Response, custom_message: str) -> None:
    error(r, 401, custom_message, "Unauthorized access")


def assert_too_large(r: httpx.Response) -> None:
    error(r, 413, TOO_LARGE, "Payload Too Large")


def assert_bad_content_type(r: httpx.Response) -> None:
    error(r, 400, CT_MESSAGE, "Bad Request")


def assert_not_json(r: httpx.Response) -> None:
    error(r, 400, NOT_JSON, "Bad Request")


@pytest.fixture
def anon(server):
    """A client on /api/v1 that sends no X-Api-Key."""
    with client_for(server, None) as c:
        yield c


@pytest.fixture
def root(server):
    """A client on the server root (for paths outside /api), no key."""
    with client_for(server, None, base="") as c:
        yield c


# --------------------------------------------------------------------------- envelope (§1.3)


def test_success_envelope_has_status_timestamp_and_path_with_query_string(api):
    before = datetime.now(UTC)
    r = api.get("/accounts", params={"limit": 1})
    body = envelope(r, 200, "/api/v1/accounts?limit=1")
    ts = parse_ts(body["timestamp"])
    # `timestamp` is UTC: it must be close to the wall clock in UTC.
    assert before - timedelta(seconds=120) <= ts <= datetime.now(UTC) + timedelta(seconds=120), body


def test_path_without_query_string_is_the_plain_path(api):
    envelope(api.get("/accounts"), 200, "/api/v1/accounts")


def test_error_envelope_path_also_includes_query_string(api):
    r = api.get("/accounts", params={"limit": 0})
    envelope(r, 400, "/api/v1/accounts?limit=0")


def test_post_success_is_http_200_not_201(api):
    r = api.post("/accounts", json={"accounts": [account()]})
    assert r.status_code == 200, describe(r)
    assert r.json()["statusCode"] == 200


# --------------------------------------------------------------------------- unknown routes (§6.3)

UNKNOWN_ROUTES = [
    ("GET", "/api/v1/nope"),
    ("POST", "/api/v1/nope"),
    ("GET", "/api/v1/crm/nope"),
    ("DELETE", "/api/v1/accounts"),
    ("PUT", "/api/v1/accounts"),
    ("PATCH", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts/missing-external-ids"),
    ("DELETE", "/api/v1/segments"),
    ("GET", "/nope"),
    ("GET", "/api/v3/accounts"),
    ("POST", "/api/nope"),
    ("GET", "/api/v1"),
    ("POST", "/api/v1/accounts/0123456789abcdef01234567"),
    ("GET", "/api/v1/accounts/external-ids"),
    ("DELETE", "/api/v1/accounts/custom-fields"),
    ("POST", "/healthz"),
]


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "with-key"])
@pytest.mark.parametrize("method,path", UNKNOWN_ROUTES, ids=[f"{m} {p}" for m, p in UNKNOWN_ROUTES])
def test_unknown_route_or_method_is_404_cannot_method_path(server, workspace, method, path, with_key):
    with client_for(server, workspace.key if with_key else None, base="") as c:
        r = c.request(method, path)
    not_found_route(r, method, path)


@pytest.mark.parametrize(
    "method,path", [("GET", "/api/v1/accounts/"), ("POST", "/api/v1/accounts/"), ("GET", "/api/v1/segments/")]
)
def test_trailing_slash_is_served_or_404_never_a_bare_redirect(server, workspace, method, path):
    # Every Surface R response is an envelope (§1.3). A trailing slash either names the same
    # route (200) or an unknown one (404 "Cannot <METHOD> <path>"); a body-less 3xx is neither.
    with client_for(server, workspace.key, base="") as c:
        r = c.request(method, path, json={"accounts": [account()]} if method == "POST" else None)
    assert r.status_code in (200, 404), describe(r)
    if r.status_code == 404:
        not_found_route(r, method, path)
    else:
        envelope(r, 200)


def test_unknown_route_message_excludes_query_string_but_path_includes_it(root):
    r = root.get("/api/v1/nope", params={"a": "1"})
    not_found_route(r, "GET", "/api/v1/nope", full_path="/api/v1/nope?a=1")


def test_unknown_route_with_invalid_key_and_bad_body_is_still_404(server):
    with client_for(server, "not-a-real-key", base="") as c:
        r = c.post("/api/v1/nope", content=b"{not json", headers={"Content-Type": "text/plain"})
    not_found_route(r, "POST", "/api/v1/nope")


# --------------------------------------------------------------------------- authentication (§1.2, §6.7)

AUTH_ENDPOINTS = [
    ("GET", "/accounts", None),
    ("POST", "/accounts", {"accounts": [{"domain": "a-auth.com", "name": "A"}]}),
    ("PUT", "/accounts/0123456789abcdef01234567", {"name": "x"}),
    ("PATCH", "/accounts/external-ids", {"mappings": [{"domain": "a-auth.com", "externalId": "x"}]}),
    ("GET", "/accounts/missing-external-ids", None),
    ("GET", "/accounts/custom-fields", None),
    ("POST", "/accounts/custom-field", {"label": "Auth", "labelType": "number"}),
    ("DELETE", "/accounts/custom-fields/AUTH_C", None),
    ("GET", "/segments", None),
    ("GET", "/crm/accounts", None),
    ("POST", "/crm/accounts", {"accounts": [{"externalId": "e", "domain": "a-auth.com", "name": "A"}]}),
]


@pytest.mark.parametrize("method,path,body", AUTH_ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in AUTH_ENDPOINTS])
def test_missing_key_is_401_on_every_endpoint(anon, method, path, body):
    r = anon.request(method, path, json=body) if body is not None else anon.request(method, path)
    assert_auth_error(r, MISSING_KEY)


def test_auth_error_envelope_path_includes_query_string(anon):
    r = anon.get("/accounts", params={"limit": 1})
    body = envelope(r, 401, "/api/v1/accounts?limit=1")
    assert body["customMessage"] == MISSING_KEY


def test_empty_key_header_counts_as_missing(server):
    with client_for(server, "") as c:
        r = c.get("/accounts")
    assert_auth_error(r, MISSING_KEY)


@pytest.mark.parametrize("key", ["x" * 64, "invalid", "0" * 64])
def test_unknown_key_is_401_invalid_api_key(server, key):
    with client_for(server, key) as c:
        assert_auth_error(c.get("/accounts"), INVALID_KEY)
        assert_auth_error(c.post("/accounts", json={"accounts": [account()]}), INVALID_KEY)


def test_key_header_name_is_case_insensitive(server, workspace):
    # HTTP header names are case-insensitive; a client sending `x-api-key` must work.
    with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"x-api-key": workspace.key}) as c:
        ok(c.get("/accounts"))


def test_revoked_key_is_401_invalid_api_key(server, workspace, cli, api):
    ok(api.get("/accounts"))
    proc = revoke_key(cli, workspace.name, workspace.user_email)
    assert proc.returncode == 0, f"keys revoke failed: {proc.stdout!r} {proc.stderr!r}"
    assert_auth_error(api.get("/accounts"), INVALID_KEY)


def test_new_key_revokes_the_old_one_at_once(server, workspace, cli, api):
    ok(api.get("/accounts"))
    new = create_key(cli, workspace.name, workspace.user_email)
    assert new != workspace.key
    assert_auth_error(api.get("/accounts"), INVALID_KEY)
    with client_for(server, new) as c:
        ok(c.get("/accounts"))


# --------------------------------------------------------------------------- order of checks (§6.5)


def test_order_404_before_413(server, workspace):
    with client_for(server, workspace.key, base="") as c:
        r = c.post("/api/v1/nope", content=OVERSIZED, headers=JSON_CT)
    not_found_route(r, "POST", "/api/v1/nope")


def test_order_404_before_401_and_content_type(root):
    r = root.post("/api/v1/nope", content=b"{bad", headers={"Content-Type": "text/plain"})
    not_found_route(r, "POST", "/api/v1/nope")


def test_order_413_before_401(anon):
    assert_too_large(anon.post("/accounts", content=OVERSIZED, headers=JSON_CT))


def test_order_413_before_401_with_invalid_key(server):
    with client_for(server, "nope") as c:
        assert_too_large(c.post("/accounts", content=OVERSIZED, headers=JSON_CT))


def test_order_413_before_content_type(api):
    assert_too_large(api.post("/accounts", content=OVERSIZED, headers={"Content-Type": "text/plain"}))


def test_order_401_before_content_type(anon):
    r = anon.post("/accounts", content=valid_push_body(), headers={"Content-Type": "text/plain"})
    assert_auth_error(r, MISSING_KEY)


def test_order_401_before_json_syntax(anon):
    assert_auth_error(anon.post("/accounts", content=b'{"accounts": [', headers=JSON_CT), MISSING_KEY)


def test_order_401_before_validation(anon, server):
    assert_auth_error(anon.post("/accounts", json={}), MISSING_KEY)
    with client_for(server, "x" * 64) as c:
        assert_auth_error(c.post("/accounts", json={"accounts": []}), INVALID_KEY)
        assert_auth_error(c.put("/accounts/not-hex", json={"domain": "x.com"}), INVALID_KEY)


def test_order_401_before_query_parameters(anon, server):
    """GET /accounts reads its query parameters itself: a bad one still answers 401 first."""
    bad = {"limit": 0, "domains": "not json", "minScore": "high", "cursor": "%%%"}
    assert_auth_error(anon.get("/accounts", params=bad), MISSING_KEY)
    with client_for(server, "x" * 64) as c:
        assert_auth_error(c.get("/accounts", params=bad), INVALID_KEY)


def test_order_of_the_account_list_parameters(api):
    """The page's parameters first (limit, cursor, lastSync), then the filters in order."""
    first = validation_errors(api.get("/accounts", params={"limit": 0, "domains": "not json", "minScore": "x"}))
    assert [e["property"] for e in first] == ["limit"], first
    then = validation_errors(api.get("/accounts", params={"domains": "not json", "minScore": "x"}))
    assert [e["property"] for e in then] == ["domains"], then
    last = validation_errors(api.get("/accounts", params={"minScore": "x"}))
    assert [e["property"] for e in last] == ["minScore"], last


def test_order_content_type_before_json_syntax(api):
    assert_bad_content_type(api.post("/accounts", content=b'{"accounts": [', headers={"Content-Type": "text/plain"}))


def test_order_content_type_before_validation(api):
    assert_bad_content_type(api.post("/accounts", content=b"{}", headers={"Content-Type": "text/plain"}))


def test_order_content_type_before_business_checks(api):
    # An unknown rtp_aid would be a 404 business error; the Content-Type check comes first.
    r = api.put(f"/accounts/{random_hex24()}", content=b'{"name": "x"}', headers={"Content-Type": "text/plain"})
    assert_bad_content_type(r)


def test_order_json_syntax_before_validation(api):
    # Malformed JSON whose visible part would also fail validation (empty accounts array).
    assert_not_json(api.post("/accounts", content=b'{"accounts": [], ', headers=JSON_CT))


# --------------------------------------------------------------------------- body size (§1.1, §6.5)

BODY_ENDPOINTS = [
    ("POST", "/accounts"),
    ("PUT", "/accounts/0123456789abcdef01234567"),
    ("PATCH", "/accounts/external-ids"),
    ("POST", "/accounts/custom-field"),
    ("POST", "/crm/accounts"),
]


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS, ids=[f"{m} {p}" for m, p in BODY_ENDPOINTS])
def test_body_over_5_mib_is_413(api, method, path):
    assert_too_large(api.request(method, path, content=OVERSIZED, headers=JSON_CT))


def test_body_of_exactly_5_mib_is_not_413(api):
    # "over 5 MiB" → 413; exactly 5 MiB passes the size check and fails later, on JSON syntax.
    assert_not_json(api.post("/accounts", content=b"x" * FIVE_MIB, headers=JSON_CT))


def test_valid_json_body_over_5_mib_is_413(api):
    big = {"accounts": [account(name="n" * (FIVE_MIB // 2))] * 3}
    assert_too_large(api.post("/accounts", json=big))


def test_chunked_body_over_5_mib_is_413(api):
    # No Content-Length header: the limit applies to the bytes actually sent.
    chunk = b" " * 65536

    def body():
        for _ in range(FIVE_MIB // len(chunk) + 2):
            yield chunk

    assert_too_large(api.post("/accounts", content=body(), headers=JSON_CT))


# --------------------------------------------------------------------------- Content-Type (§1.1, §6.5)


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS, ids=[f"{m} {p}" for m, p in BODY_ENDPOINTS])
def test_missing_content_type_is_400(api, method, path):
    assert_bad_content_type(api.request(method, path, content=b'{"accounts": []}'))


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_wrong_content_type_is_400(api, content_type):
    r = api.post("/accounts", content=valid_push_body(), headers={"Content-Type": content_type})
    assert_bad_content_type(r)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8"])
def test_content_type_with_charset_is_accepted(api, content_type):
    r = api.post("/accounts", content=valid_push_body(), headers={"Content-Type": content_type})
    data = ok(r, "/api/v1/accounts")
    assert data["results"][0]["status"] == "created", data


def test_content_type_with_charset_is_accepted_on_patch_and_custom_field(api):
    body = json.dumps({"mappings": [{"domain": "charset-none.com", "externalId": "x"}]}).encode()
    ok(api.patch("/accounts/external-ids", content=body, headers={"Content-Type": "application/json; charset=utf-8"}))
    body = json.dumps({"label": "Charset Field", "labelType": "number"}).encode()
    ok(api.post("/accounts/custom-field", content=body, headers={"Content-Type": "application/json; charset=utf-8"}))


# --------------------------------------------------------------------------- malformed JSON (§6.5)


@pytest.mark.parametrize(
    "raw",
    [b'{"accounts": [', b"{'accounts': []}", b'{"accounts": []} trailing', b"\xff\xfe\x00", b"{accounts: []}"],
    ids=["truncated", "single-quotes", "trailing-garbage", "not-utf8", "unquoted-key"],
)
def test_malformed_json_is_400_not_valid_json(api, raw):
    assert_not_json(api.post("/accounts", content=raw, headers=JSON_CT))


def test_malformed_json_on_put_and_patch(api):
    assert_not_json(api.put(f"/accounts/{random_hex24()}", content=b"{", headers=JSON_CT))
    assert_not_json(api.patch("/accounts/external-ids", content=b"{", headers=JSON_CT))


# --------------------------------------------------------------------------- list parameters (§1.5, §6.6)

LIST_PATHS = ["/accounts", "/segments", "/accounts/missing-external-ids"]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize(
    "limit,text",
    [
        ("0", "limit must not be less than 1"),
        ("-5", "limit must not be less than 1"),
        ("1001", "limit must not be greater than 1000"),
    ],
    ids=["zero", "negative", "1001"],
)
def test_limit_out_of_range_is_400_validation_on_limit(api, path, limit, text):
    r = api.get(path, params={"limit": limit})
    assert_constraint(r, "limit", None, text)


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("limit", ["abc", "1.5"], ids=["abc", "fraction"])
def test_limit_not_an_integer_is_400_validation_on_limit(api, path, limit):
    errors = validation_errors(api.get(path, params={"limit": limit}))
    assert any(e["path"] == "limit" for e in errors), errors


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("limit", ["1", "1000"])
def test_limit_bounds_are_accepted(api, path, limit):
    ok(api.get(path, params={"limit": limit}))


@pytest.mark.parametrize("path", ["/accounts", "/segments"])
@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJmb28iOjF9", "!!!", "%00"])
def test_malformed_cursor_is_400_invalid_cursor(api, path, cursor):
    error(api.get(path, params={"cursor": cursor}), 400, "Invalid cursor", "Bad Request")


@pytest.mark.parametrize("path", ["/accounts", "/segments"])
@pytest.mark.parametrize("value", ["not-a-date", "2026-13-45T00:00:00Z", "yesterday", "12345abc"])
def test_invalid_last_sync_is_400(api, path, value):
    r = api.get(path, params={"lastSync": value})
    error(r, 400, "lastSync must be a valid ISO 8601 date string", "Bad Request")


@pytest.mark.parametrize("value", ["2026-04-30T10:00:00Z", "2026-04-30T10:00:00.000Z", "2026-04-30T12:00:00+02:00"])
def test_valid_last_sync_forms_are_accepted(api, value):
    ok(api.get("/accounts", params={"lastSync": value}))


# --------------------------------------------------------------------------- never a stack trace

SHAPE_ERRORS = [
    ("POST", "/accounts", b"null"),
    ("POST", "/accounts", b"[]"),
    ("POST", "/accounts", b'"accounts"'),
    ("POST", "/accounts", b"123"),
    ("POST", "/accounts", b'{"accounts": null}'),
    ("POST", "/accounts", b'{"accounts": [null]}'),
    ("POST", "/accounts", b'{"accounts": [[]]}'),
    ("POST", "/accounts", b'{"accounts": [{"domain": {"a": 1}, "name": "x"}]}'),
    ("POST", "/accounts", b'{"accounts": [{"domain": "a.com", "name": ["x"]}]}'),
    ("POST", "/accounts", b'{"accounts": [{"domain": "a.com", "name": "x", "tags": [1, {}]}]}'),
    ("POST", "/accounts", b'{"accounts": [{"domain": "a.com", "name": "x", "customFields": []}]}'),
    ("PUT", "/accounts/0123456789abcdef01234567", b'{"customFields": []}'),
    ("PUT", "/accounts/0123456789abcdef01234567", b'{"tags": "x"}'),
    ("PATCH", "/accounts/external-ids", b'{"mappings": [null]}'),
    ("PATCH", "/accounts/external-ids", b'{"mappings": "x"}'),
    ("POST", "/accounts/custom-field", b'{"label": 5, "labelType": "number"}'),
    ("POST", "/accounts/custom-field", b'{"label": "x", "labelType": ["number"]}'),
]


@pytest.mark.parametrize("method,path,raw", SHAPE_ERRORS, ids=[f"{m} {p} {b[:40]!r}" for m, p, b in SHAPE_ERRORS])
def test_wrong_shapes_are_400_without_internals(api, method, path, raw):
    r = api.request(method, path, content=raw, headers=JSON_CT)
    no_stack_trace(r)
    body = envelope(r, 400)
    assert body["message"] == "Bad Request", describe(r)


ODD_QUERIES = [
    {"limit": "99999999999999999999999999"},
    {"domains": '{"a": 1}'},
    {"domains": "[1, 2]"},
    {"domains": "[null]"},
    {"domains": '"acme.com"'},
    {"minScore": "abc"},
    {"cursor": "A" * 5000},
]


@pytest.mark.parametrize("params", ODD_QUERIES, ids=[json.dumps(q)[:40] for q in ODD_QUERIES])
def test_odd_query_values_are_400_without_internals(api, params):
    r = api.get("/accounts", params=params)
    no_stack_trace(r)
    envelope(r, 400)


ODD_BODIES = [
    # Valid JSON that some databases cannot store or some parsers choke on.
    b'{"accounts": [{"domain": "nul-byte.com", "name": "a\\u0000b"}]}',
    b'{"accounts": [{"domain": "surrogate.com", "name": "\\ud800"}]}',
    b'{"accounts": [{"domain": "b\\u00fccher.de", "name": "Buecher"}]}',
    b"[" * 5000 + b"]" * 5000,
    b'{"accounts": [{"domain": "big-number.com", "name": "n", "customFields": {"X_C": 1e999}}]}',
]


@pytest.mark.parametrize("raw", ODD_BODIES, ids=["nul", "lone-surrogate", "idn", "deep-nesting", "huge-number"])
def test_odd_bodies_never_leak_a_stack_trace(api, raw):
    r = api.post("/accounts", content=raw, headers=JSON_CT)
    no_stack_trace(r)
    body = envelope(r, r.status_code)
    if r.status_code >= 500:
        assert r.status_code == 500 and body["message"] == "Internal server error" and body["data"] is None, describe(r)
        assert "customMessage" not in body, describe(r)


# Every required array of a request body (§1.4, §6 rule 1), as (method, path, body, array path).
REQUIRED_ARRAYS = [
    ("POST", "/accounts", {}, "accounts"),
    ("POST", "/crm/accounts", {}, "accounts"),
    ("PATCH", "/accounts/external-ids", {}, "mappings"),
    ("POST", "/deals", {}, "deals"),
    ("POST", "/deal-stages", {}, "pipelines"),
    ("POST", "/deal-stages", {"pipelines": [{"pipelineId": "p", "pipelineLabel": "P"}]}, "pipelines.0.stages"),
    ("POST", "/sales-activities", {}, "activities"),
    ("POST", "/signals", {}, "signals"),
]


@pytest.mark.parametrize("wrong", [None, "x", {"a": 1}, 3], ids=["missing", "string", "object", "number"])
@pytest.mark.parametrize("method,path,body,at", REQUIRED_ARRAYS, ids=[f"{m} {p} {a}" for m, p, _, a in REQUIRED_ARRAYS])
def test_a_required_array_that_is_missing_or_no_array_is_is_array_and_array_min_size(
    api, method, path, body, at, wrong
):
    """§6 rule 1: missing or not an array → `isArray`; like class-validator, `arrayMinSize` too."""
    body = json.loads(json.dumps(body))
    if wrong is not None:
        parent, _, leaf = at.rpartition(".")
        target = body
        for part in parent.split(".") if parent else []:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = wrong
    r = api.request(method, path, json=body)
    leaf = at.rsplit(".", 1)[-1]
    assert_constraint(r, at, "isArray", f"{leaf} must be an array")
    assert_constraint(r, at, "arrayMinSize", f"{leaf} must contain at least 1 elements")
