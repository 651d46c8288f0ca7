"""Auto-assignment (AUTO_ASSIGN): waiting chats go to the least-busy available agent.

Two gateway replicas with auto-assignment share one Redis; agents of their own
serve a queue no other module uses ("zuteilung"), so the assignments asserted
here are exactly the ones these tests cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from handover.agents.queues import Queues, agent_conversations_key
from handover.conversation.log import ConversationLog
from handover.ops.redis_connection import connect as connect_redis
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.services import Service, start_gateway
from tests.test_handover import PASSWORD, add_agent, ws

pytestmark = pytest.mark.rasa

QUEUE = "zuteilung"
AUTO = {"AUTO_ASSIGN": "true", "DEFAULT_QUEUE": QUEUE}


@pytest.fixture(scope="module")
def auto_agents(redis_url: str) -> None:
    for username, name, skills, role, capacity in [
        ("ada", "Ada Lenz", QUEUE, "agent", "2"),
        ("ben", "Ben Hart", QUEUE, "agent", "2"),
        ("cleo", "Cleo Witt", QUEUE, "agent", "3"),
        ("dora", "Dora Kuhn", "", "supervisor", "5"),  # sees all, is given nothing
    ]:
        done = add_agent(redis_url, username, name, "--skills", skills, "--role", role,
                         "--capacity", capacity)  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def auto_a(
    service_dir: Path, redis_url: str, rasa_server: Service, auto_agents: None
) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-auto-a", redis_url, rasa_server.port, env=AUTO)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def auto_b(
    service_dir: Path, redis_url: str, rasa_server: Service, auto_agents: None
) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-auto-b", redis_url, rasa_server.port, env=AUTO)
    yield service
    service.stop()


async def asks_for_a_person(service: Service) -> CitizenClient:
    citizen = await CitizenClient.open(ws(service))
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: f["type"] == "state" and f["state"] == "queued")
    return citizen


async def assigned_to_one_of(agents: dict[str, AgentClient], conversation_id: str) -> str:
    """The name of the agent whose socket got the `assigned` frame for the conversation."""

    async def wait(name: str) -> str:
        await agents[name].until(
            lambda f: f["type"] == "assigned" and f["conversation_id"] == conversation_id
        )
        return name

    waits = [asyncio.create_task(wait(name)) for name in agents]
    done, pending = await asyncio.wait(waits, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert done, f"{conversation_id} was assigned to nobody"
    return next(iter(done)).result()


async def test_waiting_chats_go_to_the_least_busy_agent_then_the_one_idle_longest(
    auto_a: Service, auto_b: Service
) -> None:
    dora = await AgentClient.open(auto_a.url, "dora", PASSWORD)
    ada = await AgentClient.open(auto_a.url, "ada", PASSWORD)  # replica A
    ben = await AgentClient.open(auto_b.url, "ben", PASSWORD)  # replica B
    agents = {"ada": ada, "ben": ben}
    citizens, order = [], []
    for replica in (auto_a, auto_b, auto_a, auto_b):
        citizen = await asks_for_a_person(replica)
        conversation_id = citizen.session["conversation_id"]
        order.append(await assigned_to_one_of(agents, conversation_id))
        joined = await citizen.until(lambda f: f.get("state") == "with_agent")
        assert joined["agent"]["name"] in ("Ada Lenz", "Ben Hart")
        citizens.append(citizen)
    first, second = order[0], ({"ada", "ben"} - {order[0]}).pop()
    # Least busy first; between equals, the one whose load changed longest ago.
    assert order == [first, second, first, second]

    # Both at capacity (2): the fifth waits, and goes to whoever frees a chat.
    fifth = await asks_for_a_person(auto_b)
    assert not [f for f in await ben.settle(0.5) + await ada.settle(0.1) if f["type"] == "assigned"]
    freed = citizens[1].session["conversation_id"]  # second's first chat
    await agents[second].send({"type": "close", "conversation_id": freed})
    taker = await assigned_to_one_of(agents, fifth.session["conversation_id"])
    assert taker == second
    assert not [f for f in dora.frames + await dora.settle(0.3) if f["type"] == "assigned"]

    for citizen in [*citizens, fifth]:
        await citizen.send({"type": "end"})
        await citizen.until(lambda f: f.get("state") == "closed")
        await citizen.close()
    for agent in (dora, ada, ben):
        await agent.close()


async def test_an_agent_who_comes_online_is_given_what_waits(auto_a: Service) -> None:
    dora = await AgentClient.open(auto_a.url, "dora", PASSWORD)  # so the chat may queue
    citizen = await asks_for_a_person(auto_a)
    conversation_id = citizen.session["conversation_id"]
    await dora.queue_with(conversation_id)
    cleo = await AgentClient.open(auto_a.url, "cleo", PASSWORD)
    assigned = await cleo.until(lambda f: f["type"] == "assigned")
    assert assigned["conversation_id"] == conversation_id
    assert assigned["context"]["queue"] == QUEUE and assigned["transcript"]
    joined = await citizen.until(lambda f: f.get("state") == "with_agent")
    assert joined["agent"] == {"name": "Cleo Witt"}
    await cleo.say(conversation_id, "Guten Tag!")
    assert (await citizen.until(lambda f: f.get("from") == "agent"))["text"] == "Guten Tag!"
    await cleo.send({"type": "close", "conversation_id": conversation_id})
    await citizen.close()
    for agent in (dora, cleo):
        await agent.close()


async def test_two_replicas_assigning_at_once_never_give_a_chat_twice(
    redis_url: str, auto_a: Service, auto_b: Service
) -> None:
    """20 chats wait; three agents come online at once on two replicas, each
    replica assigning; then they free capacity, and the rest is assigned too."""
    redis = connect_redis(Settings(redis_url=redis_url))
    log, queues = ConversationLog(redis, 3600), Queues(redis)
    waiting = []
    for _ in range(20):
        conversation = await log.start(channel="web", language="de")
        queued = {"state": "queued", "queue": QUEUE, "reason": "test"}
        await redis.hset(f"bs:conv:{{{conversation.id}}}", mapping=queued)
        await queues.enqueue(QUEUE, conversation.id)
        waiting.append(conversation.id)
    ada, ben, cleo = await asyncio.gather(
        AgentClient.open(auto_a.url, "ada", PASSWORD),
        AgentClient.open(auto_b.url, "ben", PASSWORD),
        AgentClient.open(auto_b.url, "cleo", PASSWORD),
    )
    agents = {"ada": ada, "ben": ben, "cleo": cleo}
    capacity = {"ada": 2, "ben": 2, "cleo": 3}
    given: dict[str, list[str]] = {name: [] for name in agents}
    for _ in range(3):  # until all 20 are through: take, close, be given the next
        for name, agent in agents.items():
            frames = await agent.settle(1.0)
            for frame in frames:
                if frame["type"] == "assigned" and frame["conversation_id"] in waiting:
                    given[name].append(frame["conversation_id"])
            held = await redis.smembers(agent_conversations_key(name))
            assert len(held) <= capacity[name]
        for name, agent in agents.items():
            for conversation_id in sorted(await redis.smembers(agent_conversations_key(name))):
                await agent.send({"type": "close", "conversation_id": conversation_id})
        if sum(map(len, given.values())) == len(waiting):
            break
        await asyncio.sleep(0.5)

    everyone = [cid for cids in given.values() for cid in cids]
    assert sorted(everyone) == sorted(waiting)  # each chat given exactly once
    for conversation_id in waiting:
        events = await log.events_after(conversation_id, 0)
        joins = [e for e in events if e.get("state") == "with_agent"]
        assert len(joins) == 1, (conversation_id, joins)
    for agent in agents.values():
        await agent.close()
    await redis.aclose()
