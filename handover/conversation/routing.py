"""What happens to a citizen's message: stored first, then routed by conversation state.

The socket layer (channels/web.py) speaks the protocol; this module owns the
order of effects on the citizen's side (agents/desk.py owns the agent's). A
message is appended to the log and acknowledged before the bot sees it, so a
Rasa outage or a dropped socket never loses it. Bot turns run as tasks of their
own, one at a time per conversation, and finish even if the citizen's socket
closes meanwhile: the reply is in the log for the replay.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable

import structlog

from handover.agents.desk import AgentDesk
from handover.conversation.citizen_texts import citizen_text
from handover.conversation.log import Appended, Conversation
from handover.conversation.protocol import MessageFrame, message_event
from handover.conversation.states import State
from handover.conversation.timeline import Timeline
from handover.errors import BotUnavailable, ConversationClosed
from handover.ops import metrics
from handover.ops.background_tasks import BackgroundTasks
from handover.rasa.client import RasaBot
from handover.rasa.trackers import delete_tracker

log = structlog.get_logger(__name__)


class Gateway:
    def __init__(self, timeline: Timeline, bot: RasaBot, desk: AgentDesk) -> None:
        self.timeline = timeline
        self.conversations = timeline.log
        self.bot = bot
        self.desk = desk
        self._turn_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._tasks = BackgroundTasks(
            lambda exc: log.error("bot_turn_failed", error=repr(exc), exc_info=exc)
        )

    async def accept_citizen_message(
        self, conversation: Conversation, frame: MessageFrame, ack: Callable[[int], None]
    ) -> Appended:
        """Store the message (once per client id), then route it by the conversation's state.

        `ack` is called with the message's seq before the event is published, so
        the sender learns the seq before it sees its own message come back. With
        the bot, it starts a bot turn; while queued or with an agent, delivery to
        the agent's socket is all there is to do.
        """
        text = (frame.text or "").strip() or frame.payload or ""
        event = message_event("citizen", text, client_id=frame.client_id, payload=frame.payload)
        appended = await self.timeline.record(
            conversation.id,
            event,
            client_id=frame.client_id,
            refuse_in=State.CLOSED,
            on_stored=lambda stored: ack(stored.seq),
        )
        if appended.refused:
            raise ConversationClosed(citizen_text("conversation_closed", conversation.language))
        if not appended.stored:
            return appended
        if appended.was is State.LEAVING_MESSAGE:
            # One at a time, like bot turns: two quick messages make one ticket.
            self._tasks.spawn(
                self._locked(conversation.id, self.desk.take_message(conversation, text))
            )
        elif appended.was is State.BOT:
            self._tasks.spawn(self._bot_turn(conversation, appended.seq, frame.payload or text))
        return appended

    async def end(self, conversation: Conversation) -> None:
        """The citizen ends the conversation; they are asked for feedback once."""
        await self.desk.citizen_left(conversation.id)

    async def citizen_typing(self, conversation: Conversation, active: bool) -> None:
        state = await self.conversations.state(conversation.id)
        if state is not None and state.with_people:
            await self.timeline.ephemeral(
                conversation.id, {"type": "typing", "from": "citizen", "active": active}
            )

    async def _locked(self, conversation_id: str, work: Awaitable[None]) -> None:
        async with self._turn_lock(conversation_id):
            await work

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
                await self.timeline.ephemeral(conversation.id, frame.as_frame())
                return
            elapsed = time.perf_counter() - started
            metrics.BOT_TURN_SECONDS.observe(elapsed)
            events = [
                message_event("bot", m.text, buttons=m.buttons, links=m.links)
                for m in turn.messages
                if m.text or m.buttons or m.links
            ]
            stored = await self.conversations.append_bot_turn(
                conversation.id, seq, turn.parse, events
            )
            if stored and all(appended.state_before is None for appended in stored):
                # Erased (or expired) while Rasa answered: Rasa has just written the
                # tracker back; the erasure is final, so it goes again.
                await delete_tracker(self.conversations.redis, conversation.id)
                return
            for event, appended in zip(events, stored, strict=True):
                self.timeline.deliver(conversation.id, event, appended)
            if turn.handover is not None:
                await self.desk.request_handover(conversation, turn.handover)
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
        await self._tasks.wait(timeout=10)
