"""`POST /collect`: visit events from the tracking script, taken at the rate of a busy site.

A request touches no database: it is checked, attributed and appended to an in-process buffer
that a thread writes every second (or at 500 events, and on shutdown) in one transaction. A
crash loses at most the last second's buffer. What the IP address is needed for happens here
and then it is forgotten: the visitor key (a keyed hash of site, IP and user agent under a salt
of the day), the rate limit, the company from the workspace's IP ranges and the network owner.
It is never stored, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select

from abmhub.db.engine import Database
from abmhub.db.queries import insert_rows
from abmhub.db.tables import ip_ranges, server_secrets, website_events, website_identities
from abmhub.tenancy.secrets import get_or_create_secret, new_secret
from abmhub.timefmt import now_us
from abmhub.website import networks
from abmhub.website.addresses import RangeTable, client_ip, parse_ranges_csv
from abmhub.website.aggregate import aggregate
from abmhub.website.bots import is_bot
from abmhub.website.identity import company_domain
from abmhub.website.rules import Match, classify
from abmhub.website.sites import Site, every_site

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024
MAX_EVENTS = 50
KINDS = ("pageview", "engagement", "identify")
MAX_URL = 2048
MAX_ENGAGED_MS = 24 * 3600 * 1000
US_PER_DAY = 86_400 * 1_000_000
FLUSH_EVERY_S = 1.0
FLUSH_AT = 500
SITES_REFRESH_S = 5.0
UNKNOWN_KEY_REFRESH_S = 1.0
CLASSIFIED_AT_MOST = 50_000
MAINTAIN_EVERY_S = 3600.0
COUNTERS = ("received", "accepted", "bots", "doNotTrack", "unknownHostname", "rateLimited")


class Malformed(Exception):
    """400 `{"error": ...}`: the request is not what the script sends."""


@dataclass(frozen=True, slots=True)
class Incoming:
    kind: str
    url: str
    path: str
    host: str
    referrer_host: str | None
    engaged_ms: int | None
    scroll: int | None
    email: str | None


def parse(body: bytes) -> tuple[str, list[Incoming]]:
    """The site key and the events of a request body (one event or an array of at most 50)."""
    if len(body) > MAX_BODY_BYTES:
        raise Malformed(f"body over {MAX_BODY_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("body is not JSON") from None
    items = document if isinstance(document, list) else [document]
    if not items or len(items) > MAX_EVENTS:
        raise Malformed(f"send 1 to {MAX_EVENTS} events")
    if not all(isinstance(item, dict) for item in items):
        raise Malformed("every event must be an object")
    key = items[0].get("k")
    if not isinstance(key, str) or not key or any(item.get("k") != key for item in items):
        raise Malformed("every event needs the same site key k")
    return key, [_event(item) for item in items]


# scheme://[user@]host[:port]path: the host and the path (urlsplit cost 20 µs an event, and
# raises on some malformed hosts).
_URL = re.compile(r"(?i)^https?://(?:[^/?#@]*@)?(\[[0-9a-f:.]+\]|[^/?#:\[\]@\s]+)(?::\d{1,5})?([^?#\s]*)")


def _host_of(url: str) -> str:
    found = _URL.match(url)
    return found.group(1).lower() if found else ""


def _event(item: Any) -> Incoming:
    kind = item.get("n")
    if kind not in KINDS:
        raise Malformed(f"n must be one of {', '.join(KINDS)}")
    url = item.get("u")
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise Malformed(f"u must be a URL of at most {MAX_URL} characters")
    parts = _URL.match(url)
    if parts is None:
        raise Malformed("u must be an http(s) URL")
    host = parts.group(1).lower()
    referrer = item.get("r")
    referrer_host = None
    if isinstance(referrer, str) and referrer and len(referrer) <= MAX_URL:
        ref = _URL.match(referrer)
        if ref is not None and ref.group(1).lower() != host:
            referrer_host = ref.group(1).lower()[:253]
    engaged = _bounded(item.get("e"), "e", 0, MAX_ENGAGED_MS)
    scroll = _bounded(item.get("sd"), "sd", 0, 100)
    email = item.get("email")
    if kind == "identify" and (not isinstance(email, str) or not email.strip() or len(email) > 320):
        raise Malformed("identify needs an email")
    return Incoming(
        kind,
        url,
        (parts.group(2) or "/")[:1000],
        host,
        referrer_host,
        engaged,
        scroll,
        email.strip() if kind == "identify" and isinstance(email, str) else None,
    )


def _bounded(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Malformed(f"{name} must be a number from {low} to {high}")
    return int(value)


def host_allowed(host: str, hostnames: list[str]) -> bool:
    """The site's hostnames, `www.` or not."""
    bare = host.removeprefix("www.")
    return any(bare == allowed.removeprefix("www.") for allowed in hostnames)


