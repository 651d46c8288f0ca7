"""What happens to a citizen's message: stored first, then routed by conversation state.

The socket layer (citizen_socket.py) speaks the protocol; this module owns the
order of effects. A message is appended to the log and acknowledged before the
bot sees it, so a Rasa outage or a dropped socket never loses it. Bot turns run
as tasks of their own, one at a time per conversation, and finish even if the
citizen's socket closes meanwhile: the reply is in the log for the replay.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

import structlog

from handover import metrics
from handover.citizen_texts import citizen_text
from handover.conversation_log import Appended, Conversation, ConversationLog
from handover.delivery import ConversationHub
from handover.errors import BotUnavailable, ConversationClosed
from handover.protocol import MessageFrame, message_event, utc_now
from handover.rasa_bot import RasaBot

log = structlog.get_logger(__name__)


class Gateway:
    def __init__(self, conversations: ConversationLog, hub: ConversationHub, bot: RasaBot) -> None:
        self.conversations = conversations
        self.hub = hub
        self.bot = bot
        self._turn_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def _publish(self, conversation_id: str, event: dict[str, Any], appended: Appended) -> None:
        if appended.stored:
            metrics.EVENTS.labels(sender=event.get("from", event["type"])).inc()
            self.hub.publish(conversation_id, {**event, "seq": appended.seq})

    async def accept_citizen_message(
        self, conversation: Conversation, frame: MessageFrame, ack: Callable[[int], None]
    ) -> Appended:
        """Store the message (once per client id) and start the bot's turn if the bot owns it.

        `ack` is called with the message's seq before the event is published, so
        the sender learns the seq before it sees its own message come back.
        """
        text = (frame.text or "").strip() or frame.payload or ""
        event = message_event("citizen", text, client_id=frame.client_id, payload=frame.payload)
        appended = await self.conversations.append(
            conversation.id, event, client_id=frame.client_id, refuse_in="closed"
        )
        if appended.refused:
            raise ConversationClosed(citizen_text("conversation_closed", conversation.language))
        ack(appended.seq)
        self._publish(conversation.id, event, appended)
        if appended.stored and appended.state_before == "bot":
            self._spawn(self._bot_turn(conversation, appended.seq, frame.payload or text))
        return appended

    async def end(self, conversation: Conversation, reason: str) -> None:
        """Close the conversation and ask the citizen for feedback (once)."""
        closed = {"type": "state", "ts": utc_now(), "state": "closed", "reason": reason}
        appended = await self.conversations.append(
            conversation.id, closed, refuse_in="closed", meta={"state": "closed"}
        )
        if appended.refused:
            return
        self._publish(conversation.id, closed, appended)
        request = {"type": "csat_request", "ts": utc_now()}
        self._publish(
            conversation.id, request, await self.conversations.append(conversation.id, request)
        )

    def _spawn(self, coroutine: Any) -> None:
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("bot_turn_failed", error=repr(exc), exc_info=exc)

    def _turn_lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._turn_locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._turn_locks[conversation_id] = lock
        return lock

    async def _bot_turn(self, conversation: Conversation, seq: int, text: str) -> None:
        async with self._turn_lock(conversation.id):
            started = time.perf_counter()
            try:
                turn = await self.bot.turn(
                    conversation.id,
                    text,
                    message_id=f"{conversation.id}:{seq}",
                    metadata={"channel": conversation.channel, "language": conversation.language},
                )
            except BotUnavailable as exc:
                log.warning(
                    "bot_unavailable", conversation_id=conversation.id, seq=seq, error=str(exc)
                )
                metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
                frame = BotUnavailable(citizen_text("bot_unavailable", conversation.language))
                self.hub.publish(conversation.id, frame.as_frame())
                return
            elapsed = time.perf_counter() - started
            metrics.BOT_TURN_SECONDS.observe(elapsed)
            events = [
                message_event("bot", m.text, buttons=m.buttons, links=m.links)
                for m in turn.messages
            ]
            stored = await self.conversations.append_bot_turn(
                conversation.id, seq, turn.parse, events
            )
            for event, appended in zip(events, stored, strict=True):
                self._publish(conversation.id, event, appended)
            log.info(
                "bot_turn",
                conversation_id=conversation.id,
                seq=seq,
                intent=turn.intent,
                confidence=turn.confidence,
                replies=len(turn.messages),
                ms=round(elapsed * 1000, 1),
            )

    async def drain(self) -> None:
        """Let running bot turns finish (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
