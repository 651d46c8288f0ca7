"""Open agent sockets of this replica, told when their account changes on any replica.

agents/directory.py publishes a username on `REVOKED_CHANNEL` whenever that account is
saved or removed, from whichever process does it (a gateway replica, the admin
command). Every replica listens on one subscription and calls the callbacks of
that agent's open sockets; each socket then checks its token again and closes
with 4401 if it is no longer valid (agents/socket.py). Pub/sub is
fire-and-forget, so sockets also re-check on their presence beat: a missed
announcement delays a revocation by seconds, never forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from handover.agents.directory import REVOKED_CHANNEL

log = structlog.get_logger(__name__)

# How long the listener waits before resubscribing after Redis went away.
RECONNECT_DELAY_S = 0.5


class AgentSessions:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._open: dict[str, set[Callable[[], None]]] = {}

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(REVOKED_CHANNEL)
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()

    @contextlib.contextmanager
    def watch(self, username: str, changed: Callable[[], None]) -> Iterator[None]:
        """Call `changed` (on the loop, must not block) whenever the account changes."""
        self._open.setdefault(username, set()).add(changed)
        try:
            yield
        finally:
            callbacks = self._open.get(username)
            if callbacks is not None:
                callbacks.discard(changed)
                if not callbacks:
                    del self._open[username]

    def _changed(self, username: str) -> None:
        for callback in list(self._open.get(username, ())):
            callback()

    async def _listen(self) -> None:
        while True:
            try:
                while True:
                    message = await self._pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._changed(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                log.warning("agent_sessions_disconnected", error=str(exc))
                await asyncio.sleep(RECONNECT_DELAY_S)
                with contextlib.suppress(RedisError):
                    await self._pubsub.ping()  # redis-py re-subscribes on reconnect
            except Exception as exc:  # one bad message must not stop revocations
                log.error("agent_sessions_message_failed", error=repr(exc))
