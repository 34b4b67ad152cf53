"""The dashboard over HTTP, against a real `abmhub serve` on both databases.

Numbers on the pages are checked against what the API (`/api/v1`) returns for the same
workspace; every page is fetched with a session cookie the way a browser would.
"""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ui_helpers import (
    ESCAPED_HOSTILE,
    HOSTILE_NAME,
    PREVIOUS_LINK,
    SAME_ORIGIN,
    STAGES,
    all_api_accounts,
    as_number,
    dashboard,
    is_own,
    metric,
    ok_data,
    page,
    populate,
    score,
    sign_in,
    table_rows,
    unescape_attribute,
    urls_on,
    walk_pages,
)

from abmhub.tenancy import service as tenancy


@pytest.fixture
def ui(server, workspace):
    """A dashboard session of the test's workspace."""
    with dashboard(server) as client:
        sign_in(client, workspace.key)
        yield client


# --- the way in ----------------------------------------------------------------------------------


def test_root_redirects_to_the_dashboard_and_other_unknown_routes_stay_json(server):
    with dashboard(server) as client:
        home = client.get("/")
        assert home.status_code == 302 and home.headers["location"] == "/ui"
        for method, path in (("POST", "/"), ("GET", "/nope"), ("GET", "/api/v1/nope")):
            response = client.request(method, path)
            assert response.status_code == 404
            assert response.json()["message"] == f"Cannot {method} {path}"


def test_signed_out_pages_lead_to_sign_in_with_the_way_back(server):
    with dashboard(server) as client:
        for path in ("/ui", "/ui/accounts?q=acme&stage=Aware", "/ui/segments/new", "/ui/accounts.csv"):
            response = client.get(path)
            assert response.status_code == 303, path
            location = response.headers["location"]
            if path == "/ui":
                assert location == "/ui/sign-in"
            else:
                assert urlsplit(location).path == "/ui/sign-in"
                assert parse_qs(urlsplit(location).query)["next"] == [path]
        # htmx asks for fragments: it is told to load the sign-in page instead.
        fragment = client.get("/ui/accounts", headers={"HX-Request": "true"})
        assert fragment.status_code == 204 and fragment.headers["HX-Redirect"].startswith("/ui/sign-in")


def test_sign_in_page_has_a_labelled_api_key_field(server):
    with dashboard(server) as client:
        html = page(client, "/ui/sign-in")
    assert re.search(r'<label for="api-key">API key</label>', html)
    assert re.search(r'<input id="api-key" name="api_key" type="password"', html)


def test_sign_in_opens_a_signed_httponly_lax_session_that_does_not_hold_the_key(server, workspace):
    with dashboard(server) as client:
        response = sign_in(client, workspace.key, next_url="/ui/accounts?stage=Aware")
        assert response.headers["location"] == "/ui/accounts?stage=Aware"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("abmhub_session=")
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes and "samesite=lax" in attributes and "path=/ui" in attributes
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        assert workspace.key not in value
        from abmhub.tenancy.keys import hash_api_key

        assert hash_api_key(workspace.key) not in value  # at most a short prefix of the hash
        html = page(client, "/ui")
        assert workspace.name in html and "Sign out" in html


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/ui", "/api/v1/accounts", "/ui/../api", "javascript:alert(1)"]
)
def test_sign_in_follows_only_dashboard_paths(server, workspace, next_url):
    with dashboard(server) as client:
        assert sign_in(client, workspace.key, next_url=next_url).headers["location"] == "/ui"


def test_a_wrong_key_opens_no_session(server):
    with dashboard(server) as client:
        response = client.post("/ui/sign-in", data={"api_key": "x" * 64}, headers=SAME_ORIGIN)
        assert response.status_code == 400
        assert "set-cookie" not in response.headers
        assert "That key is not valid" in response.text
        assert client.get("/ui").status_code == 303


