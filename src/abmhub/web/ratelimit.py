"""Per-key rate limiting (contract §5.1, §6 items 30 and 34): off unless `serve --rate-limit N`.

A token bucket per API key: it holds at most N tokens (the burst), refills at N tokens per
second, and every authenticated request takes one. A request that finds the bucket empty is
answered 429 with an integer `Retry-After` (1–60 s): the time until a token is back.

The buckets live in the server process. Several `abmhub serve` processes behind one address
each keep their own buckets, so a key may reach P × N requests per second across P
processes; run one process per address, or divide N by P, where that matters. Keeping the
buckets local costs nothing per request (no database round trip, no lock across processes),
which is why it is the default choice (docs/reliability.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_RETRY_AFTER_S = 1
MAX_RETRY_AFTER_S = 60


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimited(Exception):
    """The key is over its limit; retry after `retry_after` whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded; retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """Token buckets of `rate` requests per second with a burst of `rate`, one per key."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError("the rate limit must be a positive number of requests per second")
        self.rate = rate
        self.burst = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # cheap, and safe should a caller run in a worker thread

    def take(self, key_id: str) -> None:
        """Take one token of `key_id`'s bucket, or raise RateLimited."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(self.burst, now)
            else:
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / self.rate
        raise RateLimited(min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(wait))))
