"""API keys: 64 random characters shown once, stored only as a SHA-256 hash.

A key carries 64 × log2(62) ≈ 381 bits of entropy, so a fast unsalted hash is safe: there is
nothing to brute-force, and a hash lookup lets authentication use a unique index.
"""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_LENGTH = 64
_ALPHABET = string.ascii_letters + string.digits


def new_api_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
