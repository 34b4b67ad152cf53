"""Isolation: every operation of both surfaces, called with workspace B's key and workspace A's
identifiers, neither reads, writes nor names anything of A (API.md §0).

Workspace A first stores one of everything: a custom field, accounts (with tags, externalIds
and custom-field values), a static segment with a member, a pipeline, a deal associated with
A's account, a call with a contact, intent signals, a manual activity. Then the walk takes
the operations from the server's own OpenAPI document, so a new endpoint is walked as soon as
it is documented (and the walk fails, asking for a probe, if it cannot call it yet). With B's
key it calls each one with A's identifiers wherever an operation takes one: in the path, in
query filters, as a cursor of A's pages, in request bodies (A's domains, externalIds, deal and
activity ids, segment ids, contact and account UUIDs, custom-field labels).

Every response, success or error, is searched for A's identifiers and names. Echoing back
what B itself sent is no leak ("Account '<id>' not found"); anything else of A's is. Lookups
of A's records must answer not found; create-only pushes that reuse A's keys must create B's
own record (A's keys do not exist in B). Finally A's view of all its data is the same as
before the walk: nothing B did reached it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.support import record_figures
from tests.support.predictions import install_model

PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass
class Probe:
    """One call of an operation: query, body, what else B may see, and the expected status."""

    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    allowed: set[str] = field(default_factory=set)
    status: int | None = None


# A's identifiers that the server issued: B can only know them by being told (a leak) or by
# sending them itself in the request at hand (an echo: "Account '<id>' not found").
ISSUED = (
    "rtp_aid",
    "rtp_aid2",
    "account_uuid",
    "deal_uuid",
    "call_uuid",
    "contact_uuid",
    "manual_uuid",
    "user_uuid",
    "segment_id",
    "webhook_id",
    "delivery_id",
    "site_id",
    "site_key",
    "model_id",
)


@dataclass
class WorkspaceData:
    """Workspace A's records, and every string that identifies or describes them."""

    values: dict[str, str]
    secrets: set[str]

    @property
    def issued(self) -> set[str]:
        return {self.values[name] for name in ISSUED}


def tag() -> str:
    return uuid.uuid4().hex[:10]


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), f"{response.request.method} {response.request.url}: {response.text}"
    body = response.json()
    return body.get("data", body)


