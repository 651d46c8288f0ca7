"""Citizen budgets across sockets and replicas (issue 12: flooding), end to end.

A gateway of its own with small budgets; every test client is 127.0.0.1, one
address. The windows are cleared before each test, so each starts with its
full budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.services import Service, start_gateway
from tests.test_handover import PASSWORD, agents, taken_over_by

pytestmark = pytest.mark.rasa

__all__ = ["agents"]  # the fixture, used here by name

BUDGETS = {
    "CITIZEN_MESSAGE_LIMITS": "5/minute",
    "CITIZEN_TYPING_LIMITS": "10/minute",
    "CITIZEN_CSAT_LIMITS": "2/minute",
    "CITIZEN_END_LIMITS": "2/minute",
    "CITIZEN_HELLO_LIMITS": "3/minute",
    "ADDRESS_CONNECTION_LIMITS": "12/minute",
    "ADDRESS_CONVERSATION_LIMITS": "3/minute",
    "ADDRESS_MESSAGE_LIMITS": "8/minute",
}


@pytest.fixture(scope="module")
def limited(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-limited", redis_url, rasa_server.port,
                            env=BUDGETS)  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def limited_b(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    """A second replica with the same budgets: the counts are shared in Redis."""
    service = start_gateway(service_dir, "gateway-limited-b", redis_url, rasa_server.port,
                            env=BUDGETS)  # fmt: skip
    yield service
    service.stop()


def ws(service: Service) -> str:
    return service.url.replace("http://", "ws://") + "/ws/chat"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    keys = [key async for key in client.scan_iter("bs:limit:*")]
    if keys:
        await client.delete(*keys)
    yield client
    await client.aclose()


async def outcomes(citizen: CitizenClient, n: int) -> list[str]:
    """The next `n` acks or errors: 'ack' or the error code."""
    frames = [await citizen.until(lambda f: f["type"] in ("ack", "error")) for _ in range(n)]
    return ["ack" if f["type"] == "ack" else f["code"] for f in frames]


async def stored_citizen_messages(redis: Redis, conversation_id: str) -> int:
    entries = await redis.xrange(f"bs:conv:{{{conversation_id}}}:log")
    return sum('"from":"citizen"' in fields["e"] for _, fields in entries)


async def test_sockets_of_one_conversation_share_its_message_budget(
    limited: Service, limited_b: Service, redis: Redis
) -> None:
    first = await CitizenClient.open(ws(limited))
    token = first.token
    tabs = [first] + [
        await CitizenClient.open(ws(service), token=token)
        for service in (limited, limited_b, limited_b)
    ]
    for i, tab in enumerate(tabs):
        for j in range(3):
            await tab.send({"type": "message", "client_id": f"t{i}-{j}", "text": f"Frage {i}{j}"})
    results = [r for tab in tabs for r in await outcomes(tab, 3)]
    assert results.count("ack") == 5 and results.count("rate_limited") == 7
    conversation_id = first.session["conversation_id"]
    assert await stored_citizen_messages(redis, conversation_id) == 5
    for tab in tabs:
        await tab.close()


async def test_conversations_from_one_address_share_its_budget(
    limited: Service, limited_b: Service, redis: Redis
) -> None:
    citizens = [await CitizenClient.open(ws(s)) for s in (limited, limited_b) * 3]
    for i, citizen in enumerate(citizens):
        await citizen.say("Hallo", client_id=f"c{i}")
    results = [(await outcomes(citizen, 1))[0] for citizen in citizens]
    assert results.count("ack") == 3 and results.count("rate_limited") == 3
    for citizen, result in zip(citizens, results, strict=True):
        pattern = f"bs:conv:{{{citizen.session['conversation_id']}}}*"
        keys = [key async for key in redis.scan_iter(pattern)]
        assert bool(keys) == (result == "ack")  # a refused first message stores nothing
        await citizen.close()


async def test_messages_from_one_address_share_its_budget(limited: Service, redis: Redis) -> None:
    """Two conversations, each within its own budget of 5, together over the address's 8."""
    one, two = await CitizenClient.open(ws(limited)), await CitizenClient.open(ws(limited))
    for i in range(5):
        await one.say(f"Frage {i}", client_id=f"a{i}")
        await two.say(f"Frage {i}", client_id=f"b{i}")
    results = await outcomes(one, 5) + await outcomes(two, 5)
    assert results.count("ack") == 8 and results.count("rate_limited") == 2
    await one.close()
    await two.close()


async def test_new_sockets_from_one_address_are_limited(limited: Service, redis: Redis) -> None:
    sockets = [await CitizenClient.open(ws(limited)) for _ in range(12)]
    async with connect(ws(limited)) as refused:
        error = await asyncio.wait_for(refused.recv(), 5)
        assert '"rate_limited"' in error and "Verbindungen" in error
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    for socket in sockets:
        await socket.close()


async def test_reconnects_to_one_conversation_are_limited(limited: Service, redis: Redis) -> None:
    first = await CitizenClient.open(ws(limited))
    await first.close()
    for _ in range(3):
        again = await CitizenClient.open(ws(limited), token=first.token)
        await again.close()
    async with connect(ws(limited)) as refused:
        await refused.send('{"type":"hello","token":"' + first.token + '"}')
        error = await asyncio.wait_for(refused.recv(), 5)
        assert '"rate_limited"' in error and "session" not in error
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


async def test_ratings_and_ends_are_limited(limited: Service, redis: Redis) -> None:
    citizen = await CitizenClient.open(ws(limited))
    await citizen.say("Hallo")
    await citizen.bot_reply()
    for _ in range(3):
        await citizen.send({"type": "end"})
    error = await citizen.until(lambda f: f["type"] == "error")
    assert error["code"] == "rate_limited"
    for score in (1, 2, 3, 4):
        await citizen.send({"type": "csat", "score": score})
    errors = [await citizen.until(lambda f: f["type"] == "error") for _ in range(2)]
    assert {e["code"] for e in errors} == {"rate_limited"}
    rating = await redis.hgetall(f"bs:conv:{{{citizen.session['conversation_id']}}}:csat")
    assert rating["csat_score"] == "2"  # the two ratings within the budget, the later one kept
    await citizen.close()


async def test_a_typing_flood_is_not_relayed_beyond_the_budget(
    limited: Service, limited_b: Service, redis: Redis, agents: None
) -> None:
    alina = await AgentClient.open(limited.url, "alina", PASSWORD)
    citizen, conversation_id = await taken_over_by(alina, ws(limited))
    other_tab = await CitizenClient.open(ws(limited_b), token=citizen.token)
    for i in range(300):
        await (citizen if i % 2 else other_tab).send({"type": "typing", "active": i % 4 < 2})
    await citizen.say("Ende der Tipperei")
    await alina.until(lambda f: f.get("type") == "message" and f.get("from") == "citizen"
                      and f.get("text") == "Ende der Tipperei")  # fmt: skip
    typing = [f for f in alina.frames if f.get("type") == "typing"
              and f.get("conversation_id") == conversation_id]  # fmt: skip
    assert 0 < len(typing) <= 10
    assert not [f for f in citizen.frames + other_tab.frames if f.get("type") == "error"]
    for client in (citizen, other_tab, alina):
        await client.close()
