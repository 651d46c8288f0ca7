"""Messenger replies: rendered for the channel, queued with the event, sent in order once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from fastapi import APIRouter
from redis.asyncio import Redis

from handover import keys
from handover.channels.base import Delivery, OutboxChannel, SendFailed
from handover.channels.outbox import Outbox
from handover.channels.rendering import choice_for, render
from handover.conversation.log import Conversation, ConversationLog
from handover.conversation.protocol import Button, Link, message_event
from handover.ops.redis_connection import connect
from handover.settings import Settings

RETENTION_S = 3600


# --- rendering -----------------------------------------------------------------------


def test_a_bot_message_keeps_its_buttons_and_links_and_drops_unsafe_links() -> None:
    event = message_event("bot", "Was möchten Sie dazu wissen?",
                          buttons=[Button(title="Kosten", payload="/ask_question")],
                          links=[Link(title="Personalausweis", url="https://x.example/pa"),
                                 Link(title="Böse", url="javascript:alert(1)")])  # fmt: skip
    rendered = render(event, "de")
    assert rendered.text == "Was möchten Sie dazu wissen?"
    assert [(c.title, c.payload, c.index) for c in rendered.choices] == [
        ("Kosten", "/ask_question", 0)
    ]
    assert [link.url for link in rendered.links] == ["https://x.example/pa"]
    plain = rendered.as_plain_text("de")
    assert "1. Kosten" in plain and "Personalausweis: https://x.example/pa" in plain


def test_states_and_the_rating_become_sentences_in_the_citizens_language() -> None:
    queued = {"type": "state", "state": "queued", "reason": "request_human", "position": 2,
              "eta_s": 240}  # fmt: skip
    assert "Platz 2" in render(queued, "de").text and "position 2" in render(queued, "en").text
    assert render({**queued, "reason": "position"}, "de").text == ""  # no flood of updates
    joined = {"type": "state", "state": "with_agent", "agent": {"name": "Alina Berger"}}
    assert render(joined, "de").text.startswith("Alina Berger vom Bürgerservice")
    agent = {**message_event("agent", "Guten Tag"), "agent": {"name": "Alina Berger"}}
    assert render(agent, "de").text == "Alina Berger: Guten Tag"
    rating = render({"type": "csat_request"}, "en")
    assert "satisfied" in rating.text and [c.title for c in rating.choices] == list("12345")
    assert render({"type": "note", "text": "intern"}, "de").text == ""


def test_a_choice_is_named_by_number_or_title() -> None:
    choices = render({"type": "csat_request"}, "de").choices
    assert choice_for("4", choices) is choices[3]
    assert choice_for(" 5. ", choices) is choices[4]
    assert choice_for("6", choices) is None and choice_for("super", choices) is None


# --- the outbox, against a real redis-server ----------------------------------------------


class RecordingChannel(OutboxChannel):
    """A channel whose provider is this object: it records sends and fails on demand."""

    name: ClassVar[str] = "testchannel"

    def __init__(self, takes_s: float = 0.0) -> None:
        self.sent: list[tuple[str, int]] = []
        self.failures: list[SendFailed] = []
        self.takes_s = takes_s  # how long the provider takes to answer

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxChannel:
        return cls()

    def router(self) -> APIRouter:
        return APIRouter()

    async def send(self, delivery: Delivery) -> None:
        await asyncio.sleep(self.takes_s)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((delivery.recipient, int(delivery.event["seq"])))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(Settings(redis_url=redis_url))
    await client.delete(keys.outbox("testchannel"), keys.outbox_failed("testchannel"),
                        keys.outbox_sender("testchannel"))  # fmt: skip
    yield client
    await client.aclose()


async def on_channel(log: ConversationLog, channel: str, recipient: str) -> Conversation:
    conversation = await log.start(channel=channel, language="de")
    log.held.enter_context(log.hold(conversation, recipient=recipient))  # type: ignore[attr-defined]
    await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c-1")
    return conversation


def outbox(redis: Redis, log: ConversationLog, channel: RecordingChannel, **options: Any) -> Outbox:
    return Outbox(redis, log, channel, "host-a", lease_s=3.0, first_retry_s=0.05, **options)


async def test_what_the_citizen_receives_is_queued_with_the_event_and_nothing_else(
    redis: Redis, log: ConversationLog
) -> None:
    conversation = await on_channel(log, "testchannel", "4711")
    for event in [message_event("bot", "Guten Tag"), {"type": "note", "text": "intern"},
                  {"type": "state", "state": "closed"}, {"type": "csat_request"}]:  # fmt: skip
        await log.append(conversation.id, event)
    web = await log.start(channel="web", language="de")
    log.held.enter_context(log.hold(web))  # type: ignore[attr-defined]
    await log.append(web.id, message_event("citizen", "Hallo"))
    await log.append(web.id, message_event("bot", "Guten Tag"))
    entries = [fields["e"] for _, fields in await redis.xrange(keys.outbox("testchannel"))]
    assert entries == [f"{conversation.id}|2", f"{conversation.id}|4", f"{conversation.id}|5"]
    assert (await log.meta(conversation.id))["recipient"] == "4711"
    assert await redis.exists(keys.outbox("web")) == 0


async def test_replies_are_sent_in_order_and_a_transient_failure_is_retried(
    redis: Redis, log: ConversationLog
) -> None:
    channel = RecordingChannel()
    conversation = await on_channel(log, "testchannel", "4711")
    for i in range(5):
        await log.append(conversation.id, message_event("bot", f"Antwort {i}"))
    channel.failures = [SendFailed("Bad Gateway"), SendFailed("Too Many", retry_after_s=0.1)]
    sender = outbox(redis, log, channel)
    assert await sender.lease.hold()
    assert await sender.drain() == 5
    assert channel.sent == [("4711", seq) for seq in range(2, 7)]
    assert await redis.xlen(keys.outbox("testchannel")) == 0


async def test_a_permanent_refusal_is_recorded_without_text_and_the_rest_goes_out(
    redis: Redis, log: ConversationLog
) -> None:
    channel = RecordingChannel()
    blocked = await on_channel(log, "testchannel", "666")
    other = await on_channel(log, "testchannel", "777")
    await log.append(blocked.id, message_event("bot", "Geheime Antwort"))
    await log.append(other.id, message_event("bot", "Antwort"))
    channel.failures = [SendFailed("Forbidden: bot was blocked by the user", permanent=True)]
    sender = outbox(redis, log, channel)
    assert await sender.lease.hold() and await sender.drain() == 2
    assert channel.sent == [("777", 2)]
    failed = await sender.failures()
    assert failed[0]["conversation_id"] == blocked.id and "blocked" in failed[0]["reason"]
    assert "Geheime" not in str(failed) and await redis.ttl(keys.outbox_failed("testchannel")) > 0


async def test_only_the_replica_holding_the_lease_sends(redis: Redis, log: ConversationLog) -> None:
    first, second = RecordingChannel(), RecordingChannel()
    a = Outbox(redis, log, first, "host-a", lease_s=3.0)
    b = Outbox(redis, log, second, "host-b", lease_s=3.0)
    conversation = await on_channel(log, "testchannel", "4711")
    await log.append(conversation.id, message_event("bot", "Guten Tag"))
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        async with asyncio.timeout(10):
            while len(first.sent) + len(second.sent) < 1:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(first.sent + second.sent) == [("4711", 2)]
    assert not (first.sent and second.sent)


async def test_a_graceful_stop_lets_the_send_under_way_finish_and_a_restart_sends_it_not_again(
    redis: Redis, log: ConversationLog
) -> None:
    slow = RecordingChannel(takes_s=0.5)
    conversation = await on_channel(log, "testchannel", "4711")
    await log.append(conversation.id, message_event("bot", "Guten Tag"))
    await log.append(conversation.id, message_event("bot", "Noch etwas"))
    sender = outbox(redis, log, slow)
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.2)  # the first send is under way
    await sender.stop(task)
    assert slow.sent == [("4711", 2)]  # it finished, and nothing after it started
    after_restart = RecordingChannel()
    successor = outbox(redis, log, after_restart)
    assert await successor.lease.hold()  # given up by the stop, not waited for
    assert await successor.drain() == 1
    assert after_restart.sent == [("4711", 3)]


async def test_a_reply_of_an_erased_conversation_is_dropped(
    redis: Redis, log: ConversationLog
) -> None:
    channel = RecordingChannel()
    conversation = await on_channel(log, "testchannel", "4711")
    await log.append(conversation.id, message_event("bot", "Guten Tag"))
    await redis.delete(*keys.conversation_keys(conversation.id))
    sender = outbox(redis, log, channel)
    assert await sender.lease.hold() and await sender.drain() == 1
    assert channel.sent == [] and await redis.xlen(keys.outbox("testchannel")) == 0


async def test_a_channels_facts_are_never_written_to_a_conversation_that_is_gone(
    redis: Redis, log: ConversationLog
) -> None:
    conversation = await on_channel(log, "testchannel", "4711")
    assert await log.set_facts(conversation.id, {"citizen_at": "1", "email_thread": "<a@b>"})
    assert (await log.meta(conversation.id))["email_thread"] == "<a@b>"
    await redis.delete(*keys.conversation_keys(conversation.id))
    assert not await log.set_facts(conversation.id, {"citizen_at": "2"})
    assert await redis.exists(keys.conversation(conversation.id)) == 0


class BatchingChannel(RecordingChannel):
    """A channel that sends a conversation's consecutive replies as one message (e-mail)."""

    batches_replies: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    async def send_batch(self, deliveries: list[Delivery]) -> None:
        self.batches.append([int(d.event["seq"]) for d in deliveries])


async def test_a_batching_channel_waits_for_what_one_step_stores_in_two_appends(
    redis: Redis, log: ConversationLog
) -> None:
    channel = BatchingChannel()
    conversation = await on_channel(log, "testchannel", "4711")
    await log.append(conversation.id, {"type": "state", "state": "closed"})
    sender = outbox(redis, log, channel)
    assert await sender.lease.hold()
    draining = asyncio.create_task(sender.drain())
    await asyncio.sleep(0.1)  # the rating question comes a moment after the end
    await log.append(conversation.id, {"type": "csat_request"})
    assert await draining == 2
    assert channel.batches == [[2, 3]]
