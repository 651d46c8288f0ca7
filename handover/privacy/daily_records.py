"""Append-only records kept per day, each day's list expiring with the retention.

The audit log and the deletion records are lists of small JSON entries, one
Redis list per UTC day (``<prefix>:<YYYY-MM-DD>``). A day's list expires at
the *start* of its day plus the retention, so no entry outlives the retention,
whatever day it was written. Reading walks back from today.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from handover.privacy.retention import DAY_S

# KEYS: one day's list. ARGV: field, old value, new value.
# Rewrites the field of every entry whose field equals the old value; returns how many.
_REWRITE_SCRIPT = """
local n = 0
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(items) do
  if string.find(raw, ARGV[2], 1, true) then
    local entry = cjson.decode(raw)
    if entry[ARGV[1]] == ARGV[2] then
      entry[ARGV[1]] = ARGV[3]
      redis.call('LSET', KEYS[1], i - 1, cjson.encode(entry))
      n = n + 1
    end
  end
end
return n
"""


class DailyRecords:
    def __init__(self, redis: Redis, prefix: str, retention_s: int) -> None:
        self._redis: Any = redis
        self.prefix = prefix
        self.retention_s = retention_s
        self._rewrite = redis.register_script(_REWRITE_SCRIPT)

    def _key(self, day: datetime) -> str:
        return f"{self.prefix}:{day:%Y-%m-%d}"

    def _days(self) -> list[datetime]:
        """Today and every earlier day whose list may still exist, newest first."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        count = self.retention_s // DAY_S + 1
        return [today - timedelta(days=n) for n in range(count)]

    async def append(self, entry: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        key = self._key(day_start)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(entry, ensure_ascii=False))
            pipe.expireat(key, int(day_start.timestamp()) + self.retention_s)
            await pipe.execute()

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` entries, newest first."""
        entries: list[dict[str, Any]] = []
        for day in self._days():
            if len(entries) >= limit:
                break
            raw = await self._redis.lrange(self._key(day), -(limit - len(entries)), -1)
            entries.extend(json.loads(item) for item in reversed(raw))
        return entries

    async def rewrite(self, field: str, old: str, new: str) -> int:
        """Replace `old` by `new` in `field` of every entry kept; returns how many changed."""
        changed = 0
        for day in self._days():
            changed += int(await self._rewrite(keys=[self._key(day)], args=[field, old, new]))
        return changed
