"""Website visits end to end (contract §9): a real browser on a customer's site, the site's
first-party reverse proxy, a real `abmhub serve` on each database, and the scoring job.

The test's own HTTP server plays the customer's site *and* its reverse proxy, as docs/website.md
recommends: the pages load the tracker from `/abm/script.js`, which it fetches from abmhub's
`/s/<siteKey>.js`, and it passes the script's events from `/abm/collect` on to abmhub's
`/collect`, adding `X-Forwarded-For` with a visitor address of the test's choosing (the proxy
connects from 127.0.0.1, which the server trusts by default). So a visit "from" 203.0.113.9 is
made without leaving the machine.

The site is `shop.localhost`: a site's hostnames must be domain names (`127.0.0.1` and
`localhost` are refused), and Chromium resolves `*.localhost` to the loopback address itself,
never asking DNS (RFC 6761). The page's script tag carries `data-allow-local="true"`, without
which the tracker stays quiet on a local host name.

The browser is the dashboard tests' (same launch, same skip rules). Chromium sets
`navigator.webdriver` and calls itself HeadlessChrome, both of which abmhub drops (the script
and the collector respectively), so a test's visitor first says it is a person in a desktop
Chrome; the privacy test checks what happens when it does not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import inspect, text
from test_browser import ARTIFACTS, browser  # noqa: F401  (the fixture: one launch of the system's Chromium)
from ui_helpers import ok_data

from abmhub.db.engine import Database
from tests.conftest import Server, Workspace

SITE_HOST = "shop.localhost"
RANGE_VISITOR = "203.0.113.9"  # inside the range given to globex.com
IDENTIFIED_VISITOR = "198.51.100.7"  # in no range: only identify can name the company
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
GOOGLEBOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"
HUMAN = "Object.defineProperty(navigator, 'webdriver', {get: () => false})"
DO_NOT_TRACK = "Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})"
TIMEOUT_S = 10.0

SNIPPET = '<script defer data-allow-local="true" src="/abm/script.js"></script>'
# A link that navigates the way single-page apps do: history.pushState, no page load.
SPA_LINKS = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-spa]");
  if (!link) return;
  event.preventDefault();
  history.pushState({}, "", link.href);
  document.querySelector("h1").textContent = link.textContent;
});
</script>"""
SIGN_UP = """<form id="signup"><label>Work email <input type="email" name="email"></label>
<button>Sign up</button></form>
<script>
document.getElementById("signup").addEventListener("submit", (event) => {
  event.preventDefault();
  window.abmhub && abmhub.identify(event.target.email.value);
  event.target.replaceWith("Thanks for signing up");
});
</script>"""


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{SNIPPET}</head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    ).encode()


PAGES = {
    "/": _page("Shop", '<a href="/pricing">Pricing</a>'),
    "/pricing": _page("Pricing", f'<p>Plans and prices</p><a href="/team" data-spa>Team plans</a>{SPA_LINKS}'),
    "/team": _page("Team plans", SIGN_UP),
}


# --- the customer's site and its reverse proxy ---------------------------------------------------


@dataclass
class Forwarded:
    """One `POST /abm/collect` and abmhub's answer to it."""

    body: dict[str, Any] | list[Any]
    user_agent: str | None
    status: int


