"""Rasa's conversation trackers, which Rasa keeps in the gateway's Redis.

Rasa stores one tracker per conversation (every event, the citizen's text
included) through bot/tracker_store.py under `tracker_key(conversation_id)`,
with an expiry of TRACKER_RETENTION_DAYS that each turn renews. Erasing a
conversation everywhere (DSGVO Art. 17) includes deleting this key; Rasa reads
the tracker from Redis on every turn, so it then starts the conversation afresh.
"""

from __future__ import annotations

import redis.asyncio

from handover import keys

# Rasa's own key layout is prefix + conversation id; this prefix keeps its keys
# beside the gateway's `bs:*` keys, recognisable and scannable.
TRACKER_KEY_PREFIX = keys.RASA_TRACKER_PREFIX


def tracker_key(conversation_id: str) -> str:
    """The Redis key of Rasa's tracker for `conversation_id`."""
    return TRACKER_KEY_PREFIX + conversation_id


async def delete_tracker(redis: redis.asyncio.Redis, conversation_id: str) -> int:
    """Delete Rasa's tracker of `conversation_id` (and its ticket lock, should a turn be
    under way); the number of trackers removed (0 or 1)."""
    removed = await redis.delete(tracker_key(conversation_id))
    await redis.delete(keys.RASA_LOCK_PREFIX + conversation_id)
    return int(removed)
