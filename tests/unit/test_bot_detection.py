"""Bot detection by user agent (contract §9), measured on maintained data sets.

- Crawlers: every example user agent (`instances`) of crawler-user-agents
  (monperrus/crawler-user-agents), and, as a check that owes nothing to the lists `is_bot`
  uses, Matomo's bot fixtures shipped in the `device-detector` package.
- Browsers: the desktop, phone and tablet browser user agents of Matomo's device fixtures,
  also in `device-detector` (some 30,000, old and odd ones included).

The measured figures are printed (`pytest -rP`) and recorded as test properties; timing is
recorded, never asserted (CONTRIBUTING: performance is the benchmarks' business).
"""

from __future__ import annotations

import functools
import importlib.resources
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import crawleruseragents
import pytest
import yaml_rs  # device-detector's own YAML reader for its fixtures: ten times PyYAML's speed
from crawlerdetect import CrawlerDetect

from abmhub.website import bots
from abmhub.website.bots import is_bot

RecordProperty = Callable[[str, object], None]

BROWSER_DEVICES = {"desktop", "smartphone", "tablet", "phablet"}


def _matomo_fixtures(include: Callable[[str], bool]) -> list[dict[str, Any]]:
    root = importlib.resources.files("device_detector") / "tests" / "fixtures" / "upstream"
    entries: list[dict[str, Any]] = []
    for fixture in sorted(root.iterdir(), key=lambda f: f.name):
        if fixture.name.endswith(".yml") and include(fixture.name):
            entries.extend(yaml_rs.loads(fixture.read_text(encoding="utf-8")) or [])
    return entries


@functools.cache
def crawler_user_agents() -> list[str]:
    return [ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", [])]


@functools.cache
def matomo_bots() -> list[str]:
    return [str(entry["user_agent"]) for entry in _matomo_fixtures(lambda name: name == "bots.yml")]


@functools.cache
def browser_user_agents() -> list[str]:
    found: dict[str, None] = {}
    for entry in _matomo_fixtures(lambda name: name != "bots.yml"):
        client, device = entry.get("client") or {}, entry.get("device") or {}
        user_agent = str(entry["user_agent"]).strip()
        if user_agent and client.get("type") == "browser" and device.get("type") in BROWSER_DEVICES:
            found[user_agent] = None
    return list(found)


def _report(record_property: RecordProperty, name: str, value: object) -> None:
    record_property(name, value)
    print(f"{name}: {value}")


def test_finds_the_crawlers_of_crawler_user_agents(record_property: RecordProperty) -> None:
    """Nearly all by construction, since `is_bot` uses this list's patterns.

    What it does check: that every pattern loads, and how much the patterns left out as
    browser-like cost (two examples: an Instagram in-app browser and Fluid, a Mac browser).
    """
    examples = crawler_user_agents()
    missed = [ua for ua in examples if not is_bot(ua)]
    recall = 1 - len(missed) / len(examples)
    found = len(examples) - len(missed)
    _report(record_property, "recall_crawler_user_agents", f"{recall:.2%} ({found}/{len(examples)})")
    assert len(examples) > 1_000
    assert recall >= 0.95, f"recall {recall:.2%}; missed e.g. {missed[:10]}"


def test_finds_most_of_matomos_bots_too(record_property: RecordProperty) -> None:
    """An independent check: `is_bot` uses neither Matomo's patterns nor its fixtures.

    Matomo's list is longer in the tail (one-off scanners, research crawlers, template
    placeholders such as `{{.custom_user_agent}}`); 83.6 % was measured with crawlerdetect
    0.4.2, crawler-user-agents 1.67.0 and device-detector 6.5.1. The floor catches a list
    that stops loading, not a point lost to a new release.
    """
    examples = matomo_bots()
    found = sum(is_bot(ua) for ua in examples)
    recall = found / len(examples)
    _report(record_property, "recall_matomo_bots", f"{recall:.2%} ({found}/{len(examples)})")
    assert len(examples) > 1_000
    assert recall >= 0.80


def test_rarely_takes_a_browser_for_a_bot(record_property: RecordProperty) -> None:
    browsers = browser_user_agents()
    flagged = [ua for ua in browsers if is_bot(ua)]
    rate = len(flagged) / len(browsers)
    _report(record_property, "false_positives", f"{rate:.3%} ({len(flagged)}/{len(browsers)})")
    assert len(browsers) > 10_000
    assert rate <= 0.005, f"false-positive rate {rate:.3%}; e.g. {flagged[:10]}"


def test_finds_everything_crawlerdetect_itself_finds() -> None:
    """The patterns survive their move to RE2: no verdict of the library itself is lost.

    CrawlerDetect takes ~450 µs a user agent, so a fixed sample of every corpus is checked.
    """
    detector = CrawlerDetect()
    sample = (crawler_user_agents() + matomo_bots() + browser_user_agents())[::20]
    lost = [ua for ua in sample if detector.is_crawler(ua) and not is_bot(ua)]
    assert lost == []


CURRENT_BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    # The Android 15 build that a crawler-user-agents pattern names (left out: `_BROWSER_LIKE`).
    "Mozilla/5.0 (Linux; Android 15; CPH2655 Build/AP3A.240617.008) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    # Yandex's search app: CrawlerDetect's `Yandex(?!Search)`, the one pattern RE2 cannot take.
    "Mozilla/5.0 (Linux; Android 13; Infinix X6710 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/108.0.5359.128 Mobile Safari/537.36 YandexSearch/7.53 YandexSearchBrowser/7.53",
]

