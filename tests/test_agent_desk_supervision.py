"""Who sees what on the agent socket, and what an agent is told when a chat leaves them.

Real gateways, Redis and Rasa. Agents of their own (olga, paul, vera, quentin),
so the views asserted here are not disturbed by other modules' agents.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handover.agents.queues import Queues
from handover.conversation.log import ConversationLog
from handover.ops.redis_connection import connect as connect_redis
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.services import Service, start_gateway
from tests.test_handover import PASSWORD, add_agent, citizen_asking_for_a_person, taken_over_by

pytestmark = pytest.mark.rasa


@pytest.fixture(scope="module")
def desk_agents(redis_url: str) -> None:
    for username, name, skills, role, capacity in [
        ("olga", "Olga Brandt", "general,bauamt", "agent", "5"),
        ("paul", "Paul Kern", "kfz", "agent", "5"),
        ("vera", "Vera Stein", "", "supervisor", "5"),
        ("quentin", "Quentin Falk", "kapazitaet", "agent", "1"),
    ]:
        done = add_agent(redis_url, username, name, "--skills", skills, "--role", role,
                         "--capacity", capacity)  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture
async def olga(gateway: Service, desk_agents: None) -> AsyncIterator[AgentClient]:
    agent = await AgentClient.open(gateway.url, "olga", PASSWORD)
    yield agent
    await agent.close()


@pytest.fixture
async def vera(gateway: Service, desk_agents: None) -> AsyncIterator[AgentClient]:
    agent = await AgentClient.open(gateway.url, "vera", PASSWORD)
    yield agent
    await agent.close()


@pytest.fixture
async def paul(gateway: Service, desk_agents: None) -> AsyncIterator[AgentClient]:
    agent = await AgentClient.open(gateway.url, "paul", PASSWORD)
    yield agent
    await agent.close()


async def test_a_supervisor_sees_every_agent_with_presence_and_load(
    ws_url: str, gateway: Service, vera: AgentClient, paul: AgentClient
) -> None:
    first = await vera.agents_view(lambda agents: "olga" in agents)
    assert first["vera"]["online"] is True and first["vera"]["role"] == "supervisor"
    assert first["olga"]["online"] is False
    assert (first["olga"]["load"], first["olga"]["capacity"]) == (0, 5)
    olga_view = first["olga"]
    assert (olga_view["name"], olga_view["skills"]) == ("Olga Brandt", ["general", "bauamt"])

    olga = await AgentClient.open(gateway.url, "olga", PASSWORD)
    await vera.agents_view(lambda agents: agents["olga"]["online"])
    citizen, conversation_id = await taken_over_by(olga, ws_url)
    busy = await vera.agents_view(lambda agents: agents["olga"]["load"] == 1)
    assert busy["olga"]["conversations"] == [conversation_id]

    await olga.send({"type": "close", "conversation_id": conversation_id})
    await vera.agents_view(lambda agents: agents["olga"]["load"] == 0)
    await olga.close()
    await vera.agents_view(lambda agents: not agents["olga"]["online"])

    # Agents with the role `agent` never get the view.
    assert not [f for f in paul.frames + await paul.settle(0.5) if f["type"] == "agents"]
    await citizen.close()


async def test_agents_of_a_killed_replica_go_offline_in_the_supervisors_view(
    service_dir: Path, redis_url: str, rasa_server: Service, vera: AgentClient
) -> None:
    doomed = start_gateway(service_dir, "gateway-supervised", redis_url, rasa_server.port)
    try:
        olga = await AgentClient.open(doomed.url, "olga", PASSWORD)
        await vera.agents_view(lambda agents: agents["olga"]["online"])
        doomed.stop(signal.SIGKILL)  # no goodbye from olga's socket or her replica
        # Presence expires after PRESENCE_TTL_S (3 s in tests); the view follows on its beat.
        await vera.agents_view(lambda agents: not agents["olga"]["online"])
        await olga.close()
    finally:
        doomed.stop()


async def test_an_agent_sees_only_their_queues_and_their_own_conversations_in_every_frame(
    ws_url: str, olga: AgentClient, paul: AgentClient, vera: AgentClient
) -> None:
    citizen = await citizen_asking_for_a_person(ws_url)  # queue "general"
    conversation_id = str(citizen.session["conversation_id"])
    # The supervisor sees it wait (asserted below from her frames) before Olga takes it.
    await vera.queue_with(conversation_id)
    await olga.queue_with(conversation_id)
    await olga.accept(conversation_id)
    # The supervisor's view is sent when it changes, read on its own beat: wait until it has
    # shown Olga with the conversation before she closes it, or a fast close hides it.
    await vera.agents_view(lambda agents: conversation_id in agents["olga"]["conversations"])
    await citizen.send({"type": "typing", "active": True})
    await citizen.say("Geht es um meinen Bauantrag?")
    await olga.until(lambda f: f["type"] == "message" and f.get("from") == "citizen")
    await olga.send({"type": "typing", "conversation_id": conversation_id, "active": True})
    await olga.say(conversation_id, "Ja, ich schaue nach.")
    await olga.send({"type": "note", "conversation_id": conversation_id, "text": "Akte 7"})
    await olga.until(lambda f: f["type"] == "note")
    await olga.send({"type": "close", "conversation_id": conversation_id})
    await citizen.until(lambda f: f["type"] == "csat_request")

    # Paul serves kfz: not one frame of his mentions Olga's general conversation.
    paul_frames = paul.frames + await paul.settle(1.0)
    assert paul_frames and conversation_id not in json.dumps(paul_frames)
    assert {f["type"] for f in paul_frames} <= {"hello", "queue", "tickets", "unassigned"}
    # The supervisor saw it wait, and with Olga, but not what was said.
    vera_frames = vera.frames + await vera.settle(1.0)
    assert any(i["conversation_id"] == conversation_id
               for f in vera_frames if f["type"] == "queue" for i in f["items"])  # fmt: skip
    assert any(conversation_id in a["conversations"]
               for f in vera_frames if f["type"] == "agents" for a in f["items"])  # fmt: skip
    assert not [f for f in vera_frames if f.get("conversation_id") == conversation_id]
    await citizen.close()


async def test_a_supervisor_transfers_a_colleagues_chat_and_the_colleague_is_told(
    ws_url: str, olga: AgentClient, paul: AgentClient, vera: AgentClient
) -> None:
    citizen, conversation_id = await taken_over_by(olga, ws_url)
    await paul.send({"type": "transfer", "conversation_id": conversation_id, "queue": "bauamt"})
    refused = await paul.until(lambda f: f["type"] == "error")
    assert refused["code"] == "not_assigned" and refused["conversation_id"] == conversation_id

    await vera.send({"type": "transfer", "conversation_id": conversation_id, "queue": "bauamt"})
    told = await olga.until(lambda f: f["type"] == "unassigned")
    assert told == {"type": "unassigned", "conversation_id": conversation_id,
                    "reason": "transferred"}  # fmt: skip
    moved = await citizen.until(lambda f: f.get("state") == "queued" and f["reason"] == "transfer")
    assert moved["position"] == 1

    # The queue shows the transfer; the original reason is kept.
    item = await olga.queue_with(conversation_id)  # olga serves bauamt too
    assert (item["queue"], item["reason"]) == ("bauamt", "transfer")
    assert (item["transferred_from"], item["original_reason"]) == ("general", "citizen_request")
    await olga.say(conversation_id, "Noch da?")
    error = await olga.until(lambda f: f["type"] == "error")
    assert (error["code"], error["conversation_id"]) == ("not_assigned", conversation_id)

    assigned = await olga.accept(conversation_id)  # taken back from the new queue
    context = assigned["context"]
    assert (context["queue"], context["reason"]) == ("bauamt", "transfer")
    assert context["transferred_from"] == "general"
    assert context["original_reason"] == "citizen_request"
    await olga.send({"type": "close", "conversation_id": conversation_id})
    await citizen.until(lambda f: f.get("state") == "closed")
    # Her own close is not announced to her as `unassigned`.
    assert not [f for f in await olga.settle(0.5) if f["type"] == "unassigned"]
    await citizen.close()


async def test_a_supervisor_moves_a_waiting_chat_to_another_queue(
    ws_url: str, paul: AgentClient, vera: AgentClient
) -> None:
    citizen = await citizen_asking_for_a_person(ws_url)  # queue "general"
    conversation_id = citizen.session["conversation_id"]
    await vera.queue_with(conversation_id)
    await vera.send({"type": "transfer", "conversation_id": conversation_id, "queue": "kfz"})
    item = await paul.queue_with(conversation_id)
    assert (item["queue"], item["reason"]) == ("kfz", "transfer")
    assert item["transferred_from"] == "general"
    await citizen.until(lambda f: f.get("state") == "queued" and f["reason"] == "transfer")
    assert (await paul.accept(conversation_id))["type"] == "assigned"
    await citizen.send({"type": "end"})
    told = await paul.until(lambda f: f["type"] == "unassigned")
    assert (told["conversation_id"], told["reason"]) == (conversation_id, "citizen_ended")
    await citizen.close()


async def test_an_agent_back_after_the_grace_period_is_told_the_chat_was_requeued(
    ws_url: str, gateway: Service, desk_agents: None
) -> None:
    olga = await AgentClient.open(gateway.url, "olga", PASSWORD)
    citizen, conversation_id = await taken_over_by(olga, ws_url)
    await olga.close()
    await citizen.until(lambda f: f.get("state") == "queued", timeout=15)  # grace: 1.5 s

    olga = await AgentClient.open(gateway.url, "olga", PASSWORD)
    told = await olga.until(
        lambda f: f["type"] == "unassigned" and f["conversation_id"] == conversation_id
    )
    assert told["reason"] == "requeued"
    await olga.close()
    olga = await AgentClient.open(gateway.url, "olga", PASSWORD)  # told once, not again
    assert not [f for f in await olga.settle(1.0) if f["type"] == "unassigned"]
    await olga.accept(conversation_id)
    await olga.send({"type": "close", "conversation_id": conversation_id})
    await citizen.until(lambda f: f.get("state") == "closed")
    await olga.close()
    await citizen.close()


async def test_errors_name_the_conversation_the_frame_was_about(
    redis_url: str, gateway: Service, desk_agents: None
) -> None:
    redis = connect_redis(Settings(redis_url=redis_url))
    log, queues = ConversationLog(redis, 3600), Queues(redis)
    waiting = []
    for _ in range(2):
        conversation = await log.start(channel="web", language="de")
        queued = {"state": "queued", "queue": "kapazitaet", "reason": "test"}
        await redis.hset(f"bs:conv:{{{conversation.id}}}", mapping=queued)
        await queues.enqueue("kapazitaet", conversation.id)
        waiting.append(conversation.id)
    quentin = await AgentClient.open(gateway.url, "quentin", PASSWORD)  # capacity 1
    assert (await quentin.accept(waiting[0]))["type"] == "assigned"
    full = await quentin.accept(waiting[1])
    assert (full["code"], full["conversation_id"]) == ("at_capacity", waiting[1])

    for frame, code in [
        ({"type": "accept", "conversation_id": "gibt-es-nicht"}, "already_taken"),
        ({"type": "note", "conversation_id": "gibt-es-nicht", "text": "x"}, "not_assigned"),
        ({"type": "message", "conversation_id": waiting[0], "client_id": "c", "text": ""},
         "bad_frame"),
    ]:  # fmt: skip
        await quentin.send(frame)
        error = await quentin.until(lambda f: f["type"] == "error")
        assert (error["code"], error["conversation_id"]) == (code, frame["conversation_id"])
    await quentin.send("kein json")
    error = await quentin.until(lambda f: f["type"] == "error")
    assert error["code"] == "bad_frame" and "conversation_id" not in error

    await quentin.send({"type": "close", "conversation_id": waiting[0]})
    await asyncio.sleep(0.2)
    await queues.remove("kapazitaet", waiting[1])
    await quentin.close()
    await redis.aclose()


async def test_a_citizen_cannot_be_transferred_to_a_queue_nobody_serves_even_by_a_supervisor(
    ws_url: str, vera: AgentClient
) -> None:
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    await vera.send({"type": "transfer", "conversation_id": conversation_id, "queue": "nirgends"})
    error = await vera.until(lambda f: f["type"] == "error")
    assert (error["code"], error["conversation_id"]) == ("unknown_queue", conversation_id)
    await citizen.send({"type": "end"})
    await citizen.until(lambda f: f.get("state") == "closed")
    await citizen.close()
