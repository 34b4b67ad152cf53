"""Time-ordered record ids in the shape of a MongoDB ObjectId (contract §1.7).

An id is 12 bytes written as 24 lowercase hex characters: 4 bytes of seconds since the
epoch (big-endian), 5 random bytes chosen once per process, and a 3-byte counter that
starts at a random value. Ids therefore sort by creation second, and within one
process and second by creation order while the counter does not wrap.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time

__all__ = ["is_object_id", "new_object_id", "new_object_ids", "new_uuid7", "new_uuid7s"]

_COUNTER_MODULUS = 1 << 24
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")

_lock = threading.Lock()
_pid: int | None = None
_process_bytes = b""
_counter = 0


def new_object_id() -> str:
    """Return a new id: 24 lowercase hex characters, unique and time-ordered."""
    return new_object_ids(1)[0]


def new_object_ids(count: int) -> list[str]:
    """`count` new ids in creation order, drawn under one lock (a push of 100 accounts draws once)."""
    global _pid, _process_bytes, _counter
    with _lock:
        pid = os.getpid()
        if pid != _pid:
            # A forked child would otherwise share its parent's random bytes and counter
            # and hand out the same ids.
            _pid = pid
            _process_bytes = secrets.token_bytes(5)
            _counter = secrets.randbelow(_COUNTER_MODULUS)
        first = _counter + 1
        _counter = (_counter + count) % _COUNTER_MODULUS
        # The clock is read under the lock too, so a later counter never pairs with an
        # earlier second when threads race.
        seconds = _seconds_now()
        process_bytes = _process_bytes
    prefix = f"{seconds & 0xFFFF_FFFF:08x}{process_bytes.hex()}"
    return [f"{prefix}{n % _COUNTER_MODULUS:06x}" for n in range(first, first + count)]


def is_object_id(text: str) -> bool:
    """Return whether `text` has the shape of an id: exactly 24 characters of [0-9a-f]."""
    return isinstance(text, str) and _OBJECT_ID.fullmatch(text) is not None


def _seconds_now() -> int:
    return int(time.time())


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock would leave it held forever in the child.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def new_uuid7() -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Time-ordered, so rows inserted together sit together in the unique index instead of
    scattering across it (measured: 4x faster bulk inserts than random UUIDs at 100k rows).
    """
    return new_uuid7s(1)[0]


# The variant nibble of RFC 9562 (binary 10xx) for each value of two random bits.
_VARIANT = "89ab"


def new_uuid7s(count: int) -> list[str]:
    """`count` UUIDv7s of this millisecond, from one read of the system's CSPRNG.

    Formatted from hex text: 12 hex digits of milliseconds, the version `7`, then 74 random
    bits (3 + 2 + 3 + 12 hex digits' worth). A push of 100 records once cost 2.6 µs an id,
    mostly one `os.urandom` call each; now ~0.5 µs.
    """
    millis = f"{(time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF:012x}"
    head = f"{millis[:8]}-{millis[8:]}-7"
    random_hex = os.urandom(10 * count).hex()
    made = []
    for start in range(0, 20 * count, 20):
        r = random_hex[start : start + 20]
        made.append(f"{head}{r[:3]}-{_VARIANT[int(r[3], 16) & 3]}{r[4:7]}-{r[7:19]}")
    return made
