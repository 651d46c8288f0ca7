"""Finding a messenger user's conversation as an agent would: by the address it is sent to."""

from __future__ import annotations

from redis.asyncio import Redis

from handover import keys


async def conversation_of(redis: Redis, recipient: int | str) -> str:
    """The newest conversation whose replies go to `recipient` (chat id, phone, address)."""
    found = []
    async for key in redis.scan_iter(match=keys.conversation("*"), count=1000):
        if key.count(":") != 2:
            continue  # the conversation's log, clients, … share the prefix
        meta = await redis.hgetall(key)
        if meta.get("recipient") == str(recipient):
            found.append((meta.get("created_at", ""), key[len("bs:conv:{") : -1]))
    if not found:
        raise AssertionError(f"no conversation for {recipient}")
    return max(found)[1]