def make_workspace_a(r: httpx.Client, v: httpx.Client) -> WorkspaceData:
    t = tag()
    values = {
        "label": f"Iso Field {t}",
        "domain": f"iso-a-{t}.example.com",
        "domain2": f"iso-b-{t}.example.com",
        "external_id": f"iso-ext-{t}",
        "account_name": f"Iso Account {t}",
        "tag": f"iso-tag-{t}",
        "field_value": f"iso-value-{t}",
        "segment_name": f"Iso Segment {t}",
        "pipeline": f"iso-pipe-{t}",
        "stage": f"iso-stage-{t}",
        "deal_ext": f"iso-deal-{t}",
        "deal_name": f"Iso Deal {t}",
        "activity_ext": f"iso-call-{t}",
        "contact_email": f"iso-contact-{t}@example.com",
        "signal_ext": f"iso-signal-{t}",
        "subject": f"Iso subject {t}",
        # Nothing listens there: deliveries are attempted and fail (the server allows local targets).
        "webhook_url": f"http://127.0.0.1:9/iso-hook-{t}",
        "site_host": f"iso-site-{t}.example.com",
    }
    [created] = ok(r.post("/accounts/custom-field", json={"label": values["label"], "labelType": "singleLineText"}))
    values["field_key"] = created["key"]
    pushed = ok(
        r.post(
            "/accounts",
            json={
                "accounts": [
                    {
                        "domain": values["domain"],
                        "name": values["account_name"],
                        "externalId": values["external_id"],
                        "tags": [values["tag"]],
                        "customFields": {values["field_key"]: values["field_value"]},
                    },
                    {"domain": values["domain2"], "name": f"{values['account_name']} two"},
                ]
            },
        )
    )
    values["rtp_aid"] = pushed["results"][0]["rtp_aid"]
    values["rtp_aid2"] = pushed["results"][1]["rtp_aid"]
    segment = ok(r.post("/segments", json={"name": values["segment_name"], "type": "static", "status": "active"}))
    values["segment_id"] = segment["segmentId"]
    ok(r.post(f"/segments/{values['segment_id']}/accounts", json={"rtp_aids": [values["rtp_aid"]]}))
    ok(
        r.post(
            "/deal-stages",
            json={
                "pipelines": [
                    {
                        "pipelineId": values["pipeline"],
                        "pipelineLabel": values["pipeline"],
                        "stages": [{"stageId": values["stage"], "stageLabel": values["stage"]}],
                    }
                ]
            },
        )
    )
    ok(
        r.post(
            "/deals",
            json={
                "deals": [
                    {
                        "externalDealId": values["deal_ext"],
                        "name": values["deal_name"],
                        "pipelineId": values["pipeline"],
                        "stageId": values["stage"],
                        "associatedAccounts": [{"domain": values["domain"]}],
                    }
                ]
            },
        )
    )
    ok(
        r.post(
            "/sales-activities",
            json={
                "activities": [
                    {
                        "externalActivityId": values["activity_ext"],
                        "activityType": "call",
                        "occurredAt": "2026-04-22T10:30:00Z",
                        "domain": values["domain"],
                        "ownerEmail": "owner-a@example.com",
                        "callTitle": values["subject"],
                        "contacts": [{"email": values["contact_email"], "name": values["account_name"]}],
                    }
                ]
            },
        )
    )
    ok(
        r.post(
            "/signals",
            json={
                "signals": [
                    {
                        "source": "g2",
                        "type": "pricing_view",
                        "domain": values["domain"],
                        "occurredAt": "2026-04-22T10:30:00Z",
                        "externalSignalId": values["signal_ext"],
                    }
                ]
            },
        )
    )
    account = ok(r.get("/accounts", params={"domains": json.dumps([values["domain"]])}))["data"][0]
    values["account_uuid"] = account["id"]
    values["deal_uuid"] = ok(r.get("/deals"))["data"][0]["id"]
    call = ok(r.get("/sales-activities"))["data"][0]
    values["call_uuid"] = call["id"]
    values["contact_uuid"] = call["contacts"][0]["id"]
    manual = v.post(
        "/activity",
        json={
            "attributes": {
                "metadata": {
                    "activity_time": "2026-04-23T09:00:00Z",
                    "subject": values["subject"],
                    "description": values["subject"],
                },
                "account_id": values["account_uuid"],
                "opportunity_id": values["deal_uuid"],
                "contact_ids": [values["contact_uuid"]],
            }
        },
    )
    assert manual.status_code == 201, manual.text
    values["manual_uuid"] = manual.json()["data"]["id"]
    values["user_uuid"] = manual.json()["data"]["attributes"]["owner_user_id"]["value"]["related_record_id"]
    hook = ok(r.post("/webhooks", json={"url": values["webhook_url"], "events": ["account.created"]}))
    values["webhook_id"] = hook["webhookId"]
    values["webhook_secret"] = hook["secret"]
    values["delivery_id"] = ok(r.post(f"/webhooks/{hook['webhookId']}/test"))["deliveryId"]
    site = ok(r.post("/sites", json={"name": f"Iso site {t}", "hostnames": [values["site_host"]]}))
    values["site_id"], values["site_key"] = site["siteId"], site["siteKey"]
    ranges = r.put("/ip-ranges", content=f"198.51.100.0/24,{values['domain']}\n", headers={"Content-Type": "text/csv"})
    assert ranges.status_code == 200, ranges.text
    values["cursor"] = ok(r.get("/accounts", params={"limit": 1}))["nextCursor"]
    return WorkspaceData(values, {value for name, value in values.items() if name != "cursor"})


