"""The web channel: the citizen socket, `GET /ws/chat` (DESIGN.md, "Wire protocol").

The client's first frame is `hello` with its token and the last seq it has:
credentials never travel in the URL. Then the session frame, the replay of
everything after `after`, then live events. A client that sends no hello
within HELLO_TIMEOUT_S, or a bad one, gets a new conversation, which is stored
only with its first event. Every client frame is checked here (size, JSON,
type, its budget in Redis) before any work is done for it, and every failure
becomes an `error` frame; the socket stays open for the next frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import MutableMapping
from functools import partial
from typing import Any, ClassVar

import structlog
from fastapi import WebSocket, WebSocketDisconnect
from starlette.datastructures import State

from handover.channels.base import ChannelAdapter, SocketHandler, register
from handover.cobrowse.sessions import CobrowseRefused
from handover.conversation.citizen_texts import citizen_text, language_of
from handover.conversation.delivery import Subscriber
from handover.conversation.log import Conversation
from handover.conversation.protocol import (
    CobrowseAnswerFrame,
    CobrowseEndFrame,
    CsatFrame,
    EndFrame,
    HelloFrame,
    MessageFrame,
    OpeningFrame,
    TypingFrame,
    ack_frame,
    first_frame_text,
    frame_text,
    parse_client_frame,
    parse_opening_frame,
    session_frame,
)
from handover.conversation.routing import Gateway
from handover.errors import FrameTooLarge, GatewayError, RateLimited
from handover.ops import metrics
from handover.ops.rate_limit import Budgets, address_key
from handover.settings import Settings

log = structlog.get_logger(__name__)

# WebSocket close codes (RFC 6455: 4000–4999 are ours). The widget reconnects
# and replays on any close, with its backoff.
CLOSE_TOO_SLOW = 4408  # the client did not read its frames
CLOSE_RATE_LIMITED = 4429  # too many connections from the address or to the conversation


@dataclasses.dataclass(slots=True)
class Opening:
    """What the first frame asked for, and what to tell the client after the session frame."""

    hello: HelloFrame | None = None
    first_frame: OpeningFrame | None = None  # a client frame sent without a hello
    error: GatewayError | None = None


def _acknowledge(subscriber: Subscriber, client_id: str, seq: int) -> None:
    subscriber.offer(ack_frame(client_id, seq))


async def _read_opening(websocket: WebSocket, settings: Settings, language: str) -> Opening:
    """Wait for the first frame; a timeout, a bad frame or no hello mean a new conversation.

    Raises `WebSocketDisconnect` when the client leaves first.
    """
    too_large = citizen_text("too_large", language)
    try:
        frame = parse_opening_frame(
            await first_frame_text(websocket, settings.hello_timeout_s,
                                   settings.max_frame_bytes, too_large)
        )  # fmt: skip
    except TimeoutError:
        return Opening()
    except GatewayError as exc:
        return Opening(error=exc)
    if isinstance(frame, HelloFrame):
        return Opening(hello=frame)
    return Opening(first_frame=frame)


async def _open_conversation(
    gateway: Gateway, hello: HelloFrame | None, lang: str | None
) -> Conversation:
    """Resume the token's conversation; no token or a forged one starts a new one."""
    if hello is not None and hello.token:
        conversation = await gateway.conversations.resume(hello.token)
        if conversation is not None:
            return conversation
    return await gateway.conversations.start(channel=WebChannel.name, language=language_of(lang))


async def _refuse(websocket: WebSocket, error: GatewayError) -> None:
    metrics.CLIENT_ERRORS.labels(code=error.code).inc()
    await websocket.send_json(error.as_frame())
    await websocket.close(CLOSE_RATE_LIMITED, "Too many connections; try again later.")


@register
class WebChannel(ChannelAdapter):
    """The widget's socket: always on; the connection itself delivers (no outbox).

    The append script sends every other channel's events to its outbox
    (conversation/log.py); the web channel's reach the socket through the bus.
    """

    name: ClassVar[str] = "web"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> WebChannel:
        return cls(settings)

    def sockets(self) -> dict[str, SocketHandler]:
        return {"/ws/chat": self._serve, "/ws/cobrowse": self._serve_page}

    async def _serve(self, websocket: WebSocket, state: State) -> None:
        # Token and `after` come in the hello frame; a `token` or `after` left in
        # the query by an old client is never read.
        await serve_citizen(
            websocket, state.gateway, state.budgets, self._settings,
            websocket.query_params.get("lang"),
        )  # fmt: skip

    async def _serve_page(self, websocket: WebSocket, state: State) -> None:
        """The citizen's shared page, once she agreed (cobrowse/relay.py)."""
        await state.cobrowse_relay.serve_citizen(websocket)


async def serve_citizen(
    websocket: WebSocket,
    gateway: Gateway,
    budgets: Budgets,
    settings: Settings,
    lang: str | None,
) -> None:
    await websocket.accept()
    address = address_key(websocket.client.host if websocket.client else "")
    language = language_of(lang)
    try:
        if not await budgets.take("address_connection", address):
            await _refuse(websocket, RateLimited(citizen_text("too_many_connections", language)))
            return
        opening = await _read_opening(websocket, settings, language)
        if opening.hello is not None and opening.hello.lang:
            lang = opening.hello.lang
        conversation = await _open_conversation(gateway, opening.hello, lang)
        if conversation.token != (opening.hello.token if opening.hello else None):
            log.info(
                "conversation_started", conversation_id=conversation.id, channel=WebChannel.name
            )
        elif not await budgets.take("hello", conversation.id):
            text = citizen_text("too_many_connections", conversation.language)
            await _refuse(websocket, RateLimited(text))
            return
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left before its session began
    await _serve_session(websocket, gateway, budgets, settings, address, conversation, opening)


