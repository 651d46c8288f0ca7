"""The conversation log against a real redis-server."""

from __future__ import annotations

import asyncio
import hashlib

from redis.asyncio import Redis

from handover.conversation.log import Conversation, ConversationLog
from handover.conversation.protocol import message_event

RETENTION_S = 3600


async def start(log: ConversationLog, language: str = "de") -> Conversation:
    """A new conversation, held for the test as a socket holds it: its first event stores it."""
    conversation = await log.start(channel="web", language=language)
    log.held.enter_context(log.hold(conversation))  # type: ignore[attr-defined]
    return conversation


async def test_events_get_strictly_increasing_seq_and_replay_in_order(log: ConversationLog) -> None:
    conversation = await start(log)
    seqs = [
        (await log.append(conversation.id, message_event("bot", f"m{i}"))).seq for i in range(5)
    ]
    assert seqs == [1, 2, 3, 4, 5]
    replay = await log.events_after(conversation.id, 2)
    assert [(e["seq"], e["text"]) for e in replay] == [(3, "m2"), (4, "m3"), (5, "m4")]
    assert await log.events_after(conversation.id, 5) == []


async def test_a_repeated_client_id_is_stored_once(log: ConversationLog) -> None:
    conversation = await start(log)
    first = await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c-1")
    again = await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c-1")
    assert first.stored and not again.stored
    assert again.seq == first.seq
    assert len(await log.events_after(conversation.id, 0)) == 1


async def test_concurrent_appends_never_share_a_seq(log: ConversationLog) -> None:
    conversation = await start(log)
    results = await asyncio.gather(
        *(
            log.append(conversation.id, message_event("citizen", str(i)), client_id=f"c{i}")
            for i in range(200)
        )
    )
    assert sorted(r.seq for r in results) == list(range(1, 201))


async def test_replay_pages_through_long_histories(log: ConversationLog) -> None:
    conversation = await start(log)
    for i in range(1203):
        await log.append(conversation.id, message_event("bot", str(i)))
    replay = await log.events_after(conversation.id, 0)
    assert [e["seq"] for e in replay] == list(range(1, 1204))


async def test_token_resumes_its_own_conversation_only(log: ConversationLog) -> None:
    mine = await start(log, "en")
    other = await start(log)
    await log.append(mine.id, message_event("citizen", "Hello"), client_id="c")
    resumed = await log.resume(mine.token)
    assert resumed is not None and resumed.id == mine.id and resumed.language == "en"
    assert resumed.stored and resumed.seq == 1
    assert resumed.id != other.id
    assert await log.resume("forged-" + mine.token) is None
    assert await log.resume(mine.token[:-2] + "xx") is None


async def test_a_new_conversation_stores_nothing_until_its_first_event(
    log: ConversationLog, redis: Redis
) -> None:
    conversation = await start(log, "en")
    assert not conversation.stored
    assert [key async for key in redis.scan_iter(f"bs:conv:{{{conversation.id}}}*")] == []
    assert not await log.record_csat(conversation.id, 5, "gut")
    assert await redis.exists(f"bs:conv:{{{conversation.id}}}") == 0
    first = await log.append(conversation.id, message_event("citizen", "Hi"), client_id="c")
    assert first.stored and first.created and first.seq == 1 and first.state_before == "bot"
    second = await log.append(conversation.id, message_event("bot", "Hello"))
    assert second.stored and not second.created
    meta = await log.meta(conversation.id)
    assert (meta["state"], meta["seq"]) == ("bot", "2")
    assert (meta["channel"], meta["language"]) == ("web", "en")
    assert meta["created_at"].endswith("Z")


async def test_a_token_resumes_its_conversation_before_and_after_the_first_event(
    log: ConversationLog,
) -> None:
    conversation = await start(log, "en")
    unstored = await log.resume(conversation.token)
    assert unstored is not None and not unstored.stored
    assert (unstored.id, unstored.seq, unstored.language) == (conversation.id, 0, "en")
    await log.append(conversation.id, message_event("citizen", "Hi"), client_id="c")
    stored = await log.resume(conversation.token)
    assert stored is not None and stored.stored and stored.seq == 1