def probes_for(method: str, path: str, a: dict[str, str]) -> list[Probe] | None:
    """How B calls an operation with A's identifiers; None when the walk does not know it yet."""
    relative = path.removeprefix("/api/v1").removeprefix("/api/v2")
    not_found = 404
    lists = {
        "/accounts": [
            Probe(),
            Probe({"domains": json.dumps([a["domain"], a["domain2"]])}),
            Probe({"segmentId": a["segment_id"]}),
            Probe({"tag": a["tag"]}),
            Probe({"cursor": a["cursor"]}),
        ],
        "/accounts/missing-external-ids": [Probe()],
        "/accounts/custom-fields": [Probe()],
        "/deals": [Probe(), Probe({"cursor": a["cursor"]})],
        "/deal-stages": [Probe()],
        "/journey-stages": [Probe()],
        "/sales-activities": [Probe(), Probe({"domain": a["domain"]})],
        "/segments": [Probe()],
        "/segments/{segment_id}": [Probe(status=not_found)],
        "/segments/{segment_id}/accounts": [Probe(status=not_found)],
        "/accounts/{rtp_aid}/score": [Probe(status=not_found)],
        "/accounts/{rtp_aid}/history": [Probe(status=not_found), Probe({"days": "730"}, status=not_found)],
        # B has no model: its list is empty, and A's account is not found (nor is B's model).
        "/models": [Probe()],
        "/accounts/{rtp_aid}/prediction": [Probe(status=not_found)],
        "/accounts/stage-changes": [Probe(), Probe({"to": "Unaware"}), Probe({"direction": "progressed"})],
        "/activity/{activity_id}": [Probe(status=404)],
        "/webhooks": [Probe()],
        "/webhooks/{webhook_id}": [Probe(status=not_found)],
        "/webhooks/{webhook_id}/deliveries": [Probe(status=not_found)],
        "/sites": [Probe()],
        "/sites/{site_id}": [Probe(status=not_found)],
        "/sites/{site_id}/page-rules": [Probe(status=not_found)],
        "/sites/{site_id}/stats": [Probe(status=not_found)],
        "/ip-ranges": [Probe()],
        # Public by design (the script is in A's pages): it names A's site key, nothing else.
        "/s/{site_key}.js": [Probe(status=200)],
        "/health": [Probe()],
        "/healthz": [Probe()],
    }
    derived_key = {a["field_key"]}  # B creating the same label gets the same key: that is B's own field
    writes = {
        ("POST", "/accounts"): [
            Probe(body={"accounts": [{"domain": a["domain"], "name": "B"}], "segmentId": a["segment_id"]}, status=400),
            Probe(body={"accounts": [{"domain": a["domain"], "name": "B", "externalId": a["external_id"]}]}),
            Probe(body={"accounts": [{"domain": a["domain"], "name": "B again"}], "upsert": True}),
        ],
        ("POST", "/crm/accounts"): [
            Probe(body={"accounts": [{"domain": a["domain2"], "name": "B", "externalId": a["external_id"]}]}),
        ],
        ("PUT", "/accounts/{account_key}"): [Probe(body={"name": "Hijack", "tags": ["b"]}, status=not_found)],
        # B may by now hold an account with A's externalId (pushed above): no status expected.
        ("PUT", "/crm/accounts/{account_key}"): [Probe(body={"name": "Hijack"})],
        ("PATCH", "/accounts/external-ids"): [
            Probe(
                body={
                    "mappings": [
                        {"domain": a["domain"], "externalId": "b-ext"},
                        {"domain": a["domain2"], "externalId": "b2"},
                    ]
                }
            ),
        ],
        ("POST", "/accounts/custom-field"): [
            Probe(body={"label": a["label"], "labelType": "number"}, allowed=derived_key, status=200),
        ],
        ("DELETE", "/accounts/custom-fields/{key}"): [Probe()],
        ("POST", "/deals"): [
            Probe(
                body={
                    "deals": [
                        {
                            "externalDealId": a["deal_ext"],
                            "name": "B",
                            "pipelineId": a["pipeline"],
                            "stageId": a["stage"],
                            "associatedAccounts": [
                                {"domain": a["domain2"]},
                                {"externalId": a["external_id"]},
                                {"name": a["account_name"]},
                            ],
                        }
                    ]
                }
            ),
        ],
        ("POST", "/deal-stages"): [
            Probe(
                body={
                    "pipelines": [
                        {
                            "pipelineId": a["pipeline"],
                            "pipelineLabel": "B",
                            "stages": [{"stageId": a["stage"], "stageLabel": "B"}],
                        }
                    ]
                },
                status=200,
            ),
        ],
        ("POST", "/sales-activities"): [
            Probe(
                body={
                    "activities": [
                        {
                            "externalActivityId": a["activity_ext"],
                            "activityType": "email",
                            "occurredAt": "2026-04-24T10:00:00Z",
                            "domain": a["domain2"],
                            "ownerEmail": "owner-b@example.com",
                            "contacts": [{"email": a["contact_email"]}],
                        }
                    ]
                }
            ),
        ],
        ("POST", "/segments"): [Probe(body={"name": a["segment_name"], "type": "static", "status": "active"})],
        ("PATCH", "/segments/{segment_id}"): [Probe(body={"name": "Hijack"}, status=not_found)],
        ("POST", "/segments/{segment_id}/accounts"): [Probe(body={"rtp_aids": [a["rtp_aid"]]}, status=not_found)],
        ("DELETE", "/segments/{segment_id}/accounts"): [Probe(body={"rtp_aids": [a["rtp_aid"]]}, status=not_found)],
        ("POST", "/signals"): [
            Probe(
                body={
                    "signals": [
                        {
                            "source": "g2",
                            "type": "comparison",
                            "domain": a["domain"],
                            "occurredAt": "2026-04-24T10:00:00Z",
                            "externalSignalId": a["signal_ext"],
                        }
                    ]
                }
            ),
        ],
        ("POST", "/activity"): [
            Probe(
                body={
                    "attributes": {
                        "metadata": {"activity_time": "2026-04-24T10:00:00Z", "subject": "B", "description": "B"},
                        "account_id": a["account_uuid"],
                    }
                },
                status=422,
            ),
            Probe(
                body={
                    "attributes": {
                        "metadata": {"activity_time": "2026-04-24T10:00:00Z", "subject": "B", "description": "B"},
                        "opportunity_id": a["deal_uuid"],
                        "contact_ids": [a["contact_uuid"]],
                    }
                },
                status=422,
            ),
        ],
        ("POST", "/webhooks"): [Probe(body={"url": a["webhook_url"], "events": ["ping"]}, status=200)],
        ("PATCH", "/webhooks/{webhook_id}"): [Probe(body={"status": "paused"}, status=not_found)],
        ("DELETE", "/webhooks/{webhook_id}"): [Probe(status=not_found)],
        ("POST", "/webhooks/{webhook_id}/test"): [Probe(status=not_found)],
        ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): [Probe(status=not_found)],
        ("POST", "/sites"): [Probe(body={"name": "B", "hostnames": [a["site_host"]]}, status=200)],
        ("PATCH", "/sites/{site_id}"): [Probe(body={"name": "Hijack"}, status=not_found)],
        ("DELETE", "/sites/{site_id}"): [Probe(status=not_found)],
        ("PUT", "/sites/{site_id}/page-rules"): [
            Probe(body=[{"pattern": "/x*", "category": "x", "weight": 1}], status=not_found)
        ],
        ("PUT", "/ip-ranges"): [Probe(body={"cidr": "198.51.100.0/24"}, status=400)],  # JSON, not text/csv
        ("POST", "/collect"): [
            Probe(body={"k": a["site_key"], "n": "pageview", "u": f"https://{a['site_host']}/"}, status=202)
        ],
        ("POST", "/activity/_query"): [
            Probe(body={"account_id": a["account_uuid"]}, status=422),
            Probe(body={"contact_id": a["contact_uuid"]}, status=422),
            Probe(body={"opportunity_id": a["deal_uuid"]}, status=422),
        ],
    }
    if method == "GET":
        return lists.get(relative.removeprefix("/crm"))
    # The /crm alias differs only in the account push and update, which have probes of their own.
    return writes.get((method, relative)) or writes.get((method, relative.removeprefix("/crm")))