def test_sign_out_ends_the_session(ui):
    assert ui.get("/ui").status_code == 200
    response = ui.post("/ui/sign-out", headers=SAME_ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in"
    assert 'abmhub_session=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    assert ui.get("/ui").status_code == 303


def test_a_revoked_key_ends_the_session_at_its_next_request(ui, workspace, server_database):
    assert ui.get("/ui/accounts").status_code == 200
    tenancy.revoke_key(server_database, workspace=workspace.name, user_email=workspace.user_email)
    response = ui.get("/ui/accounts")
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/sign-in")


def test_a_new_key_for_the_user_ends_the_old_keys_session(ui, workspace, server_database):
    tenancy.create_key(server_database, workspace=workspace.name, user_email=workspace.user_email)
    assert ui.get("/ui").status_code == 303


def test_an_altered_session_cookie_is_refused(server, ui):
    token = ui.cookies["abmhub_session"]
    payload, _, signature = token.partition(".")
    with dashboard(server) as forger:
        for forged in (f"{payload[:-2]}AA.{signature}", token[:-3] + "abc", "garbage"):
            forger.cookies.set("abmhub_session", forged, path="/ui")
            assert forger.get("/ui").status_code == 303


# --- cross-site requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {},
    ],
    ids=["cross-site", "same-site", "cross-site-with-origin", "other-origin", "null-origin", "no-headers"],
)
def test_cross_site_posts_are_refused(server, workspace, api, headers):
    with dashboard(server) as client:
        refused = client.post("/ui/sign-in", data={"api_key": workspace.key}, headers=headers)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert "Request refused" in refused.text
        sign_in(client, workspace.key)
        create = client.post(
            "/ui/segments",
            data={"name": "Forged", "status": "active", "all-field": "tags", "all-op": "contains", "all-value": "x"},
            headers=headers,
        )
        assert create.status_code == 403
        assert client.post("/ui/sign-out", headers=headers).status_code == 403
        assert client.get("/ui").status_code == 200  # still signed in
        assert "Forged" not in page(client, "/ui/segments")


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, "origin"])
def test_same_origin_posts_are_accepted(server, workspace, headers):
    with dashboard(server) as client:
        sent = {"Origin": server.base_url} if headers == "origin" else headers
        response = client.post("/ui/sign-in", data={"api_key": workspace.key}, headers=sent)
        assert response.status_code == 303 and "abmhub_session=" in response.headers["set-cookie"]


