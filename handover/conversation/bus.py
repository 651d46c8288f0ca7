"""Fan-out between gateway replicas over Redis pub/sub.

Each conversation has a set of the replicas that hold a socket of it
(`bs:conv:{id}:replicas`). The append script (conversation/log.py) publishes
every new event to each *other* replica in that set, on the replica's own
channel `bs:replica:<host id>`; every process subscribes to its own channel
only. So a process never receives its own events back, one subscription serves
any number of sockets, and an event nobody else holds costs no pub/sub traffic.

Pub/sub is fire-and-forget; the log stays the source of truth. A subscriber
that misses an announcement sees a gap at the next event and fills it from the
log (delivery.py), and a reconnecting client replays with `after`. A replica
killed without cleaning up leaves its id in some sets: publishing to a channel
nobody listens to is harmless, and the sets expire with the conversation.

A conversation not stored yet has no set (a socket that never speaks leaves
no key): its sockets listen in this process only. The append that creates it
adds the appending replica and announces the new conversation on
`BORN_CHANNEL`; every other replica holding it then joins the set and fetches
what it missed meanwhile from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from handover import keys
from handover.conversation.delivery import ConversationHub, Frame, Subscriber
from handover.ops.background_tasks import BackgroundTasks

log = structlog.get_logger(__name__)

AGENTS_CHANNEL = keys.AGENTS_CHANGED
BORN_CHANNEL = keys.CONVERSATIONS_BORN
# How long the listener waits before resubscribing after Redis went away.
RECONNECT_DELAY_S = 0.5

# KEYS: the conversation's replica set. ARGV: this host, the payload.
_PUBLISH_TO_OTHERS = keys.in_script(
    """
for _, host in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if host ~= ARGV[1] then redis.call('PUBLISH', $REPLICA .. host, ARGV[2]) end
end
""",
    REPLICA=keys.REPLICA_CHANNEL_PREFIX,
)


class EventBus:
    def __init__(self, redis: Redis, hub: ConversationHub, retention_s: int) -> None:
        self.host_id = uuid.uuid4().hex[:12]
        self._redis: Any = redis
        self._hub = hub
        self._retention_s = retention_s
        self._pubsub: Any = None
        self._held: dict[str, int] = {}
        self._registered: set[str] = set()
        # Reads a conversation's events after a seq (the log's `events_after`),
        # to fill what a replica missed before it joined a new conversation's set.
        self.fetch_after: Callable[[str, int], Awaitable[list[Frame]]] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publish_to_others = redis.register_script(_PUBLISH_TO_OTHERS)
        self.agent_watchers: set[asyncio.Event] = set()
        self._tasks = BackgroundTasks(
            lambda exc: log.warning("event_bus_join_failed", error=repr(exc))
        )

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(
            AGENTS_CHANNEL, BORN_CHANNEL, keys.replica_channel(self.host_id)
        )
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        tasks = [*self._tasks.running(), *([self._listener] if self._listener is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()

    @asynccontextmanager
    async def subscribe(
        self, conversation_id: str, subscriber: Subscriber, *, stored: bool = True
    ) -> AsyncIterator[Subscriber]:
        """Deliver the conversation's events to `subscriber`, from this and other replicas.

        For a stored conversation, registered in Redis before it yields, so every
        event appended after that reaches this replica; the caller replays what
        came before from the log. An unstored one registers once it is created.
        """
        self._held[conversation_id] = self._held.get(conversation_id, 0) + 1
        try:
            if stored and conversation_id not in self._registered:
                await self._register(conversation_id)
            with self._hub.subscribe(conversation_id, subscriber):
                yield subscriber
        finally:
            self._held[conversation_id] -= 1
            if self._held[conversation_id] == 0:
                del self._held[conversation_id]
                if conversation_id in self._registered:
                    self._registered.discard(conversation_id)
                    with contextlib.suppress(RedisError):
                        await self._redis.srem(
                            keys.conversation_replicas(conversation_id), self.host_id
                        )

    async def _register(self, conversation_id: str) -> None:
        key = keys.conversation_replicas(conversation_id)
        self._registered.add(conversation_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, self.host_id)
            pipe.expire(key, self._retention_s)
            await pipe.execute()

    def created_here(self, conversation_id: str) -> None:
        """This replica's append created the conversation and put it in the set."""
        if conversation_id in self._held:
            self._registered.add(conversation_id)

    async def _joined(self, conversation_id: str) -> None:
        """Another replica stored a conversation this one holds: join its set, then
        deliver what was appended before the join (subscribers skip what they have)."""
        if conversation_id not in self._held or conversation_id in self._registered:
            return
        await self._register(conversation_id)
        if self.fetch_after is not None:
            for frame in await self.fetch_after(conversation_id, 0):
                self._hub.publish(conversation_id, frame)

    def publish_local(self, conversation_id: str, frame: Frame) -> None:
        self._hub.publish(conversation_id, frame)

    async def publish_ephemeral(self, conversation_id: str, frame: Frame) -> None:
        """Typing indicators and errors: to every replica's sockets, never stored."""
        self._hub.publish(conversation_id, frame)
        payload = f"-|{conversation_id}|".encode() + orjson.dumps(frame)
        with contextlib.suppress(RedisError):
            await self._publish_to_others(
                keys=[keys.conversation_replicas(conversation_id)], args=[self.host_id, payload]
            )

    async def agents_changed(self) -> None:
        """Tell every replica's agent sockets to refresh queues and assignments."""
        self._notify_agent_watchers()
        with contextlib.suppress(RedisError):
            await self._redis.publish(AGENTS_CHANNEL, self.host_id)

    def _notify_agent_watchers(self) -> None:
        for watcher in self.agent_watchers:
            watcher.set()

    async def _messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self._pubsub.get_message(timeout=1.0)
            if message is not None:
                yield message

    async def _listen(self) -> None:
        while True:
            try:
                async for message in self._messages():
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                log.warning("event_bus_disconnected", error=str(exc))
                await asyncio.sleep(RECONNECT_DELAY_S)
                with contextlib.suppress(RedisError):
                    # redis-py re-subscribes known channels on reconnect.
                    await self._pubsub.ping()
            except Exception as exc:  # one bad message must not stop delivery
                log.error("event_bus_message_failed", error=repr(exc))

    def _dispatch(self, message: dict[str, Any]) -> None:
        data = message["data"]
        if message["channel"] == AGENTS_CHANNEL:
            if data != self.host_id:
                self._notify_agent_watchers()
            return
        if message["channel"] == BORN_CHANNEL:
            host, _, conversation_id = data.partition("|")
            if host == self.host_id:
                self.created_here(conversation_id)
            elif conversation_id in self._held:
                self._tasks.spawn(self._joined(conversation_id))
            return
        # "<seq or ->|<conversation id>|<event JSON>", from the append script or
        # publish_ephemeral of another replica.
        seq, conversation_id, body = data.split("|", 2)
        frame = orjson.loads(body)
        if seq != "-":
            frame["seq"] = int(seq)
        self._hub.publish(conversation_id, frame)
