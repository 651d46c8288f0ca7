"""Fan-out between gateway replicas over Redis pub/sub.

Every appended event is announced on its conversation's live channel by the
append script itself (conversation_log.py). Each process keeps one pub/sub
connection, subscribed to the conversations it has open sockets for, and hands
what arrives to its in-process hub; it skips its own announcements (its sockets
already have them) by the host id in each message. Ephemeral frames (typing,
errors) travel the same way without a seq.

Pub/sub is fire-and-forget; the log stays the source of truth. A subscriber
that misses an announcement sees a gap at the next event and fills it from the
log (delivery.py), and a reconnecting client replays with `after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from handover.conversation_log import live_channel
from handover.delivery import ConversationHub, Frame, Subscriber

log = structlog.get_logger(__name__)

AGENTS_CHANNEL = "bs:agents:changed"
# How long the listener waits before resubscribing after Redis went away.
RECONNECT_DELAY_S = 0.5


class EventBus:
    def __init__(self, redis: Redis, hub: ConversationHub) -> None:
        self.host_id = uuid.uuid4().hex[:12]
        self._redis: Any = redis
        self._hub = hub
        self._pubsub: Any = None
        self._channels: dict[str, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.agent_watchers: set[asyncio.Event] = set()

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(AGENTS_CHANNEL)
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()

    @contextmanager
    def subscribe(self, conversation_id: str, subscriber: Subscriber) -> Iterator[Subscriber]:
        """Deliver the conversation's events to `subscriber`, from this and other replicas."""
        channel = live_channel(conversation_id)
        self._channels[channel] = self._channels.get(channel, 0) + 1
        if self._channels[channel] == 1:
            self._spawn_subscription(channel, subscribe=True)
        try:
            with self._hub.subscribe(conversation_id, subscriber):
                yield subscriber
        finally:
            self._channels[channel] -= 1
            if self._channels[channel] == 0:
                del self._channels[channel]
                self._spawn_subscription(channel, subscribe=False)

    def _spawn_subscription(self, channel: str, subscribe: bool) -> None:
        if self._pubsub is None:
            return
        method = self._pubsub.subscribe if subscribe else self._pubsub.unsubscribe
        task = asyncio.ensure_future(method(channel))
        task.add_done_callback(_log_failure)

    def publish_local(self, conversation_id: str, frame: Frame) -> None:
        self._hub.publish(conversation_id, frame)

    async def publish_ephemeral(self, conversation_id: str, frame: Frame) -> None:
        """Typing indicators and errors: to every replica's sockets, never stored."""
        self._hub.publish(conversation_id, frame)
        payload = f"{self.host_id}|-|{json.dumps(frame, ensure_ascii=False)}"
        with contextlib.suppress(RedisError):
            await self._redis.publish(live_channel(conversation_id), payload)

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
        channel, data = message["channel"], message["data"]
        if channel == AGENTS_CHANNEL:
            if data != self.host_id:
                self._notify_agent_watchers()
            return
        host, seq, body = data.split("|", 2)
        if host == self.host_id:
            return
        frame = json.loads(body)
        if seq != "-":
            frame["seq"] = int(seq)
        conversation_id = channel.split("{", 1)[1].split("}", 1)[0]
        self._hub.publish(conversation_id, frame)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("event_bus_subscription_failed", error=repr(task.exception()))
