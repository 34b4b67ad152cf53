"""IP addresses of visits: whose they are, and which networks belong to whom (contract §9).

Three questions, all answered with the standard library's `ipaddress`:

- Which address is the visitor's? The peer's, unless the peer is a proxy the operator
  trusts (`--forwarded-allow-ips`, as uvicorn); then the right-most address of
  `X-Forwarded-For` that is not a trusted proxy, since every hop appends the address it
  saw and only the hops after the first untrusted one can be believed (`client_ip`).
- Which account does a workspace say an address belongs to? Its `cidr,domain` ranges
  (`PUT /ip-ranges`), the smallest containing range winning (`parse_ranges_csv`,
  `RangeTable`).
- Who owns the network? The iptoasn.com dataset (`iter_iptoasn`).

An address is compared as an integer within its IP version; an IPv4 address written as
IPv6 (`::ffff:192.0.2.1`, as dual-stack servers report IPv4 peers) is taken as the IPv4
address everywhere here, so that one visitor is one key and IPv4 ranges match it.
"""

from __future__ import annotations

import bisect
import csv
import functools
import ipaddress
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from abmhub.accounts.domains import normalize_domain

__all__ = [
    "AsnRange",
    "IpRange",
    "IptoasnStream",
    "RangeTable",
    "client_ip",
    "iter_iptoasn",
    "parse_address",
    "parse_ranges_csv",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

TRUST_ALL = "*"
CSV_HEADER = ("cidr", "domain")

# RFC 4291's IPv4-mapped addresses, ::ffff:a.b.c.d.
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# 4 bytes per IPv4 start, end or owner: a million ranges take tens of megabytes, not hundreds.
_U32 = "I" if array("I").itemsize >= 4 else "L"


@functools.lru_cache(maxsize=65_536)
def parse_address(text: str) -> IPAddress | None:
    """The address in `text`, or None: a bare address, `a.b.c.d:port` or `[v6]:port`.

    Cached: a visitor's address is parsed three times a request (the client, the IP ranges,
    the network owner), and the same addresses come back; `ipaddress` costs ~10 µs a parse.

    Surrounding spaces and a port are dropped (some proxies append the port) and an
    IPv4-mapped IPv6 address is returned as IPv4.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --- the visitor's address ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Trust:
    everyone: bool
    addresses: frozenset[IPAddress]
    networks: tuple[IPNetwork, ...]

    def __contains__(self, address: IPAddress) -> bool:
        return self.everyone or address in self.addresses or any(address in network for network in self.networks)


@functools.lru_cache(maxsize=64)
def _trust(entries: frozenset[str]) -> _Trust:
    # Called once per setting: a server has one `--forwarded-allow-ips`. Entries that are
    # neither an address nor a network (a unix socket path, a typo) trust nothing.
    addresses: set[IPAddress] = set()
    networks: list[IPNetwork] = []
    for entry in entries:
        if "/" in entry:
            try:
                networks.append(_unmapped_network(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                continue
        elif (address := parse_address(entry)) is not None:
            addresses.add(address)
    return _Trust(TRUST_ALL in entries, frozenset(addresses), tuple(networks))


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Collection[str]) -> str | None:
    """The visitor's address, normalised (`str(ipaddress.ip_address(...))`), or None.

    `peer` is the address of the connection, `forwarded_for` the `X-Forwarded-For` header
    (several headers joined by commas), `trusted` the proxies whose header is believed:
    addresses or CIDRs, `"*"` for every peer and hop. From an untrusted peer the header is
    ignored, so a visitor cannot choose the address it is counted under. From a trusted
    one, the header is read from the right and the first address that is not itself a
    trusted proxy is the visitor's; entries that are not addresses (`unknown`, obfuscated
    names) are skipped. If every hop is trusted, the left-most address is taken (uvicorn's
    rule). None when no address is known: a peer that is not an IP address (a unix
    socket) and no usable header from it.
    """
    entries = trusted if isinstance(trusted, frozenset) else frozenset(trusted)
    if forwarded_for is not None and len(forwarded_for) > _CACHED_HEADER_AT_MOST:
        return _client_ip(peer, forwarded_for, entries)
    return _cached_client_ip(peer, forwarded_for, entries)


def _client_ip(peer: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str | None:
    trust = _trust(trusted)
    address = parse_address(peer) if peer is not None else None
    if address is None and not trust.everyone:
        return None
    if address is not None and address not in trust:
        return str(address)
    hops = [hop for hop in map(parse_address, (forwarded_for or "").split(",")) if hop is not None]
    for hop in reversed(hops):
        if hop not in trust:
            return str(hop)
    if hops:
        return str(hops[0])
    return str(address) if address is not None else None


# A visitor's requests come with the same peer and header: the answer is remembered (in memory
# only, as `parse_address` remembers addresses), for headers of a few proxies' length.
_CACHED_HEADER_AT_MOST = 200
_cached_client_ip = functools.lru_cache(maxsize=16_384)(_client_ip)


# --- a workspace's ranges --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IpRange:
    """One `cidr,domain` line: the addresses `start`..`end` (inclusive) belong to `domain`."""

    start: int
    end: int
    version: int
    cidr: str
    domain: str


def parse_ranges_csv(text: str) -> tuple[list[IpRange], list[str]]:
    """The ranges of a `PUT /ip-ranges` body, and what is wrong with it, line by line.

    The body is CSV, `cidr,domain` a line, with an optional `cidr,domain` header line;
    header lines, blank lines and lines starting with `#` are skipped. A CIDR may be a
    bare address (a single host); its host bits must be zero (`10.0.0.0/8`, not
    `10.0.0.1/8`, which is most likely a typo). The domain is normalised as an account's (§1.6). Ranges may
    overlap, the smallest winning at lookup; the same CIDR twice with different domains is
    a problem, with the same domain a repetition that is dropped. Problems read
    `line 3: '10.0.0.0/33' is not a CIDR`; the caller decides whether any problem rejects
    the whole body.
    """
    ranges: list[IpRange] = []
    problems: list[str] = []
    seen: dict[tuple[int, int, int], tuple[int, str]] = {}
    # Many ranges name the same company: normalise each spelling once.
    normalized = functools.cache(normalize_domain)
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # The csv module only where quotes need it: it costs more than the rest of the line.
        raw_fields = next(csv.reader([stripped])) if '"' in stripped else stripped.split(",")
        fields = [field.strip() for field in raw_fields]
        while fields and not fields[-1]:
            fields.pop()  # spreadsheets add trailing commas
        if tuple(field.lower() for field in fields) == CSV_HEADER:
            continue  # anywhere, so that files joined with `cat` still read
        if len(fields) != 2:
            problems.append(f"line {number}: expected 'cidr,domain', found {len(fields)} field(s)")
            continue
        raw_cidr, raw_domain = fields
        network, cidr_problem = _parse_cidr(raw_cidr)
        domain = normalized(raw_domain)
        if network is None:
            problems.append(f"line {number}: {cidr_problem}")
        if domain is None:
            problems.append(f"line {number}: '{raw_domain}' is not a domain")
        if network is None or domain is None:
            continue
        start = int(network.network_address)
        key = (network.version, start, network.prefixlen)
        if key in seen:
            first_line, first_domain = seen[key]
            if first_domain != domain:
                problems.append(f"line {number}: {network} is already given to {first_domain} on line {first_line}")
            continue
        seen[key] = (number, domain)
        end = start + (1 << (network.max_prefixlen - network.prefixlen)) - 1
        ranges.append(IpRange(start=start, end=end, version=network.version, cidr=str(network), domain=domain))
    return ranges, problems


def _parse_cidr(text: str) -> tuple[IPNetwork | None, str]:
    try:
        return _unmapped_network(ipaddress.ip_network(text)), ""
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None, f"'{text}' is not a CIDR"
    return None, f"'{text}' has host bits set (the network is {network})"


def _unmapped_network(network: IPNetwork) -> IPNetwork:
    # `::ffff:10.0.0.0/104` is 10.0.0.0/8: written as IPv4, it matches the addresses that
    # `parse_address` turns into IPv4.
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        start = int(network.network_address) - int(_IPV4_MAPPED.network_address)
        return ipaddress.IPv4Network((start, network.prefixlen - 96))
    return network


class RangeTable:
    """A workspace's ranges, ready for lookups: the domain of the smallest range holding an IP.

    CIDR blocks either nest or do not touch, so the ranges cut each IP version's address
    space into disjoint segments, each owned by its innermost range. Built once (sorting,
    O(n log n)), a lookup is one binary search over the segment starts: O(log n). IPv4
    starts and ends are kept in 4-byte arrays, so a million ranges take about 25 MB.
    Immutable after construction, so any number of threads may look up at once.
    """

    def __init__(self, ranges: Iterable[IpRange]) -> None:
        by_version: dict[int, list[IpRange]] = {4: [], 6: []}
        for entry in ranges:
            by_version[entry.version].append(entry)
        names: dict[str, int] = {}
        self._starts: dict[int, Sequence[int]] = {}
        self._ends: dict[int, Sequence[int]] = {}
        self._owners: dict[int, Sequence[int]] = {}
        for version, entries in by_version.items():
            starts, ends, owners = _segments(entries, names)
            if version == 4:
                self._starts[4], self._ends[4] = array(_U32, starts), array(_U32, ends)
            else:
                self._starts[6], self._ends[6] = starts, ends
            self._owners[version] = array(_U32, owners)
        self._domains: list[str] = list(names)
        self._size = sum(len(entries) for entries in by_version.values())
        # A visitor's requests look the same address up again (website visits: every event).
        self._remembered = functools.lru_cache(maxsize=16_384)(self._lookup)

    def __len__(self) -> int:
        return self._size

    def lookup(self, ip: str) -> str | None:
        """The domain of the smallest range that holds `ip`; None if none does or `ip` is no IP."""
        return self._remembered(ip)

    def _lookup(self, ip: str) -> str | None:
        address = parse_address(ip)
        if address is None:
            return None
        value = int(address)
        starts = self._starts[address.version]
        at = bisect.bisect_right(starts, value) - 1
        if at < 0 or value > self._ends[address.version][at]:
            return None
        return self._domains[self._owners[address.version][at]]


def _segments(entries: list[IpRange], names: dict[str, int]) -> tuple[list[int], list[int], list[int]]:
    """Disjoint (start, end, owner) segments, sorted, each owned by its innermost range.

    A sweep over the ranges sorted by start, outer before inner: a stack holds the ranges
    open at the sweep's position, its top the innermost. On two equal ranges the later one
    wins (parse_ranges_csv allows none that disagree).
    """
    starts: list[int] = []
    ends: list[int] = []
    owners: list[int] = []

    def emit(start: int, end: int, domain: str) -> None:
        owner = names.setdefault(domain, len(names))
        if ends and ends[-1] == start - 1 and owners[-1] == owner:
            ends[-1] = end  # the same owner on both sides of a closed inner range
        else:
            starts.append(start)
            ends.append(end)
            owners.append(owner)

    stack: list[IpRange] = []
    cursor = 0  # the first address not yet given to a segment
    for entry in sorted(entries, key=lambda r: (r.start, -r.end)):
        while stack and stack[-1].end < entry.start:
            closed = stack.pop()
            if cursor <= closed.end:
                emit(cursor, closed.end, closed.domain)
                cursor = closed.end + 1
        if stack and cursor < entry.start:
            emit(cursor, entry.start - 1, stack[-1].domain)
        cursor = entry.start
        stack.append(entry)
    while stack:
        closed = stack.pop()
        if cursor <= closed.end:
            emit(cursor, closed.end, closed.domain)
            cursor = closed.end + 1
    return starts, ends, owners


# --- who owns the network: iptoasn.com --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AsnRange:
    """One routed range of iptoasn.com: `start`..`end` (inclusive) announced by `asn`."""

    start: int
    end: int
    version: int
    asn: int
    country: str | None
    description: str


class IptoasnStream(Iterator[AsnRange]):
    """The routed ranges of an iptoasn TSV, read lazily, with counts of what was passed over.

    `ranges` counts the ranges yielded, `not_routed` the lines of AS 0 (the dataset's
    "Not routed" gaps), `skipped` the lines that could not be read (wrong number of fields,
    an address that is not one, an end before its start, mixed IP versions, an AS that is
    not a number); blank lines are not counted.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.ranges = 0
        self.not_routed = 0
        self.skipped = 0

    def __iter__(self) -> IptoasnStream:
        return self

    def __next__(self) -> AsnRange:
        for line in self._lines:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            entry = _iptoasn_line(line)
            if entry is None:
                self.skipped += 1
            elif entry.asn == 0:
                self.not_routed += 1
            else:
                self.ranges += 1
                return entry
        raise StopIteration