class RateLimiter:
    """Events per second per client address: a token bucket held in memory only (by a hash
    of the address, never the address), forgotten after a minute of silence."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def allow(self, address: str, cost: int) -> bool:
        if self.rate <= 0:
            return True
        key = hashlib.blake2b(address.encode(), digest_size=12).digest()
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            allowed = tokens >= cost
            self._buckets[key] = (tokens - cost if allowed else tokens, now)
            if now - self._swept > 60:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                self._swept = now
        return allowed


@dataclass(slots=True)
class _Buffer:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    counters: Counter[tuple[int, int, str]] = field(default_factory=Counter)
    identities: dict[tuple[int, int, str], str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    error: str | None = None
    allow_origin: str | None = None


class Collector:
    """One per server process: receives, buffers, flushes."""

    def __init__(
        self,
        db: Database,
        *,
        trusted_proxies: frozenset[str] = frozenset({"127.0.0.1", "::1"}),
        rate_per_ip: float = 20.0,
        burst_per_ip: float = 100.0,
        retention_days: int = 90,
    ) -> None:
        self.db = db
        self.retention_days = retention_days
        self.trusted_proxies = trusted_proxies
        self.limiter = RateLimiter(rate_per_ip, burst_per_ip)
        self._buffer = _Buffer()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._sites: dict[str, Site] = {}
        self._ranges: dict[int, RangeTable] = {}
        self._ranges_version: tuple[Any, ...] = ()
        self._classified: dict[tuple[int, str], Match | None] = {}
        self._salts: dict[int, bytes] = {}
        self._networks = networks.NetworkTable()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._sites_at = -SITES_REFRESH_S  # never read yet

    # --- a request ---------------------------------------------------------------------------

    def receive(self, body: bytes, *, peer: str | None, headers: Mapping[str, str]) -> Answer:
        key, incoming = parse(body)
        site = self._site(key)
        if site is None:
            raise Malformed("unknown site key")
        now = now_us()
        day = now // US_PER_DAY
        origin = headers.get("origin")
        allow_origin = origin if origin and host_allowed(_host_of(origin), site.hostnames) else None
        counts: Counter[str] = Counter(received=len(incoming))
        address = client_ip(peer, headers.get("x-forwarded-for"), self.trusted_proxies)
        user_agent = headers.get("user-agent")
        accepted: list[tuple[Any, ...]] = []
        identities: dict[tuple[int, int, str], str] = {}
        if address is not None and not self.limiter.allow(address, len(incoming)):
            counts["rateLimited"] += len(incoming)
            with self._lock:
                self._tally(site, day, counts)
            return Answer(429, "rate limited", allow_origin)
        if is_bot(user_agent):
            counts["bots"] += len(incoming)
        elif headers.get("dnt") == "1" or headers.get("sec-gpc") == "1":
            counts["doNotTrack"] += len(incoming)
        else:
            visitor = self._visitor(site, address or "", user_agent or "", day)
            matched = self._matched(site, address)
            for event in incoming:
                if not host_allowed(event.host, site.hostnames):
                    counts["unknownHostname"] += 1
                    continue
                domain, matched_by, network = matched
                if event.kind == "identify":
                    identified = company_domain(event.email or "")
                    if identified is not None:
                        identities[(site.pk, day, visitor)] = identified
                        domain, matched_by = identified, "identify"
                hit = self._classify(site, event.path) if event.kind == "pageview" else None
                accepted.append(
                    (
                        site.workspace_id,
                        site.pk,
                        day,
                        now,
                        event.kind,
                        visitor,
                        event.path,
                        hit.category if hit else None,
                        hit.weight if hit else None,
                        event.referrer_host,
                        event.engaged_ms,
                        event.scroll,
                        domain,
                        matched_by,
                        network,
                    )
                )
            counts["accepted"] += len(accepted)
        with self._lock:
            self._buffer.events.extend(accepted)
            self._buffer.identities.update(identities)
            self._tally(site, day, counts)
            full = len(self._buffer.events) >= FLUSH_AT
        if full:
            self._wake.set()  # the flush thread writes it now rather than at the next second
        return Answer(202, None, allow_origin)

    def _tally(self, site: Site, day: int, counts: Counter[str]) -> None:
        """Add to the buffer's counters (the caller holds the lock)."""
        for name, count in counts.items():
            self._buffer.counters[(site.pk, day, name)] += count

    def _classify(self, site: Site, path: str) -> Match | None:
        """`rules.classify`, remembered per site and path (a site's pages are few, its views many)."""
        key = (site.pk, path)
        if key not in self._classified:
            if len(self._classified) > CLASSIFIED_AT_MOST:
                self._classified = {}
            self._classified[key] = classify(path, site.page_rules)
        return self._classified[key]

    def site_by_key(self, key: str) -> Site | None:
        return self._site(key)

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser origin is one of the hostnames of some site (CORS preflight)."""
        host = _host_of(origin)
        return any(host_allowed(host, site.hostnames) for site in self._sites.values())

    def _site(self, key: str) -> Site | None:
        """From memory: the flush thread re-reads the sites every few seconds. A key not known
        yet (a site just created) re-reads them at once, at most once a second."""
        found = self._sites.get(key)
        if found is None and time.monotonic() - self._sites_at > UNKNOWN_KEY_REFRESH_S:
            self.refresh()
            found = self._sites.get(key)
        return found

    def refresh(self) -> None:
        """Re-read the sites and IP ranges (others may have changed them in another process)."""
        with self.db.read() as conn:
            found = {site.site_key: site for site in every_site(conn)}
            version = tuple(conn.execute(select(func.count(), func.coalesce(func.max(ip_ranges.c.id), 0))).one())
            if version != self._ranges_version:  # rebuilt only when a workspace replaced its ranges
                self._ranges, self._ranges_version = _range_tables(conn), version
            self._networks.refresh(conn)
        self._sites, self._sites_at, self._classified = found, time.monotonic(), {}

    def _visitor(self, site: Site, address: str, user_agent: str, day: int) -> str:
        salt = self._salts.get(day)
        if salt is None:
            salt = get_or_create_secret(self.db, name=f"website-salt-{day}", make=new_secret).encode()
            self._salts = {d: s for d, s in self._salts.items() if d >= day - 1} | {day: salt}
        message = f"{site.site_key}\x00{address}\x00{user_agent}".encode()
        return hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]

    def _matched(self, site: Site, address: str | None) -> tuple[str | None, str | None, str | None]:
        """(domain, how, network owner) from the address: the workspace's IP ranges first."""
        if address is None:
            return None, None, None
        table = self._ranges.get(site.workspace_id)
        domain = table.lookup(address) if table is not None else None
        if domain is not None:
            return domain, "ipRange", None
        return None, None, self._networks.owner(address)

    # --- writing -----------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the buffer in one transaction; the number of events written."""
        with self._flush_lock:
            with self._lock:
                taken, self._buffer = self._buffer, _Buffer()
            if not (taken.events or taken.counters or taken.identities):
                return 0
            try:
                with self.db.write() as tx:
                    _write(tx.conn, taken)
            except Exception:
                log.exception("website events: a flush failed; %d events lost", len(taken.events))
                raise
            return len(taken.events)

    def start(self) -> None:
        """The flush thread: the buffer every second, and hourly the aggregation into signals,
        the expiry of raw events and of old salts."""
        self._thread = threading.Thread(target=self._run, name="abmhub-website-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def _run(self) -> None:
        maintained = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # flush logged it; the next second tries again
                continue
            try:
                if time.monotonic() - self._sites_at > SITES_REFRESH_S:
                    self.refresh()
            except Exception:
                log.exception("website collector: re-reading the sites failed; retrying")
            if time.monotonic() - maintained >= MAINTAIN_EVERY_S:
                maintained = time.monotonic()
                try:
                    self.maintain()
                except Exception:
                    log.exception("website maintenance failed; retried in an hour")

    def maintain(self) -> None:
        """Visits into signals, raw events past their retention out, salts past 48 h out."""
        aggregate(self.db)
        today = now_us() // US_PER_DAY
        with self.db.write() as tx:
            forget_old_salts(tx.conn, today)
            tx.conn.execute(delete(website_events).where(website_events.c.day < today - self.retention_days))


_EVENT_COLUMNS = (
    "workspace_id", "site_pk", "day", "occurred_us", "kind", "visitor", "path", "category", "weight",
    "referrer_host", "engaged_ms", "scroll", "domain", "matched_by", "network",
)  # fmt: skip


def _write(conn: Connection, taken: _Buffer) -> None:
    insert_rows(conn, website_events, _EVENT_COLUMNS, taken.events)
    if taken.counters:
        conn.exec_driver_sql(
            "INSERT INTO website_counters (site_pk, day, counter, count) VALUES ({m}, {m}, {m}, {m}) "
            "ON CONFLICT (site_pk, day, counter) DO UPDATE SET count = website_counters.count + excluded.count".format(
                m="?" if conn.dialect.name == "sqlite" else "%s"
            ),
            [(pk, day, name, count) for (pk, day, name), count in taken.counters.items()],
        )
    if taken.identities:
        conn.exec_driver_sql(
            "INSERT INTO website_identities (site_pk, day, visitor, domain) VALUES ({m}, {m}, {m}, {m}) "
            "ON CONFLICT (site_pk, day, visitor) DO UPDATE SET domain = excluded.domain".format(
                m="?" if conn.dialect.name == "sqlite" else "%s"
            ),
            [(pk, day, visitor, domain) for (pk, day, visitor), domain in taken.identities.items()],
        )


def _range_tables(conn: Connection) -> dict[int, RangeTable]:
    by_workspace: dict[int, list[str]] = {}
    for workspace_id, cidr, domain in conn.execute(
        select(ip_ranges.c.workspace_id, ip_ranges.c.cidr, ip_ranges.c.domain)
    ):
        by_workspace.setdefault(workspace_id, []).append(f"{cidr},{domain}")
    tables = {}
    for workspace_id, lines in by_workspace.items():
        ranges, _ = parse_ranges_csv("\n".join(lines))
        tables[workspace_id] = RangeTable(ranges)
    return tables


def forget_old_salts(conn: Connection, today: int) -> None:
    """A day's salt is deleted after 48 h: visitor keys of that day can no longer be recomputed."""
    names = [f"website-salt-{day}" for day in range(today - 60, today - 1)]
    conn.execute(delete(server_secrets).where(server_secrets.c.name.in_(names)))
    conn.execute(delete(website_identities).where(website_identities.c.day < today - 1))
