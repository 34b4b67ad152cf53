"""`POST /collect`: visit events from the tracking script, taken at the rate of a busy site.

A request touches no database: it is checked, attributed and appended to an in-process buffer
that a thread writes every second (sooner past FLUSH_AT events, and on shutdown) in one
transaction. A crash loses at most the last second's buffer. What the IP address is needed for
happens here and then it is forgotten: the visitor key (a keyed BLAKE2b hash of site, IP and user
agent under a salt of the day), the rate limit, the company from the workspace's IP ranges and
the network owner. It is never stored, never logged.

Every event costs the server's one event loop, so the path of a request is kept short
(docs/performance.md, "Website visits"): what depends only on the site (its hostnames, the
answer to an origin, its pages' rules, the day's keyed hash) is worked out once and kept with
the site in memory.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, delete, func, select

from abmhub.db.engine import Database
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
FLUSH_AT = 5_000
SITES_REFRESH_S = 5.0
UNKNOWN_KEY_REFRESH_S = 1.0
CLASSIFIED_AT_MOST = 50_000
MAINTAIN_EVERY_S = 3600.0
COUNTERS = ("received", "accepted", "bots", "doNotTrack", "unknownHostname", "rateLimited")
RECEIVED, ACCEPTED, BOTS, DO_NOT_TRACK, UNKNOWN_HOSTNAME, RATE_LIMITED = range(len(COUNTERS))
# A site's remembered answers to browser origins (any text a client sends): at most this many.
ORIGINS_AT_MOST = 1_000


class Malformed(Exception):
    """400 `{"error": ...}`: the request is not what the script sends."""


# An event as `parse` gives it: (kind, path, host, referrer's host, engaged ms, scroll %, email).
# A plain tuple: a class of its own cost ~1 µs an event to build.
Incoming = tuple[str, str, str, str | None, int | None, int | None, str | None]


def parse(body: bytes) -> tuple[str, list[Incoming]]:
    """The site key and the events of a request body (one event or an array of at most 50)."""
    if len(body) > MAX_BODY_BYTES:
        raise Malformed(f"body over {MAX_BODY_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("body is not JSON") from None
    if isinstance(document, dict):  # what the script sends: one event
        key = document.get("k")
        if not isinstance(key, str) or not key:
            raise Malformed("every event needs the same site key k")
        return key, [_event(document)]
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
    host, path = parts.groups()
    host = host.lower()
    referrer = item.get("r")
    referrer_host = None
    if referrer and isinstance(referrer, str) and len(referrer) <= MAX_URL:
        ref = _URL.match(referrer)
        if ref is not None and (ref_host := ref.group(1).lower()) != host:
            referrer_host = ref_host[:253]
    engaged = item.get("e")
    if engaged is not None:
        engaged = _bounded(engaged, "e", 0, MAX_ENGAGED_MS)
    scroll = item.get("sd")
    if scroll is not None:
        scroll = _bounded(scroll, "sd", 0, 100)
    email = None
    if kind == "identify":
        email = item.get("email")
        if not isinstance(email, str) or not email.strip() or len(email) > 320:
            raise Malformed("identify needs an email")
        email = email.strip()
    return kind, (path or "/")[:1000], host, referrer_host, engaged, scroll, email


def _bounded(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Malformed(f"{name} must be a number from {low} to {high}")
    return int(value)


def bare_hosts(hostnames: list[str]) -> frozenset[str]:
    """A site's hostnames without `www.`: a host is the site's, `www.` or not, if
    `host.removeprefix("www.")` is among them."""
    return frozenset(allowed.removeprefix("www.") for allowed in hostnames)


class RateLimiter:
    """Events per second per client address: a token bucket held in memory only (by a hash
    of the address, never the address: Python's string hash, keyed per process), forgotten
    after a minute of silence."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def allow(self, address: str, cost: int) -> bool:
        if self.rate <= 0:
            return True
        key = hash(address)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            tokens = self.burst if bucket is None else min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            allowed = tokens >= cost
            self._buckets[key] = (tokens - cost if allowed else tokens, now)
            if now - self._swept > 60:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                self._swept = now
        return allowed


@dataclass(slots=True)
class _Buffer:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # (site pk, day): the COUNTERS, in their order.
    counters: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    identities: dict[tuple[int, int, str], str] = field(default_factory=dict)


class Answer(NamedTuple):
    status: int
    error: str | None = None
    allow_origin: str | None = None


class _LiveSite:
    """A site as the collector keeps it: what its requests need, worked out once.

    Replaced when the site changes (`refresh`); touched by the event loop's thread only.
    """

    __slots__ = ("_answers", "_pages", "_salted", "_salted_day", "hosts", "site")

    def __init__(self, site: Site) -> None:
        self.site = site
        self.hosts = bare_hosts(site.hostnames)
        # Origin header -> the 202 answer (with Access-Control-Allow-Origin when it is ours).
        self._answers: dict[str | None, Answer] = {}
        # Path -> its page rule's match (a site's pages are few, its views many).
        self._pages: dict[str, Match | None] = {}
        self._salted_day = -1
        self._salted: Any = None

    def accepted(self, origin: str | None) -> Answer:
        """The 202 answer to a request from `origin`."""
        answer = self._answers.get(origin)
        if answer is None:
            allowed = origin if origin and _host_of(origin).removeprefix("www.") in self.hosts else None
            answer = Answer(202, None, allowed)
            if len(self._answers) >= ORIGINS_AT_MOST:
                self._answers = {}
            self._answers[origin] = answer
        return answer

    def page(self, path: str) -> Match | None:
        """`rules.classify` of a path, remembered."""
        try:
            return self._pages[path]
        except KeyError:
            if len(self._pages) >= CLASSIFIED_AT_MOST:
                self._pages = {}
            found = self._pages[path] = classify(path, self.site.page_rules)
            return found

    def salted(self, day: int, salt: Callable[[int], bytes]) -> Any:
        """The day's keyed BLAKE2b, fed the site key already: copied for each visitor key."""
        if self._salted_day != day:
            hashed = hashlib.blake2b(key=salt(day), digest_size=16)
            hashed.update(f"{self.site.site_key}\x00".encode())
            self._salted, self._salted_day = hashed, day
        return self._salted


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
        self._sites: dict[str, _LiveSite] = {}
        self._hosts: frozenset[str] = frozenset()  # every site's bare_hosts
        self._ranges: dict[int, RangeTable] = {}
        self._ranges_version: tuple[Any, ...] = ()
        self._salts: dict[int, bytes] = {}
        self._networks = networks.NetworkTable()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._sites_at = -SITES_REFRESH_S  # never read yet

    # --- a request ---------------------------------------------------------------------------

    def receive(self, body: bytes, *, peer: str | None, headers: Mapping[str, str]) -> Answer:
        key, incoming = parse(body)
        live = self._site(key)
        if live is None:
            raise Malformed("unknown site key")
        site = live.site
        now = time.time_ns() // 1000
        day = now // US_PER_DAY
        answer = live.accepted(headers.get("origin"))
        received = len(incoming)
        address = client_ip(peer, headers.get("x-forwarded-for"), self.trusted_proxies)
        user_agent = headers.get("user-agent")
        accepted: list[tuple[Any, ...]] = []
        unknown = 0
        identified: tuple[str, str] | None = None  # (visitor, domain)
        if address is not None and not self.limiter.allow(address, received):
            outcome = RATE_LIMITED
            answer = Answer(429, "rate limited", answer.allow_origin)
        elif is_bot(user_agent):
            outcome = BOTS
        elif headers.get("dnt") == "1" or headers.get("sec-gpc") == "1":
            outcome = DO_NOT_TRACK
        else:
            outcome = ACCEPTED
            visitor = self._visitor(live, address or "", user_agent or "", day)
            matched = self._matched(site, address)
            for kind, path, host, referrer_host, engaged_ms, scroll, email in incoming:
                if host.removeprefix("www.") not in live.hosts:
                    unknown += 1
                    continue
                if kind == "pageview":
                    hit = live.page(path)
                    category, weight = (hit.category, hit.weight) if hit is not None else (None, None)
                else:
                    category = weight = None
                domain, matched_by, network = matched
                if kind == "identify" and (company := company_domain(email or "")) is not None:
                    identified = visitor, company
                    domain, matched_by = company, "identify"
                accepted.append(
                    (
                        site.workspace_id, site.pk, day, now, kind, visitor, path, category, weight,
                        referrer_host, engaged_ms, scroll, domain, matched_by, network,
                    )
                )  # fmt: skip
        counted = (site.pk, day)
        with self._lock:
            buffer = self._buffer
            if accepted:
                buffer.events += accepted
            if identified is not None:
                buffer.identities[(site.pk, day, identified[0])] = identified[1]
            tally = buffer.counters.get(counted)
            if tally is None:
                tally = buffer.counters[counted] = [0] * len(COUNTERS)
            tally[RECEIVED] += received
            tally[outcome] += len(accepted) if outcome == ACCEPTED else received
            tally[UNKNOWN_HOSTNAME] += unknown
            full = len(buffer.events) >= FLUSH_AT
        if full:
            self._wake.set()  # the flush thread writes it now rather than at the next second
        return answer

    def site_by_key(self, key: str) -> Site | None:
        live = self._site(key)
        return live.site if live is not None else None

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser origin is one of the hostnames of some site (CORS preflight)."""
        return _host_of(origin).removeprefix("www.") in self._hosts

    def _site(self, key: str) -> _LiveSite | None:
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
            found = list(every_site(conn))
            version = tuple(conn.execute(select(func.count(), func.coalesce(func.max(ip_ranges.c.id), 0))).one())
            if version != self._ranges_version:  # rebuilt only when a workspace replaced its ranges
                self._ranges, self._ranges_version = _range_tables(conn), version
            self._networks.refresh(conn)
        known = self._sites
        live = {}
        for site in found:  # a site that did not change keeps what was worked out for it
            kept = known.get(site.site_key)
            live[site.site_key] = kept if kept is not None and kept.site == site else _LiveSite(site)
        self._sites, self._sites_at = live, time.monotonic()
        self._hosts = frozenset().union(*(entry.hosts for entry in live.values()))

    def _visitor(self, live: _LiveSite, address: str, user_agent: str, day: int) -> str:
        """The visitor key: BLAKE2b of site key, address and user agent, keyed by the day's salt."""
        hashed = live.salted(day, self._salt).copy()
        hashed.update(f"{address}\x00{user_agent}".encode())
        return str(hashed.hexdigest())

    def _salt(self, day: int) -> bytes:
        salt = self._salts.get(day)
        if salt is None:
            salt = get_or_create_secret(self.db, name=f"website-salt-{day}", make=new_secret).encode()
            self._salts = {d: s for d, s in self._salts.items() if d >= day - 1} | {day: salt}
        return salt

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
    _insert_events(conn, taken.events)
    counters = [
        (pk, day, name, count)
        for (pk, day), counts in taken.counters.items()
        for name, count in zip(COUNTERS, counts, strict=True)
        if count
    ]
    if counters:
        conn.exec_driver_sql(
            "INSERT INTO website_counters (site_pk, day, counter, count) VALUES ({m}, {m}, {m}, {m}) "
            "ON CONFLICT (site_pk, day, counter) DO UPDATE SET count = website_counters.count + excluded.count".format(
                m="?" if conn.dialect.name == "sqlite" else "%s"
            ),
            counters,
        )
    if taken.identities:
        conn.exec_driver_sql(
            "INSERT INTO website_identities (site_pk, day, visitor, domain) VALUES ({m}, {m}, {m}, {m}) "
            "ON CONFLICT (site_pk, day, visitor) DO UPDATE SET domain = excluded.domain".format(
                m="?" if conn.dialect.name == "sqlite" else "%s"
            ),
            [(pk, day, visitor, domain) for (pk, day, visitor), domain in taken.identities.items()],
        )


def _insert_events(conn: Connection, events: list[tuple[Any, ...]]) -> None:
    """The events: COPY on PostgreSQL, multi-row INSERTs on SQLite.

    Not one `executemany` (measured in server CPU per event, docs/performance.md). psycopg's
    runs the rows through its pipeline one by one (~11 µs an event; COPY ~1.5). SQLite's driver
    lets go of the GIL around each row's step and takes it back after, so every event made the
    flush thread and the event loop hand the GIL over once more.
    """
    if not events:
        return
    if conn.dialect.name == "postgresql":
        psycopg_connection: Any = conn.connection.driver_connection  # this transaction's
        with psycopg_connection.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
            for row in events:
                copy.write_row(row)
        return
    at, size = 0, ROWS_PER_INSERT
    while at < len(events):
        while size > len(events) - at:
            size //= 2
        conn.exec_driver_sql(_insert_sql(size), tuple(itertools.chain.from_iterable(events[at : at + size])))
        at += size


_COPY_EVENTS = f"COPY {website_events.name} ({', '.join(_EVENT_COLUMNS)}) FROM STDIN"
# Rows per SQLite INSERT (15 parameters each; SQLite takes up to 32,766): a flush runs statements
# of this many rows, then one of each power of two the rest needs, so the driver keeps a few
# statement shapes prepared, not one per flush size.
ROWS_PER_INSERT = 256


@functools.cache
def _insert_sql(rows: int) -> str:
    row = "(" + ", ".join("?" * len(_EVENT_COLUMNS)) + ")"
    return f"INSERT INTO {website_events.name} ({', '.join(_EVENT_COLUMNS)}) VALUES " + ", ".join([row] * rows)


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
