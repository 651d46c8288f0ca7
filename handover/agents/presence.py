"""Which agents are online: each open agent socket refreshes an expiring entry.

A sorted set per agent holds one member per open socket, scored with the time
it expires. A socket refreshes its entry while it lives; a replica killed
without closing its sockets leaves entries that simply expire. An agent is
online while any entry is in the future, whichever replica holds the socket.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from handover import keys

ONLINE = keys.PRESENCE


def _sockets_key(username: str) -> str:
    return keys.presence(username)


class Presence:
    def __init__(self, redis: Redis, ttl_s: float) -> None:
        self._redis: Any = redis
        self.ttl_s = ttl_s

    async def refresh(self, username: str, socket_id: str) -> None:
        expires = time.time() + self.ttl_s
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(_sockets_key(username), {socket_id: expires})
            pipe.zadd(ONLINE, {username: expires}, gt=True)
            await pipe.execute()

    async def leave(self, username: str, socket_id: str) -> None:
        await self._redis.zrem(_sockets_key(username), socket_id)

    async def is_online(self, username: str) -> bool:
        return bool(await self._redis.zcount(_sockets_key(username), time.time(), "+inf"))

    async def online(self) -> list[str]:
        """Agents with a live socket somewhere."""
        candidates = await self._redis.zrangebyscore(ONLINE, time.time(), "+inf")
        return [u for u in candidates if await self.is_online(u)]
