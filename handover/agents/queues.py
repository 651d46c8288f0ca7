"""Agent queues in Redis: one sorted set per skill, priority first, then first come first served.

A member's score is ``band * 10^13 + enqueued_ms``: band 0 is the head of the
queue (conversations whose agent dropped out go back there), band 1 is normal.
Accepting is one Lua script: it removes the conversation from the queue and
assigns it only if the removal succeeded, so of two agents accepting at once
exactly one wins, whichever replica each is connected to. Auto-assignment
(agents/desk.py) uses the same script, so it can never give one conversation to
two agents either.

When a conversation leaves an agent without their doing (a supervisor's
transfer, the grace period running out, the citizen ending it), the reason is
kept in a per-agent hash until their sockets have told them (`unassigned`).
`bs:agents:busy_at` keeps, per agent, when their load last changed: among
equally busy agents, auto-assignment prefers the one idle longest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from handover import keys

HEAD, NORMAL = 0, 1
BAND = 10**13
RECENT_WAITS = 20

BUSY_AT = keys.AGENTS_BUSY_AT
# How long the reason a conversation left an agent is kept for a socket that is
# not connected at the time: long enough for a lunch break, short enough that a
# console next morning is not told about yesterday.
UNASSIGNED_TTL_S = 4 * 3600

# KEYS: queue zset, agent's conversations set, conversation meta hash, the
# agent's unassigned-reasons hash, the busy-at hash.
# ARGV: conversation id, agent username, agent display name, capacity, now (ms).
# Returns {1, waited ms} for the winner; {0, 'already_taken'} or {0, 'at_capacity'}.
_ACCEPT_SCRIPT = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {0, 'at_capacity'} end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {0, 'already_taken'} end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'agent', ARGV[2], 'agent_name', ARGV[3], 'assigned_at', ARGV[5])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])
local waited = tonumber(ARGV[5]) - (tonumber(score) % 10000000000000)
return {1, tostring(waited)}
"""

# KEYS: agent's conversations set, the agent's unassigned-reasons hash, the busy-at hash.
# ARGV: conversation id, reason ('' when the agent let go themselves), username,
# now (ms), TTL of the reasons hash. Returns 1 if the agent had the conversation.
_RELEASE_SCRIPT = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


def queue_key(queue: str) -> str:
    return keys.queue(queue)


def agent_conversations_key(username: str) -> str:
    return keys.agent_conversations(username)


def unassigned_key(username: str) -> str:
    return keys.agent_unassigned(username)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Accepted:
    won: bool
    reason: str = ""  # why not: already_taken or at_capacity
    waited_s: float = 0.0


