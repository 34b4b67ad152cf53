"""The dashboard in a real browser: Playwright driving the system's Chromium (SQLite is enough).

Playwright's own browser download is not used: the tests launch /usr/bin/chromium (Debian's
`chromium` package). Without it they skip, saying so, unless ABMHUB_REQUIRE_BROWSER=1 (CI),
where they fail. Every test checks that its pages asked no other host for anything, and a
failing test leaves a screenshot in tests/ui/artifacts/.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ui_helpers import STAGES, all_api_accounts, ok_data, populate, score

from abmhub.tenancy import service as tenancy
from tests.conftest import Server, start_server, stop_server

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests do not run
    expect = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).with_name("artifacts")


def _unavailable(reason: str) -> None:
    if os.environ.get("ABMHUB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required (ABMHUB_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Demo:
    server: Server
    workspace: str
    key: str
    api: httpx.Client


@pytest.fixture(scope="module")
def demo(new_database_url: Callable[[str], str], scratch_dir: Path) -> Iterator[Demo]:
    """A server of its own on SQLite, with a workspace of 70 scored accounts."""
    url = new_database_url("sqlite")
    running = start_server("sqlite", url, scratch_dir / "server-browser.log", "--score-interval", "0")
    from abmhub.db.engine import Database

    db = Database(url)
    tenancy.create_workspace(db, name="browser-demo")
    key = tenancy.create_key(db, workspace="browser-demo", user_email="marketer@example.com")
    db.dispose()
    api = httpx.Client(base_url=f"{running.base_url}/api/v1", headers={"X-Api-Key": key}, timeout=30)
    populate(api, accounts=70, tags=("enterprise",))
    score(running, "browser-demo")
    yield Demo(running, "browser-demo", key, api)
    api.close()
    stop_server(running)


@dataclass
class Tab:
    page: Any
    requests: list[str]
    base_url: str
    # Console errors and uncaught exceptions (a violation of the content security policy is one).
    errors: list[str]

    def foreign_requests(self, *allowed: str) -> list[str]:
        """Requests to any origin but the dashboard's (and `allowed` ones)."""
        own = (self.base_url, *allowed)
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" not in own
        ]


@pytest.fixture
def tab(browser: Any, demo: Demo, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A fresh browser context (no cookies) at 1280×800 that records every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    opened = Tab(page, [], demo.server.base_url, [])
    page.on("request", lambda sent: opened.requests.append(sent.url))
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(tab: Tab, demo: Demo, start: str = "/ui") -> None:
    tab.page.goto(demo.server.base_url + start)
    tab.page.wait_for_url(re.compile(r"/ui/sign-in"))
    tab.page.get_by_label("API key").fill(demo.key)
    tab.page.get_by_role("button", name="Sign in").click()
    tab.page.wait_for_url(demo.server.base_url + start)


def row_ids(tab: Tab) -> list[str]:
    hrefs = tab.page.locator("table.accounts-table tbody th a").evaluate_all("links => links.map(a => a.pathname)")
    return [href.rsplit("/", 1)[-1] for href in hrefs]


# --- flows ---------------------------------------------------------------------------------------


def test_sign_in_and_overview_numbers_match_the_api(tab: Tab, demo: Demo) -> None:
    sign_in(tab, demo)
    page = tab.page
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.locator(".workspace").inner_text() == demo.workspace
    accounts = all_api_accounts(demo.api)
    assert page.locator('[data-metric="accounts-total"]').inner_text() == str(len(accounts))
    for stage in STAGES:
        expected = sum(1 for account in accounts if account["rtp_journey_stage"] == stage)
        assert page.locator(f'[data-metric="stage-{stage.lower()}"]').inner_text() == f"{expected:,}", stage
    assert page.locator("svg.funnel-wide").is_visible()
    assert page.locator("svg.funnel-wide rect.funnel-bar").count() == 5
    assert tab.foreign_requests() == []
    assert tab.errors == []


def test_filter_and_page_the_accounts_list(tab: Tab, demo: Demo) -> None:
    sign_in(tab, demo, "/ui/accounts")
    page = tab.page
    accounts = all_api_accounts(demo.api)
    best_first = [
        a["rtp_aid"] for a in sorted(accounts, key=lambda a: (a["rtp_account_score"], a["rtp_aid"]), reverse=True)
    ]
    assert row_ids(tab) == best_first[:50]

    # The next page, swapped in by htmx; the URL holds the position.
    page.get_by_role("link", name="Next ›").click()
    page.wait_for_url(re.compile(r"after="))
    expect(page.locator("table.accounts-table tbody tr")).to_have_count(20)
    assert row_ids(tab) == best_first[50:]
    page.get_by_role("link", name="‹ Previous").click()
    page.wait_for_url(re.compile(r"before="))
    expect(page.locator("table.accounts-table tbody tr")).to_have_count(50)
    assert row_ids(tab) == best_first[:50]

    # A stage and a tag: the results and the URL follow the form as it changes.
    page.get_by_label("Journey stage").select_option("Aware")
    page.wait_for_url(re.compile(r"stage=Aware"))
    page.get_by_label("Tag", exact=True).fill("enterprise")
    page.get_by_label("Tag", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"tag=enterprise"))
    wanted = {a["rtp_aid"] for a in accounts if a["rtp_journey_stage"] == "Aware" and "enterprise" in a["tags"]}
    expect(page.locator(".result-count strong")).to_have_text(str(len(wanted)))
    assert set(row_ids(tab)) == wanted

    # The view is in the URL: opened afresh, it shows the same rows, and sorting by name works.
    bookmarked = page.url
    page.goto(bookmarked)
    assert set(row_ids(tab)) == wanted
    page.get_by_role("link", name=re.compile(r"^Name")).click()
    page.wait_for_url(re.compile(r"sort=name"))
    names = page.locator("table.accounts-table tbody th a").all_inner_texts()
    assert names == sorted(names, key=str.lower)
    assert tab.foreign_requests() == []
    assert tab.errors == []


