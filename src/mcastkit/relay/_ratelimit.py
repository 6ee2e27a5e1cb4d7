"""Per-group rate limits: a token bucket per (rule, group).

Owns: deciding whether one more datagram of a group may be relayed now. A bucket holds
up to one second's worth of datagrams (at least one), so short bursts pass and a flood
is cut to the configured rate.
Must not: sleep, queue datagrams, or count (the engine counts what it drops).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by anything hashable, all at ``rate_pps``."""

    __slots__ = ("_buckets", "_clock", "burst", "rate_pps")

    def __init__(self, rate_pps: float, *, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate_pps = rate_pps
        self.burst = max(1.0, rate_pps)
        self._clock = clock
        self._buckets: dict[object, list[float]] = {}  # key -> [tokens, last refill]

    def allow(self, key: object) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self._clock()
        b = self._buckets.get(key)
        if b is None:
            self._buckets[key] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate_pps)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return True
        b[0] = tokens
        return False
