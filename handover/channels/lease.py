"""A lease in Redis: the one replica that does a channel's work of which there must be one.

A channel's outbox must be sent by one replica at a time (so replies keep their order),
and a Matrix bot account synced by one (so events are read once). The holder renews the
lease at least every third of its length; when a holder dies, another replica takes it
over once it lapses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

# Take the lease if it is free, or renew it if it is ours. KEYS: lease. ARGV: holder, ms.
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# Give the lease up if it is ours. KEYS: lease. ARGV: holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: Redis, key: str, holder: str, seconds: float) -> None:
        self.key = key
        self.holder = holder
        self.seconds = seconds
        self._take: Any = redis.register_script(_TAKE)
        self._release: Any = redis.register_script(_RELEASE)
        self._renewed_at = 0.0

    async def hold(self, when_due: bool = False) -> bool:
        """Take or renew the lease; with `when_due`, only ask Redis every third of it."""
        now = time.monotonic()
        if when_due and now - self._renewed_at < self.seconds / 3:
            return True
        ms = int(self.seconds * 1000)
        held = bool(await self._take(keys=[self.key], args=[self.holder, ms]))
        self._renewed_at = now if held else 0.0
        return held

    async def sleep(self, seconds: float) -> bool:
        """Sleep while keeping the lease; False as soon as another replica has taken it."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.seconds / 3))
            if not await self.hold():
                return False
        return True

    async def release(self) -> None:
        """Give the lease up (a graceful stop), so another replica need not wait for it."""
        self._renewed_at = 0.0
        await self._release(keys=[self.key], args=[self.holder])
