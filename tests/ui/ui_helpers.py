"""Helpers of the dashboard tests: a data set pushed through the API, sessions, page parsing."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx

HOSTILE_NAME = "<script>alert(1)</script>"
ESCAPED_HOSTILE = "&lt;script&gt;alert(1)&lt;/script&gt;"
STAGES = ("Unaware", "Aware", "Consideration", "Opportunity", "Customer")
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def ok_data(response: httpx.Response) -> Any:
    assert response.status_code == 200, f"{response.request.url} -> {response.status_code}: {response.text[:500]}"
    return response.json()["data"]


# --- a workspace with data, through the API ------------------------------------------------------


def populate(api: httpx.Client, *, accounts: int, prefix: str = "co", tags: tuple[str, ...] = ()) -> list[str]:
    """Push `accounts` accounts with signals, deals and calls (so that the scoring job spreads
    them over the journey stages); returns their domains."""
    run = uuid.uuid4().hex[:8]
    domains = [f"{prefix}-{run}-{i}.example.com" for i in range(accounts)]
    items = [
        {
            "domain": domain,
            "name": f"{prefix.capitalize()} {i:03d} {run}",
            "tags": [*(tags if i % 2 == 0 else ()), f"tier-{i % 3}"],
        }
        for i, domain in enumerate(domains)
    ]
    for start in range(0, len(items), 100):
        ok_data(api.post("/accounts", json={"accounts": items[start : start + 100], "upsert": True}))
    now = datetime.now(UTC)
    signals = []
    for i, domain in enumerate(domains):
        for n in range(i % 6):
            day = (now - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            signals.append({"source": "g2", "type": "pricing_view", "domain": domain, "occurredAt": day})
            signals.append({"source": "website", "type": "page_view", "domain": domain, "occurredAt": day})
        if i % 4 == 0:
            signals.append(
                {
                    "source": "bombora",
                    "type": "surge",
                    "domain": domain,
                    "occurredAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "score": 80,
                }
            )
    for start in range(0, len(signals), 1000):
        ok_data(api.post("/signals", json={"signals": signals[start : start + 1000]}))
    pipeline = f"sales-{run}"
    ok_data(
        api.post(
            "/deal-stages",
            json={
                "pipelines": [
                    {
                        "pipelineId": pipeline,
                        "pipelineLabel": "Sales",
                        "stages": [
                            {"stageId": "disc", "stageLabel": "Discovery"},
                            {"stageId": "won", "stageLabel": "Closed Won"},
                            {"stageId": "lost", "stageLabel": "Closed Lost"},
                        ],
                    }
                ]
            },
        )
    )
    deals = [
        {
            "externalDealId": f"deal-{run}-{i}",
            "name": f"Deal {i}",
            "amount": 1000 * (i + 1),
            "dealCurrencyCode": "USD",
            "pipelineId": pipeline,
            "stageId": ("disc", "won", "lost")[i % 3],
            "associatedAccounts": [{"domain": domain}],
        }
        for i, domain in enumerate(domains[::7])
    ]
    if deals:
        ok_data(api.post("/deals", json={"deals": deals}))
    return domains


def score(server: Any, workspace: str) -> None:
    """Run the scoring job over the workspace (the test servers run without a schedule)."""
    done = subprocess.run(
        [sys.executable, "-m", "abmhub", "score", "--workspace", workspace, "--database-url", server.database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def all_api_accounts(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every account of the workspace through GET /api/v1/accounts, page by page."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
        data = ok_data(api.get("/accounts", params=query))
        found.extend(data["data"])
        if not data["hasNextPage"]:
            return found
        cursor = data["nextCursor"]


# --- sessions ------------------------------------------------------------------------------------


def dashboard(server: Any) -> httpx.Client:
    """A browser-like client of the dashboard: keeps cookies, does not follow redirects."""
    return httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30)


def sign_in(client: httpx.Client, key: str, next_url: str | None = None) -> httpx.Response:
    form = {"api_key": key, **({"next": next_url} if next_url is not None else {})}
    response = client.post("/ui/sign-in", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 303, f"sign-in: {response.status_code} {response.text[:300]}"
    return response


def page(client: httpx.Client, path: str, **params: Any) -> str:
    response = client.get(path, params=params or None)
    assert response.status_code == 200, f"{path} -> {response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("text/html")
    return response.text


# --- reading pages -------------------------------------------------------------------------------


def metric(html: str, name: str) -> str:
    found = re.search(rf'data-metric="{re.escape(name)}">([^<]*)<', html)
    assert found, f"no metric {name!r} on the page"
    return found.group(1).strip()


def as_number(text: str) -> float:
    return float(text.replace(",", ""))


ROW_LINK = re.compile(r'<th scope="row" class="account-name"><a href="/ui/accounts/([0-9a-f]{24})">')
NEXT_LINK = re.compile(r'<a class="button" rel="next" href="([^"]+)"')
PREVIOUS_LINK = re.compile(r'rel="prev" href="([^"]+)"')


def unescape_attribute(value: str) -> str:
    return value.replace("&amp;", "&").replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')


def table_rows(html: str) -> list[str]:
    """rtp_aids of the account rows of a page's table, in order."""
    return ROW_LINK.findall(html)


def walk_pages(client: httpx.Client, path: str) -> Iterator[str]:
    """Each page of an account list, following its Next links."""
    url: str | None = path
    while url is not None:
        html = page(client, url)
        yield html
        found = NEXT_LINK.search(html)
        url = unescape_attribute(found.group(1)) if found else None


class LinkCollector(HTMLParser):
    """Every URL a page makes the browser load or offers to follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None and name in ("href", "src", "action", "formaction", "hx-get", "hx-post", "srcset"):
                self.urls.append(value)


def urls_on(html: str) -> list[str]:
    collector = LinkCollector()
    collector.feed(html)
    return collector.urls


def is_own(base_url: str, url: str) -> bool:
    """Whether `url`, as a browser on `base_url` resolves it, stays on that origin."""
    if url.startswith(("data:", "#")):
        return True
    return urljoin(base_url + "/", url).startswith(base_url + "/")
