"""Website requests and records (contract §9)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, RootModel
from pydantic_core import PydanticCustomError

from abmhub.accounts.domains import normalize_domain
from abmhub.web.schemas import BODY_MODELS
from abmhub.web.validation import (
    OptionalNonBlankStr,
    OptionalNumber,
    RequestModel,
    RequiredStr,
    max_chars,
    required_array,
)
from abmhub.website.rules import MAX_RULES

MAX_HOSTNAMES = 50


def _hostname(value: str) -> str:
    """A bare host name as written (lower case): `www.example.com` stays itself; the collector
    takes it with or without `www.`. `localhost`, `*.localhost` and IP addresses are accepted
    too, to try the script locally (it sends from them only with `data-allow-local`)."""
    host = value.strip().lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost") or _is_ip(host):
        return host
    if not host or any(c in host for c in "/:@?# ") or normalize_domain(host) is None:
        raise PydanticCustomError("isFqdn", "not a host name")
    return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


Hostname = Annotated[str, AfterValidator(_hostname)]


class CreateSiteRequest(RequestModel):
    name: Annotated[RequiredStr, max_chars(200)]
    hostnames: Annotated[list[Hostname], required_array(1, MAX_HOSTNAMES)]


class UpdateSiteRequest(RequestModel):
    name: Annotated[OptionalNonBlankStr, max_chars(200)] = None
    hostnames: Annotated[list[Hostname] | None, Field(default=None, max_length=MAX_HOSTNAMES)] = None


def _pattern(value: str | None) -> str | None:
    if value is not None and not value.startswith(("/", "*")):
        raise PydanticCustomError("matches", "a path pattern", {"pattern": "a path starting with / or *"})
    return value


def _weight(value: float | None) -> float | None:
    if value is None:
        raise PydanticCustomError("isNumber", "missing")
    if not 0 <= value <= 100:
        raise PydanticCustomError("max" if value > 100 else "min", "out of range", {"min": 0, "max": 100})
    return value


class PageRuleItem(RequestModel):
    pattern: Annotated[RequiredStr, max_chars(500), AfterValidator(_pattern)]
    category: Annotated[RequiredStr, max_chars(40)]
    weight: Annotated[OptionalNumber, AfterValidator(_weight)] = Field(default=None, validate_default=True)


class PageRulesRequest(RootModel[Annotated[list[PageRuleItem], Field(max_length=MAX_RULES)]]):
    """`PUT /sites/:id/page-rules`: the whole list, in matching order (an empty list: no rules)."""


class SiteRecord(BaseModel):
    siteId: str
    siteKey: str
    name: str
    hostnames: list[str]
    snippet: str = Field(description="The <script> tag to paste into every page")
    createdAt: str
    updatedAt: str


class PageRuleRecord(BaseModel):
    pattern: str
    category: str
    weight: float


class CollectEvent(BaseModel):
    """One event of `POST /collect`, as the tracking script sends it (documentation: the
    collector reads the body itself, `website/collect.py`)."""

    k: str = Field(description="The site key")
    n: Literal["pageview", "engagement", "identify"]
    u: str = Field(max_length=2048, description="The page's URL (http or https)")
    r: str | None = Field(default=None, description="The referrer (page views)")
    e: int | None = Field(default=None, ge=0, le=86_400_000, description="Engaged milliseconds (engagement)")
    sd: int | None = Field(default=None, ge=0, le=100, description="Scroll depth % (engagement)")
    email: str | None = Field(default=None, max_length=320, description="identify: whose company")


BODY_MODELS["CollectEvent"] = CollectEvent
