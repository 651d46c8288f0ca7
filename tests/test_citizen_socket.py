"""The citizen socket end to end: a real gateway process, Redis and trained Rasa model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.citizen_client import CitizenClient
from tests.services import Service, start_gateway

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


# --- the hello frame (issue 12: credentials never in a URL) ----------------------------------


async def conversation_keys(redis_url: str, conversation_id: str) -> list[str]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = [key async for key in redis.scan_iter(f"bs:conv:{{{conversation_id}}}*")]
    await redis.aclose()
    return keys


async def test_the_token_in_the_hello_resumes_and_in_the_query_is_ignored(ws_url: str) -> None:
    owner = await CitizenClient.open(ws_url)
    await owner.say("Hallo")
    await owner.bot_reply()
    # An old client's query parameters are never read: they cannot resume anything.
    query = f"{ws_url}?token={owner.token}&after=1&lang=de"
    via_query = await CitizenClient.open(query, hello={"type": "hello"})
    assert via_query.session["conversation_id"] != owner.session["conversation_id"]
    resumed = await CitizenClient.open(ws_url, token=owner.token, after=1)
    assert resumed.session["conversation_id"] == owner.session["conversation_id"]
    assert (await resumed.receive())["seq"] == 2  # the replay after `after`
    for client in (owner, via_query, resumed):
        await client.close()


async def test_no_citizen_token_reaches_the_gateway_log(ws_url: str, gateway: Service) -> None:
    """uvicorn logs every handshake line with its query string at info."""
    citizen = await CitizenClient.open(ws_url, lang="de")
    await citizen.say("Hallo")
    await citizen.bot_reply()
    await citizen.close()
    again = await CitizenClient.open(ws_url, token=citizen.token, after=2, lang="de")
    await again.say("Danke")
    await again.bot_reply()
    await again.close()
    await asyncio.sleep(0.3)  # the log is written by another process
    log = gateway.log()
    assert "/ws/chat" in log  # the handshake lines are there (query redacted) ...
    assert citizen.token not in log  # ... without the token
    assert citizen.token.split(".")[-1] not in log


async def test_a_malformed_after_in_the_query_is_no_server_error(ws_url: str) -> None:
    """`?after=²` used to fail the handshake with HTTP 500; the query is not read any more."""
    citizen = await CitizenClient.open(f"{ws_url}?after=%C2%B2&token=x")
    assert citizen.session["type"] == "session" and citizen.session["seq"] == 0
    await citizen.close()


async def test_no_hello_within_the_timeout_gets_a_new_conversation(ws_url: str) -> None:
    started = asyncio.get_running_loop().time()
    citizen = await CitizenClient.open(ws_url, hello=None)
    waited = asyncio.get_running_loop().time() - started
    assert citizen.session["seq"] == 0 and 4.5 <= waited < 10
    await citizen.say("Hallo")
    assert (await citizen.bot_reply())["text"].startswith("Guten Tag")
    await citizen.close()


async def test_a_message_as_first_frame_starts_a_conversation_and_is_answered(
    ws_url: str,
) -> None:
    first = {"type": "message", "client_id": "m1", "text": "Hallo"}
    citizen = await CitizenClient.open(ws_url, hello=first)
    assert (await citizen.until(lambda f: f["type"] == "ack"))["seq"] == 1
    assert (await citizen.bot_reply())["text"].startswith("Guten Tag")
    await citizen.close()


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ('{"type":"hello","token":"TOKEN","after":"1"}', "bad_frame"),
        ('{"type":"hello","token":"TOKEN","after":-1}', "bad_frame"),
        ('{"type":"hello","token":"TOKEN","after":1.5}', "bad_frame"),
        ('{"type":"hello","token":"TOKEN","after":true}', "bad_frame"),
        ('{"type":"hello","token":"TOKEN","after":100000000000000000000000000000}', "bad_frame"),
        ('{"type":"hello","token":["TOKEN"]}', "bad_frame"),
        ('{"type":"hello","token":"TOKEN"', "bad_frame"),
        ('{"type":"hello","token":"TOKEN","pad":"' + "x" * 5000 + '"}', "too_large"),
    ],
    ids=[
        "after-string",
        "after-negative",
        "after-float",
        "after-bool",
        "after-huge",
        "token-list",
        "not-json",
        "oversized",
    ],
)
async def test_a_bad_hello_gets_an_error_and_a_new_empty_conversation(
    ws_url: str, redis_url: str, hello: str, code: str
) -> None:
    owner = await CitizenClient.open(ws_url)
    await owner.say("Hallo")
    await owner.bot_reply()
    client = await CitizenClient.open(ws_url, hello=hello.replace("TOKEN", owner.token))
    assert client.session["conversation_id"] != owner.session["conversation_id"]
    assert client.session["seq"] == 0 and client.session["token"] != owner.token
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    with pytest.raises(TimeoutError):
        await client.receive(timeout=0.5)  # none of the owner's events
    assert await conversation_keys(redis_url, client.session["conversation_id"]) == []
    await owner.close()
    await client.close()


async def test_an_after_beyond_the_real_seq_is_clamped_and_live_events_arrive(
    ws_url: str,
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Hallo")
    await citizen.bot_reply()
    await citizen.close()
    ahead = await CitizenClient.open(ws_url, token=citizen.token, after=10**12)
    assert ahead.session["seq"] == 2
    with pytest.raises(TimeoutError):
        await ahead.receive(timeout=0.5)  # nothing replayed
    await ahead.say("Danke")
    assert (await ahead.until(lambda f: f["type"] == "ack"))["seq"] == 3
    echo = await ahead.until(lambda f: f["type"] == "message" and f["from"] == "citizen")
    assert echo["seq"] == 3
    assert (await ahead.bot_reply())["seq"] == 4
    await ahead.close()


# --- a conversation is stored with its first event (issue 12: storage flood) -----------------


async def test_sockets_that_never_speak_store_nothing_and_one_message_stores_it(
    ws_url: str, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    warm = await CitizenClient.open(ws_url)  # the token key exists from here on
    await warm.close()
    before = {key async for key in redis.scan_iter("*")}
    sockets = await asyncio.gather(*(CitizenClient.open(ws_url) for _ in range(100)))
    ids = {s.session["conversation_id"] for s in sockets}
    assert len(ids) == 100
    while_open = {key async for key in redis.scan_iter("*")} - before
    for socket in sockets:
        await socket.close()
    await asyncio.sleep(0.3)
    after = {key async for key in redis.scan_iter("*")} - before
    # Only the rate-limit windows of the one client address, which expire within the hour.
    assert all(key.startswith("bs:limit:") for key in while_open | after), while_open | after
    assert len(after) <= 4
    for key in after:
        assert 0 < await redis.ttl(key) <= 3600

    # The token of a conversation that has no event yet resumes it ...
    token, conversation_id = sockets[0].token, sockets[0].session["conversation_id"]
    again = await CitizenClient.open(ws_url, token=token)
    assert (again.session["conversation_id"], again.session["seq"]) == (conversation_id, 0)
    assert await conversation_keys(redis_url, conversation_id) == []
    # ... and its first message stores it, resumable with the same token.
    await again.say("Hallo")
    await again.bot_reply()
    await again.close()
    meta = await redis.hgetall(f"bs:conv:{{{conversation_id}}}")
    assert meta["state"] == "bot" and meta["seq"] == "2" and meta["channel"] == "web"
    resumed = await CitizenClient.open(ws_url, token=token)
    assert resumed.session["conversation_id"] == conversation_id and resumed.session["seq"] == 2
    replay = [await resumed.receive() for _ in range(2)]
    assert [(f["seq"], f["from"]) for f in replay] == [(1, "citizen"), (2, "bot")]
    await resumed.close()
    await redis.aclose()


async def test_a_rating_or_typing_before_any_message_stores_nothing(
    ws_url: str, redis_url: str
) -> None:
    citizen = await CitizenClient.open(ws_url)
    await citizen.send({"type": "typing", "active": True})
    await citizen.send({"type": "csat", "score": 4})
    await asyncio.sleep(0.3)
    assert await conversation_keys(redis_url, citizen.session["conversation_id"]) == []
    await citizen.close()


@pytest.fixture(scope="module")
def second_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-citizen-b", redis_url, rasa_server.port)
    yield service
    service.stop()


async def test_tabs_on_two_replicas_share_a_conversation_before_it_is_stored(
    ws_url: str, second_gateway: Service
) -> None:
    """The second tab's replica joins the conversation when the first tab's message creates it."""
    first = await CitizenClient.open(ws_url)
    other_url = second_gateway.url.replace("http://", "ws://") + "/ws/chat"
    second = await CitizenClient.open(other_url, token=first.token)
    assert second.session["conversation_id"] == first.session["conversation_id"]
    await first.say("Hallo")
    echo = await second.until(lambda f: f["type"] == "message" and f["from"] == "citizen")
    assert echo["seq"] == 1 and echo["text"] == "Hallo"
    assert (await second.bot_reply())["seq"] == 2
    await second.say("Danke")  # and back, from the second replica to the first
    thanks = await first.until(lambda f: f.get("seq") == 3)
    assert thanks["from"] == "citizen" and thanks["text"] == "Danke"
    await first.close()
    await second.close()