def path_values(path: str, a: dict[str, str]) -> list[str] | None:
    """The concrete paths B calls for a templated path, with A's identifiers in it."""
    by_name = {
        "rtp_aid": [a["rtp_aid"]],
        "segment_id": [a["segment_id"]],
        "webhook_id": [a["webhook_id"]],
        "delivery_id": [a["delivery_id"]],
        "site_id": [a["site_id"]],
        "site_key": [a["site_key"]],
        "key": [a["field_key"]],
        "activity_id": [a["manual_uuid"], a["call_uuid"]],
        "account_key": [a["external_id"]] if path.startswith("/api/v1/crm/") else [a["rtp_aid"]],
    }
    concrete = [path]
    for name in PATH_PARAMETER.findall(path):
        if name not in by_name:
            return None
        concrete = [c.replace("{" + name + "}", value) for c in concrete for value in by_name[name]]
    return concrete


def leaked(a: WorkspaceData, request_text: str, sent_before: str, response_text: str, allowed: set[str]) -> list[str]:
    """A's strings in a response to B that B did not put there.

    Identifiers the server issued to A may only come back in an answer to the request that
    carried them. Strings a client chooses (domains, names, externalIds, labels) may also
    come back once B has stored them in records of its own, in any earlier request.
    """
    found = []
    for secret in a.secrets:
        if secret not in response_text or secret in request_text:
            continue
        if secret not in a.issued and (secret in sent_before or secret in allowed):
            continue
        found.append(secret)
    return sorted(found)


