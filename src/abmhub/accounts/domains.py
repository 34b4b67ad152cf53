"""Account domain normalisation (contract §1.6).

Every domain that reaches abmhub — pushed accounts, the `domains` filter, external-id
mappings, activity and deal domains — goes through `normalize_domain`, so that
`https://www.Acme.com/pricing` and `acme.com` name the same account.
"""

from __future__ import annotations

import re

__all__ = ["normalize_domain"]

_MAX_HOST_LENGTH = 253

_SCHEME = re.compile(r"https?://")
# The host ends at the first path, query or fragment delimiter.
_HOST_END = re.compile(r"[/?#]")
# An empty port (`acme.com:`) is what a URL parser accepts too.
_PORT = re.compile(r":[0-9]*\Z")

# Letters-digits-hyphen labels of 1-63 characters, not starting or ending with a hyphen.
# The last label needs a letter or a hyphen: all digits would make `1.2.3.4` a domain.
_HOST = re.compile(
    r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+"
    r"(?!-)(?=[a-z0-9-]*[a-z-])[a-z0-9-]{1,63}(?<!-)"
)
# What the idna codec may hand back for a valid host. Its nameprep step folds some
# characters to ASCII punctuation (a full-width solidus becomes `/`), which must not
# sneak a path or a port into the result.
_IDNA_OUTPUT = re.compile(r"[a-z0-9.-]+")


def normalize_domain(raw: str) -> str | None:
    """Return the canonical host name for `raw`, or None if it is not a plausible host.

    Trims, lowercases, and strips an `http(s)://` scheme, everything from the first
    `/`, `?` or `#`, a `:port`, a trailing dot and leading `www.` labels, so
    `https://www.Acme.com/foo` gives `acme.com`. Non-ASCII names come back as
    punycode (`münchen.de` gives `xn--mnchen-3ya.de`). None means the caller reports
    `Invalid domain '<raw>'`: empty, spaces or other illegal characters, no dot, an empty
    or over-long label, a label starting or ending with `-`, more than 253 characters,
    or a bare IPv4 address.
    """
    host = raw.strip().lower()
    scheme = _SCHEME.match(host)
    if scheme is not None:
        host = host[scheme.end() :]
    end = _HOST_END.search(host)
    if end is not None:
        host = host[: end.start()]
    port = _PORT.search(host)
    if port is not None:
        host = host[: port.start()]
    if not host.isascii():
        return _normalize_unicode_host(host)
    return _canonical_ascii_host(host)


def _canonical_ascii_host(host: str) -> str | None:
    if host.endswith("."):
        host = host[:-1]
    # All leading `www.` labels go, not just one: stripping one would leave
    # `www.acme.com` from `www.www.acme.com`, and normalising that again would give a
    # different answer.
    while host.startswith("www."):
        host = host[4:]
    if len(host) > _MAX_HOST_LENGTH or _HOST.fullmatch(host) is None:
        return None
    return host


def _normalize_unicode_host(host: str) -> str | None:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if _IDNA_OUTPUT.fullmatch(ascii_host) is None:
        return None
    # Nameprep may also produce a `www.` label or a trailing dot (`。`), so the ASCII
    # rules run again on the converted name.
    return _canonical_ascii_host(ascii_host)
