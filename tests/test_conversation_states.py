"""The conversation's state machine: one table of transitions, enforced atomically in Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from handover import keys
from handover.agents.desk import AgentDesk
from handover.agents.directory import Agent, AgentDirectory
from handover.agents.presence import Presence
from handover.agents.queues import Queues
from handover.agents.service_hours import ServiceHours
from handover.conversation import states
from handover.conversation.bus import EventBus
from handover.conversation.delivery import ConversationHub
from handover.conversation.log import Conversation, ConversationLog
from handover.conversation.protocol import message_event
from handover.conversation.states import State
from handover.conversation.timeline import Timeline

RETENTION_S = 3600


def test_every_state_but_closed_can_be_closed_and_closed_is_final() -> None:
    assert states.CLOSE.sources == frozenset(State) - {State.CLOSED}
    assert all(State.CLOSED not in t.sources for t in states.TRANSITIONS)


def test_every_state_is_reachable_from_the_bot() -> None:
    reached, frontier = {State.BOT}, [State.BOT]
    while frontier:
        state = frontier.pop()
        for transition in states.TRANSITIONS:
            if state in transition.sources and transition.target not in reached:
                reached.add(transition.target)
                frontier.append(transition.target)
    assert reached == set(State)


def test_leaving_a_message_is_the_bot_state_on_the_wire() -> None:
    assert State.LEAVING_MESSAGE.wire == "bot"
    assert states.NOBODY_THERE.meta() == {"state": "bot", "mode": "ticket"}
    assert states.HAND_BACK.meta() == {"state": "bot", "mode": ""}
    assert State.of("bot", "ticket") is State.LEAVING_MESSAGE
    assert State.of("bot", "") is State.BOT
    assert State.of("", "") is None


def test_state_events_have_the_wire_shape() -> None:
    event = states.queued("request_human", 2, 240).as_event()
    assert event.pop("ts")
    assert event == {"type": "state", "state": "queued", "reason": "request_human",
                     "position": 2, "eta_s": 240}  # fmt: skip
    joined = states.with_agent("Alina Berger").as_event()
    assert joined["agent"] == {"name": "Alina Berger"} and "reason" not in joined


@pytest.fixture
def timeline(redis: Redis, log: ConversationLog) -> Timeline:
    return Timeline(log, EventBus(redis, ConversationHub(), RETENTION_S))


async def started(timeline: Timeline) -> Conversation:
    """A stored conversation with the bot (its first event is the citizen's message)."""
    log = timeline.log
    conversation = await log.start(channel="web", language="de")
    log.held.enter_context(log.hold(conversation))  # type: ignore[attr-defined]
    await timeline.record(conversation.id, message_event("citizen", "Hallo"), client_id="c-1")
    return conversation


async def test_a_transition_from_a_state_it_does_not_start_from_stores_nothing(
    timeline: Timeline,
) -> None:
    conversation = await started(timeline)
    refused = await timeline.change(conversation.id, states.ACCEPT, states.with_agent("Alina"))
    assert refused.refused and not refused.stored and refused.was is State.BOT
    assert await timeline.log.state(conversation.id) is State.BOT
    assert [e["type"] for e in await timeline.log.events_after(conversation.id, 0)] == ["message"]


async def test_a_closed_conversation_takes_no_transition(timeline: Timeline) -> None:
    conversation = await started(timeline)
    closed = await timeline.change(conversation.id, states.CLOSE, states.closed("citizen_ended"))
    assert closed.stored and closed.was is State.BOT
    for transition, event in [
        (states.HANDOVER, states.queued("request_human", 1, 60)),
        (states.HAND_BACK, states.back_to_bot()),
        (states.CLOSE, states.closed("agent_closed")),
        (states.NOBODY_THERE, states.closed("x")),
    ]:
        refused = await timeline.change(conversation.id, transition, event)
        assert refused.refused and refused.was is State.CLOSED, transition.name
    assert await timeline.log.state(conversation.id) is State.CLOSED
    assert len(await timeline.log.events_after(conversation.id, 0)) == 2


async def test_the_leaving_message_state_is_kept_apart_from_the_bot_state(
    timeline: Timeline,
) -> None:
    conversation = await started(timeline)
    offer = message_event("bot", "Möchten Sie eine Nachricht hinterlassen?")
    changed = await timeline.change(conversation.id, states.NOBODY_THERE, offer, {"queue": "x"})
    assert changed.stored and changed.was is State.BOT
    assert await timeline.log.state(conversation.id) is State.LEAVING_MESSAGE
    meta = await timeline.log.meta(conversation.id)
    assert (meta["state"], meta["mode"], meta["queue"]) == ("bot", "ticket", "x")
    # A second "nobody there" and a handover both need the bot state: refused.
    again = await timeline.change(conversation.id, states.NOBODY_THERE, offer)
    queued = await timeline.change(
        conversation.id, states.HANDOVER, states.queued("request_human", 1, 60)
    )
    assert again.refused and queued.refused and queued.was is State.LEAVING_MESSAGE
    message = await timeline.record(
        conversation.id, message_event("citizen", "a@b.de"), refuse_in=State.CLOSED
    )
    assert message.stored and message.was is State.LEAVING_MESSAGE
    closed = await timeline.change(conversation.id, states.CLOSE, states.closed("offline_message"))
    assert closed.stored
    meta = await timeline.log.meta(conversation.id)
    assert (meta["state"], meta["mode"]) == ("closed", "")


async def test_a_whole_handover_goes_through_the_table(timeline: Timeline) -> None:
    conversation = await started(timeline)
    steps = [
        (states.HANDOVER, states.queued("request_human", 1, 60), State.BOT),
        (states.POSITION, states.queued("position", 1, 30), State.QUEUED),
        (states.ACCEPT, states.with_agent("Alina"), State.QUEUED),
        (states.TRANSFER, states.queued("transfer", 1, 60), State.WITH_AGENT),
        (states.ACCEPT, states.with_agent("Ben"), State.QUEUED),
        (states.AGENT_LOST, states.queued("agent_disconnected", 1, 60), State.WITH_AGENT),
        (states.ACCEPT, states.with_agent("Ben"), State.QUEUED),
        (states.HAND_BACK, states.back_to_bot(), State.WITH_AGENT),
    ]
    for transition, event, before in steps:
        changed = await timeline.change(conversation.id, transition, event)
        assert changed.stored and changed.was is before, transition.name
        assert await timeline.log.state(conversation.id) is transition.target
    wire = [e["state"] for e in await timeline.log.events_after(conversation.id, 0)
            if e["type"] == "state"]  # fmt: skip
    assert wire == ["queued", "queued", "with_agent", "queued", "with_agent", "queued",
                    "with_agent", "bot"]  # fmt: skip


# --- the desk's paths go through the table: races end in a state the table allows ----------


@pytest.fixture
def desk(redis: Redis, timeline: Timeline) -> AgentDesk:
    # The bot and presence are not reached by the paths tested here.
    return AgentDesk(redis, timeline, Queues(redis, RETENTION_S), AgentDirectory(redis),
                     Presence(redis, 30), bot=None, hours=ServiceHours("always"),  # type: ignore[arg-type]
                     default_queue="zustaende")  # fmt: skip


ALINA = Agent("alina-states", "Alina Berger", "agent", ("zustaende",), 3)


async def queued_conversation(timeline: Timeline, desk: AgentDesk) -> Conversation:
    conversation = await started(timeline)
    await desk.queues.enqueue("zustaende", conversation.id)
    event = states.queued("request_human", 1, 60)
    await timeline.change(conversation.id, states.HANDOVER, event, {"queue": "zustaende"})
    return conversation


async def test_an_accept_that_loses_to_the_citizen_ending_leaves_the_agent_free(
    timeline: Timeline, desk: AgentDesk
) -> None:
    conversation = await queued_conversation(timeline, desk)
    # The accept script has given it to Alina, and before her state event the citizen ends.
    accepted = await desk.queues.accept("zustaende", conversation.id, ALINA.username,
                                        ALINA.name, ALINA.capacity)  # fmt: skip
    assert accepted.won
    await desk.close_conversation(conversation.id, "citizen_ended")
    assert not await desk._joined(ALINA, conversation.id, "zustaende", accepted)
    assert await timeline.log.state(conversation.id) is State.CLOSED
    assert conversation.id not in await desk.queues.assigned_to(ALINA.username)
    wire = [e.get("state") for e in await timeline.log.events_after(conversation.id, 0)]
    assert "with_agent" not in wire and wire[-1] is None  # the last event is the CSAT request


async def test_a_second_handover_keeps_the_first_place_in_line(
    timeline: Timeline, desk: AgentDesk, redis: Redis
) -> None:
    conversation = await queued_conversation(timeline, desk)
    queue_key = keys.queue("zustaende")
    entered = await redis.zscore(queue_key, conversation.id)
    await asyncio.sleep(0.01)
    facts = {"reason": "request_human", "language": "de"}
    refused = await desk._queue(conversation.id, states.HANDOVER, "zustaende", "request_human",
                                facts)  # fmt: skip
    assert not refused
    assert await redis.zscore(queue_key, conversation.id) == entered


async def test_a_handover_of_an_ended_conversation_queues_nothing(
    timeline: Timeline, desk: AgentDesk
) -> None:
    conversation = await started(timeline)
    await desk.close_conversation(conversation.id, "citizen_ended")
    facts = {"reason": "request_human", "language": "de"}
    assert not await desk._queue(
        conversation.id, states.HANDOVER, "zustaende", "request_human", facts
    )
    assert await desk.queues.position("zustaende", conversation.id) is None
