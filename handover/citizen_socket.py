"""The citizen socket, `GET /ws/chat` (DESIGN.md, "Wire protocol").

Session first, then the replay of everything after `after`, then live events.
Every client frame is checked here (size, JSON, type, rate) and every failure
becomes an `error` frame; the socket stays open for the next frame.
"""

from __future__ import annotations

import asyncio
from functools import partial

import structlog
from fastapi import WebSocket, WebSocketDisconnect

from handover import metrics
from handover.citizen_texts import citizen_text, language_of
from handover.conversation_log import Conversation
from handover.delivery import Subscriber
from handover.errors import FrameTooLarge, GatewayError, RateLimited
from handover.gateway import Gateway
from handover.protocol import (
    CsatFrame,
    EndFrame,
    MessageFrame,
    TypingFrame,
    ack_frame,
    frame_text,
    parse_client_frame,
    session_frame,
)
from handover.rate_limit import TokenBucket
from handover.settings import Settings

log = structlog.get_logger(__name__)

# WebSocket close code for a client that could not keep up (RFC 6455: 1008 is
# policy; 4000–4999 are ours). The widget reconnects and replays on any close.
CLOSE_TOO_SLOW = 4408


def _acknowledge(subscriber: Subscriber, client_id: str, seq: int) -> None:
    subscriber.offer(ack_frame(client_id, seq))


async def _open_conversation(gateway: Gateway, token: str | None, lang: str | None) -> Conversation:
    """Resume the token's conversation; an unknown or forged token starts a new one."""
    if token:
        conversation = await gateway.conversations.resume(token)
        if conversation is not None:
            return conversation
    conversation = await gateway.conversations.start(channel="web", language=language_of(lang))
    log.info("conversation_started", conversation_id=conversation.id, channel="web")
    return conversation


async def serve_citizen(
    websocket: WebSocket,
    gateway: Gateway,
    settings: Settings,
    token: str | None,
    after: int | None,
    lang: str | None,
) -> None:
    await websocket.accept()
    conversation = await _open_conversation(gateway, token, lang)
    resumed = conversation.token == token
    subscriber = Subscriber(settings.send_queue_frames)
    metrics.OPEN_SOCKETS.labels(side="citizen").inc()
    async with gateway.timeline.bus.subscribe(conversation.id, subscriber):
        sender: asyncio.Task[None] | None = None
        try:
            await websocket.send_json(
                session_frame(
                    conversation.id, conversation.token, conversation.state, conversation.seq
                )
            )
            start = max(after or 0, 0) if resumed else 0
            subscriber.last_seq = start
            replay = await gateway.conversations.events_after(conversation.id, start)
            await subscriber.send_durable(replay, websocket.send_text)

            async def close_too_slow() -> None:
                log.warning("citizen_too_slow", conversation_id=conversation.id)
                await websocket.close(
                    CLOSE_TOO_SLOW, "Client too slow; reconnect with after=<seq>."
                )

            sender = asyncio.create_task(
                subscriber.pump(
                    websocket.send_text,
                    lambda seq: gateway.conversations.events_after(conversation.id, seq),
                    close_too_slow,
                )
            )
            await _receive_frames(websocket, gateway, settings, conversation, subscriber)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left (RuntimeError: receive after our own close)
        finally:
            if sender is not None:
                sender.cancel()
            metrics.OPEN_SOCKETS.labels(side="citizen").dec()


async def _receive_frames(
    websocket: WebSocket,
    gateway: Gateway,
    settings: Settings,
    conversation: Conversation,
    subscriber: Subscriber,
) -> None:
    messages = TokenBucket(settings.rate_limit_burst, settings.rate_limit_per_minute)
    language = conversation.language
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            raw = frame_text(message, settings.max_frame_bytes, citizen_text("too_large", language))
            frame = parse_client_frame(raw)
            match frame:
                case MessageFrame():
                    if frame.text is not None and len(frame.text) > settings.max_text_chars:
                        raise FrameTooLarge(citizen_text("too_large", language))
                    if not messages.take():
                        raise RateLimited(citizen_text("rate_limited", language))
                    ack = partial(_acknowledge, subscriber, frame.client_id)
                    await gateway.accept_citizen_message(conversation, frame, ack=ack)
                case TypingFrame():
                    await gateway.citizen_typing(conversation, frame.active)
                case CsatFrame():
                    await gateway.conversations.record_csat(
                        conversation.id, frame.score, frame.comment
                    )
                case EndFrame():
                    await gateway.end(conversation)
        except GatewayError as exc:
            metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
            subscriber.offer(exc.as_frame())