async def _serve_session(
    websocket: WebSocket,
    gateway: Gateway,
    budgets: Budgets,
    settings: Settings,
    address: str,
    conversation: Conversation,
    opening: Opening,
) -> None:
    resumed = opening.hello is not None and conversation.token == opening.hello.token
    subscriber = Subscriber(settings.send_queue_frames)
    metrics.OPEN_SOCKETS.labels(side="citizen").inc()
    subscription = gateway.timeline.bus.subscribe(
        conversation.id, subscriber, stored=conversation.stored
    )
    with gateway.conversations.hold(conversation):
        async with subscription:
            sender: asyncio.Task[None] | None = None
            try:
                await websocket.send_json(
                    session_frame(
                        conversation.id, conversation.token, conversation.state, conversation.seq
                    )
                )
                # A client ahead of the log (it kept seqs a restored Redis lost) is
                # clamped to the real seq, so the next live event still reaches it.
                after = opening.hello.after if opening.hello else None
                start = min(after or 0, conversation.seq) if resumed else 0
                subscriber.last_seq = start
                if conversation.stored:
                    replay = await gateway.conversations.events_after(conversation.id, start)
                    await subscriber.send_durable(replay, websocket.send_text)

                async def close_too_slow() -> None:
                    log.warning("citizen_too_slow", conversation_id=conversation.id)
                    await websocket.close(CLOSE_TOO_SLOW, "Client too slow; reconnect with after.")

                sender = asyncio.create_task(
                    subscriber.pump(
                        websocket.send_text,
                        lambda seq: gateway.conversations.events_after(conversation.id, seq),
                        close_too_slow,
                    )
                )
                frames = _CitizenFrames(gateway, budgets, settings, address, conversation)
                if opening.error is not None:
                    frames.refuse(subscriber, opening.error)
                if opening.first_frame is not None:
                    await frames.handle_safely(opening.first_frame, subscriber)
                await frames.receive(websocket, subscriber)
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left (RuntimeError: receive after our own close)
            finally:
                if sender is not None:
                    sender.cancel()
                metrics.OPEN_SOCKETS.labels(side="citizen").dec()


class _CitizenFrames:
    """One socket's client frames: each checked against its budget, then acted on."""

    def __init__(
        self,
        gateway: Gateway,
        budgets: Budgets,
        settings: Settings,
        address: str,
        conversation: Conversation,
    ) -> None:
        self._gateway = gateway
        self._budgets = budgets
        self._settings = settings
        self._address = address
        self._conversation = conversation
        self._language = conversation.language

    def refuse(self, subscriber: Subscriber, exc: GatewayError) -> None:
        metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
        subscriber.offer(exc.as_frame())

    async def receive(self, websocket: WebSocket, subscriber: Subscriber) -> None:
        too_large = citizen_text("too_large", self._language)
        while True:
            message: MutableMapping[str, Any] = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                raw = frame_text(message, self._settings.max_frame_bytes, too_large)
                frame = parse_client_frame(raw)
            except GatewayError as exc:
                self.refuse(subscriber, exc)
                continue
            await self.handle_safely(frame, subscriber)

    async def handle_safely(self, frame: OpeningFrame, subscriber: Subscriber) -> None:
        try:
            await self._handle(frame, subscriber)
        except GatewayError as exc:
            self.refuse(subscriber, exc)

    def _limited(self) -> RateLimited:
        return RateLimited(citizen_text("rate_limited", self._language))

    async def _may_create(self) -> bool:
        """A first event stores a conversation: counted per address, before it is stored."""
        if not self._gateway.conversations.is_unstored(self._conversation.id):
            return True
        return await self._budgets.take("address_conversation", self._address)

    async def _handle(self, frame: OpeningFrame, subscriber: Subscriber) -> None:
        conversation, budgets = self._conversation, self._budgets
        match frame:
            case MessageFrame():
                if frame.text is not None and len(frame.text) > self._settings.max_text_chars:
                    raise FrameTooLarge(citizen_text("too_large", self._language))
                if not (
                    await budgets.take("message", conversation.id)
                    and await budgets.take("address_message", self._address)
                    and await self._may_create()
                ):
                    raise self._limited()
                ack = partial(_acknowledge, subscriber, frame.client_id)
                appended = await self._gateway.accept_citizen_message(conversation, frame, ack=ack)
                if appended.stored:
                    metrics.CHANNEL_MESSAGES.labels(channel=WebChannel.name, direction="in").inc()
            case TypingFrame():
                # Over budget, typing signals are dropped quietly: the agent misses
                # a flicker of the indicator, the citizen nothing.
                if await budgets.take("typing", conversation.id):
                    await self._gateway.citizen_typing(conversation, frame.active)
            case CsatFrame():
                if not await budgets.take("csat", conversation.id):
                    raise self._limited()
                await self._gateway.conversations.record_csat(
                    conversation.id, frame.score, frame.comment
                )
            case EndFrame():
                if not (await budgets.take("end", conversation.id) and await self._may_create()):
                    raise self._limited()
                await self._gateway.end(conversation)
            case CobrowseAnswerFrame() | CobrowseEndFrame():
                # Co-browsing is with the agent who holds the conversation (cobrowse/).
                cobrowse = self._gateway.desk.cobrowse
                if cobrowse is None:
                    raise CobrowseRefused("Bildschirm teilen ist hier nicht eingerichtet.")
                if not await budgets.take("cobrowse", conversation.id):
                    raise self._limited()
                if isinstance(frame, CobrowseAnswerFrame):
                    await cobrowse.answer(conversation.id, frame.request_id, frame.accept)
                else:
                    await cobrowse.end(conversation.id, by="citizen", reason="citizen_ended")
            case HelloFrame():  # only as the first frame; parse_client_frame refuses it later
                pass