def normalised(document: Any) -> Any:
    """A response without the parts that change from call to call."""
    if isinstance(document, dict):
        return {
            k: normalised(v)
            for k, v in document.items()
            if k not in ("timestamp", "syncTimestamp", "nextCursor", "path")
        }
    if isinstance(document, list):
        return [normalised(x) for x in document]
    return document


def a_view(r: httpx.Client, v: httpx.Client, a: dict[str, str]) -> dict[str, Any]:
    """Everything A can read about its data."""
    reads = {
        path: r.get(path).json()
        for path in (
            "/accounts",
            "/accounts/missing-external-ids",
            "/accounts/custom-fields",
            "/deals",
            "/deal-stages",
            "/sales-activities",
            "/segments",
            f"/segments/{a['segment_id']}",
            f"/segments/{a['segment_id']}/accounts",
            f"/accounts/{a['rtp_aid']}/score",
            f"/accounts/{a['rtp_aid']}/history",
            "/models",
            f"/accounts/{a['rtp_aid']}/prediction",
            "/accounts/stage-changes",
            "/webhooks",
            f"/webhooks/{a['webhook_id']}",
            "/sites",
            f"/sites/{a['site_id']}",
            f"/sites/{a['site_id']}/page-rules",
            "/ip-ranges",
        )
    }
    reads["timeline"] = v.post("/activity/_query", json={"account_id": a["account_uuid"]}).json()
    reads["manual"] = v.get(f"/activity/{a['manual_uuid']}").json()
    return normalised(reads)