class Queues:
    def __init__(self, redis: Redis, retention_s: int | None = None) -> None:
        self._redis: Any = redis
        # Queue entries and agents' lists name conversations: they expire with the
        # conversations' retention (docs/data-protection.md). None: never (tests).
        self.retention_s = retention_s
        self._accept = redis.register_script(_ACCEPT_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def enqueue(
        self, queue: str, conversation_id: str, *, band: int = NORMAL, since_ms: int | None = None
    ) -> None:
        enqueued = since_ms if since_ms is not None else int(time.time() * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.QUEUES, queue)
            # NX: a conversation already waiting keeps its first entry (its place in line).
            pipe.zadd(queue_key(queue), {conversation_id: band * BAND + enqueued}, nx=True)
            if self.retention_s is not None:
                # Entries older than the retention name conversations that are gone.
                cutoff = int(time.time() * 1000) - self.retention_s * 1000
                for band_start in (HEAD * BAND, NORMAL * BAND):
                    pipe.zremrangebyscore(queue_key(queue), band_start, band_start + cutoff)
                pipe.expire(queue_key(queue), self.retention_s)
                pipe.expire(keys.QUEUES, self.retention_s)
            await pipe.execute()

    async def remove(self, queue: str, conversation_id: str) -> bool:
        return bool(await self._redis.zrem(queue_key(queue), conversation_id))

    async def accept(
        self, queue: str, conversation_id: str, username: str, name: str, capacity: int
    ) -> Accepted:
        meta_key = keys.conversation(conversation_id)
        names = [queue_key(queue), agent_conversations_key(username), meta_key,
                 unassigned_key(username), BUSY_AT]  # fmt: skip
        args: list[str | int] = [conversation_id, username, name, capacity, _now_ms()]
        won, detail = await self._accept(keys=names, args=args)
        if not int(won):
            return Accepted(False, reason=str(detail))
        waited_s = max(0.0, int(detail) / 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(keys.queue_waits(queue), round(waited_s, 1))
            pipe.ltrim(keys.queue_waits(queue), 0, RECENT_WAITS - 1)
            if self.retention_s is not None:
                pipe.expire(keys.queue_waits(queue), self.retention_s)
                pipe.expire(agent_conversations_key(username), self.retention_s)
            await pipe.execute()
        return Accepted(True, waited_s=waited_s)

    async def release(self, username: str, conversation_id: str, reason: str = "") -> bool:
        """The agent no longer has the conversation; False if they did not have it.

        `reason` says why when it was not the agent's own doing (closed, handed
        back or transferred by them): their sockets tell them with `unassigned`.
        """
        names = [agent_conversations_key(username), unassigned_key(username), BUSY_AT]
        args: list[str | int] = [conversation_id, reason, username, _now_ms(), UNASSIGNED_TTL_S]
        return bool(await self._release(keys=names, args=args))

    async def unassigned_reasons(self, username: str) -> dict[str, str]:
        """Conversation id → why it left the agent, for those taken away recently."""
        return dict(await self._redis.hgetall(unassigned_key(username)))

    async def forget_unassigned(self, username: str, conversation_ids: list[str]) -> None:
        if conversation_ids:
            await self._redis.hdel(unassigned_key(username), *conversation_ids)

    async def loads(self, usernames: list[str]) -> dict[str, tuple[int, int]]:
        """Username → (conversations held, when their load last changed in ms; 0: never)."""
        if not usernames:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for username in usernames:
                pipe.scard(agent_conversations_key(username))
            pipe.hmget(BUSY_AT, usernames)
            *held, busy_at = await pipe.execute()
        return {
            username: (int(load), int(busy or 0))
            for username, load, busy in zip(usernames, held, busy_at, strict=True)
        }

    async def head(self, queue: str) -> str | None:
        """The conversation that is next in the queue (highest priority, then oldest)."""
        first = await self._redis.zrange(queue_key(queue), 0, 0)
        return first[0] if first else None

    async def assigned_to(self, username: str) -> list[str]:
        return sorted(await self._redis.smembers(agent_conversations_key(username)))

    async def assigned_to_each(self, usernames: list[str]) -> dict[str, list[str]]:
        """Username → the conversations they have, in one round trip."""
        if not usernames:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for username in usernames:
                pipe.smembers(agent_conversations_key(username))
            held = await pipe.execute()
        return {u: sorted(ids) for u, ids in zip(usernames, held, strict=True)}

    async def names(self) -> list[str]:
        return sorted(await self._redis.smembers(keys.QUEUES))

    async def length(self, queue: str) -> int:
        return int(await self._redis.zcard(queue_key(queue)))

    async def waiting(self, queue: str) -> list[tuple[str, int]]:
        """(conversation id, enqueued at ms) in queue order."""
        entries = await self._redis.zrange(queue_key(queue), 0, -1, withscores=True)
        return [(member, int(score) % BAND) for member, score in entries]

    async def position(self, queue: str, conversation_id: str) -> int | None:
        rank = await self._redis.zrank(queue_key(queue), conversation_id)
        return None if rank is None else int(rank) + 1

    async def typical_wait_s(self, queue: str) -> float | None:
        """Median of the recent real waits in this queue; None before the first one."""
        waits = sorted(float(w) for w in await self._redis.lrange(keys.queue_waits(queue), 0, -1))
        return waits[len(waits) // 2] if waits else None
