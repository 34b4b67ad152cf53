"""Rendering: the template environment (autoescaped) and the headers every dashboard page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from abmhub import __version__
from abmhub.deals.schemas import JOURNEY_STAGES
from abmhub.timefmt import format_us, parse_iso8601

STATIC_PATH = "/ui/static"
HTMX_SCRIPT = "htmx-2.0.11.min.js"
STYLESHEET = "abmhub-ui.css"

# Pages load only their own files: no inline script or style, no other host, no framing.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": PAGE_POLICY,
    # Same-origin (not the API's no-referrer): browsers then send a real Origin header on the
    # dashboard's form posts, which the cross-site check reads when Sec-Fetch-Site is absent.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    # The same URL answers a whole page or, to htmx, a fragment of it.
    "vary": "HX-Request",
}


def _thousands(value: int | float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.1f}"


def _when(us: int | None) -> str:
    if us is None:
        return "–"
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%-d %b %Y, %H:%M UTC")


def _day(us: int | None) -> str:
    if us is None:
        return "–"
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%-d %b %Y")


def _iso_day(text: str) -> str:
    return _day(parse_iso8601(text))


def _iso_when(text: str) -> str:
    return _when(parse_iso8601(text))


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _chance(probability: float | None) -> str:
    """A probability as a whole percentage; below 1 % or above 99 % says so rather than 0 % or 100 %."""
    if probability is None:
        return "–"
    percent = probability * 100
    if 0 < percent < 1:
        return "<1%"
    if 99 < percent < 100:
        return ">99%"
    return f"{percent:.0f}%"


def _money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return "–"
    return f"{amount:,.0f} {currency or ''}".strip()


def _stage_slug(stage: str | None) -> str:
    return (stage or "unscored").lower()


def _stage_label(stage: str | None) -> str:
    return stage or "Not scored yet"


environment = Environment(
    loader=PackageLoader("abmhub.ui", "templates"),
    autoescape=True,  # every value is text unless a template says otherwise (none does)
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    thousands=_thousands,
    when=_when,
    iso=format_us,
    iso_day=_iso_day,
    iso_when=_iso_when,
    day=_day,
    money=_money,
    percent=_percent,
    chance=_chance,
    stage_slug=_stage_slug,
    stage_label=_stage_label,
)
environment.globals.update(
    static=lambda name: f"{STATIC_PATH}/{name}",
    HTMX_SCRIPT=HTMX_SCRIPT,
    STYLESHEET=STYLESHEET,
    JOURNEY_STAGES=JOURNEY_STAGES,
    version=__version__,
)


def page(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200, user: Any = None
) -> HTMLResponse:
    """A rendered template as an HTML response; `user` (a KeyHolder) shows the signed-in layout."""
    html = environment.get_template(template).render({"section": None, **context, "request": request, "user": user})
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def is_fragment_request(request: Request) -> bool:
    """Whether htmx asks for the part of a page it swaps (not when it restores history)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"
