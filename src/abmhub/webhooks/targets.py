"""Where a webhook may point: the SSRF guard of contract §8.

A subscription's URL is chosen by a workspace user, and the server posts to it. Without a
guard that is a way to make abmhub call its own admin ports, the cloud's metadata service
(169.254.169.254) or anything else on the private network. So a URL must resolve to public
addresses only, unless the server runs with `--webhook-allow-private-targets`.

The check happens twice: when a subscription is created or changed (so that the user hears
about it at once), and again before every delivery, because DNS may have changed since (or
may be made to change between two lookups: DNS rebinding). The sender then connects to the
very addresses checked here, never to the name again.

Whether an address is public is the standard library's judgement (`ipaddress`), not a list
of networks kept by hand. Every URL is read with httpx's parser, the one the sender uses, so
that the host checked is the host connected to.
"""

from __future__ import annotations

import ipaddress
import socket
import string
from collections.abc import Callable
from typing import TypeAlias
from urllib.parse import urlsplit

import httpx

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver: TypeAlias = Callable[[str, int], list[IPAddress]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 6052's well-known NAT64 prefix: 64:ff9b::a.b.c.d is a.b.c.d, reached through a gateway.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 4291's deprecated IPv4-compatible form ::a.b.c.d (:: and ::1 included).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_HOSTNAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._")


class PrivateTarget(Exception):
    """The URL resolves to an address that is not public (contract §8's 400 message)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"Webhook URL '{url}' points to a private address")
        self.url = url


class UnreachableTarget(Exception):
    """The URL's host does not resolve (now). Names the host only: a path may hold a token."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Could not resolve the webhook host '{host}'")
        self.host = host


def is_public(address: IPAddress) -> bool:
    """Whether `address` is on the public internet, and so a fair webhook target.

    An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, NAT64
    `64:ff9b::/96`, 6to4 `2002::/16`, Teredo) is judged by the IPv4 address it reaches:
    `::ffff:127.0.0.1` is the loopback, whatever the IPv6 ranges say.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded:
            return all(is_public(inner) for inner in embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # the Teredo server and the client behind it
    return []


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as a webhook URL, in words for the user; None if nothing.

    Syntax only, no DNS: http or https, a host, no credentials in it, a valid port, at most
    2048 characters.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"Webhook URL must be at most {MAX_URL_LENGTH} characters"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "Webhook URL is not a valid URL"
    if parsed.scheme not in DEFAULT_PORTS:
        return "Webhook URL must be an http or https URL"
    host = parsed.raw_host.decode("ascii")
    if not host:
        return "Webhook URL must have a host"
    if not (_ip_literal(host) or set(host) <= _HOSTNAME_CHARACTERS):
        return "Webhook URL has an invalid host"
    # Both parsers are asked: a URL that either one reads as carrying credentials is refused,
    # so that no reading of it sends them (or hides its real host behind them).
    if parsed.userinfo or "@" in urlsplit(url).netloc:
        return "Webhook URL must not contain a user name or password"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return "Webhook URL has an invalid port"
    return None


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the operating system's resolver gives for `host`, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


# What `resolve` asks for names (not IP literals). Tests replace it (monkeypatch) to make a
# name resolve to chosen addresses without DNS.
resolver: Resolver = system_resolver


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses to connect to for `host`, without duplicates, in the resolver's order.

    An IP literal (IPv6 with or without brackets) is its own answer, without DNS. Raises
    UnreachableTarget when the name does not resolve.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise UnreachableTarget(host) from exc
    if not addresses:
        raise UnreachableTarget(host)
    return list(dict.fromkeys(addresses))


def check_target(url: str, *, allow_private: bool) -> list[IPAddress]:
    """Resolve the URL's host and return its addresses, all of them public unless allowed.

    One address that is not public is enough to refuse the URL: which address a client
    picks is not ours to predict. Raises PrivateTarget, UnreachableTarget, or ValueError
    (with `url_problem`'s message) for a URL that is not a valid webhook URL.
    """
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")
    addresses = resolve(host, parsed.port or DEFAULT_PORTS[parsed.scheme])
    if not allow_private and not all(is_public(address) for address in addresses):
        raise PrivateTarget(url)
    return addresses


def creation_problem(url: str, *, allow_private: bool) -> str | None:
    """The 400 message for a subscription's URL (`POST`/`PATCH /webhooks`); None if fine.

    A host that does not resolve now is accepted: it may resolve later, and every delivery
    checks again. This resolves names, so it blocks: call it from a worker thread, not the
    event loop.
    """
    problem = url_problem(url)
    if problem is not None or allow_private:
        return problem
    try:
        check_target(url, allow_private=False)
    except PrivateTarget as exc:
        return str(exc)
    except UnreachableTarget:
        return None
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
