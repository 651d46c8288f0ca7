"""The states of a conversation and every transition between them, in one place.

```
bot ──handover──► queued ──accept──► with_agent ──hand back──► bot
 │                 ▲  │ ▲              │   │
 │                 │  │ └── transfer ──┘   │
 │                 │  └─ position, transfer│
 │                 └──── agent lost ───────┘
 └─ nobody there ──► leaving_message ──contact given──┐
 any state but closed ── end / close / erase ─────────┴──► closed ──► CSAT
```

Five states. `leaving_message` (outside service hours or with nobody online the gateway
collects a message with a contact and files a ticket) is the bot state on the wire: the
citizen is still served by the assistant, not by a person, so clients see `bot`. It is
stored as `state=bot, mode=ticket` in the meta hash, as before this module existed.

Every change goes through `Timeline.change` with one of the `Transition`s below. The
change is one append-script call: the durable event, the meta fields and the check that
the conversation is in one of the transition's source states happen atomically, so two
replicas (or a citizen ending while an agent accepts) can never take a conversation
through a transition it is not in the state for; the loser learns `refused`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from handover.conversation.protocol import ConversationState, utc_now

# The meta hash's marker of the leaving-message state (state stays `bot`).
TICKET_MODE = "ticket"


class State(StrEnum):
    BOT = "bot"
    LEAVING_MESSAGE = "leaving_message"
    QUEUED = "queued"
    WITH_AGENT = "with_agent"
    CLOSED = "closed"

    @property
    def wire(self) -> ConversationState:
        """What clients see: the four states of the wire protocol."""
        return "bot" if self is State.LEAVING_MESSAGE else self.value  # type: ignore[return-value]

    @classmethod
    def of(cls, state: str | None, mode: str | None = "") -> State | None:
        """The state stored as `state` and `mode` in the meta hash (None: no conversation)."""
        if not state:
            return None
        if state == State.BOT and mode == TICKET_MODE:
            return cls.LEAVING_MESSAGE
        return cls(state)

    @classmethod
    def of_meta(cls, meta: Mapping[str, str]) -> State | None:
        return cls.of(meta.get("state"), meta.get("mode"))

    @property
    def with_people(self) -> bool:
        """A person has, or is about to have, the conversation: the bot is paused."""
        return self in (State.QUEUED, State.WITH_AGENT)


ALL_STATES = frozenset(State)


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    sources: frozenset[State]
    target: State

    @property
    def refused_in(self) -> frozenset[State]:
        """The states the append script refuses this transition in."""
        return ALL_STATES - self.sources

    def meta(self) -> dict[str, str]:
        """The meta fields that put a conversation into the target state."""
        mode = TICKET_MODE if self.target is State.LEAVING_MESSAGE else ""
        return {"state": self.target.wire, "mode": mode}


def _transition(name: str, sources: set[State], target: State) -> Transition:
    return Transition(name, frozenset(sources), target)


HANDOVER = _transition("handover", {State.BOT}, State.QUEUED)
NOBODY_THERE = _transition("nobody_there", {State.BOT}, State.LEAVING_MESSAGE)
POSITION = _transition("position", {State.QUEUED}, State.QUEUED)
TRANSFER = _transition("transfer", {State.QUEUED, State.WITH_AGENT}, State.QUEUED)
AGENT_LOST = _transition("agent_lost", {State.WITH_AGENT}, State.QUEUED)
ACCEPT = _transition("accept", {State.QUEUED}, State.WITH_AGENT)
HAND_BACK = _transition("hand_back", {State.WITH_AGENT}, State.BOT)
CLOSE = _transition("close", set(ALL_STATES - {State.CLOSED}), State.CLOSED)

TRANSITIONS = (HANDOVER, NOBODY_THERE, POSITION, TRANSFER, AGENT_LOST, ACCEPT, HAND_BACK, CLOSE)

# Why a conversation changed state, as the `reason` of its `state` event.
Reason = Literal[
    "position", "transfer", "agent_disconnected", "handback", "agent_closed",
    "citizen_ended", "offline_message", "erased",
]  # fmt: skip


class AgentName(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str


class StateEvent(BaseModel):
    """A durable `state` event (docs/protocol.md), without `seq` and `ts` (set on append)."""

    model_config = ConfigDict(frozen=True)
    state: ConversationState
    # The handover's own reason (not_understood, request_human, …) or a `Reason`.
    reason: str | None = None
    position: int | None = None
    eta_s: int | None = None
    agent: AgentName | None = None

    def as_event(self) -> dict[str, Any]:
        return {"type": "state", "ts": utc_now(), **self.model_dump(exclude_none=True)}


def queued(reason: str, position: int, eta_s: int) -> StateEvent:
    return StateEvent(state="queued", reason=reason, position=position, eta_s=eta_s)


def with_agent(agent_name: str) -> StateEvent:
    return StateEvent(state="with_agent", agent=AgentName(name=agent_name))


def back_to_bot() -> StateEvent:
    return StateEvent(state="bot", reason="handback")


def closed(reason: str) -> StateEvent:
    return StateEvent(state="closed", reason=reason)
