"""Predictions on the dashboard in a real browser (Chromium, as tests/ui/test_browser.py runs it):
the overview's "Likely to open an opportunity" list leads to an account page whose "Prediction"
panel shows the API's numbers and factors, on a wide screen and on a phone.

With ABMHUB_SCREENSHOTS=<dir> the pages are also saved there (1280×800 and 390×844), to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import Demo, Tab, browser, demo, sign_in  # noqa: F401  (fixtures, shared)
from ui_helpers import ok_data

from abmhub.db.engine import Database
from abmhub.ui.pages import environment
from tests.support.predictions import install_model

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests do not run
    expect = None

WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def predicted(demo: Demo) -> Demo:  # noqa: F811
    db = Database(demo.server.database_url)
    try:
        install_model(db, workspace=demo.workspace)
    finally:
        db.dispose()
    return demo


def open_tab(browser: Any, demo: Demo, viewport: dict[str, int]) -> Iterator[Tab]:  # noqa: F811
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    opened = Tab(page, [], demo.server.base_url, [])
    page.on("request", lambda sent: opened.requests.append(sent.url))
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    context.close()


@pytest.fixture(params=[WIDE, PHONE], ids=["wide", "phone"])
def screen(request: pytest.FixtureRequest, browser: Any, predicted: Demo) -> Iterator[Tab]:  # noqa: F811
    yield from open_tab(browser, predicted, request.param)


def shoot(tab: Tab, name: str, part: Any) -> None:
    """The whole page and the part under test, when ABMHUB_SCREENSHOTS names a folder."""
    folder = os.environ.get("ABMHUB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        width = tab.page.viewport_size["width"]
        tab.page.screenshot(path=str(Path(folder) / f"{name}-{width}.png"), full_page=True)
        part.screenshot(path=str(Path(folder) / f"{name}-{width}-part.png"))


def chance(probability: float) -> str:
    return environment.filters["chance"](probability)


def fits_the_screen(tab: Tab) -> bool:
    return bool(tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_from_the_likely_list_to_the_accounts_prediction(screen: Tab, predicted: Demo) -> None:
    tab, shown = screen, predicted
    sign_in(tab, shown)
    page = tab.page
    card = page.locator("section", has=page.get_by_role("heading", name="Likely to open an opportunity"))
    expect(card).to_be_visible()
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(10)
    first_link = rows.first.locator("a")
    top_aid = first_link.get_attribute("href").rsplit("/", 1)[-1]
    top = ok_data(shown.api.get(f"/accounts/{top_aid}/prediction"))
    expect(rows.first.locator("td.num strong")).to_have_text(chance(top["probability"]))
    assert fits_the_screen(tab)
    shoot(tab, "overview", card)

    name = first_link.inner_text()
    first_link.click()
    page.wait_for_url(re.compile(rf"/ui/accounts/{top_aid}$"))
    assert page.get_by_role("heading", level=1).inner_text() == name
    panel = page.locator("section.prediction")
    expect(panel.get_by_role("heading", name="Prediction")).to_be_visible()
    expect(panel.locator('[data-metric="probability"]')).to_have_text(chance(top["probability"]))
    expect(panel.locator('[data-metric="probability-30d"]')).to_have_text(chance(top["probability30d"]))
    expect(panel.locator(".badge.band")).to_have_text(f"Band {top['band']}")
    factors = panel.locator(".factor")
    expect(factors).to_have_count(len(top["factors"]))
    for item, factor in zip(factors.all(), top["factors"], strict=True):
        expect(item.locator(".factor-words")).to_contain_text(factor["feature"])
        expect(item.get_by_role("img")).to_be_visible()
        word = "raises" if factor["contribution"] > 0 else "lowers"
        expect(item.locator(".factor-word")).to_have_text(word)
    assert fits_the_screen(tab)
    shoot(tab, "account", panel)
    assert tab.foreign_requests() == []
    assert tab.errors == []