def iter_iptoasn(lines: Iterable[str]) -> IptoasnStream:
    """Stream the ranges of iptoasn.com's `ip2asn-v4.tsv`, `ip2asn-v6.tsv` or combined file.

    A line is `range_start TAB range_end TAB AS_number TAB country_code TAB AS_description`;
    the u32 variant (`ip2asn-v4-u32.tsv`, addresses as integers) is read too. Ranges of AS 0
    (not routed) and unreadable lines are passed over and counted on the returned stream.
    """
    return IptoasnStream(lines)


def _iptoasn_line(line: str) -> AsnRange | None:
    fields = line.split("\t", 4)
    if len(fields) != 5:
        return None
    raw_start, raw_end, raw_asn, country, description = fields
    start, end = _iptoasn_address(raw_start), _iptoasn_address(raw_end)
    if start is None or end is None or start.version != end.version or int(start) > int(end):
        return None
    try:
        asn = int(raw_asn)
    except ValueError:
        return None
    if asn < 0:
        return None
    country = country.strip()
    return AsnRange(
        start=int(start),
        end=int(end),
        version=start.version,
        asn=asn,
        country=country if country and country != "None" else None,
        description=description.strip(),
    )


def _iptoasn_address(text: str) -> IPAddress | None:
    text = text.strip()
    try:
        if text.isdigit():
            return ipaddress.IPv4Address(int(text))
        return ipaddress.ip_address(text)
    except ValueError:
        return None
