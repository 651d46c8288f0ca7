"""Recording an event and delivering it: the one way both sides add to a conversation.

The log append announces the event to other replicas itself; this process's
own sockets get it straight from the hub. State changes go through `change`, with a
transition of states.py, never by writing the meta hash's state fields directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from handover.conversation.bus import EventBus
from handover.conversation.log import Appended, ConversationLog
from handover.conversation.states import State, StateEvent, Transition
from handover.ops import metrics


class Timeline:
    def __init__(self, log: ConversationLog, bus: EventBus) -> None:
        self.log = log
        self.bus = bus
        bus.fetch_after = log.events_after
        # Run after every transition that happened (co-browsing ends when the agent goes).
        self.after_change: list[Callable[[str, Transition], Awaitable[None]]] = []

    async def record(
        self,
        conversation_id: str,
        event: dict[str, Any],
        *,
        client_id: str | None = None,
        refuse_in: State | frozenset[State] | None = None,
        meta: Mapping[str, str] | None = None,
        on_stored: Callable[[Appended], None] | None = None,
    ) -> Appended:
        """Append and deliver; `on_stored` runs before delivery (e.g. to ack first)."""
        appended = await self.log.append(
            conversation_id, event, client_id=client_id, refuse_in=refuse_in, meta=meta
        )
        if on_stored is not None and not appended.refused:
            on_stored(appended)
        self.deliver(conversation_id, event, appended)
        return appended

    async def change(
        self,
        conversation_id: str,
        transition: Transition,
        event: StateEvent | dict[str, Any],
        facts: Mapping[str, str] | None = None,
    ) -> Appended:
        """Take the conversation through `transition`, recording `event` with it.

        `event` is the durable event that tells both sides (a `state` event, or the bot's
        message for the leaving-message state); `facts` are further meta fields (queue,
        agent, reason, …). Refused, atomically, unless the conversation is in one of the
        transition's source states: then nothing is stored and `refused` is set.
        """
        durable = event.as_event() if isinstance(event, StateEvent) else event
        appended = await self.record(
            conversation_id,
            durable,
            refuse_in=transition.refused_in,
            meta={**(facts or {}), **transition.meta()},
        )
        if not appended.refused:
            for follow_up in self.after_change:
                await follow_up(conversation_id, transition)
        return appended

    def deliver(self, conversation_id: str, event: dict[str, Any], appended: Appended) -> None:
        if appended.created:
            self.bus.created_here(conversation_id)
        if appended.stored:
            metrics.EVENTS.labels(sender=event.get("from", event["type"])).inc()
            self.bus.publish_local(conversation_id, {**event, "seq": appended.seq})

    async def ephemeral(self, conversation_id: str, frame: dict[str, Any]) -> None:
        await self.bus.publish_ephemeral(conversation_id, frame)