def test_the_api_is_not_subject_to_the_origin_check(api):
    response = api.post(
        "/accounts",
        json={"accounts": [{"domain": "cross-site-api.example.com", "name": "API"}]},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert response.status_code == 200


# --- the pages agree with the API ------------------------------------------------------------------


def test_overview_numbers_equal_the_api(server, workspace, api, ui):
    populate(api, accounts=45)
    score(server, workspace.name)
    accounts = all_api_accounts(api)
    html = page(ui, "/ui")
    assert as_number(metric(html, "accounts-total")) == len(accounts) == 45
    for stage in STAGES:
        expected = sum(1 for account in accounts if account["rtp_journey_stage"] == stage)
        assert as_number(metric(html, f"stage-{stage.lower()}")) == expected, stage
    average = sum(account["rtp_account_score"] for account in accounts) / len(accounts)
    assert as_number(metric(html, "average-score")) == pytest.approx(average, abs=0.05)
    # Open deals: those whose stage the pipeline says is neither won nor lost.
    pipelines = api.get("/deal-stages").json()  # a bare array, as the vendor answers
    meaning = {
        (pipeline["pipelineId"], stage["stageId"]): stage["journeyStage"]
        for pipeline in pipelines
        for stage in pipeline["stages"]
    }
    deals = ok_data(api.get("/deals", params={"limit": 1000}))["data"]
    open_deals = sum(1 for deal in deals if meaning.get((deal["pipelineId"], deal["stageId"])) == "Opportunity")
    assert open_deals > 0
    assert as_number(metric(html, "open-deals")) == open_deals
    # The funnel draws the same counts.
    for stage in STAGES:
        expected = sum(1 for account in accounts if account["rtp_journey_stage"] == stage)
        assert f"<title>{stage}: {expected:,} accounts" in html


def test_accounts_list_filters_sorts_and_pages_like_the_api(server, workspace, api, ui):
    populate(api, accounts=130, tags=("enterprise",))
    score(server, workspace.name)
    accounts = all_api_accounts(api)
    by_id = {account["rtp_aid"]: account for account in accounts}

    # Every account, best score first, in pages of 50 followed through the Next links.
    pages = list(walk_pages(ui, "/ui/accounts"))
    assert len(pages) == 3
    assert "<strong>130</strong> accounts" in pages[0]
    shown = [rtp_aid for html in pages for rtp_aid in table_rows(html)]
    expected = sorted(accounts, key=lambda a: (a["rtp_account_score"], a["rtp_aid"]), reverse=True)
    assert shown == [account["rtp_aid"] for account in expected]

    # Back from the second page to the first.
    previous = PREVIOUS_LINK.search(pages[1])
    assert previous
    assert table_rows(page(ui, unescape_attribute(previous.group(1)))) == table_rows(pages[0])

    # Filters and a sort by name, against the API's records filtered the same way.
    low, high = 5, 60
    query = f"/ui/accounts?tag=enterprise&min={low}&max={high}&sort=-name"
    shown = [rtp_aid for html in walk_pages(ui, query) for rtp_aid in table_rows(html)]
    wanted = [
        account
        for account in accounts
        if "enterprise" in account["tags"] and low <= account["rtp_account_score"] <= high
    ]
    assert wanted, "the data set should have accounts in this view"
    assert sorted(shown) == sorted(account["rtp_aid"] for account in wanted)
    names = [by_id[rtp_aid]["name"].lower() for rtp_aid in shown]
    assert names == sorted(names, reverse=True)

    # A stage, and a search by name or domain (any case).
    for stage in ("Aware", "Customer"):
        shown = {rtp_aid for html in walk_pages(ui, f"/ui/accounts?stage={stage}") for rtp_aid in table_rows(html)}
        assert shown == {account["rtp_aid"] for account in accounts if account["rtp_journey_stage"] == stage}
    probe = accounts[7]["domain"].split(".")[0].upper()
    shown = {rtp_aid for html in walk_pages(ui, f"/ui/accounts?q={probe}") for rtp_aid in table_rows(html)}
    assert shown == {a["rtp_aid"] for a in accounts if probe.lower() in (a["name"] + " " + a["domain"]).lower()}


def test_accounts_list_filters_by_segment(server, workspace, api, ui):
    populate(api, accounts=12)
    accounts = all_api_accounts(api)
    segment = ok_data(api.post("/segments", json={"name": "Targets", "type": "static", "status": "active"}))
    members = [accounts[1]["rtp_aid"], accounts[4]["rtp_aid"], accounts[9]["rtp_aid"]]
    ok_data(api.post(f"/segments/{segment['segmentId']}/accounts", json={"rtp_aids": members}))
    html = page(ui, "/ui/accounts", segment=segment["segmentId"])
    assert sorted(table_rows(html)) == sorted(members)
    # The segment's own page lists the same members.
    html = page(ui, f"/ui/segments/{segment['segmentId']}")
    assert sorted(table_rows(html)) == sorted(members)


def test_bad_filter_values_are_reported_next_to_their_fields(ui, api):
    populate(api, accounts=3)
    html = page(ui, "/ui/accounts", min="lots", max="200", stage="Nowhere")
    assert 'id="filter-min-error"' in html and "whole number from 0 to 100" in html
    assert 'id="filter-max-error"' in html
    assert 'id="filter-stage-error"' in html
    assert len(table_rows(html)) == 3  # the bad filters are left out, not applied


def test_htmx_gets_only_the_results_fragment(ui, api):
    populate(api, accounts=3)
    full = page(ui, "/ui/accounts")
    fragment = ui.get("/ui/accounts", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<table" in fragment.text
    assert table_rows(fragment.text) == table_rows(full)
    # Restoring history wants the whole page.
    restored = ui.get("/ui/accounts", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.text


def test_csv_export_is_the_filtered_view_across_all_pages(server, workspace, api, ui):
    populate(api, accounts=120, tags=("enterprise",))
    score(server, workspace.name)
    view = "stage=&tag=enterprise&sort=name"
    shown = [rtp_aid for html in walk_pages(ui, f"/ui/accounts?{view}") for rtp_aid in table_rows(html)]
    assert len(shown) == 60
    response = ui.get(f"/ui/accounts.csv?{view}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["rtp_aid"] for row in rows] == shown
    by_id = {account["rtp_aid"]: account for account in all_api_accounts(api)}
    for row in rows:
        account = by_id[row["rtp_aid"]]
        assert row["name"] == account["name"] and row["domain"] == account["domain"]
        assert int(row["account_score"]) == account["rtp_account_score"]
        assert row["journey_stage"] == account["rtp_journey_stage"]
        assert row["tags"] == "; ".join(account["tags"])


# --- escaping ----------------------------------------------------------------------------------


def test_hostile_names_are_text_everywhere(server, workspace, api, ui):
    items = [
        {"domain": "hostile.example.com", "name": HOSTILE_NAME, "tags": ["<b>bold</b>"]},
        {"domain": "formula.example.com", "name": '=HYPERLINK("http://evil.example")', "tags": ["+1", "@sum"]},
        {"domain": "minus.example.com", "name": "-2+3", "tags": []},
    ]
    results = ok_data(api.post("/accounts", json={"accounts": items}))["results"]
    hostile = results[0]["rtp_aid"]
    segment = ok_data(api.post("/segments", json={"name": HOSTILE_NAME, "type": "static", "status": "active"}))
    ok_data(api.post(f"/segments/{segment['segmentId']}/accounts", json={"rtp_aids": [hostile]}))
    ok_data(
        api.post(
            "/sales-activities",
            json={
                "activities": [
                    {
                        "externalActivityId": "hostile-call",
                        "activityType": "call",
                        "occurredAt": "2026-04-22T10:30:00Z",
                        "domain": "hostile.example.com",
                        "ownerEmail": "rep@example.com",
                        "callTitle": HOSTILE_NAME,
                        "contacts": [{"email": "x@hostile.example.com", "name": HOSTILE_NAME}],
                    }
                ]
            },
        )
    )
    pages = [
        page(ui, "/ui/accounts"),
        page(ui, f"/ui/accounts/{hostile}"),
        page(ui, "/ui/segments"),
        page(ui, f"/ui/segments/{segment['segmentId']}"),
        page(ui, "/ui/accounts", segment=segment["segmentId"]),
        page(ui, "/ui/segments/preview", **{"all-field": "rtp_account_score", "all-op": "gte", "all-value": "0"}),
    ]
    for html in pages:
        assert HOSTILE_NAME not in html and "<b>bold</b>" not in html
        assert ESCAPED_HOSTILE in html
    assert f"<title>{ESCAPED_HOSTILE} · abmhub</title>" in pages[1]
    rows = {row["domain"]: row for row in csv.DictReader(io.StringIO(ui.get("/ui/accounts.csv").text))}
    assert rows["formula.example.com"]["name"] == '\'=HYPERLINK("http://evil.example")'
    assert rows["formula.example.com"]["tags"] == "'+1; @sum"
    assert rows["minus.example.com"]["name"] == "'-2+3"
    assert rows["hostile.example.com"]["name"] == HOSTILE_NAME  # text, not a formula: as it is


# --- workspaces ----------------------------------------------------------------------------------


def test_a_session_sees_only_its_own_workspace(server, workspace, api, new_workspace):
    populate(api, accounts=5, prefix="alpha")
    a_accounts = all_api_accounts(api)
    a_segment = ok_data(api.post("/segments", json={"name": "Alpha only", "type": "static", "status": "active"}))
    other = new_workspace()
    with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": other.key}) as b_api:
        populate(b_api, accounts=3, prefix="beta")
    with dashboard(server) as b:
        sign_in(b, other.key)
        overview = page(b, "/ui")
        assert as_number(metric(overview, "accounts-total")) == 3
        listing = page(b, "/ui/accounts")
        assert "Alpha" not in listing and len(table_rows(listing)) == 3
        assert "alpha" not in b.get("/ui/accounts.csv").text
        for account in a_accounts:
            response = b.get(f"/ui/accounts/{account['rtp_aid']}")
            assert response.status_code == 404 and "Not found" in response.text
        assert b.get(f"/ui/segments/{a_segment['segmentId']}").status_code == 404
        assert b.get(f"/ui/segments/{a_segment['segmentId']}/edit").status_code == 404
        assert "Alpha only" not in page(b, "/ui/segments")
        assert table_rows(page(b, "/ui/accounts", segment=a_segment["segmentId"])) == []
        preview = page(
            b, "/ui/segments/preview", **{"all-field": "rtp_account_score", "all-op": "gte", "all-value": "0"}
        )
        assert "<strong data-preview-count>3</strong>" in preview


# --- an account's page ---------------------------------------------------------------------------


def test_account_page_shows_score_reasons_timeline_deals_segments_and_contacts(server, workspace, api, ui):
    domain = "acme-ui.example.com"
    rtp_aid = ok_data(api.post("/accounts", json={"accounts": [{"domain": domain, "name": "Acme UI"}]}))["results"][0][
        "rtp_aid"
    ]
    ok_data(
        api.post(
            "/signals",
            json={
                "signals": [
                    {"source": "g2", "type": "pricing_view", "domain": domain, "occurredAt": "2026-12-01T09:00:00Z"}
                ]
            },
        )
    )
    calls = [
        {
            "externalActivityId": f"acme-call-{i}",
            "activityType": "call",
            "occurredAt": f"2026-11-{i + 1:02d}T10:00:00Z",
            "domain": domain,
            "ownerEmail": "rep@example.com",
            "callTitle": f"Call number {i}",
            "contacts": [{"email": f"person{i % 2}@acme-ui.example.com", "name": f"Person {i % 2}"}],
        }
        for i in range(25)
    ]
    ok_data(api.post("/sales-activities", json={"activities": calls}))
    ok_data(
        api.post(
            "/deal-stages",
            json={
                "pipelines": [
                    {
                        "pipelineId": "acme-sales",
                        "pipelineLabel": "Acme sales",
                        "stages": [
                            {"stageId": "disc", "stageLabel": "Discovery"},
                            {"stageId": "won", "stageLabel": "Closed Won"},
                        ],
                    }
                ]
            },
        )
    )
    deal = {"externalDealId": "acme-deal", "name": "Acme renewal", "pipelineId": "acme-sales", "stageId": "disc"}
    ok_data(api.post("/deals", json={"deals": [{**deal, "associatedAccounts": [{"domain": domain}]}]}))
    ok_data(api.post("/deals", json={"deals": [{**deal, "stageId": "won"}]}))
    segment = ok_data(api.post("/segments", json={"name": "Acme list", "type": "static", "status": "active"}))
    ok_data(api.post(f"/segments/{segment['segmentId']}/accounts", json={"rtp_aids": [rtp_aid]}))
    score(server, workspace.name)
    explanation = ok_data(api.get(f"/accounts/{rtp_aid}/score"))

    html = page(ui, f"/ui/accounts/{rtp_aid}")
    assert "<h1>Acme UI</h1>" in html and domain in html
    assert f"<span>{explanation['rtp_account_score']}</span><small>/100</small>" in html
    assert "Why this score" in html and "pricing view" in html
    for part in explanation["sources"]:
        assert f'<td class="num">{part["contribution"]}</td>' in html
    assert "Acme renewal" in html and "Won" in html and "Discovery" in html and "Closed Won" in html
    assert "Acme list" in html
    assert "Person 0" in html and "Person 1" in html
    # The newest 20 calls, newest first, then "Load more" with the next page.
    titles = re.findall(r"<strong>Call number (\d+)</strong>", html)
    assert titles == [str(i) for i in range(24, 4, -1)]
    more = re.search(r'hx-get="(/ui/accounts/[0-9a-f]{24}/timeline\?after=[^"]+)"', html)
    link = re.search(r'href="(/ui/accounts/[0-9a-f]{24}\?activities_after=[^"#]+)#timeline"', html)
    assert more and link
    fragment = ui.get(unescape_attribute(more.group(1)), headers={"HX-Request": "true"})
    assert re.findall(r"<strong>Call number (\d+)</strong>", fragment.text) == ["4", "3", "2", "1", "0"]
    assert "Load more" not in fragment.text and "<html" not in fragment.text
    # Without JavaScript, the link shows the same older entries on the page itself.
    older = page(ui, unescape_attribute(link.group(1)))
    assert re.findall(r"<strong>Call number (\d+)</strong>", older) == ["4", "3", "2", "1", "0"]


@pytest.mark.parametrize("rtp_aid", ["0123456789abcdef01234567", "not-an-id", "%3Cscript%3E"])
def test_unknown_account_is_a_404_page(ui, rtp_aid):
    response = ui.get(f"/ui/accounts/{rtp_aid}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html") and "Not found" in response.text


def test_unknown_dashboard_page_is_an_html_404(ui):
    response = ui.get("/ui/nothing-here")
    assert response.status_code == 404 and "Not found" in response.text


# --- segments ----------------------------------------------------------------------------------


def rule_form(name: str, *rows: tuple[str, str, str, str], status: str = "active") -> dict[str, list[str]]:
    form: dict[str, list[str]] = {"name": [name], "status": [status]}
    for group, field, op, value in rows:
        form.setdefault(f"{group}-field", []).append(field)
        form.setdefault(f"{group}-op", []).append(op)
        form.setdefault(f"{group}-value", []).append(value)
    return form


def test_dynamic_segment_editor_previews_and_saves_through_the_service(server, workspace, api, ui):
    populate(api, accounts=40, tags=("enterprise",))
    score(server, workspace.name)
    accounts = all_api_accounts(api)
    form = rule_form(
        "Hot enterprise",
        ("all", "rtp_account_score", "gte", "10"),
        ("all", "tags", "contains", "enterprise"),
        ("any", "rtp_journey_stage", "in", "Aware, Consideration"),
        ("any", "rtp_g2_intent_score", "gt", "0"),
    )
    wanted = [
        a
        for a in accounts
        if a["rtp_account_score"] >= 10
        and "enterprise" in a["tags"]
        and (a["rtp_journey_stage"] in ("Aware", "Consideration") or a["rtp_g2_intent_score"] > 0)
    ]
    assert wanted

    preview = page(ui, "/ui/segments/preview", **form)
    assert f"<strong data-preview-count>{len(wanted)}</strong>" in preview
    best = sorted(wanted, key=lambda a: (-a["rtp_account_score"], a["rtp_aid"]))[:10]
    assert re.findall(r'href="/ui/accounts/([0-9a-f]{24})"', preview) == [a["rtp_aid"] for a in best]

    saved = ui.post("/ui/segments", data=form, headers=SAME_ORIGIN)
    assert saved.status_code == 303
    segment_id = saved.headers["location"].split("/")[-1].split("?")[0]
    record = ok_data(api.get(f"/segments/{segment_id}"))
    assert record["name"] == "Hot enterprise" and record["type"] == "dynamic" and record["status"] == "active"
    assert record["rule"] == {
        "all": [
            {"field": "rtp_account_score", "op": "gte", "value": 10},
            {"field": "tags", "op": "contains", "value": "enterprise"},
        ],
        "any": [
            {"field": "rtp_journey_stage", "op": "in", "value": ["Aware", "Consideration"]},
            {"field": "rtp_g2_intent_score", "op": "gt", "value": 0},
        ],
    }
    # After the next scoring run, its members are the accounts the preview counted.
    score(server, workspace.name)
    members = {row for html in walk_pages(ui, f"/ui/segments/{segment_id}") for row in table_rows(html)}
    assert members == {a["rtp_aid"] for a in wanted}
    assert f"{len(wanted)} accounts match the rule right now" in page(ui, f"/ui/segments/{segment_id}")

    # The editor opens with the saved rule; saving a change updates the segment.
    editor = page(ui, f"/ui/segments/{segment_id}/edit")
    assert 'value="Aware, Consideration"' in editor and 'value="Hot enterprise"' in editor
    changed = rule_form("Hot enterprise", ("all", "rtp_account_score", "gte", "30"), status="draft")
    response = ui.post(f"/ui/segments/{segment_id}", data=changed, headers=SAME_ORIGIN)
    assert response.status_code == 303
    record = ok_data(api.get(f"/segments/{segment_id}"))
    assert record["status"] == "draft"
    assert record["rule"] == {"all": [{"field": "rtp_account_score", "op": "gte", "value": 30}]}
    assert "Hot enterprise" in page(ui, "/ui/segments")


def test_rule_editor_shows_problems_next_to_their_fields_and_saves_nothing(ui, api):
    form = rule_form(
        "",
        ("all", "rtp_account_score", "gte", "lots"),
        ("all", "rtp_journey_stage", "eq", "Nowhere"),
        ("all", "rtp_website_intent_score", "contains", "5"),
    )
    response = ui.post("/ui/segments", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 400
    html = response.text
    assert re.search(r'id="segment-name-error">[^<]*name should not be empty', html)
    assert re.search(r'id="all-0-value-error">&#39;lots&#39; is not a number', html)
    assert re.search(r'id="all-1-value-error">&#39;Nowhere&#39; is no journey stage', html)
    assert re.search(r'id="all-2-field-error">', html)  # contains is for tags only (the API's rule)
    assert "No segments yet" in page(ui, "/ui/segments")
    # A rule without any condition is refused too.
    empty = ui.post("/ui/segments", data=rule_form("Empty"), headers=SAME_ORIGIN)
    assert empty.status_code == 400 and "Add at least one condition" in empty.text


def test_rule_editor_adds_and_removes_rows_without_javascript(ui):
    form = rule_form("Draft", ("all", "rtp_account_score", "gte", "50"), ("all", "tags", "contains", "x"))
    added = page(ui, "/ui/segments/new", **form, add="any")
    assert 'name="any-field"' in added and 'id="any-0-field"' in added
    removed = page(ui, "/ui/segments/new", **form, remove="all-0")
    assert 'id="all-1-field"' not in removed and 'value="x"' in removed


def test_static_segments_have_no_rule_editor(ui, api):
    segment = ok_data(api.post("/segments", json={"name": "List", "type": "static", "status": "active"}))
    assert ui.get(f"/ui/segments/{segment['segmentId']}/edit").status_code == 400


# --- what every page carries -----------------------------------------------------------------------


def test_pages_load_nothing_from_another_host_and_forbid_it(server, ui, api):
    populate(api, accounts=3)
    rtp_aid = all_api_accounts(api)[0]["rtp_aid"]
    paths = ["/ui", "/ui/accounts", f"/ui/accounts/{rtp_aid}", "/ui/segments", "/ui/segments/new"]
    for path in paths:
        response = ui.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        for url in urls_on(response.text):
            assert is_own(server.base_url, url), f"{path} refers to {url}"
    with dashboard(server) as anonymous:
        sign_in_page = anonymous.get("/ui/sign-in").text
        for url in urls_on(sign_in_page):
            assert is_own(server.base_url, url)
        for asset in re.findall(r'(?:href|src)="(/ui/static/[^"?]+)', sign_in_page):
            response = anonymous.get(asset)
            assert response.status_code == 200, asset
            assert "http://" not in response.text and "https://" not in response.text, asset


def test_an_oversized_form_is_refused_unread(ui):
    response = ui.post("/ui/segments", data={"name": "x" * 300_000}, headers=SAME_ORIGIN)
    assert response.status_code == 400 and "too large" in response.text


def test_crafted_positions_are_ignored_not_errors(ui, api):
    from abmhub.web.cursors import Cursor, encode_cursor

    populate(api, accounts=3)
    rtp_aid = all_api_accounts(api)[0]["rtp_aid"]
    for key in ((2**70, "a" * 24), (1, "b" * 23 + "\x00"), ("x\x00", "a" * 24)):
        cursor = encode_cursor(Cursor(key, None))
        assert len(table_rows(page(ui, "/ui/accounts", after=cursor))) == 3
        assert len(table_rows(page(ui, "/ui/accounts", sort="name", before=cursor))) == 3
        assert "<h1>" in page(ui, f"/ui/accounts/{rtp_aid}", activities_after=cursor)
        assert ui.get(f"/ui/accounts/{rtp_aid}/timeline", params={"after": cursor}).status_code == 200
    assert ui.get("/ui/accounts", params={"q": "a\x00b"}).status_code == 400


def test_rule_editor_offers_and_compares_number_custom_fields(ui, api):
    ok_data(api.post("/accounts/custom-field", json={"label": "ARR", "labelType": "number"}))
    items = [
        {"domain": f"arr-{i}.example.com", "name": f"Arr {i}", "customFields": {"ARR_C": i * 100}} for i in range(6)
    ]
    ok_data(api.post("/accounts", json={"accounts": items}))
    editor = page(ui, "/ui/segments/new")
    assert '<option value="customFields.ARR_C">ARR (custom field)</option>' in editor
    preview = page(
        ui, "/ui/segments/preview", **{"all-field": "customFields.ARR_C", "all-op": "gt", "all-value": "250"}
    )
    assert "<strong data-preview-count>3</strong>" in preview
    unknown = page(ui, "/ui/segments/preview", **{"all-field": "customFields.NOPE_C", "all-op": "eq", "all-value": "1"})
    assert "no such custom field" in unknown


# --- history on the pages ------------------------------------------------------------------------


def _moved_to_opportunity(api, server, workspace) -> dict:
    """An account scored once (its first stage), then moved to Opportunity by an open deal."""
    domain = populate(api, accounts=2, prefix="mover")[1]  # the second has no deal (populate deals every 7th)
    score(server, workspace.name)
    pipeline = f"pipe-{domain.split('.')[0]}"
    stages = [{"stageId": "demo", "stageLabel": "Demo"}, {"stageId": "won", "stageLabel": "Closed Won"}]
    ok_data(
        api.post("/deal-stages", json={"pipelines": [{"pipelineId": pipeline, "pipelineLabel": "P", "stages": stages}]})
    )
    deal = {"externalDealId": f"d-{domain}", "name": "Deal", "pipelineId": pipeline, "stageId": "demo"}
    ok_data(api.post("/deals", json={"deals": [{**deal, "associatedAccounts": [{"domain": domain}]}]}))
    score(server, workspace.name)
    return next(a for a in all_api_accounts(api) if a["domain"] == domain)


def test_overview_lists_this_weeks_moves_as_the_api_does(server, workspace, api, ui):
    account = _moved_to_opportunity(api, server, workspace)
    html = page(ui, "/ui")
    moved = ok_data(api.get("/accounts/stage-changes", params={"direction": "progressed"}))["data"]
    assert [m["rtp_aid"] for m in moved] == [account["rtp_aid"]] and moved[0]["to"] == "Opportunity"
    section = html.split('id="moved-1"')[1].split("</section>")[0]
    assert f"/ui/accounts/{account['rtp_aid']}" in section and "Opportunity" in section
    assert "No account fell back a stage" in html
    # The funnel's "now" column is the live count; no funnel was kept 7 days ago in a new workspace.
    accounts = all_api_accounts(api)
    for stage in STAGES:
        expected = sum(1 for a in accounts if a["rtp_journey_stage"] == stage)
        assert as_number(metric(html, f"now-{stage.lower()}")) == expected
    assert "Surging" in html and "High score, no sales touch in 14 days" in html
    assert "Open deal, no activity in 14 days" in html


def test_account_page_draws_the_scores_the_history_endpoint_returns(server, workspace, api, ui):
    account = _moved_to_opportunity(api, server, workspace)
    history = ok_data(api.get(f"/accounts/{account['rtp_aid']}/history"))
    html = page(ui, f"/ui/accounts/{account['rtp_aid']}")
    [day] = history["daily"]
    assert f"<title>{day['date']}: {day['rtp_account_score']} ({day['rtp_journey_stage']})</title>" in html
    assert f"{day['date']}: Unaware → Opportunity" in html or f"{day['date']}: Aware → Opportunity" in html
    assert 'class="score-chart"' in html


def test_an_account_never_scored_has_no_chart_but_says_why(api, ui):
    domain = populate(api, accounts=1, prefix="fresh")[0]
    account = next(a for a in all_api_accounts(api) if a["domain"] == domain)
    html = page(ui, f"/ui/accounts/{account['rtp_aid']}")
    assert "No scores yet" in html and 'class="score-chart"' not in html


def test_accounts_sort_by_the_change_against_a_week_before(server, workspace, api, ui):
    account = _moved_to_opportunity(api, server, workspace)  # its open deal raised its score today
    history = ok_data(api.get(f"/accounts/{account['rtp_aid']}/history"))
    html = page(ui, "/ui/accounts", sort="-change")
    assert html.index(f"/ui/accounts/{account['rtp_aid']}") < html.index('data-change="0"'), "the riser first"
    # One scoring day so far: the change is measured from the account's first score, today.
    assert len(history["daily"]) == 1
    rows = list(csv.DictReader(io.StringIO(ui.get("/ui/accounts.csv", params={"sort": "-change"}).text)))
    assert rows[0]["rtp_aid"] == account["rtp_aid"] and int(rows[0]["score_change_7d"]) > 0
    changes = [int(r["score_change_7d"]) for r in rows]
    assert changes == sorted(changes, reverse=True)


def test_an_empty_workspace_says_how_to_get_data_in(ui, workspace):
    html = page(ui, "/ui")
    assert "No accounts yet" in html and f"abmhub seed --workspace {workspace.name}" in html