@dataclass
class Shop:
    """The site on http://shop.localhost:<port>, proxying /abm/* to abmhub."""

    abmhub_url: str
    origin: str = ""
    site_key: str = ""
    visitor_ip: str = RANGE_VISITOR
    forwarded: list[Forwarded] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)  # every URL the proxy asked abmhub for
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def collected(self) -> list[Forwarded]:
        with self.lock:
            return list(self.forwarded)

    def wait_for_collects(self, count: int, kind: str | None = None) -> list[Forwarded]:
        """The collect requests once `count` of them (of events of `kind`) have been answered."""

        def matching() -> list[Forwarded]:
            return [f for f in self.collected() if kind is None or (isinstance(f.body, dict) and f.body["n"] == kind)]

        deadline = time.monotonic() + TIMEOUT_S
        while len(matching()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        found = matching()
        assert len(found) >= count, f"{len(found)} of {count} collect requests reached the proxy: {self.collected()}"
        return found

    def script(self, headers: Any) -> bytes:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            url = f"{self.abmhub_url}/s/{self.site_key}.js"
            self.upstream.append(url)
            answer = client.get(url, headers={"user-agent": headers.get("user-agent") or ""})
        if answer.status_code != 200:
            self.problems.append(f"GET {url} -> {answer.status_code}")
            return b""
        # abmhub renders the collect URL from the Host it was asked on (its own here). A
        # first-party deployment wants the events on its own origin too, so its proxy points
        # the script at /abm/collect: what this one does.
        own = json.dumps(f"{self.abmhub_url}/collect").encode()
        if answer.content.count(own) != 1:
            self.problems.append(f"the script does not hold its collect URL {own!r} once")
        return answer.content.replace(own, json.dumps(f"{self.origin}/abm/collect").encode())

    def collect(self, body: bytes, headers: Any) -> httpx.Response:
        passed = {
            name: headers[name]
            for name in ("content-type", "user-agent", "origin", "dnt", "sec-gpc")
            if name in headers
        }
        passed["x-forwarded-for"] = self.visitor_ip
        with httpx.Client(timeout=TIMEOUT_S) as client:
            url = f"{self.abmhub_url}/collect"
            self.upstream.append(url)
            answer = client.post(url, content=body, headers=passed)
        try:
            event = json.loads(body)
        except ValueError:
            event = {"unreadable": body.decode(errors="replace")}
        with self.lock:
            self.forwarded.append(Forwarded(event, headers.get("user-agent"), answer.status_code))
        return answer


def _handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class SiteAndProxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/abm/script.js":
                self._answer(200, shop.script(self.headers), "text/javascript; charset=utf-8")
            elif path in PAGES:
                self._answer(200, PAGES[path], "text/html; charset=utf-8")
            else:
                self._answer(404 if path != "/favicon.ico" else 204)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if urlsplit(self.path).path != "/abm/collect":
                self._answer(404)
                return
            answer = shop.collect(body, self.headers)
            self._answer(answer.status_code, answer.content, answer.headers.get("content-type", ""))

        def _answer(self, status: int, body: bytes = b"", content_type: str = "") -> None:
            self.send_response(status)
            if content_type:
                self.send_header("content-type", content_type)
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return SiteAndProxy


@pytest.fixture
def shop(server: Server) -> Iterator[Shop]:
    made = Shop(server.base_url)
    # Loopback only: the browser reaches it as shop.localhost, which Chromium maps to 127.0.0.1.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    made.origin = f"http://{SITE_HOST}:{httpd.server_address[1]}"
    yield made
    httpd.shutdown()
    httpd.server_close()


# --- abmhub: a workspace with accounts and a site ------------------------------------------------


@dataclass
class Tracked:
    workspace: Workspace
    api: httpx.Client
    site_id: str = ""

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = ok_data(self.api.get(f"/sites/{self.site_id}/stats"))
        return data

    def wait_for_stats(self, done: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The stats once `done` holds: the collector writes its buffer every second."""
        deadline = time.monotonic() + TIMEOUT_S
        stats = self.stats()
        while not done(stats) and time.monotonic() < deadline:
            time.sleep(0.2)
            stats = self.stats()
        assert done(stats), f"{what} not in {TIMEOUT_S} s: {stats}"
        return stats

    def account(self, domain: str) -> dict[str, Any]:
        page = ok_data(self.api.get("/accounts", params={"domains": json.dumps([domain])}))
        [found] = page["data"]
        return dict(found)


@pytest.fixture
def tracked(server: Server, new_workspace: Callable[[], Workspace]) -> Iterator[Tracked]:
    """A fresh workspace with the accounts globex.com and initech.com."""
    workspace = new_workspace()
    with httpx.Client(base_url=f"{server.base_url}/api/v1", headers={"X-Api-Key": workspace.key}, timeout=30) as api:
        accounts = [{"domain": "globex.com", "name": "Globex"}, {"domain": "initech.com", "name": "Initech"}]
        result = ok_data(api.post("/accounts", json={"accounts": accounts}))
        assert result["summary"]["created"] == 2, result
        yield Tracked(workspace, api)


def track_shop(tracked: Tracked, shop: Shop) -> None:
    """Create the site of the shop, and wait until abmhub serves its script.

    The server's collector re-reads the sites (and the IP ranges) at most every 5 s, so a new
    site is unknown to it for up to that long; what it read with the site is used at once.
    """
    site = ok_data(tracked.api.post("/sites", json={"name": "Shop", "hostnames": [SITE_HOST]}))
    assert site["hostnames"] == [SITE_HOST]
    tracked.site_id, shop.site_key = site["siteId"], site["siteKey"]
    deadline = time.monotonic() + TIMEOUT_S
    while httpx.get(f"{shop.abmhub_url}/s/{shop.site_key}.js").status_code != 200:
        assert time.monotonic() < deadline, "the new site's script is still unknown"
        time.sleep(0.2)


def run_scoring(cli: Callable[..., Any], tracked: Tracked) -> None:
    done = cli("score", "--workspace", tracked.workspace.name)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the browser ---------------------------------------------------------------------------------


@dataclass
class Visit:
    contexts: list[Any] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self, shop: Shop) -> list[str]:
        """Requests the browser made anywhere but the shop: none, so nothing left 127.0.0.1."""
        return [url for url in self.requests if not url.startswith(shop.origin + "/")]


@pytest.fixture
def visit(browser: Any, shop: Shop, request: pytest.FixtureRequest) -> Iterator[Visit]:  # noqa: F811
    """The browser contexts of a test, closed (after a screenshot of their pages if it failed)
    while the shop still answers: a page closing may still send its engagement."""
    made = Visit()
    yield made
    report = getattr(request.node, "report_call", None)
    for number, context in enumerate(made.contexts):
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for tab, page in enumerate(context.pages):
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{number}-{tab}.png"), full_page=True)
        context.close()


def open_tab(browser: Any, visit: Visit, *init_scripts: str, user_agent: str = CHROME) -> Any:  # noqa: F811
    """A tab of a fresh context (no cookies) that records every request its pages make."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, user_agent=user_agent)
    context.set_default_timeout(TIMEOUT_S * 1000)
    visit.contexts.append(context)
    context.on("request", lambda sent: visit.requests.append(sent.url))
    for script in init_scripts:
        context.add_init_script(script)
    page = context.new_page()
    page.on("console", lambda message: visit.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    return page


def assert_clean(visit: Visit, shop: Shop) -> None:
    """What every test checks last: nothing but the shop in the browser, nothing but abmhub
    behind it, no script error, no cookie."""
    assert visit.foreign_requests(shop) == []
    assert all(url.startswith(shop.abmhub_url + "/") for url in shop.upstream), shop.upstream
    assert shop.problems == []
    assert visit.errors == []
    assert all(context.cookies() == [] for context in visit.contexts)


def assert_forgotten(value: str, server: Server, db: Database) -> None:
    """`value` is in no column of any table, and in no line of the server's log."""
    with db.read() as conn:
        quote = conn.dialect.identifier_preparer.quote
        inspector = inspect(conn)
        for table in inspector.get_table_names():
            if table.startswith("account_search"):
                continue  # SQLite's FTS5 index (a virtual table) and its shadow tables
            names = [column["name"] for column in inspector.get_columns(table)]
            # One pass over the table: for each column, whether any of its values holds `value`.
            flags = ", ".join(
                f"MAX(CASE WHEN CAST({quote(name)} AS TEXT) LIKE :pattern THEN 1 ELSE 0 END)" for name in names
            )
            row = conn.execute(text(f"SELECT {flags} FROM {quote(table)}"), {"pattern": f"%{value}%"}).one()
            found = [name for name, flag in zip(names, row, strict=True) if flag]
            assert found == [], f"{value!r} is stored in {table}: {', '.join(found)}"
    assert value not in server.log()


# --- the tests -----------------------------------------------------------------------------------


def test_a_visit_from_a_known_ip_range_scores_its_account(
    browser: Any,  # noqa: F811
    visit: Visit,
    shop: Shop,
    tracked: Tracked,
    server: Server,
    server_database: Database,
    cli: Callable[..., Any],
) -> None:
    ranges = tracked.api.put(
        "/ip-ranges", content="cidr,domain\n203.0.113.0/24,globex.com\n", headers={"Content-Type": "text/csv"}
    )
    assert ok_data(ranges) == {"ranges": 1}
    track_shop(tracked, shop)
    shop.visitor_ip = RANGE_VISITOR

    page = open_tab(browser, visit, HUMAN)
    page.goto(shop.origin + "/")
    assert page.evaluate("navigator.webdriver") is False
    page.get_by_role("link", name="Pricing").click()  # a full navigation
    page.wait_for_url(shop.origin + "/pricing")
    page.get_by_role("link", name="Team plans").click()  # history.pushState
    page.wait_for_function("location.pathname === '/team'")

    views = [f.body for f in shop.wait_for_collects(3, "pageview") if isinstance(f.body, dict)]
    # Sorted: the proxy records each one when abmhub has answered, and answers may overtake.
    assert sorted((view["u"], view.get("r") or "") for view in views) == [
        (shop.origin + "/", ""),
        (shop.origin + "/pricing", shop.origin + "/"),
        (shop.origin + "/team", shop.origin + "/pricing"),
    ]
    assert {f.status for f in shop.collected()} == {202}
    assert all(f.user_agent == CHROME for f in shop.collected())

    stats = tracked.wait_for_stats(lambda s: s["events"]["accepted"] >= 3, "3 accepted events")
    assert stats["events"]["bots"] == stats["events"]["doNotTrack"] == stats["events"]["unknownHostname"] == 0
    assert stats["matched"] == {"identify": 0, "ipRange": 1, "network": 0}
    assert (stats["visitors"], stats["unmatched"]) == (1, 0)
    globex = tracked.account("globex.com")
    assert stats["topAccounts"] == [
        {"rtp_aid": globex["rtp_aid"], "domain": "globex.com", "pageViews": 3, "visitors": 1}
    ]
    assert {"path": "/pricing", "category": "pricing", "views": 1} in stats["topPages"]

    run_scoring(cli, tracked)
    globex = tracked.account("globex.com")
    assert globex["rtp_website_intent_score"] > 0
    assert globex["rtp_account_score"] > 0
    assert tracked.account("initech.com")["rtp_website_intent_score"] == 0

    explanation = ok_data(tracked.api.get(f"/accounts/{globex['rtp_aid']}/score"))
    [website] = [source for source in explanation["sources"] if source["source"] == "website"]
    assert website["score"] == globex["rtp_website_intent_score"]
    assert website["contribution"] > 0
    assert website["signals"] == 2  # the day's page_view (3 views) and high_intent_page (pricing)
    top = [(signal["source"], signal["type"]) for signal in explanation["topSignals"]]
    assert top[0] == ("website", "high_intent_page")  # one pricing view (5) outweighs three page views
    assert ("website", "page_view") in top

    assert_clean(visit, shop)
    assert_forgotten(RANGE_VISITOR, server, server_database)


def test_an_identified_visitor_scores_the_company_of_the_email(
    browser: Any,  # noqa: F811
    visit: Visit,
    shop: Shop,
    tracked: Tracked,
    server: Server,
    server_database: Database,
    cli: Callable[..., Any],
) -> None:
    track_shop(tracked, shop)
    shop.visitor_ip = IDENTIFIED_VISITOR

    page = open_tab(browser, visit, HUMAN)
    page.goto(shop.origin + "/team")
    page.get_by_label("Work email").fill("ann@initech.com")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Thanks for signing up").wait_for()

    shop.wait_for_collects(1, "pageview")
    [identify] = shop.wait_for_collects(1, "identify")
    assert identify.body == {
        "k": shop.site_key,
        "n": "identify",
        "u": shop.origin + "/team",
        "email": "ann@initech.com",
    }
    assert {f.status for f in shop.collected()} == {202}

    stats = tracked.wait_for_stats(lambda s: s["events"]["accepted"] >= 2, "2 accepted events")
    assert stats["matched"] == {"identify": 1, "ipRange": 0, "network": 0}
    assert [(a["domain"], a["pageViews"]) for a in stats["topAccounts"]] == [("initech.com", 1)]

    run_scoring(cli, tracked)
    assert tracked.account("initech.com")["rtp_website_intent_score"] > 0
    assert tracked.account("globex.com")["rtp_website_intent_score"] == 0

    assert_clean(visit, shop)
    assert_forgotten(IDENTIFIED_VISITOR, server, server_database)
    # Only the email's domain is kept, and nothing of the user agent.
    assert_forgotten("ann@initech.com", server, server_database)
    assert_forgotten(CHROME, server, server_database)


def test_bots_automation_and_do_not_track_count_nothing(
    browser: Any,  # noqa: F811
    visit: Visit,
    shop: Shop,
    tracked: Tracked,
) -> None:
    track_shop(tracked, shop)

    # A crawler that runs scripts and hides its automation: it sends, abmhub counts it a bot.
    crawler = open_tab(browser, visit, HUMAN, user_agent=GOOGLEBOT)
    crawler.goto(shop.origin + "/pricing")
    [sent] = shop.wait_for_collects(1)
    assert (sent.status, sent.user_agent) == (202, GOOGLEBOT)
    stats = tracked.wait_for_stats(lambda s: s["events"]["bots"] >= 1, "the bot counted")
    assert stats["events"]["received"] == stats["events"]["bots"] == 1
    assert stats["events"]["accepted"] == 0
    assert (stats["visitors"], stats["topPages"]) == (0, [])

    # Under automation (navigator.webdriver, Playwright's default), and with Do-Not-Track, the
    # script runs and sends nothing: not a page view, not an SPA navigation, not an identify.
    for init_scripts in [(), (HUMAN, DO_NOT_TRACK)]:
        page = open_tab(browser, visit, *init_scripts)
        page.goto(shop.origin + "/pricing")
        assert page.evaluate("window.abmhub && window.abmhub.loaded") is True
        page.get_by_role("link", name="Team plans").click()
        page.wait_for_function("location.pathname === '/team'")
        page.evaluate("abmhub.identify('ann@initech.com')")
        page.wait_for_timeout(300)
    assert len(shop.collected()) == 1  # the crawler's page view only

    # Nothing more arrived at abmhub either, once its buffer has been written.
    time.sleep(1.2)
    assert tracked.stats()["events"] == stats["events"]
    assert_clean(visit, shop)
