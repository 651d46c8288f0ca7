"""Rasa's RedisLockStore, connected by URL, in the gateway's Redis, every lock expiring.

Rasa takes a ticket lock per conversation for each turn, so two turns of one
conversation never run at once. Its in-memory lock store holds only within one Rasa
process; this one lives in the Redis the trackers are in, so a restarted Rasa (or a
second replica taking over a dead one's conversations) sees the locks. Rasa 3.6's
RedisLockStore connects by host and port only and never expires a lock, so a Rasa
killed mid-turn would leave a key named after the conversation forever; here every
save expires it after `lock_expire_s` (longer than any turn: Rasa's tickets live 60 s).

A turn takes its ticket and gives it back in one Lua script each, awaited (Rasa's own
store does two to four blocking round trips for each, and Rasa serves every conversation
on one event loop: issue 16). Being atomic, the scripts also keep two turns of one
conversation apart when they arrive at once, in one process or several; the gateway
still routes each conversation to one Rasa replica (handover/rasa/replicas.py), because
the trackers' read-merge-write is not atomic. The tickets are stored in Rasa's format
(`TicketLock.dumps`), so Rasa's synchronous methods, kept for other callers, read them.

endpoints.yml::

    lock_store:
      type: bot.lock_store.RedisUrlLockStore
      url: ${RASA_TRACKER_STORE_URL}
      key_prefix: bs:rasa:lock:   # optional: handover.keys.RASA_LOCK_PREFIX
      lock_expire_s: 600
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.exceptions import RedisError

from bot.redis_client import connect, connect_async
from handover.keys import RASA_LOCK_PREFIX

DEFAULT_EXPIRE_S = 600

# Both scripts read Rasa's TicketLock JSON (tickets are JSON strings in a list), drop
# expired tickets as TicketLock does (`now > expires`), and write it back expiring.
# KEYS: the lock. ARGV: conversation id, now (s), the ticket's lifetime (s), key expiry (s).
# Returns the new ticket's number and the stored lock.
_ISSUE_SCRIPT = """
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local kept = {}
local last = -1
if raw then
  for _, encoded in ipairs(cjson.decode(raw).tickets or {}) do
    local ticket = cjson.decode(encoded)
    if ticket.expires >= now then
      kept[#kept + 1] = encoded
      last = ticket.number
    end
  end
end
local number = last + 1
kept[#kept + 1] = cjson.encode({number = number, expires = now + tonumber(ARGV[3])})
local lock = cjson.encode({conversation_id = ARGV[1], tickets = kept})
redis.call('SET', KEYS[1], lock, 'EX', ARGV[4])
return {number, lock}
"""
# KEYS: the lock. ARGV: conversation id, now (s), the ticket served, key expiry (s).
# The ticket is given back; a lock nobody waits for any more is deleted.
_FINISH_SCRIPT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local now, served = tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = {}
for _, encoded in ipairs(cjson.decode(raw).tickets or {}) do
  local ticket = cjson.decode(encoded)
  if ticket.number ~= served and ticket.expires >= now then kept[#kept + 1] = encoded end
end
if #kept == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], cjson.encode({conversation_id = ARGV[1], tickets = kept}),
           'EX', ARGV[4])
return #kept
"""


class RedisUrlLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        address = endpoint_config.url
        if not address or "://" not in address:
            raise ValueError("RedisUrlLockStore needs `url: redis://…` or `unix://…`")
        # Rasa's RedisLockStore would connect by host and port; the base class is enough.
        LockStore.__init__(self)
        self.red = connect(address, socket_timeout=10)
        # No retries: a ticket issued twice (the reply lost, the script sent again) would
        # hold the conversation's next turns until it expired. The turn fails instead, as
        # with Rasa's own store, and the gateway says so to the citizen.
        self._async_red = connect_async(
            address, retries=False, socket_timeout=10, decode_responses=True
        )
        self._issue = self._async_red.register_script(_ISSUE_SCRIPT)
        self._finish = self._async_red.register_script(_FINISH_SCRIPT)
        options = endpoint_config.kwargs
        self.key_prefix = str(options.get("key_prefix") or RASA_LOCK_PREFIX)
        self.expire_s = int(options.get("lock_expire_s") or DEFAULT_EXPIRE_S)

    def save_lock(self, lock: TicketLock) -> None:
        self.red.set(self.key_prefix + lock.conversation_id, lock.dumps(), ex=self.expire_s)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Rasa's ticket lock (same arguments, same LockError), one awaited script to
        take a ticket and one to give it back."""
        key = self.key_prefix + conversation_id
        try:
            number, stored = await self._issue(
                keys=[key], args=[conversation_id, time.time(), lock_lifetime, self.expire_s]
            )
        except RedisError as exc:
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc
        ticket = int(number)
        try:
            yield await self._served(conversation_id, ticket, stored, wait_time_in_seconds)
        finally:
            await self._finish(
                keys=[key], args=[conversation_id, time.time(), ticket, self.expire_s]
            )

    async def _served(
        self, conversation_id: str, ticket: int, stored: str | None, wait_s: float
    ) -> TicketLock:
        """Wait until `ticket` is served, as Rasa's `_acquire_lock` does."""
        while stored:
            lock = TicketLock.from_dict(json.loads(stored))
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(wait_s)
            stored = await self._async_red.get(self.key_prefix + conversation_id)
        raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