def test_open_an_account(tab: Tab, demo: Demo) -> None:
    sign_in(tab, demo, "/ui/accounts")
    page = tab.page
    first = page.locator("table.accounts-table tbody th a").first
    name = first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/ui/accounts/[0-9a-f]{24}$"))
    assert page.get_by_role("heading", level=1).inner_text() == name
    rtp_aid = page.url.rsplit("/", 1)[-1]
    explanation = ok_data(demo.api.get(f"/accounts/{rtp_aid}/score"))
    assert page.locator(".big-score span").inner_text() == str(explanation["rtp_account_score"])
    assert page.get_by_role("heading", name="Why this score").is_visible()
    assert page.get_by_role("heading", name="Activity timeline").is_visible()
    # The score over time: one dot per day the history endpoint returns, the last one today's score.
    history = ok_data(demo.api.get(f"/accounts/{rtp_aid}/history"))
    chart = page.get_by_role("img", name=re.compile("Score over the last 90 days"))
    expect(chart).to_be_visible()
    assert chart.locator("circle.score-dot").count() == len(history["daily"]) > 0
    assert history["daily"][-1]["rtp_account_score"] == explanation["rtp_account_score"]
    assert page.title() == f"{name} · abmhub"
    assert tab.foreign_requests() == []
    assert tab.errors == []


def test_build_a_dynamic_segment_with_the_live_preview_and_save_it(tab: Tab, demo: Demo) -> None:
    sign_in(tab, demo, "/ui/segments/new")
    page = tab.page
    accounts = all_api_accounts(demo.api)
    page.get_by_label("Name").fill("Browser-built segment")
    value = page.locator("#all-0-value")
    value.fill("15")
    expected = sum(1 for a in accounts if a["rtp_account_score"] >= 15)
    expect(page.locator("[data-preview-count]")).to_have_text(f"{expected:,}")
    # A second condition, added with the form's own button (the page comes back with the values).
    page.get_by_role("button", name="+ Add condition").first.click()
    page.wait_for_url(re.compile(r"add=all"))
    page.locator("#all-1-field").select_option("tags")
    page.locator("#all-1-op").select_option("contains")
    page.locator("#all-1-value").fill("enterprise")
    expected = sum(1 for a in accounts if a["rtp_account_score"] >= 15 and "enterprise" in a["tags"])
    expect(page.locator("[data-preview-count]")).to_have_text(f"{expected:,}")
    # A value that is no number is flagged in the preview.
    value.fill("lots")
    expect(page.locator("#rule-preview")).to_contain_text("is not a number")
    value.fill("15")
    expect(page.locator("[data-preview-count]")).to_have_text(f"{expected:,}")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(re.compile(r"/ui/segments/[0-9a-f]{24}\?saved=1"))
    assert page.get_by_role("status").first.inner_text().startswith("Segment saved")
    segment_id = urlsplit(page.url).path.rsplit("/", 1)[-1]
    record = ok_data(demo.api.get(f"/segments/{segment_id}"))
    assert record["name"] == "Browser-built segment" and record["type"] == "dynamic"
    assert record["rule"] == {
        "all": [
            {"field": "rtp_account_score", "op": "gte", "value": 15},
            {"field": "tags", "op": "contains", "value": "enterprise"},
        ]
    }
    assert tab.foreign_requests() == []
    assert tab.errors == []


def test_sign_out(tab: Tab, demo: Demo) -> None:
    sign_in(tab, demo)
    tab.page.get_by_role("button", name="Sign out").click()
    tab.page.wait_for_url(re.compile(r"/ui/sign-in$"))
    tab.page.goto(demo.server.base_url + "/ui/accounts")
    tab.page.wait_for_url(re.compile(r"/ui/sign-in\?next="))
    assert tab.page.get_by_label("API key").is_visible()
    assert tab.foreign_requests() == []
    assert tab.errors == []


@pytest.fixture
def attacker_site(demo: Demo) -> Iterator[str]:
    """A page on another origin (another port of this machine) whose form posts to the dashboard."""
    target = demo.server.base_url

    class AttackPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f'<!doctype html><form id="f" method="post" action="{target}/ui/segments">'
                '<input name="name" value="Forged"><input name="status" value="active">'
                '<input name="all-field" value="tags"><input name="all-op" value="contains">'
                '<input name="all-value" value="x"><button>Win a prize</button></form>'
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), AttackPage)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


def test_a_cross_site_post_is_refused(tab: Tab, demo: Demo, attacker_site: str) -> None:
    sign_in(tab, demo)
    page = tab.page
    page.goto(attacker_site + "/")
    with page.expect_navigation():
        page.get_by_role("button", name="Win a prize").click()
    assert "Request refused" in page.content()
    page.goto(demo.server.base_url + "/ui/segments")
    assert "Forged" not in page.content()
    assert page.get_by_role("heading", name="Segments").is_visible()  # still signed in
    assert tab.foreign_requests(attacker_site) == []
