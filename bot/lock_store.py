"""Rasa's RedisLockStore, connected by URL, in the gateway's Redis, every lock expiring.

Rasa takes a ticket lock per conversation for each turn, so two turns of one
conversation never run at once. Its in-memory lock store holds only within one Rasa
process; this one lives in the Redis the trackers are in, so a restarted Rasa (or a
second replica taking over a dead one's conversations) sees the locks. Rasa 3.6's
RedisLockStore connects by host and port only and never expires a lock, so a Rasa
killed mid-turn would leave a key named after the conversation forever; here every
save expires it after `lock_expire_s` (longer than any turn: Rasa's tickets live 60 s).

Rasa's lock store is not safe across servers that take turns of one conversation at
the same moment (its read-modify-write is not atomic): the gateway routes each
conversation to one Rasa replica (handover/rasa/replicas.py).

endpoints.yml::

    lock_store:
      type: bot.lock_store.RedisUrlLockStore
      url: ${RASA_TRACKER_STORE_URL}
      key_prefix: bs:rasa:lock:   # optional: handover.keys.RASA_LOCK_PREFIX
      lock_expire_s: 600
"""

from __future__ import annotations

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.redis_client import connect
from handover.keys import RASA_LOCK_PREFIX

DEFAULT_EXPIRE_S = 600


class RedisUrlLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        address = endpoint_config.url
        if not address or "://" not in address:
            raise ValueError("RedisUrlLockStore needs `url: redis://…` or `unix://…`")
        # Rasa's RedisLockStore would connect by host and port; the base class is enough.
        LockStore.__init__(self)
        self.red = connect(address, socket_timeout=10)
        options = endpoint_config.kwargs
        self.key_prefix = str(options.get("key_prefix") or RASA_LOCK_PREFIX)
        self.expire_s = int(options.get("lock_expire_s") or DEFAULT_EXPIRE_S)

    def save_lock(self, lock: TicketLock) -> None:
        self.red.set(self.key_prefix + lock.conversation_id, lock.dumps(), ex=self.expire_s)
