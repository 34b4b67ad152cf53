"""The tracking script (contract §9) in a real browser: Playwright driving the system's Chromium.

A small site of the test's own serves a page that loads the rendered script, and, on another
port of 127.0.0.1 (another origin, so that CORS applies as it does on a customer's site), a
fake collect endpoint that records what arrives. The browser is the dashboard tests' (same
launch, same skip rules, ABMHUB_REQUIRE_BROWSER). Chromium sets `navigator.webdriver`, which
the script honours, so the tests that expect events first say that the visitor is no robot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_browser import browser  # noqa: F401  (the fixture: one launch of the system's Chromium)

from abmhub.website.script import render_script

# A key that would end its string, or the inline script, if the server did not escape it.
SITE_KEY = 'sk_test"</script>'
HUMAN = "Object.defineProperty(navigator, 'webdriver', {get: () => false})"
SET_VISIBILITY = """state => {
  Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
  Object.defineProperty(document, 'hidden', {value: state === 'hidden', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""
QUEUE_STUB = (
    "<script>window.abmhub = window.abmhub || {q: []};"
    "abmhub.identify = abmhub.identify || function (email) { abmhub.q.push(['identify', email]); };"
    "abmhub.identify('ann@acme.com');</script>"
)


@dataclass
class Hit:
    """One request that reached the fake collect endpoint."""

    method: str
    path: str
    content_type: str | None
    cookie: str | None
    body: bytes


@dataclass
class Site:
    page_origin: str = ""
    collect_origin: str = ""
    pages: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def collect_url(self) -> str:
        return self.collect_origin + "/collect"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(hit.body) for hit in self.hits if hit.method == "POST"]

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The events received once there are `count` of them, after a moment for any extra."""
        deadline = time.monotonic() + timeout
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        return self.events()

    def add_page(self, path: str, *, allow_local: bool = True, before: str = "") -> str:
        """A tall page (3000 px) that loads the tracker from <head>; returns its URL."""
        attribute = ' data-allow-local="true"' if allow_local else ""
        self.pages[path] = (
            "<!doctype html><html><head><meta charset=utf-8><title>Pricing</title>"
            "<style>html, body { margin: 0 } main { height: 3000px }</style>"
            f'{before}<script src="/s/site.js"{attribute}></script></head>'
            "<body><main>Plans and prices</main></body></html>"
        )
        return self.page_origin + path


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class SiteAndCollector(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/s/site.js":
                self._answer(200, render_script(SITE_KEY, site.collect_url), "text/javascript; charset=utf-8")
            elif path in site.pages:
                self._answer(200, site.pages[path].encode(), "text/html; charset=utf-8")
            else:
                self._answer(404 if path != "/favicon.ico" else 204)

        def do_POST(self) -> None:
            self._record(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self._answer(202)

        def do_OPTIONS(self) -> None:
            # Answered as a permissive server would, so that a preflight would be seen, not blocked.
            self._record(b"")
            self._answer(
                204, extra={"access-control-allow-headers": "content-type", "access-control-allow-methods": "POST"}
            )

        def _record(self, body: bytes) -> None:
            hit = Hit(self.command, self.path, self.headers.get("content-type"), self.headers.get("cookie"), body)
            with site.lock:
                site.hits.append(hit)

        def _answer(
            self, status: int, body: bytes = b"", content_type: str = "", extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("content-type", content_type)
            if self.headers.get("origin"):
                self.send_header("access-control-allow-origin", self.headers["origin"])
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return SiteAndCollector


@pytest.fixture
def site() -> Iterator[Site]:
    """The customer's site and the collect endpoint, on two ports of 127.0.0.1."""
    made = Site()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(made)) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    made.page_origin, made.collect_origin = (f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    yield made
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class Visit:
    context: Any
    requests: list[Any]
    errors: list[str]

    def open(self, *init_scripts: str) -> Any:
        """A new tab; each init script runs in its pages before theirs."""
        for script in init_scripts:
            self.context.add_init_script(script)
        page = self.context.new_page()
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def sent(self, page: Any) -> list[dict[str, Any]]:
        """The events the pages sent, in the order they sent them."""
        page.evaluate("0")  # a round trip: Playwright has delivered the request events before its answer
        return [json.loads(r.post_data) for r in self.requests if r.method == "POST" and r.url.endswith("/collect")]

    def foreign_hosts(self) -> set[str]:
        return {urlsplit(r.url).hostname or "" for r in self.requests if urlsplit(r.url).scheme != "data"} - {
            "127.0.0.1"
        }


@pytest.fixture
def visit(browser: Any) -> Iterator[Visit]:  # noqa: F811
    """A fresh browser context (no cookies) at 1280×800 that records every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    made = Visit(context, [], [])
    context.on("request", lambda sent: made.requests.append(sent))
    yield made
    context.close()


def _assert_clean(visit: Visit, site: Site) -> None:
    """What every test checks last: no preflight, no cookies, no other host, no error."""
    assert [hit.method for hit in site.hits if hit.method != "POST"] == []
    assert all(hit.cookie is None for hit in site.hits)
    assert visit.context.cookies() == []
    assert visit.foreign_hosts() == set()
    assert visit.errors == []


# --- what is sent --------------------------------------------------------------------------------


def test_a_page_view_is_one_simple_cross_origin_post(visit: Visit, site: Site) -> None:
    site.pages["/start"] = '<!doctype html><a href="/pricing?plan=team">Pricing</a>'
    url = site.add_page("/pricing")
    page = visit.open(HUMAN)
    page.goto(site.page_origin + "/start")
    page.get_by_role("link", name="Pricing").click()
    page.wait_for_url(url + "?plan=team")

    assert site.wait_for_events(1) == [
        {"k": SITE_KEY, "n": "pageview", "u": url + "?plan=team", "r": site.page_origin + "/start"}
    ]
    # One request, as sent: no OPTIONS preflight before it, although it crosses origins.
    assert [(hit.method, hit.path, hit.content_type) for hit in site.hits] == [("POST", "/collect", "text/plain")]
    _assert_clean(visit, site)


def test_a_page_view_without_a_referrer_has_no_r(visit: Visit, site: Site) -> None:
    url = site.add_page("/")
    visit.open(HUMAN).goto(url)
    assert site.wait_for_events(1) == [{"k": SITE_KEY, "n": "pageview", "u": url}]
    _assert_clean(visit, site)


def test_single_page_navigation_counts_each_new_url_once(visit: Visit, site: Site) -> None:
    url = site.add_page("/app")
    page = visit.open(HUMAN)
    page.goto(url)
    site.wait_for_events(1)
    page.evaluate("history.pushState({}, '', '/app/pricing')")
    page.evaluate("history.replaceState({}, '', '/app/pricing')")  # the same URL: no view
    page.evaluate("history.pushState({}, '', '/app/pricing#faq')")  # an anchor: no view
    page.go_back()  # popstate to /app/pricing: the same page
    page.go_back()  # popstate to /app: a view
    page.wait_for_url(url)

    expected = [
        {"k": SITE_KEY, "n": "pageview", "u": url},
        {"k": SITE_KEY, "n": "pageview", "u": site.page_origin + "/app/pricing", "r": url},
        {"k": SITE_KEY, "n": "pageview", "u": url, "r": site.page_origin + "/app/pricing"},
    ]
    assert sorted(site.wait_for_events(3), key=json.dumps) == sorted(expected, key=json.dumps)
    assert visit.sent(page) == expected  # in this order
    _assert_clean(visit, site)


def test_identify_sends_the_trimmed_email(visit: Visit, site: Site) -> None:
    url = site.add_page("/demo")
    page = visit.open(HUMAN)
    page.goto(url)
    page.evaluate("abmhub.identify(42); abmhub.identify('   '); abmhub.identify('  ann@acme.com ')")

    events = site.wait_for_events(2)
    assert len(events) == 2
    assert {"k": SITE_KEY, "n": "identify", "u": url, "email": "ann@acme.com"} in events
    assert [event["n"] for event in visit.sent(page)] == ["pageview", "identify"]
    _assert_clean(visit, site)


def test_identify_calls_queued_before_the_script_loads_are_sent(visit: Visit, site: Site) -> None:
    url = site.add_page("/welcome", before=QUEUE_STUB)
    visit.open(HUMAN).goto(url)

    events = site.wait_for_events(2)
    assert sorted(event["n"] for event in events) == ["identify", "pageview"]  # once each
    assert {"k": SITE_KEY, "n": "identify", "u": url, "email": "ann@acme.com"} in events
    _assert_clean(visit, site)


# --- engagement ----------------------------------------------------------------------------------


def test_hiding_the_page_after_3_visible_seconds_sends_the_engagement(visit: Visit, site: Site) -> None:
    url = site.add_page("/pricing")
    page = visit.open(HUMAN)
    loaded = time.monotonic()
    page.goto(url)
    page.evaluate("window.scrollTo(0, 1000)")  # (1000 + 800) / 3000: 60 % seen
    page.evaluate(SET_VISIBILITY, "hidden")  # too early: nothing, and the clock stops
    time.sleep(1.5)
    page.evaluate(SET_VISIBILITY, "visible")
    time.sleep(3.1)
    page.evaluate(SET_VISIBILITY, "hidden")
    hidden = time.monotonic()
    page.evaluate(SET_VISIBILITY, "visible")
    page.evaluate(SET_VISIBILITY, "hidden")  # right after an event: nothing new to say

    events = site.wait_for_events(2)
    assert [event["n"] for event in events] == ["pageview", "engagement"]
    engagement = events[1]
    assert engagement.keys() == {"k", "n", "u", "e", "sd"}
    assert engagement["u"] == url
    # At least 3 s, but not the 1.5 s the page spent hidden.
    assert 3000 <= engagement["e"] < (hidden - loaded - 1.5) * 1000 + 300
    assert engagement["sd"] == 60
    _assert_clean(visit, site)


def test_navigating_away_sends_the_engagement_of_the_page_left(visit: Visit, site: Site) -> None:
    url = site.add_page("/app")
    site.pages["/elsewhere"] = "<!doctype html><p>No tracker here</p>"
    page = visit.open(HUMAN)
    page.goto(url)
    time.sleep(3.1)
    page.evaluate("history.pushState({}, '', '/app/demo')")  # SPA: the engagement of /app first
    time.sleep(3.1)
    page.goto(site.page_origin + "/elsewhere")  # unloading: the engagement of /app/demo, kept alive

    events = site.wait_for_events(4)
    assert [(event["n"], event["u"]) for event in visit.sent(page)[:3]] == [
        ("pageview", url),
        ("engagement", url),
        ("pageview", site.page_origin + "/app/demo"),
    ]
    engagements = [event for event in events if event["n"] == "engagement"]
    assert [event["u"] for event in sorted(engagements, key=lambda e: e["u"])] == [url, site.page_origin + "/app/demo"]
    for engagement in engagements:
        assert 3000 <= engagement["e"] < 5000
        assert 0 < engagement["sd"] <= 100
    assert len(events) == 4
    _assert_clean(visit, site)


# --- when nothing is sent ------------------------------------------------------------------------

DNT = "Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})"
GPC = "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"


# data-allow-local lifts the localhost rule only: the other cases have it, and still send nothing.
@pytest.mark.parametrize(
    ("init_scripts", "allow_local"),
    [
        pytest.param((), True, id="webdriver"),
        pytest.param((HUMAN, DNT), True, id="do-not-track"),
        pytest.param((HUMAN, "window.doNotTrack = '1'"), True, id="window-do-not-track"),
        pytest.param((HUMAN, GPC), True, id="global-privacy-control"),
        pytest.param((HUMAN,), False, id="127.0.0.1-without-data-allow-local"),
    ],
)
def test_nothing_is_sent(visit: Visit, site: Site, init_scripts: tuple[str, ...], allow_local: bool) -> None:
    url = site.add_page("/pricing", allow_local=allow_local, before=QUEUE_STUB)
    page = visit.open(*init_scripts)
    page.goto(url)
    assert page.evaluate("window.abmhub.loaded") is True  # the script ran, and chose to stay quiet
    page.evaluate("history.pushState({}, '', '/pricing/team'); abmhub.identify('bob@acme.com')")
    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_timeout(300)

    assert site.hits == []
    assert [r.url for r in visit.requests if "collect" in r.url] == []
    _assert_clean(visit, site)
