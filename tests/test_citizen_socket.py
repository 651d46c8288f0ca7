"""The citizen socket end to end: a real gateway process, Redis and trained Rasa model."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from tests.citizen_client import CitizenClient

pytestmark = pytest.mark.rasa


async def test_new_conversation_starts_with_a_session_frame(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    session = citizen.session
    assert session["state"] == "bot" and session["seq"] == 0
    assert len(session["token"]) >= 32 and session["conversation_id"]
    await citizen.close()


async def test_hallo_gets_the_german_greeting_with_a_button(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    client_id = await citizen.say("Hallo")
    ack = await citizen.until(lambda f: f["type"] == "ack")
    assert ack == {"type": "ack", "client_id": client_id, "seq": 1}
    echo = await citizen.until(lambda f: f["type"] == "message" and f["from"] == "citizen")
    assert echo["seq"] == 1 and echo["text"] == "Hallo" and echo["ts"].endswith("Z")
    reply = await citizen.bot_reply()
    assert reply["seq"] == 2
    assert reply["text"].startswith("Guten Tag!")
    assert reply["buttons"] == [
        {"title": "Mit einem Menschen sprechen", "payload": "/request_human"}
    ]
    await citizen.close()


async def test_a_button_payload_is_a_turn_of_its_own(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.send(
        {"type": "message", "client_id": "b1", "payload": "/request_human", "text": "Mensch"}
    )
    echo = await citizen.until(lambda f: f["type"] == "message" and f["from"] == "citizen")
    assert (echo["text"], echo["payload"]) == ("Mensch", "/request_human")
    reply = await citizen.bot_reply()
    assert reply["text"].startswith("Gern verbinde ich Sie")
    await citizen.close()


async def test_the_parse_data_is_stored_with_the_citizen_event(ws_url: str, redis_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Bist du ein Mensch?")
    await citizen.bot_reply()
    conversation_id = citizen.session["conversation_id"]
    redis = Redis.from_url(redis_url, decode_responses=True)
    stored = json.loads(await redis.hget(f"bs:conv:{{{conversation_id}}}:nlu", "1"))
    await redis.aclose()
    assert stored["intent"]["name"] == "bot_challenge"
    assert stored["intent"]["confidence"] > 0.5
    assert stored["entities"] == [] and stored["intent_ranking"]
    await citizen.close()


async def test_a_repeated_client_id_is_acked_again_but_stored_once(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Hallo", client_id="same")
    await citizen.bot_reply()
    await citizen.say("Hallo", client_id="same")
    ack = await citizen.until(lambda f: f["type"] == "ack")
    assert ack["seq"] == 1
    await citizen.say("Danke", client_id="next")
    thanks = await citizen.bot_reply()
    citizen_events = [f for f in citizen.durable() if f.get("from") == "citizen"]
    assert [e["text"] for e in citizen_events] == ["Hallo", "Danke"]
    assert "gern" in thanks["text"].lower()
    await citizen.close()


async def test_reconnect_replays_only_what_the_client_missed(ws_url: str) -> None:
    first = await CitizenClient.open(ws_url)
    await first.say("Hallo")
    await first.bot_reply()
    seen = max(f["seq"] for f in first.durable())
    await first.close()

    # While offline, a message sent by another tab of the same conversation.
    other_tab = await CitizenClient.open(ws_url, token=first.token, after=seen)
    await other_tab.say("Danke")
    await other_tab.bot_reply()
    await other_tab.close()

    again = await CitizenClient.open(ws_url, token=first.token, after=seen)
    assert again.session["conversation_id"] == first.session["conversation_id"]
    replay = [await again.receive() for _ in range(2)]
    assert [(f["seq"], f["from"]) for f in replay] == [(seen + 1, "citizen"), (seen + 2, "bot")]
    with pytest.raises(TimeoutError):
        await again.receive(timeout=0.5)  # nothing duplicated
    await again.close()

    reload = await CitizenClient.open(ws_url, token=first.token)
    full = [await reload.receive() for _ in range(4)]
    assert [f["seq"] for f in full] == [1, 2, 3, 4]
    await reload.close()


async def test_an_unknown_or_forged_token_starts_a_new_conversation(ws_url: str) -> None:
    owner = await CitizenClient.open(ws_url)
    await owner.say("Hallo")
    await owner.bot_reply()
    forged = await CitizenClient.open(ws_url, token=owner.token[:-2] + "xx", after=0)
    assert forged.session["conversation_id"] != owner.session["conversation_id"]
    assert forged.session["token"] != owner.token and forged.session["seq"] == 0
    with pytest.raises(TimeoutError):
        await forged.receive(timeout=0.5)
    await owner.close()
    await forged.close()


@pytest.mark.parametrize(
    "raw",
    ["this is not json", '{"type":"dance"}', '{"type":"message","client_id":"x"}', "[]"],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(ws_url: str, raw: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.send(raw)
    error = await citizen.receive()
    assert error["type"] == "error" and error["code"] == "bad_frame" and error["message"]
    assert "seq" not in error
    await citizen.say("Hallo")
    assert (await citizen.bot_reply())["text"].startswith("Guten Tag")
    await citizen.close()


async def test_binary_frames_are_bad_frames(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.connection.send(b"\x00\x01")
    assert (await citizen.receive())["code"] == "bad_frame"
    await citizen.close()


async def test_an_oversized_frame_is_refused_and_nothing_is_stored(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("x" * 5000, client_id="big")
    error = await citizen.receive()
    assert error["code"] == "too_large" and "zu lang" in error["message"]
    await citizen.say("Hallo", client_id="small")
    ack = await citizen.until(lambda f: f["type"] == "ack")
    assert ack["seq"] == 1  # the big one took no seq
    await citizen.close()


async def test_a_flood_is_rate_limited_and_what_was_accepted_is_kept(ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    for i in range(12):
        await citizen.send({"type": "message", "client_id": f"f{i}", "text": "Hallo"})
    frames = [await citizen.until(lambda f: f["type"] in ("ack", "error")) for _ in range(12)]
    acked = [f for f in frames if f["type"] == "ack"]
    limited = [f for f in frames if f["type"] == "error"]
    assert len(acked) == 8 and {f["code"] for f in limited} == {"rate_limited"}
    replay = await CitizenClient.open(ws_url, token=citizen.token)
    await asyncio.sleep(0.2)
    received = []
    with pytest.raises(TimeoutError):
        while True:
            received.append(await replay.receive(timeout=1.0))
    assert len([f for f in received if f.get("from") == "citizen"]) == 8
    await citizen.close()
    await replay.close()


async def test_ending_the_conversation_closes_it_and_asks_for_feedback(
    ws_url: str, redis_url: str
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.send({"type": "end"})
    state = await citizen.until(lambda f: f["type"] == "state")
    assert state["state"] == "closed" and state["reason"] == "citizen_ended"
    await citizen.until(lambda f: f["type"] == "csat_request")
    await citizen.send({"type": "csat", "score": 5, "comment": "Sehr hilfreich"})
    await citizen.say("Noch eine Frage")
    error = await citizen.until(lambda f: f["type"] == "error")
    assert error["code"] == "conversation_closed"
    redis = Redis.from_url(redis_url, decode_responses=True)
    meta = await redis.hgetall(f"bs:conv:{{{citizen.session['conversation_id']}}}")
    rating = await redis.hgetall(f"bs:conv:{{{citizen.session['conversation_id']}}}:csat")
    await redis.aclose()
    assert meta["state"] == "closed"
    assert (rating["csat_score"], rating["csat_comment"]) == ("5", "Sehr hilfreich")
    await citizen.close()
