"""Visit addresses (contract §9): the visitor's IP, workspace ranges, the iptoasn dataset."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abmhub.website.addresses import (
    AsnRange,
    IpRange,
    RangeTable,
    client_ip,
    iter_iptoasn,
    parse_address,
    parse_ranges_csv,
)

LOCAL = frozenset({"127.0.0.1", "::1"})

# --- client_ip ------------------------------------------------------------------------------


def test_the_peer_is_the_visitor_without_a_proxy() -> None:
    assert client_ip("203.0.113.7", None, LOCAL) == "203.0.113.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    # A visitor who sends its own header cannot choose the address it is counted under.
    assert client_ip("203.0.113.7", "198.51.100.1", LOCAL) == "203.0.113.7"
    assert client_ip("203.0.113.7", "127.0.0.1", LOCAL) == "203.0.113.7"


def test_a_trusted_proxy_passes_on_the_visitor() -> None:
    assert client_ip("127.0.0.1", "198.51.100.1", LOCAL) == "198.51.100.1"


def test_a_spoofed_left_part_of_the_header_is_not_believed() -> None:
    # The visitor sent `X-Forwarded-For: 1.2.3.4`; the proxy appended the address it saw.
    assert client_ip("127.0.0.1", "1.2.3.4, 198.51.100.1", LOCAL) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    trusted = {"127.0.0.1", "10.0.0.0/8"}
    assert client_ip("127.0.0.1", "1.2.3.4, 198.51.100.1, 10.1.2.3, 10.9.9.9", trusted) == "198.51.100.1"


def test_when_every_hop_is_trusted_the_left_most_is_the_visitor() -> None:
    assert client_ip("127.0.0.1", "10.0.0.5, 10.0.0.6", {"127.0.0.1", "10.0.0.0/8"}) == "10.0.0.5"


def test_a_star_trusts_every_peer_and_hop() -> None:
    # Every hop is trusted, so the left-most address is the visitor's (as uvicorn).
    assert client_ip("203.0.113.7", "198.51.100.1, 192.0.2.9", {"*"}) == "198.51.100.1"
    assert client_ip("203.0.113.7", None, {"*"}) == "203.0.113.7"
    # Only with "*" is a header believed without a peer address (a unix socket).
    assert client_ip(None, "198.51.100.1", {"*"}) == "198.51.100.1"
    assert client_ip(None, "198.51.100.1", LOCAL) is None


def test_a_trusted_peer_without_a_header_is_the_visitor() -> None:
    assert client_ip("127.0.0.1", None, LOCAL) == "127.0.0.1"
    assert client_ip("127.0.0.1", " , unknown", LOCAL) == "127.0.0.1"


def test_malformed_entries_of_the_header_are_skipped() -> None:
    header = "198.51.100.1, unknown, _hidden, 999.1.1.1, , 10.0.0.0/8"
    assert client_ip("127.0.0.1", header, LOCAL) == "198.51.100.1"


def test_ports_and_brackets_are_dropped() -> None:
    assert client_ip("127.0.0.1", "198.51.100.1:5123", LOCAL) == "198.51.100.1"
    assert client_ip("127.0.0.1", "[2001:db8::1]:443", LOCAL) == "2001:db8::1"
    assert client_ip("127.0.0.1", "[2001:db8::1]x", LOCAL) == "127.0.0.1"


def test_ipv6_addresses_are_normalised() -> None:
    assert client_ip("2001:DB8:0:0::0:1", None, LOCAL) == "2001:db8::1"
    assert client_ip("::1", "2001:0db8::0042", LOCAL) == "2001:db8::42"
    assert client_ip("::1", "2001:db8::42", {"::1/128"}) == "2001:db8::42"


def test_an_ipv4_mapped_peer_is_the_ipv4_address() -> None:
    assert client_ip("::ffff:203.0.113.7", None, LOCAL) == "203.0.113.7"
    assert client_ip("::ffff:127.0.0.1", "198.51.100.1", LOCAL) == "198.51.100.1"


@pytest.mark.parametrize("peer", [None, "", "testclient", "not an ip", "300.1.1.1"])
def test_a_peer_that_is_not_an_address_gives_none(peer: str | None) -> None:
    assert client_ip(peer, None, LOCAL) is None
    assert client_ip(peer, "198.51.100.1", LOCAL) is None


def test_trusted_entries_that_are_not_addresses_trust_nothing() -> None:
    assert client_ip("127.0.0.1", "198.51.100.1", {"localhost", "10.0.0.0/99", "unix:/run/x.sock"}) == "127.0.0.1"


def test_leading_zeros_are_not_an_address() -> None:
    # 010.0.0.1 is 8.0.0.1 to some parsers and 10.0.0.1 to others.
    assert parse_address("010.0.0.1") is None


# --- parse_ranges_csv -------------------------------------------------------------------------


def test_ranges_are_parsed_past_headers_comments_and_blank_lines() -> None:
    text = "\ufeffcidr,domain\n# our offices\n\n10.0.0.0/8, https://www.Acme.com/\n 2001:db8::/32 ,acme.de\n"
    ranges, problems = parse_ranges_csv(text)
    assert problems == []
    assert ranges == [
        IpRange(
            start=int(ipaddress.ip_address("10.0.0.0")),
            end=int(ipaddress.ip_address("10.255.255.255")),
            version=4,
            cidr="10.0.0.0/8",
            domain="acme.com",
        ),
        IpRange(
            start=int(ipaddress.ip_address("2001:db8::")),
            end=int(ipaddress.ip_address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")),
            version=6,
            cidr="2001:db8::/32",
            domain="acme.de",
        ),
    ]


def test_a_bare_address_is_a_single_host_and_quotes_and_trailing_commas_are_fine() -> None:
    ranges, problems = parse_ranges_csv('"192.0.2.1","acme.com",,\n')
    assert problems == []
    assert [(r.cidr, r.start == r.end) for r in ranges] == [("192.0.2.1/32", True)]


def test_problems_name_their_line() -> None:
    text = "\n".join(
        [
            "cidr,domain",
            "10.0.0.0/8,acme.com",
            "10.0.0.0/33,acme.com",
            "192.0.2.0/24,not a domain",
            "10.0.0.1/8,acme.com",
            "10.0.0.0/8,other.com",
            "198.51.100.0/24",
            "198.51.100.0/24,acme.com,extra",
            "CIDR, Domain",
            "nonsense,",
        ]
    )
    ranges, problems = parse_ranges_csv(text)
    assert [r.cidr for r in ranges] == ["10.0.0.0/8"]
    assert problems == [
        "line 3: '10.0.0.0/33' is not a CIDR",
        "line 4: 'not a domain' is not a domain",
        "line 5: '10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)",
        "line 6: 10.0.0.0/8 is already given to acme.com on line 2",
        "line 7: expected 'cidr,domain', found 1 field(s)",
        "line 8: expected 'cidr,domain', found 3 field(s)",
        "line 10: expected 'cidr,domain', found 1 field(s)",
    ]


def test_a_repeated_line_is_dropped_and_overlaps_are_allowed() -> None:
    ranges, problems = parse_ranges_csv("10.0.0.0/8,acme.com\n10.1.0.0/16,beta.com\n10.0.0.0/8,www.acme.com\n")
    assert problems == []
    assert [(r.cidr, r.domain) for r in ranges] == [("10.0.0.0/8", "acme.com"), ("10.1.0.0/16", "beta.com")]


def test_an_ipv4_mapped_range_is_stored_as_ipv4() -> None:
    ranges, problems = parse_ranges_csv("::ffff:10.0.0.0/104,acme.com\n")
    assert problems == []
    assert [(r.cidr, r.version) for r in ranges] == [("10.0.0.0/8", 4)]


def test_an_empty_body_has_no_ranges_and_no_problems() -> None:
    assert parse_ranges_csv("") == ([], [])
    assert parse_ranges_csv("cidr,domain\n# nothing yet\n") == ([], [])


# --- RangeTable -------------------------------------------------------------------------------


def _table(text: str) -> RangeTable:
    ranges, problems = parse_ranges_csv(text)
    assert problems == []
    return RangeTable(ranges)


def test_the_smallest_range_wins() -> None:
    table = _table(
        "10.0.0.0/8,outer.com\n10.1.0.0/16,middle.com\n10.1.2.0/24,inner.com\n10.1.2.128/32,host.com\n10.200.0.0/16,side.com\n"
    )
    assert table.lookup("10.0.0.1") == "outer.com"
    assert table.lookup("10.1.0.0") == "middle.com"
    assert table.lookup("10.1.2.0") == "inner.com"
    assert table.lookup("10.1.2.127") == "inner.com"
    assert table.lookup("10.1.2.128") == "host.com"
    assert table.lookup("10.1.2.129") == "inner.com"
    assert table.lookup("10.1.3.0") == "middle.com"
    assert table.lookup("10.1.255.255") == "middle.com"
    assert table.lookup("10.2.0.0") == "outer.com"
    assert table.lookup("10.200.9.9") == "side.com"
    assert table.lookup("10.255.255.255") == "outer.com"
    assert table.lookup("11.0.0.0") is None
    assert table.lookup("9.255.255.255") is None
    assert len(table) == 5


def test_the_order_of_the_lines_does_not_matter() -> None:
    table = _table("10.1.2.0/24,inner.com\n10.0.0.0/8,outer.com\n10.1.0.0/16,middle.com\n")
    assert [table.lookup(ip) for ip in ("10.1.2.3", "10.1.3.3", "10.2.0.0")] == ["inner.com", "middle.com", "outer.com"]


def test_ipv6_and_ipv4_are_separate() -> None:
    table = _table("2001:db8::/32,six.com\n2001:db8:1::/48,inner.com\n0.0.0.0/0,everyone.com\n")
    assert table.lookup("2001:db8::1") == "six.com"
    assert table.lookup("2001:db8:1::1") == "inner.com"
    assert table.lookup("2001:db9::1") is None
    assert table.lookup("192.0.2.1") == "everyone.com"
    # ::1 is the integer 1, as is 0.0.0.1: the versions must not mix.
    assert table.lookup("::1") is None


def test_an_ipv4_mapped_address_is_looked_up_as_ipv4() -> None:
    table = _table("192.0.2.0/24,acme.com\n")
    assert table.lookup("::ffff:192.0.2.55") == "acme.com"
    assert table.lookup("::ffff:c000:0237") == "acme.com"


def test_the_edges_of_the_address_space() -> None:
    table = _table(
        "0.0.0.0/32,low.com\n255.255.255.255/32,high.com\n::/128,low6.com\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128,high6.com\n"
    )
    assert table.lookup("0.0.0.0") == "low.com"
    assert table.lookup("255.255.255.255") == "high.com"
    assert table.lookup("::") == "low6.com"
    assert table.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == "high6.com"
    assert table.lookup("0.0.0.1") is None


@pytest.mark.parametrize("ip", ["", "nonsense", "10.0.0.0/8", "300.0.0.1"])
def test_what_is_not_an_ip_is_found_nowhere(ip: str) -> None:
    assert _table("0.0.0.0/0,all.com\n").lookup(ip) is None


def test_an_empty_table_finds_nothing() -> None:
    table = RangeTable([])
    assert table.lookup("10.0.0.1") is None
    assert table.lookup("2001:db8::1") is None
    assert len(table) == 0


# Random CIDR blocks inside 10.0.0.0/24, so that many of them nest.
def _block(last_octet: int, prefix: int) -> ipaddress.IPv4Network:
    host_bits = (1 << (32 - prefix)) - 1
    return ipaddress.IPv4Network((0x0A000000 | (last_octet & ~host_bits), prefix))


_networks = st.lists(st.builds(_block, st.integers(0, 255), st.integers(24, 32)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(networks=_networks, probes=st.lists(st.integers(min_value=0x0A000000 - 2, max_value=0x0A000101), max_size=40))
def test_lookup_is_the_smallest_containing_range(networks: list[ipaddress.IPv4Network], probes: list[int]) -> None:
    text = "".join(f"{network},n{index}.com\n" for index, network in enumerate(networks))
    ranges, problems = parse_ranges_csv(text)
    table = RangeTable(ranges)
    first_domain = {r.cidr: r.domain for r in ranges}
    for probe in probes:
        address = ipaddress.IPv4Address(probe)
        holding = [network for network in networks if address in network]
        expected = first_domain[str(max(holding, key=lambda n: n.prefixlen))] if holding else None
        assert table.lookup(str(address)) == expected
    assert all("already given" in problem for problem in problems)


# --- iter_iptoasn -----------------------------------------------------------------------------

IPTOASN = [
    "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n",
    "1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n",
    "1.0.4.0\t1.0.7.255\t38803\tAU\tGTELECOM-AUSTRALIA Gtelecom Pty Ltd\n",
    "\n",
    "2001:200::\t2001:200:5ff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project\r\n",
    "2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE\n",
    "::\t1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\t0\tNone\tNot routed\n",
    "1.0.8.0\t1.0.15\t4134\tCN\tbad end\n",
    "1.0.16.0\t1.0.15.255\t4134\tCN\tend before start\n",
    "1.0.16.0\t2001:db8::\t4134\tCN\tmixed versions\n",
    "1.0.16.0\t1.0.31.255\tAS4134\tCN\tnot a number\n",
    "1.0.16.0\t1.0.31.255\t4134\n",
    "16777216\t16777471\t13335\tUS\tCLOUDFLARENET (u32 variant)\n",
    "1.0.64.0\t1.0.127.255\t18144\t\tEnergia\tCommunications, Inc.\n",
]


def test_iptoasn_lines_are_parsed_and_counted() -> None:
    stream = iter_iptoasn(IPTOASN)
    entries = list(stream)
    assert entries[:4] == [
        AsnRange(start=0x01000000, end=0x010000FF, version=4, asn=13335, country="US", description="CLOUDFLARENET"),
        AsnRange(
            start=0x01000400,
            end=0x010007FF,
            version=4,
            asn=38803,
            country="AU",
            description="GTELECOM-AUSTRALIA Gtelecom Pty Ltd",
        ),
        AsnRange(
            start=int(ipaddress.ip_address("2001:200::")),
            end=int(ipaddress.ip_address("2001:200:5ff:ffff:ffff:ffff:ffff:ffff")),
            version=6,
            asn=2500,
            country="JP",
            description="WIDE-BB WIDE Project",
        ),
        AsnRange(
            start=int(ipaddress.ip_address("2001:4860::")),
            end=int(ipaddress.ip_address("2001:4860:ffff:ffff:ffff:ffff:ffff:ffff")),
            version=6,
            asn=15169,
            country="US",
            description="GOOGLE",
        ),
    ]
    assert entries[4] == AsnRange(
        start=0x01000000, end=0x010000FF, version=4, asn=13335, country="US", description="CLOUDFLARENET (u32 variant)"
    )
    # No country, and a tab inside the description: the description is the rest of the line.
    assert entries[5] == AsnRange(
        start=0x01004000,
        end=0x01007FFF,
        version=4,
        asn=18144,
        country=None,
        description="Energia\tCommunications, Inc.",
    )
    assert (stream.ranges, stream.not_routed, stream.skipped) == (6, 2, 5)


def test_iptoasn_is_read_lazily() -> None:
    def lines() -> Iterator[str]:
        yield IPTOASN[0]
        raise AssertionError("read past the first range")

    stream = iter_iptoasn(lines())
    assert next(stream).asn == 13335
    assert stream.ranges == 1


def test_an_empty_iptoasn_file_has_no_ranges() -> None:
    stream = iter_iptoasn([])
    assert list(stream) == []
    assert (stream.ranges, stream.not_routed, stream.skipped) == (0, 0, 0)
