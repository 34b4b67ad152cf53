"""Domain normalisation (contract §1.6)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from abmhub.accounts.domains import normalize_domain

VALID = [
    ("acme.com", "acme.com"),
    ("https://www.Acme.com/foo", "acme.com"),
    ("  ACME.COM  ", "acme.com"),
    ("http://acme.com", "acme.com"),
    ("HTTPS://ACME.COM/", "acme.com"),
    ("acme.com:8080", "acme.com"),
    ("acme.com:", "acme.com"),
    ("acme.com.", "acme.com"),
    ("acme.com.:443/x", "acme.com"),
    ("www.acme.com", "acme.com"),
    ("www.www.acme.com", "acme.com"),
    ("wwwacme.com", "wwwacme.com"),
    ("www-acme.com", "www-acme.com"),
    ("acme.com?utm_source=x", "acme.com"),
    ("acme.com#pricing", "acme.com"),
    ("https://www.acme.co.uk:8443/a/b?c=d#e", "acme.co.uk"),
    ("app.eu.acme.com", "app.eu.acme.com"),
    ("a-b.c-d.io", "a-b.c-d.io"),
    ("3m.com", "3m.com"),
    ("acme.xn--p1ai", "acme.xn--p1ai"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("https://www.München.de/stadt", "xn--mnchen-3ya.de"),
    ("ｗｗｗ.acme.com", "acme.com"),
    ("\tacme.com\n", "acme.com"),
    ("a" * 63 + ".com", "a" * 63 + ".com"),
]

INVALID = [
    "",
    "   ",
    "acme",
    "ac me.com",
    "acme..com",
    ".acme.com",
    "-acme.com",
    "acme-.com",
    "acme.-com",
    "acme.com..",
    "http://",
    "https://www.",
    "www.com",
    "1.2.3.4",
    "http://1.2.3.4:80/",
    "acme_corp.com",
    "acme!.com",
    "user@acme.com",
    "acme.com:80:80",
    "acme.com:http",
    "ftp://acme.com",
    "//acme.com",
    "[::1]",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 4) + ".com",  # 260 characters
    "acme.com／evil",  # a full-width solidus folds to "/" in nameprep
    "mü nchen.de",
    "münchen\u00a0.de",
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_normalises_plausible_hosts(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected, f"normalize_domain({raw!r}) should be {expected!r}"


@pytest.mark.parametrize("raw", INVALID)
def test_rejects_implausible_hosts(raw: str) -> None:
    assert normalize_domain(raw) is None, f"normalize_domain({raw!r}) should be None (Invalid domain)"


def test_accepts_the_longest_host_and_rejects_one_character_more() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57, "com"])
    assert len(longest) == 253
    assert normalize_domain(longest) == longest, "a 253-character host is within the DNS limit"
    assert normalize_domain("e" + longest) is None, "a 254-character host is over the DNS limit"


def test_last_label_may_hold_digits_but_not_only_digits() -> None:
    assert normalize_domain("acme.web3") == "acme.web3", "a TLD with a digit and letters is a host"
    assert normalize_domain("acme.123") is None, "an all-digit last label looks like an IPv4 address"


# --- properties -------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_TLD = st.from_regex(r"[a-z]{2,10}", fullmatch=True)
_HOSTS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=4),
    _TLD,
).filter(lambda host: not host.startswith("www."))

# Text that looks like a domain often enough to reach the non-None paths.
_DOMAINISH = st.text(
    alphabet=st.sampled_from([*list("abcwW019-.:/?# _@HTPSühtps"), "。", "ｗ", "Ü", "\xa0"]),
    max_size=40,
)


def _mixed_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def _decorated(draw: st.DrawFn, host: str) -> str:
    """`host` as a person might paste it: a URL, with noise around it, in any case."""
    scheme = draw(st.sampled_from(["", "http://", "https://"]))
    www = draw(st.sampled_from(["", "www.", "www.www."]))
    port = draw(st.sampled_from(["", ":", ":80", ":8443"]))
    dot = draw(st.sampled_from(["", "."]))
    rest = draw(st.sampled_from(["", "/", "/pricing", "/a/b.html", "?q=1", "?q=a/b", "#top", "/x?y=z#w"]))
    before = draw(st.sampled_from(["", " ", "\t", "  \n"]))
    after = draw(st.sampled_from(["", " ", "\r\n"]))
    return before + _mixed_case(draw, scheme + www + host + dot + port + rest) + after


@settings(max_examples=200)
@given(st.data())
def test_decorations_do_not_change_the_host(data: st.DataObject) -> None:
    host = data.draw(_HOSTS, label="host")
    decorated = data.draw(_decorated(host), label="decorated")
    assert normalize_domain(host) == host, f"a plain valid host {host!r} should normalise to itself"
    assert normalize_domain(decorated) == host, f"{decorated!r} should normalise to {host!r}"


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=60), _DOMAINISH))
@example("www.www.acme.com")
@example("ｗｗｗ.acme.com。")
@example("HTTPS://WWW.ACME.COM:443/")
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_domain(raw)
    if once is not None:
        assert normalize_domain(once) == once, f"{raw!r} gave {once!r}, which normalises differently again"


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=60), _DOMAINISH))
def test_result_is_a_bare_lowercase_host(raw: str) -> None:
    result = normalize_domain(raw)
    if result is None:
        return
    assert result.isascii() and result == result.lower(), f"{result!r} should be lowercase ASCII"
    assert "://" not in result and not any(c in result for c in "/?#:@ "), (
        f"{result!r} should hold no scheme, path, query, fragment, port or spaces"
    )
    assert not result.startswith("www."), f"{result!r} should not keep a leading 'www.'"
    assert "." in result and not result.endswith("."), f"{result!r} should have a dot, none trailing"
    assert len(result) <= 253, f"{result!r} is longer than a DNS name may be"
