"""Delivery of a conversation's events to its open sockets in this process.

Each socket gets a `Subscriber`: a bounded queue drained by one sender task,
so every frame to a socket goes out in order through one writer. Durable
events carry `seq`; a subscriber sends each seq at most once and in increasing
order, and fills any gap from the conversation log before going on. That makes
replay-then-live race-free: subscribe first, replay from the log, then drain
the live queue, skipping what the replay already sent.

A subscriber whose client reads too slowly is dropped rather than buffered
without bound; the client reconnects with `after` and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect

Frame = dict[str, Any]
FetchAfter = Callable[[int], Awaitable[list[Frame]]]
SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[], Awaitable[None]]


class SubscriberOverflow(Exception):
    """The client fell too far behind; close its socket so it reconnects and replays."""


# Frames that are not events of the log, though `ack` and `session` carry a seq.
EPHEMERAL_TYPES = frozenset({"session", "ack", "error", "typing"})


def visible_to_citizen(event: Frame) -> bool:
    """Internal events (agent notes, annotations) are never sent to citizens."""
    return not event.get("internal", False)


class Subscriber:
    """One socket's view of one conversation.

    A citizen's subscriber sees what is visible to citizens; an agent's
    (`for_agent_in` = the conversation id) sees everything, each frame tagged
    with the conversation it belongs to, since an agent has several.
    """

    def __init__(self, max_frames: int, last_seq: int = 0, for_agent_in: str | None = None) -> None:
        self.last_seq = last_seq
        self.overflowed = False
        self.audience = "agent" if for_agent_in else "citizen"
        self._tag = {"conversation_id": for_agent_in} if for_agent_in else {}
        self._queue: asyncio.Queue[Frame] = asyncio.Queue(max_frames)

    def offer(self, frame: Frame) -> None:
        """Queue a frame without waiting; a full queue marks the subscriber overflowed."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True

    def _encode(self, frame: Frame) -> str:
        return orjson.dumps({**frame, **self._tag} if self._tag else frame).decode()

    async def send_durable(self, events: list[Frame], send: SendText) -> None:
        """Send events the socket has not seen yet, in seq order."""
        for event in events:
            seq = event["seq"]
            if seq <= self.last_seq:
                continue
            self.last_seq = seq
            if self.audience == "agent" or visible_to_citizen(event):
                await send(self._encode(event))

    async def pump(
        self, send: SendText, fetch_after: FetchAfter, close_too_slow: CloseSocket
    ) -> None:
        """`drain` for the life of a socket: a client that fell behind is closed so it
        reconnects and replays; a socket that went away just ends the pump."""
        try:
            await self.drain(send, fetch_after)
        except SubscriberOverflow:
            with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
                await close_too_slow()
        except (OSError, RuntimeError, WebSocketDisconnect):
            pass

    async def drain(self, send: SendText, fetch_after: FetchAfter) -> None:
        """Send queued frames until cancelled; raises `SubscriberOverflow`."""
        while True:
            if self.overflowed:
                raise SubscriberOverflow
            frame = await self._queue.get()
            seq = frame.get("seq")
            if seq is None or frame["type"] in EPHEMERAL_TYPES:
                if frame["type"] == "typing" and frame.get("from") == self.audience:
                    continue  # one's own typing, from another tab or replica
                await send(self._encode(frame))
            elif seq == self.last_seq + 1:
                await self.send_durable([frame], send)
            elif seq > self.last_seq:
                # A gap: an event reached the log but not this queue (or not yet).
                await self.send_durable(await fetch_after(self.last_seq), send)


class ConversationHub:
    """In-process fan-out from a conversation to the subscribers of its sockets."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscriber]] = defaultdict(set)

    @contextmanager
    def subscribe(self, conversation_id: str, subscriber: Subscriber) -> Iterator[Subscriber]:
        self._subscribers[conversation_id].add(subscriber)
        try:
            yield subscriber
        finally:
            subscribers = self._subscribers.get(conversation_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[conversation_id]

    def publish(self, conversation_id: str, frame: Frame) -> None:
        for subscriber in self._subscribers.get(conversation_id, ()):
            subscriber.offer(frame)
