"""Website visits in-process, on both databases (contract §9): sites, the script, /collect,
attribution, privacy, aggregation into signals, stats."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from abmhub.accounts import service as accounts_service
from abmhub.accounts.schemas import AccountItem
from abmhub.app import create_app
from abmhub.config import Settings
from abmhub.db.engine import Database
from abmhub.db.tables import signals, website_events
from abmhub.scoring.service import run_scoring
from abmhub.tenancy import service as tenancy
from abmhub.website.aggregate import aggregate

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
VISITOR_IP = "203.0.113.77"


@pytest.fixture
def workspace(database: Database) -> dict[str, Any]:
    workspace_id = tenancy.create_workspace(database, name="acme")
    key = tenancy.create_key(database, workspace="acme", user_email="ops@example.com")
    items = [
        AccountItem.model_validate({"domain": d, "name": n})
        for d, n in (("globex.com", "Globex"), ("initech.com", "Initech"))
    ]
    accounts_service.push_accounts(database, workspace_id=workspace_id, items=items)
    return {"id": workspace_id, "key": key}


@pytest.fixture
def client(database: Database, workspace: dict[str, Any]) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database.url), database)
    # The peer is the trusted local proxy: X-Forwarded-For names the visitor.
    with TestClient(app, client=("127.0.0.1", 50000), headers={"X-Api-Key": workspace["key"]}) as test_client:
        yield test_client


@pytest.fixture
def site(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/v1/sites", json={"name": "Our site", "hostnames": ["www.seller.example"]})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def collect(client: TestClient, site: dict[str, Any], *events: dict[str, Any], **headers: str) -> Any:
    body = [{"k": site["siteKey"], **event} for event in events]
    sent = {"Content-Type": "text/plain", "User-Agent": CHROME, "X-Forwarded-For": VISITOR_IP, **headers}
    return client.post("/collect", content=orjson.dumps(body if len(body) > 1 else body[0]), headers=sent)


def flush(client: TestClient) -> None:
    client.app.state.collector.flush()  # type: ignore[attr-defined]


def stored_events(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(website_events).order_by(website_events.c.id)))


def test_a_site_gets_a_key_a_snippet_and_its_script(client, site):
    assert set(site) == {"siteId", "siteKey", "name", "hostnames", "snippet", "createdAt", "updatedAt"}
    assert site["hostnames"] == ["www.seller.example"]
    assert f"/s/{site['siteKey']}.js" in site["snippet"] and site["snippet"].startswith("<script")
    script = client.get(f"/s/{site['siteKey']}.js", headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert site["siteKey"] in script.text and "/collect" in script.text
    assert len(gzip.compress(script.content)) <= 2048
    assert client.get("/s/nope.js").status_code == 404
    assert client.get("/api/v1/sites").json()["data"]["data"][0]["siteId"] == site["siteId"]


def test_page_views_are_attributed_by_ip_range_and_never_store_the_ip(client, site, database):
    ranges = client.put(
        "/api/v1/ip-ranges", content=b"cidr,domain\n203.0.113.0/24,globex.com\n", headers={"Content-Type": "text/csv"}
    )
    assert ranges.status_code == 200, ranges.text
    client.app.state.collector.refresh()  # type: ignore[attr-defined]
    answer = collect(
        client, site, {"n": "pageview", "u": "https://www.seller.example/pricing", "r": "https://google.com/"}
    )
    assert answer.status_code == 202 and answer.content == b""
    flush(client)
    [event] = stored_events(database)
    assert (event.kind, event.path, event.category, event.weight) == ("pageview", "/pricing", "pricing", 5)
    assert (event.domain, event.matched_by, event.referrer_host) == ("globex.com", "ipRange", "google.com")
    assert len(event.visitor) == 32
    assert not ip_anywhere(database, VISITOR_IP), "the visitor's IP address is stored somewhere"


def ip_anywhere(db: Database, needle: str) -> list[str]:
    """Every column of every table holding the text."""
    found = []
    with db.read() as conn:
        for table in inspect(conn).get_table_names():
            for column in inspect(conn).get_columns(table):
                name = column["name"]
                query = f'SELECT count(*) FROM "{table}" WHERE CAST("{name}" AS TEXT) LIKE :n'
                try:
                    if conn.execute(text(query), {"n": f"%{needle}%"}).scalar():
                        found.append(f"{table}.{name}")
                except Exception:  # virtual tables' hidden columns
                    conn.rollback() if db.is_sqlite is False else None
    return found


def test_identify_names_the_visitors_company_for_the_day(client, site, database):
    collect(client, site, {"n": "pageview", "u": "https://www.seller.example/"})
    collect(client, site, {"n": "identify", "u": "https://www.seller.example/", "email": "ann@initech.com"})
    collect(client, site, {"n": "pageview", "u": "https://www.seller.example/demo"})
    collect(client, site, {"n": "identify", "u": "https://www.seller.example/", "email": "bob@gmail.com"})
    flush(client)
    aggregate(database)
    with database.read() as conn:
        found = {(row.type, row.domain, row.count) for row in conn.execute(select(signals))}
    assert found == {("page_view", "initech.com", 2), ("high_intent_page", "initech.com", 1)}, found


def test_what_is_dropped_is_counted_not_stored(client, site, database):
    page = {"n": "pageview", "u": "https://www.seller.example/"}
    assert (
        collect(client, site, page, **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}).status_code
        == 202
    )
    assert collect(client, site, page, **{"User-Agent": "Mozilla/5.0 HeadlessChrome/124.0"}).status_code == 202
    assert collect(client, site, page, DNT="1").status_code == 202
    assert collect(client, site, page, **{"Sec-GPC": "1"}).status_code == 202
    other = {"n": "pageview", "u": "https://evil.example/"}
    assert collect(client, site, other).status_code == 202
    flush(client)
    assert stored_events(database) == []
    stats = client.get(f"/api/v1/sites/{site['siteId']}/stats").json()["data"]
    assert stats["events"] == {
        "received": 5,
        "accepted": 0,
        "bots": 2,
        "doNotTrack": 2,
        "unknownHostname": 1,
        "rateLimited": 0,
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"{}", 400),
        (b'{"k": "nope", "n": "pageview", "u": "https://www.seller.example/"}', 400),
        (b'{"k": "KEY", "n": "click", "u": "https://www.seller.example/"}', 400),
        (b'{"k": "KEY", "n": "pageview", "u": "javascript:alert(1)"}', 400),
        (b'{"k": "KEY", "n": "pageview", "u": "https://www.seller.example/' + b"a" * 3000 + b'"}', 400),
        (b'{"k": "KEY", "n": "engagement", "u": "https://www.seller.example/", "e": -5}', 400),
        (b'{"k": "KEY", "n": "identify", "u": "https://www.seller.example/"}', 400),
        (b"[" + b",".join([b'{"k": "KEY", "n": "pageview", "u": "https://www.seller.example/"}'] * 51) + b"]", 400),
        (b'{"k": "KEY", "n": "pageview", "u": "https://www.seller.example/\xff\xfe"}', 400),
        (b"x" * 9000, 413),
    ],
)
def test_bad_bodies_are_clear_errors_never_500(client, site, database, body, status):
    response = client.post(
        "/collect", content=body.replace(b"KEY", site["siteKey"].encode()), headers={"User-Agent": CHROME}
    )
    assert response.status_code == status, response.text
    assert "error" in response.json()
    flush(client)
    assert stored_events(database) == []


def test_one_address_flooding_is_rate_limited(client, site):
    page = {"n": "pageview", "u": "https://www.seller.example/"}
    statuses = [collect(client, site, *([page] * 50)).status_code for _ in range(10)]
    assert statuses[:2] == [202, 202] and 429 in statuses, statuses
    other = collect(client, site, page, **{"X-Forwarded-For": "198.51.100.9"})
    assert other.status_code == 202, "another address is not held back"


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(database, workspace, site):
    app = create_app(Settings(database_url=database.url), database)
    with TestClient(app, client=("192.0.2.10", 40000)) as outsider:
        response = outsider.post(
            "/collect",
            content=orjson.dumps({"k": site["siteKey"], "n": "pageview", "u": "https://www.seller.example/"}),
            headers={"User-Agent": CHROME, "X-Forwarded-For": "203.0.113.5", "Content-Type": "text/plain"},
        )
        assert response.status_code == 202
        outsider.app.state.collector.flush()  # type: ignore[attr-defined]
    assert not ip_anywhere(database, "192.0.2.10") and not ip_anywhere(database, "203.0.113.5")


def test_cors_only_for_the_sites_hostnames(client, site):
    page = {"n": "pageview", "u": "https://www.seller.example/"}
    ours = collect(client, site, page, Origin="https://www.seller.example")
    assert ours.headers.get("access-control-allow-origin") == "https://www.seller.example"
    theirs = collect(client, site, page, Origin="https://evil.example")
    assert "access-control-allow-origin" not in theirs.headers


def test_aggregation_is_idempotent_and_raises_the_website_score(client, site, database, workspace):
    client.put("/api/v1/ip-ranges", content=b"203.0.113.0/24,globex.com\n", headers={"Content-Type": "text/csv"})
    client.app.state.collector.refresh()  # type: ignore[attr-defined]
    for path in ("/", "/pricing", "/pricing", "/careers"):
        collect(client, site, {"n": "pageview", "u": f"https://www.seller.example{path}"})
    collect(client, site, {"n": "engagement", "u": "https://www.seller.example/pricing", "e": 180_000, "sd": 80})
    flush(client)
    aggregate(database)
    aggregate(database)  # again: nothing counted twice
    with database.read() as conn:
        found = sorted((row.type, row.count, row.weight, row.url) for row in conn.execute(select(signals)))
    assert found == [
        ("engaged_time", 3, 1.0, None),
        ("high_intent_page", 2, 5.0, "pricing"),
        ("page_view", 4, 1.0, None),
    ], "careers weighs 0: a page view, no intent"
    run_scoring(database, workspace="acme")
    scored = client.get("/api/v1/accounts", params={"domains": '["globex.com"]'}).json()["data"]["data"][0]
    assert scored["rtp_website_intent_score"] > 0
    explained = client.get(f"/api/v1/accounts/{scored['rtp_aid']}/score").json()["data"]
    assert "website" in orjson.dumps(explained).decode()


def test_page_rules_replace_the_built_in_ones(client, site):
    path = f"/api/v1/sites/{site['siteId']}/page-rules"
    assert any(rule["category"] == "pricing" for rule in client.get(path).json()["data"])
    rules = [{"pattern": "/buy*", "category": "pricing", "weight": 8}]
    assert client.put(path, json=rules).json()["data"] == rules
    bad = client.put(path, json=[{"pattern": "buy", "category": "x", "weight": 500}])
    assert bad.status_code == 400 and bad.json()["message"] == "Bad Request"


def test_sites_of_another_workspace_are_not_found(client, site, database):
    tenancy.create_workspace(database, name="other")
    other_key = tenancy.create_key(database, workspace="other", user_email="o@example.com")
    response = client.get(f"/api/v1/sites/{site['siteId']}", headers={"X-Api-Key": other_key})
    assert response.status_code == 404 and response.json()["customMessage"] == f"Site '{site['siteId']}' not found"


# --- the command line and the network-owner dataset ------------------------------------------------


def run_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from abmhub.cli import app

    return CliRunner().invoke(app, list(args))


def test_sites_and_ip_ranges_from_the_command_line(database, workspace, tmp_path):
    created = run_cli(
        "sites",
        "create",
        "--workspace",
        "acme",
        "--name",
        "Docs",
        "--hostname",
        "docs.example.com",
        "--database-url",
        database.url,
    )
    assert created.exit_code == 0, created.output
    assert '<script defer src="http://127.0.0.1:8000/s/' in created.output
    listed = run_cli("sites", "list", "--workspace", "acme", "--database-url", database.url)
    assert "docs.example.com" in listed.output and "built-in" in listed.output
    bad = tmp_path / "ranges.csv"
    bad.write_text("cidr,domain\n10.0.0.0/33,acme.com\n10.1.0.0/16,not a domain\n")
    refused = run_cli("ip-ranges", "import", str(bad), "--workspace", "acme", "--database-url", database.url)
    assert refused.exit_code != 0 and "line 2" in refused.output and "line 3" in refused.output
    good = tmp_path / "good.csv"
    good.write_text("10.1.0.0/16,globex.com\n")
    stored = run_cli("ip-ranges", "import", str(good), "--workspace", "acme", "--database-url", database.url)
    assert stored.exit_code == 0 and "Stored 1 IP ranges" in stored.output


def test_a_network_owner_names_the_account_once_imported(client, site, database, tmp_path):
    dataset = tmp_path / "ip2asn-combined.tsv.gz"
    lines = [
        "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET",
        "203.0.113.0\t203.0.113.255\t64500\tUS\tINITECH-AS Initech Corporation",
        "2001:db8::\t2001:db8::ffff\t64501\tDE\tEXAMPLE-V6",
        "198.18.0.0\t198.19.255.255\t0\tNone\tNot routed",
    ]
    dataset.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    imported = run_cli("ip-data", "import", str(dataset), "--database-url", database.url)
    assert imported.exit_code == 0 and "Stored 3 network ranges" in imported.output, imported.output
    client.app.state.collector.refresh()  # type: ignore[attr-defined]
    collect(client, site, {"n": "pageview", "u": "https://www.seller.example/pricing"})
    flush(client)
    [event] = stored_events(database)
    assert (event.domain, event.matched_by, event.network) == (None, None, "INITECH-AS Initech Corporation")
    aggregate(database)
    with database.read() as conn:
        found = {(row.type, row.domain) for row in conn.execute(select(signals))}
    assert found == {("page_view", "initech.com"), ("high_intent_page", "initech.com")}
    stats = client.get(f"/api/v1/sites/{site['siteId']}/stats").json()["data"]
    assert stats["matched"]["network"] == 1 and stats["topAccounts"][0]["domain"] == "initech.com"


@pytest.mark.parametrize(
    "body",
    [b'[{"k": {}, "n": "pageview", "u": ""}]', b"[1, 2]", b'"text"', b"null", b'{"k": ["x"], "n": "pageview"}'],
)
def test_odd_json_is_a_400_not_a_500(client, site, body):
    response = client.post("/collect", content=body, headers={"User-Agent": CHROME})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "url", ["http://[::1", "https://", "https:///path", "ftp://x.example/", "//x.example/", "javascript:alert(1)"]
)
def test_broken_urls_and_origins_are_a_400_or_ignored_never_500(client, site, url):
    event = {"k": site["siteKey"], "n": "pageview", "u": url}
    response = client.post("/collect", content=orjson.dumps(event), headers={"User-Agent": CHROME})
    assert response.status_code == 400, response.text
    fine = {"k": site["siteKey"], "n": "pageview", "u": "https://www.seller.example/", "r": url}
    assert (
        client.post("/collect", content=orjson.dumps(fine), headers={"User-Agent": CHROME, "Origin": url}).status_code
        == 202
    )


def test_the_dashboard_shows_an_accounts_visits_and_the_weeks_visitors(client, site, database, workspace):
    client.put("/api/v1/ip-ranges", content=b"203.0.113.0/24,globex.com\n", headers={"Content-Type": "text/csv"})
    for path in ("/", "/pricing"):
        collect(client, site, {"n": "pageview", "u": f"https://www.seller.example{path}"})
    flush(client)
    aggregate(database)
    signed_in = client.post(
        "/ui/sign-in",
        data={"api_key": workspace["key"]},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    overview = client.get("/ui").text
    assert "Visiting your website this week" in overview and "globex.com" in overview.split("Visiting your website")[1]
    globex = client.get("/api/v1/accounts", params={"domains": '["globex.com"]'}).json()["data"]["data"][0]
    page = client.get(f"/ui/accounts/{globex['rtp_aid']}").text
    visits = page.split("Website visits, last 30 days")[1].split("</section>")[0]
    assert "2 page views on 1 day" in visits and "pricing ×1" in visits


def test_sites_change_and_go_and_ip_ranges_read_back(client, site):
    path = f"/api/v1/sites/{site['siteId']}"
    changed = client.patch(path, json={"name": "Renamed", "hostnames": ["shop.seller.example"]}).json()["data"]
    assert (changed["name"], changed["hostnames"]) == ("Renamed", ["shop.seller.example"])
    assert client.patch(path, json={"hostnames": ["not a host"]}).status_code == 400
    stored = client.put(
        "/api/v1/ip-ranges", content=b"203.0.113.0/24,globex.com\n", headers={"Content-Type": "text/csv"}
    )
    assert stored.json()["data"] == {"ranges": 1}
    assert client.get("/api/v1/ip-ranges").json()["data"] == [{"cidr": "203.0.113.0/24", "domain": "globex.com"}]
    bad = client.put("/api/v1/ip-ranges", content=b"203.0.113.0/33,globex.com\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400 and "line 1" in bad.json()["customMessage"]
    assert client.put("/api/v1/ip-ranges", json={"x": 1}).status_code == 400, "text/csv only"
    assert client.get("/api/v1/ip-ranges").json()["data"][0]["domain"] == "globex.com", "a refused set changes nothing"
    assert client.delete(path).json()["data"] == {"siteId": site["siteId"], "deleted": True}
    assert client.get(path).status_code == 404
