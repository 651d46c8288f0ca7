"""Rasa's trackers live in the gateway's Redis with an expiry, and can be deleted.

The tests' Rasa keeps its trackers in the tests' Redis (tests/conftest.py), as
`make run`'s keeps them in the gateway's (handover/ops/stack.py writes the endpoints).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from handover.ops.stack import rasa_endpoints
from handover.rasa.trackers import delete_tracker, tracker_key
from handover.settings import Settings
from tests.citizen_client import CitizenClient
from tests.services import Service, rasa_headers

RETENTION_S = Settings().tracker_retention_s


def test_the_endpoints_give_rasa_the_tracker_retention(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, retention_days=30, tracker_retention_days=7)
    text = rasa_endpoints(settings).read_text()
    assert "type: bot.tracker_store.RedisUrlTrackerStore" in text
    assert "record_exp: 604800" in text
    assert 'key_prefix: "bs:rasa:tracker:"' in text
    # The Redis URL may hold a password: Rasa reads it from its environment.
    assert "url: ${RASA_TRACKER_STORE_URL}" in text
    assert Settings(retention_days=12).tracker_retention_s == 12 * 86_400


async def _turn(ws_url: str, text: str) -> str:
    return str((await CitizenClient.converse(ws_url, [text]))["conversation_id"])


def _user_texts(tracker: dict[str, object]) -> list[object]:
    events = tracker.get("events") or []
    assert isinstance(events, list)
    return [event.get("text") for event in events if event.get("event") == "user"]


@pytest.mark.rasa
async def test_a_turn_leaves_a_tracker_that_expires_after_the_retention(
    ws_url: str, redis_url: str
) -> None:
    conversation_id = await _turn(ws_url, "Hallo")
    redis = Redis.from_url(redis_url)
    try:
        ttl = await redis.ttl(tracker_key(conversation_id))
        assert RETENTION_S - 300 < ttl <= RETENTION_S
    finally:
        await redis.aclose()


@pytest.mark.rasa
async def test_a_deleted_tracker_is_gone_from_redis_and_rasa(
    ws_url: str, redis_url: str, rasa_server: Service
) -> None:
    conversation_id = await _turn(ws_url, "Was kostet ein Personalausweis?")
    url = f"{rasa_server.url}/conversations/{conversation_id}/tracker"
    async with httpx.AsyncClient(timeout=30) as http:
        before = (await http.get(url, headers=rasa_headers())).json()
        assert _user_texts(before) == ["Was kostet ein Personalausweis?"]
        redis = Redis.from_url(redis_url)
        try:
            assert await delete_tracker(redis, conversation_id) == 1
            assert await redis.exists(tracker_key(conversation_id)) == 0
            assert await delete_tracker(redis, conversation_id) == 0
        finally:
            await redis.aclose()
        after = (await http.get(url, headers=rasa_headers())).json()
    assert _user_texts(after) == []
    assert after.get("latest_message", {}).get("text") in (None, "")


@pytest.mark.rasa
async def test_a_long_conversation_is_stored_once_in_order(ws_url: str, redis_url: str) -> None:
    """The linear merge (bot/tracker_events.py) keeps every event once, the first ones too."""
    texts = ["Hallo", "Bist du ein Bot?", "Danke", "Hallo", "Tschüss"]
    session = await CitizenClient.converse(ws_url, texts)
    redis = Redis.from_url(redis_url)
    try:
        stored = json.loads(await redis.get(tracker_key(str(session["conversation_id"]))))
    finally:
        await redis.aclose()
    events = stored["events"]
    assert _user_texts(stored) == texts
    # Rasa stores the session's metadata slot before the session's start; it stays.
    assert [e["event"] for e in events[:2]] == ["slot", "action"]
    assert events[1]["name"] == "action_session_start"
    assert len({json.dumps(e, sort_keys=True) for e in events}) == len(events)
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
