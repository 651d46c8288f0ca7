"""Agent queues in Redis: one sorted set per skill, priority first, then first come first served.

A member's score is ``band * 10^13 + enqueued_ms``: band 0 is the head of the
queue (conversations whose agent dropped out go back there), band 1 is normal.
Accepting is one Lua script: it removes the conversation from the queue and
assigns it only if the removal succeeded, so of two agents accepting at once
exactly one wins, whichever replica each is connected to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

HEAD, NORMAL = 0, 1
BAND = 10**13
RECENT_WAITS = 20

# KEYS: queue zset, agent's conversations set, conversation meta hash.
# ARGV: conversation id, agent username, agent display name, capacity, now (ms).
# Returns {1, waited ms} for the winner; {0, 'already_taken'} or {0, 'at_capacity'}.
_ACCEPT_SCRIPT = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {0, 'at_capacity'} end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {0, 'already_taken'} end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'agent', ARGV[2], 'agent_name', ARGV[3], 'assigned_at', ARGV[5])
local waited = tonumber(ARGV[5]) - (tonumber(score) % 10000000000000)
return {1, tostring(waited)}
"""


def queue_key(queue: str) -> str:
    return f"bs:queue:{queue}"


def agent_conversations_key(username: str) -> str:
    return f"bs:agent:{username}:conversations"


@dataclass(frozen=True, slots=True)
class Accepted:
    won: bool
    reason: str = ""  # why not: already_taken or at_capacity
    waited_s: float = 0.0


class Queues:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis
        self._accept = redis.register_script(_ACCEPT_SCRIPT)

    async def enqueue(
        self, queue: str, conversation_id: str, *, band: int = NORMAL, since_ms: int | None = None
    ) -> None:
        enqueued = since_ms if since_ms is not None else int(time.time() * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd("bs:queues", queue)
            pipe.zadd(queue_key(queue), {conversation_id: band * BAND + enqueued})
            await pipe.execute()

    async def remove(self, queue: str, conversation_id: str) -> bool:
        return bool(await self._redis.zrem(queue_key(queue), conversation_id))

    async def accept(
        self, queue: str, conversation_id: str, username: str, name: str, capacity: int
    ) -> Accepted:
        meta_key = f"bs:conv:{{{conversation_id}}}"
        won, detail = await self._accept(
            keys=[queue_key(queue), agent_conversations_key(username), meta_key],
            args=[conversation_id, username, name, capacity, int(time.time() * 1000)],
        )
        if not int(won):
            return Accepted(False, reason=str(detail))
        waited_s = max(0.0, int(detail) / 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(f"bs:waits:{queue}", round(waited_s, 1))
            pipe.ltrim(f"bs:waits:{queue}", 0, RECENT_WAITS - 1)
            await pipe.execute()
        return Accepted(True, waited_s=waited_s)

    async def release(self, username: str, conversation_id: str) -> None:
        """The agent no longer has the conversation (closed, handed back, transferred)."""
        await self._redis.srem(agent_conversations_key(username), conversation_id)

    async def assigned_to(self, username: str) -> list[str]:
        return sorted(await self._redis.smembers(agent_conversations_key(username)))

    async def names(self) -> list[str]:
        return sorted(await self._redis.smembers("bs:queues"))

    async def waiting(self, queue: str) -> list[tuple[str, int]]:
        """(conversation id, enqueued at ms) in queue order."""
        entries = await self._redis.zrange(queue_key(queue), 0, -1, withscores=True)
        return [(member, int(score) % BAND) for member, score in entries]

    async def position(self, queue: str, conversation_id: str) -> int | None:
        rank = await self._redis.zrank(queue_key(queue), conversation_id)
        return None if rank is None else int(rank) + 1

    async def typical_wait_s(self, queue: str) -> float | None:
        """Median of the recent real waits in this queue; None before the first one."""
        waits = sorted(float(w) for w in await self._redis.lrange(f"bs:waits:{queue}", 0, -1))
        return waits[len(waits) // 2] if waits else None
