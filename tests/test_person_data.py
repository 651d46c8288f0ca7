"""Identifiers, pseudonyms and the daily record lists, against a real redis-server."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from handover.conversation.log import ConversationLog
from handover.privacy.audit_log import AuditLog
from handover.privacy.deletion_records import DeletionRecords
from handover.privacy.erasure import Eraser, Requester
from handover.privacy.person_data import Holdings, UnknownSubject, normalised_subject
from handover.privacy.pseudonyms import Pseudonyms, normalise_phone
from handover.privacy.retention import DAY_S, may_live_forever


def test_phone_numbers_written_differently_are_one_number() -> None:
    forms = ["+49 170 1234567", "0049 170 1234567", "0170/123 45 67", "(0170) 123-4567"]
    assert {normalise_phone(form) for form in forms} == {"01701234567"}


def test_malformed_identifiers_are_refused() -> None:
    for kind, value in [("email", "kein-at"), ("phone", "12"), ("case_number", "MM-1"),
                        ("conversation_id", "../etc"), ("conversation_id", "x" * 65)]:  # fmt: skip
        with pytest.raises(UnknownSubject):
            normalised_subject(kind, value)  # type: ignore[arg-type]
    assert normalised_subject("email", " Lena@Example.ORG ") == "lena@example.org"


async def test_pseudonyms_are_keyed_stable_and_differ_by_key(redis: Redis) -> None:
    one, two = Pseudonyms(redis, "key-one"), Pseudonyms(redis, "key-two")
    assert await one.of("email", "a@b.de") == await one.of("email", "a@b.de")
    assert await one.of("email", "a@b.de") != await two.of("email", "a@b.de")
    assert "a@b.de" not in await one.of("email", "a@b.de")


async def test_audit_entries_never_outlive_the_retention_and_erased_ids_are_replaced(
    redis: Redis,
) -> None:
    audit = AuditLog(redis, 3 * DAY_S)
    erased, kept = uuid.uuid4().hex, uuid.uuid4().hex
    await audit.record("accept", actor="dora", role="agent", conversation_id=erased)
    await audit.record("read_transcript", actor="dora", role="agent", conversation_id=kept)
    keys = [key async for key in redis.scan_iter(match="bs:audit:*")]
    ttls = [await redis.ttl(key) for key in keys]
    assert keys and all(0 < ttl <= 3 * DAY_S for ttl in ttls)
    assert not any(may_live_forever(key) for key in keys)

    assert await audit.pseudonymise(erased, "conversation:abc") == 1
    ids = [entry.get("conversation_id") for entry in await audit.recent(1000)]
    assert erased not in ids and "conversation:abc" in ids and kept in ids


async def test_a_bot_turn_finishing_after_the_erasure_writes_nothing_back(redis: Redis) -> None:
    """Rasa answered while the conversation was erased: no NLU entry, no reply, no key."""
    log = ConversationLog(redis, 3600)
    conversation = await log.start(channel="web", language="de")
    cid = conversation.id
    message = {"type": "message", "ts": "2026-01-01T00:00:00.000Z", "from": "citizen",
               "text": "Was kostet ein Personalausweis?"}  # fmt: skip
    seq = (await log.append(cid, message, client_id="c1")).seq
    eraser = Eraser(redis, log, AuditLog(redis, DAY_S), DeletionRecords(redis, DAY_S),
                    Pseudonyms(redis, "k"))  # fmt: skip
    await eraser.erase(Holdings(conversations={cid}), Requester("citizen", "widget"), "x",
                       token=conversation.token)  # fmt: skip

    reply = {"type": "message", "ts": "2026-01-01T00:00:01.000Z", "from": "bot", "text": "37 €"}
    parse = {"intent": {"name": "ask_cost", "confidence": 0.9}}
    stored = await log.append_bot_turn(cid, seq, parse, [reply])
    assert [appended.refused for appended in stored] == [True]
    assert [key async for key in redis.scan_iter(match=f"*{cid}*")] == []
