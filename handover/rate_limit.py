"""Token buckets: a burst allowance that refills at a steady rate."""

from __future__ import annotations

import time


class TokenBucket:
    """Allows `burst` events at once and `per_minute` events per minute sustained."""

    def __init__(self, burst: int, per_minute: int) -> None:
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._refill_per_s = per_minute / 60.0
        self._updated = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (the event must be refused)."""
        now = time.monotonic()
        self._tokens = min(
            self._capacity, self._tokens + (now - self._updated) * self._refill_per_s
        )
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
