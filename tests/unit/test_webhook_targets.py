"""The SSRF guard of webhook URLs (contract §8): which addresses are public, which URLs pass."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from abmhub.webhooks import targets
from abmhub.webhooks.targets import (
    IPAddress,
    PrivateTarget,
    UnreachableTarget,
    check_target,
    creation_problem,
    is_public,
    resolve,
    url_problem,
)

NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "10.0.0.1",  # private
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local: the cloud metadata service
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # unspecified
    "224.0.0.1",  # multicast
    "255.255.255.255",  # broadcast (reserved)
    "240.0.0.1",  # reserved
    "::1",
    "::",
    "fe80::1",
    "fc00::1",  # unique local
    "fec0::1",  # site-local (deprecated)
    "ff02::1",
    "2001:db8::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
    "2002:7f00:0001::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo of client 10.0.0.1
    "::a00:1",  # IPv4-compatible 10.0.0.1
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: an IPv6-only network reaching a public host
    "2002:0808:0808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_non_public_addresses_are_refused(text):
    assert not is_public(ipaddress.ip_address(text)), f"{text} must not count as a public address"


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_accepted(text):
    assert is_public(ipaddress.ip_address(text)), f"{text} is on the public internet"


def _resolving(table: dict[str, list[str]]):
    """A resolver that knows only `table`, and fails like getaddrinfo for any other name."""

    def resolver(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(text) for text in table[host]]

    return resolver


@pytest.fixture
def dns(monkeypatch):
    """Names resolve from a fixed table, never through real DNS."""
    table = {
        "internal.example": ["10.0.0.1"],
        "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "mixed.example": ["93.184.215.14", "127.0.0.1"],
        "twice.example": ["93.184.215.14", "93.184.215.14"],
    }
    monkeypatch.setattr(targets, "resolver", _resolving(table))
    return table


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]:8080/x", "http://internal.example/hook"]
)
def test_check_target_refuses_a_private_target(dns, url):
    with pytest.raises(PrivateTarget) as raised:
        check_target(url, allow_private=False)
    assert str(raised.value) == f"Webhook URL '{url}' points to a private address", "the message is the contract's"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1/", ["127.0.0.1"]),
        ("http://[::1]/", ["::1"]),
        ("http://internal.example/hook", ["10.0.0.1"]),
    ],
)
def test_check_target_allows_a_private_target_when_told(dns, url, expected):
    addresses = check_target(url, allow_private=True)
    assert addresses == [ipaddress.ip_address(text) for text in expected], "the addresses to connect to"


def test_one_private_address_among_public_ones_is_enough_to_refuse(dns):
    with pytest.raises(PrivateTarget):
        check_target("https://mixed.example/", allow_private=False)


def test_a_public_name_resolves_to_its_addresses_in_order_without_duplicates(dns):
    assert check_target("https://public.example/hooks?x=1", allow_private=False) == [
        ipaddress.ip_address(text) for text in dns["public.example"]
    ]
    assert resolve("twice.example", 443) == [ipaddress.ip_address("93.184.215.14")], "duplicates are dropped"


def test_an_unknown_name_is_unreachable_and_the_error_names_the_host_only(dns):
    with pytest.raises(UnreachableTarget) as raised:
        check_target("https://nowhere.example/services/T0/B0/s3cr3t-token", allow_private=False)
    assert "nowhere.example" in str(raised.value)
    assert "s3cr3t" not in str(raised.value), "the path may hold a token and must not be repeated"


def test_ip_literals_are_not_looked_up(monkeypatch):
    def no_dns(host: str, port: int) -> list[IPAddress]:
        raise AssertionError(f"an IP literal was sent to DNS: {host}")

    monkeypatch.setattr(targets, "resolver", no_dns)
    assert resolve("[2606:4700:4700::1111]", 443) == [ipaddress.ip_address("2606:4700:4700::1111")]
    assert resolve("8.8.8.8", 80) == [ipaddress.ip_address("8.8.8.8")]


def test_the_system_resolver_resolves_localhost():
    addresses = targets.system_resolver("localhost", 80)
    assert addresses, "localhost resolves"
    assert all(address.is_loopback for address in addresses), f"localhost is a loopback address, got {addresses}"


def test_check_target_rejects_an_invalid_url():
    with pytest.raises(ValueError, match="http or https"):
        check_target("ftp://example.com/", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/abmhub",
        "http://hooks.example.com:8080/a/b?c=d",
        "https://münchen.de/hook",
        "http://[2606:4700:4700::1111]/",
        "http://8.8.8.8:65535/",
    ],
)
def test_good_urls_have_no_problem(url):
    assert url_problem(url) is None, f"{url} is a fine webhook URL"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/hook", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("example.com/hook", "http or https"),
        ("http://", "host"),
        ("http:///path", "host"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://token@example.com/", "user name or password"),
        ("http://@example.com/", "user name or password"),
        ("http://example.com\\@evil.example/", "user name or password"),
        ("https://example.com/" + "a" * 2048, "2048"),
        ("http://example.com:0/", "port"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:http/", "not a valid URL"),
        ("http://example.com/\n", "not a valid URL"),
        ("http://exa mple.com/", "invalid host"),
    ],
)
def test_bad_urls_are_explained(url, problem):
    message = url_problem(url)
    assert message is not None, f"{url!r} must be refused"
    assert problem in message, f"{url!r}: expected a message about {problem!r}, got {message!r}"


def test_creation_refuses_a_private_target_with_the_contract_message(dns):
    url = "http://internal.example/hook"
    assert creation_problem(url, allow_private=False) == f"Webhook URL '{url}' points to a private address"
    assert creation_problem(url, allow_private=True) is None


def test_creation_accepts_a_name_that_does_not_resolve_yet(dns):
    assert creation_problem("https://not-yet.example/hook", allow_private=False) is None, (
        "it may resolve later, and every delivery checks again"
    )


def test_creation_reports_a_syntax_problem_before_resolving(dns):
    assert creation_problem("ftp://internal.example/", allow_private=False) == url_problem("ftp://internal.example/")
    assert creation_problem("ftp://internal.example/", allow_private=True) is not None
