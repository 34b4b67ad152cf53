"""Checking that a webhook delivery came from abmhub (contract §8), for the receiving side.

Standard library only, so that a receiver can copy this one file into a service that has
no other use for the SDK. Give it the raw body as received: JSON parsed and dumped again
rarely has the same bytes, and the signature is over the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

SIGNATURE_HEADER = "X-Abmhub-Signature"
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(Exception):
    """The delivery is not provably abmhub's, or is too old: answer it with a 4xx."""


def verify_webhook(
    secret: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes | str,
    tolerance: int = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """The delivery's JSON body, once its signature and timestamp have been checked.

    `headers` is any mapping of the request's headers (a dict, Starlette's `Headers`,
    `http.server`'s message) or a list of (name, value) pairs; the name is matched without
    regard to case. The timestamp must be within `tolerance` seconds of now, either way,
    which keeps a captured delivery from being replayed later. Several `v1=` values are
    allowed (one matching is enough), so that a secret can be rotated without a gap.
    Raises WebhookVerificationError, whose message never contains the secret.
    """
    timestamp, candidates = _parse_header(_signature_header(headers))
    now = time.time()
    if now - timestamp > tolerance:
        raise WebhookVerificationError(f"Webhook timestamp is older than {tolerance} s")
    if timestamp - now > tolerance:
        raise WebhookVerificationError(f"Webhook timestamp is more than {tolerance} s in the future")
    raw = body.encode() if isinstance(body, str) else body
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest().encode()
    # Every candidate is compared, in constant time each, before deciding.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    if not any(matches):
        raise WebhookVerificationError("Webhook signature does not match")
    try:
        payload = json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError both are
        raise WebhookVerificationError("Webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("Webhook body is not a JSON object")
    return payload


def _signature_header(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    # `items()` first: a mapping iterates over its names only, and http.server's message is
    # no Mapping but has `items()` too.
    pairs: Iterable[tuple[str, str]] = headers.items() if hasattr(headers, "items") else headers
    values = [value for name, value in pairs if name.lower() == SIGNATURE_HEADER.lower()]
    if not values:
        raise WebhookVerificationError(f"No {SIGNATURE_HEADER} header")
    return ",".join(values)


def _parse_header(value: str) -> tuple[int, list[str]]:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`; keys of later schemes are ignored."""
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in value.split(","):
        key, equals, item = part.strip().partition("=")
        if not equals or not item:
            raise WebhookVerificationError(f"Malformed {SIGNATURE_HEADER} header")
        if key == "t":
            timestamps.append(item)
        elif key == "v1":
            candidates.append(item)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit() or not candidates:
        raise WebhookVerificationError(f"Malformed {SIGNATURE_HEADER} header")
    return int(timestamps[0]), candidates