async def test_a_token_signed_with_another_key_or_naming_another_conversation_is_refused(
    log: ConversationLog, redis: Redis
) -> None:
    victim = await start(log)
    await log.append(victim.id, message_event("citizen", "Privat"), client_id="c")
    attacker = ConversationLog(redis, RETENTION_S, token_secret="guessed-key")
    from handover.conversation.token import TokenClaims

    forged = await attacker.tokens.issue(TokenClaims(victim.id, "web", "de"))
    assert await log.resume(forged) is None
    mine = await start(log)
    payload, _, signature = mine.token.rpartition(".")
    swapped = payload.replace(payload[:10], "A" * 10) + "." + signature
    assert await log.resume(swapped) is None


async def test_tokens_from_before_signing_resume_their_stored_conversation(
    log: ConversationLog, redis: Redis
) -> None:
    conversation = await start(log)
    await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c")
    legacy = "old-random-token-without-signature"
    key = "bs:token:" + hashlib.sha256(legacy.encode()).hexdigest()
    await redis.set(key, conversation.id, ex=60)
    resumed = await log.resume(legacy)
    assert resumed is not None and resumed.id == conversation.id and resumed.seq == 1
    await redis.delete(key)
    assert await log.resume(legacy) is None


async def test_state_changes_with_its_event_atomically(log: ConversationLog) -> None:
    conversation = await start(log)
    await log.append(
        conversation.id, {"type": "state", "state": "closed"}, meta={"state": "closed"}
    )
    assert await log.state(conversation.id) == "closed"


async def test_every_key_of_a_conversation_expires_after_the_retention_period(
    log: ConversationLog, redis: Redis
) -> None:
    conversation = await start(log)
    appended = await log.append(conversation.id, message_event("citizen", "Hallo"), client_id="c")
    await log.append_bot_turn(
        conversation.id, appended.seq, {"intent": {"name": "greet"}}, [message_event("bot", "Hi")]
    )
    keys = [key async for key in redis.scan_iter(f"bs:conv:{{{conversation.id}}}*")]
    assert len(keys) == 4  # meta, log, client ids, understanding
    for key in keys:
        assert 0 < await redis.ttl(key) <= RETENTION_S


async def test_a_bot_turn_keeps_the_understanding_and_stores_the_replies(
    log: ConversationLog,
) -> None:
    conversation = await start(log)
    seq = (await log.append(conversation.id, message_event("citizen", "Hallo"))).seq
    parse = {"intent": {"name": "greet", "confidence": 0.98}, "entities": []}
    replies = [message_event("bot", "Guten Tag!"), message_event("bot", "Wie kann ich helfen?")]
    stored = await log.append_bot_turn(conversation.id, seq, parse, replies)
    assert [(a.seq, a.stored, a.state_before) for a in stored] == [
        (2, True, "bot"),
        (3, True, "bot"),
    ]
    assert await log.understanding(conversation.id) == {seq: parse}
    assert [e["text"] for e in await log.events_after(conversation.id, seq)] == [
        "Guten Tag!",
        "Wie kann ich helfen?",
    ]


async def test_a_refused_state_stores_nothing(log: ConversationLog) -> None:
    conversation = await start(log)
    await log.append(
        conversation.id, {"type": "state", "state": "closed"}, meta={"state": "closed"}
    )
    refused = await log.append(
        conversation.id, message_event("citizen", "Hallo"), client_id="late", refuse_in="closed"
    )
    assert refused.refused and not refused.stored and refused.state_before == "closed"
    assert len(await log.events_after(conversation.id, 0)) == 1


async def test_events_for_an_unknown_conversation_are_refused(log: ConversationLog) -> None:
    refused = await log.append("no-such-conversation", message_event("citizen", "Hallo"))
    assert refused.refused and refused.state_before is None
    assert await log.events_after("no-such-conversation", 0) == []