AUTOMATION = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Puppeteer",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Playwright/1.40.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36; Selenium",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/25.0.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 Chrome/114.0.5735.289 Electron/25.8.4 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 SlimerJS/1.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.60 Safari/537.36 NewRelicSynthetics/1.0",
    "curl/8.5.0",
    "python-requests/2.32.3",
]


@pytest.mark.parametrize("user_agent", CURRENT_BROWSERS)
def test_a_current_browser_is_a_person(user_agent: str) -> None:
    assert is_bot(user_agent) is False


@pytest.mark.parametrize("user_agent", AUTOMATION)
def test_crawlers_and_automation_are_bots(user_agent: str) -> None:
    assert is_bot(user_agent) is True


@pytest.mark.parametrize("user_agent", [None, "", "   ", "\t\n"])
def test_no_user_agent_is_a_bot(user_agent: str | None) -> None:
    assert is_bot(user_agent) is True


def test_a_user_agent_longer_than_any_browser_sends_is_a_bot_and_not_cached() -> None:
    huge = CURRENT_BROWSERS[0] + " x" * bots.MAX_USER_AGENT_LENGTH
    before = bots._is_bot.cache_info().currsize
    assert is_bot(huge) is True
    assert bots._is_bot.cache_info().currsize == before
    assert max(map(len, browser_user_agents())) < bots.MAX_USER_AGENT_LENGTH


def test_surrounding_whitespace_does_not_change_the_verdict() -> None:
    assert is_bot(f"  {CURRENT_BROWSERS[0]}\n") is False
    assert is_bot(f" {AUTOMATION[0]} ") is True


def test_threads_get_the_same_verdicts() -> None:
    sample = (browser_user_agents()[:2_000] + crawler_user_agents()[:2_000]) * 2
    bots._is_bot.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(is_bot, sample, chunksize=50))
    bots._is_bot.cache_clear()
    assert threaded == [is_bot(ua) for ua in sample]


def test_repeated_user_agents_come_from_the_cache(record_property: RecordProperty) -> None:
    """Records the cost per call, for a new user agent and for a repeated one."""
    sample = browser_user_agents()[:5_000] + crawler_user_agents()[:1_000]
    bots._is_bot.cache_clear()
    started = time.perf_counter()
    cold = [is_bot(ua) for ua in sample]
    cold_us = (time.perf_counter() - started) / len(sample) * 1e6
    started = time.perf_counter()
    warm = [is_bot(ua) for ua in sample]
    warm_us = (time.perf_counter() - started) / len(sample) * 1e6
    _report(record_property, "us_per_call_new_user_agent", round(cold_us, 2))
    _report(record_property, "us_per_call_cached", round(warm_us, 3))
    assert warm == cold
    assert bots._is_bot.cache_info().hits >= len(sample)
