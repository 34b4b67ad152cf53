"""The signature on every delivery (contract §8), so that a receiver can tell it came from us.

`X-Abmhub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `"<t>." + raw body`: the
timestamp is inside what is signed, so a captured delivery cannot be replayed later with a
fresh time. The receiving side is `abmhub.client.verify_webhook`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Abmhub-Signature"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A new subscription secret: `whsec_` and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`.

    The key is the whole secret as UTF-8, prefix included, as receivers will copy it.
    """
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