def test_every_operation_keeps_workspaces_apart(server, server_database, new_workspace, cli):
    workspace_a = new_workspace()
    # B walks the API twice with A's identifiers: once under /api/v1 and /api/v2, once under
    # the /crm alias, as a workspace of its own so that what B created first does not decide
    # B's second walk. What a B has sent so far is tracked per B.
    walkers = {False: new_workspace(), True: new_workspace()}
    sent: dict[bool, str] = {False: "", True: ""}
    allowed_by: dict[bool, set[str]] = {False: set(), True: set()}
    base = server.base_url

    def clients(key: str) -> tuple[httpx.Client, httpx.Client]:
        return (
            httpx.Client(base_url=f"{base}/api/v1", headers={"X-Api-Key": key}, timeout=30),
            httpx.Client(base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {key}"}, timeout=30),
        )

    a_r, a_v = clients(workspace_a.key)
    document = httpx.get(f"{base}/openapi.json").json()
    a = make_workspace_a(a_r, a_v)
    # A has an active prediction model (§10) and predictions of its accounts.
    a.values["model_id"] = install_model(server_database, workspace=workspace_a.name)
    a.secrets.add(a.values["model_id"])
    scored = cli("score", "--workspace", workspace_a.name)  # A has scores and history too
    assert scored.returncode == 0, scored.stderr
    before = a_view(a_r, a_v, a.values)

    unknown: list[str] = []
    problems: list[str] = []
    calls = 0
    operations = 0
    with httpx.Client(base_url=base, timeout=30) as b:
        for path, methods in document["paths"].items():
            for method in (m.upper() for m in methods):
                operations += 1
                probes = probes_for(method, path, a.values)
                concrete = path_values(path, a.values)
                if probes is None or concrete is None:
                    unknown.append(f"{method} {path}")
                    continue
                alias = path.startswith("/api/v1/crm/")
                workspace_b, allowed = walkers[alias], allowed_by[alias]
                headers = (
                    {"Authorization": f"Bearer {workspace_b.key}"}
                    if path.startswith("/api/v2/")
                    else {"X-Api-Key": workspace_b.key}
                )
                for target in concrete:
                    for probe in probes:
                        try:
                            response = b.request(
                                method,
                                target,
                                params=probe.query or None,
                                headers=headers,
                                json=probe.body if probe.body is not None else None,
                            )
                        except httpx.TransportError as exc:
                            problems.append(
                                f"{method} {target} {probe.query}: the server dropped the connection: {exc!r}"
                            )
                            continue
                        calls += 1
                        request_text = f"{target} {json.dumps(probe.query)} {json.dumps(probe.body)}"
                        where = f"{method} {target} {probe.query or ''} {json.dumps(probe.body)[:200] if probe.body else ''}"
                        if response.status_code >= 500:
                            problems.append(f"{where}: {response.status_code}")
                        if probe.status is not None and response.status_code != probe.status:
                            problems.append(
                                f"{where}: expected {probe.status}, got {response.status_code} {response.text[:300]}"
                            )
                        for secret in leaked(a, request_text, sent[alias], response.text, allowed | probe.allowed):
                            problems.append(f"{where}: the answer names A's {secret!r}: {response.text[:300]}")
                        sent[alias] += request_text
                        allowed |= probe.allowed
                        if probe.status is None and method == "POST" and response.status_code == 200:
                            results = response.json().get("data", {})
                            for item in results.get("results", []) if isinstance(results, dict) else []:
                                if item.get("status") not in ("created", "updated", "upserted"):
                                    problems.append(f"{where}: A's keys decided B's item: {item}")

    assert not unknown, (
        "the isolation walk does not know how to call these documented operations yet; add a probe "
        f"(tests/reliability/test_workspace_walk.py, probes_for / path_values): {unknown}"
    )
    assert not problems, "workspace B saw or touched workspace A:\n" + "\n".join(problems)
    after = a_view(a_r, a_v, a.values)
    assert after == before, "workspace A's data changed while B walked the API with A's identifiers"
    a_r.close()
    a_v.close()
    record_figures("isolation walk", server.backend, operations=operations, calls=calls, secrets=len(a.secrets))
