"""Failures the handover must survive: a replica killed mid-conversation, a Redis restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.services import Service, start_gateway, start_redis
from tests.test_handover import PASSWORD, add_agent, citizen_asking_for_a_person, ws

pytestmark = pytest.mark.rasa


async def test_a_replica_killed_mid_conversation_loses_and_duplicates_nothing(
    service_dir: Path, redis_url: str, rasa_server: Service, gateway: Service
) -> None:
    assert add_agent(redis_url, "dana", "Dana Kraus", "--skills", "general").returncode == 0
    doomed = start_gateway(service_dir, "gateway-doomed", redis_url, rasa_server.port)
    dana = await AgentClient.open(gateway.url, "dana", PASSWORD)  # agent on the survivor
    citizen = await citizen_asking_for_a_person(ws(doomed))  # citizen on the doomed one
    conversation_id = citizen.session["conversation_id"]
    await dana.queue_with(conversation_id)
    await dana.accept(conversation_id)
    await dana.say(conversation_id, "Nachricht 1")
    await citizen.until(lambda f: f.get("text") == "Nachricht 1")
    seen = max(f["seq"] for f in citizen.durable())

    doomed.stop(signal.SIGKILL)
    for text in ("Nachricht 2", "Nachricht 3"):
        await dana.say(conversation_id, text)
        await dana.until(lambda f, t=text: f["type"] == "ack")

    again = await CitizenClient.open(ws(gateway), token=citizen.token, after=seen)
    assert again.session["conversation_id"] == conversation_id
    missed = [await again.receive() for _ in range(2)]
    assert [f["text"] for f in missed] == ["Nachricht 2", "Nachricht 3"]
    assert [f["seq"] for f in missed] == [seen + 1, seen + 2]
    with pytest.raises(TimeoutError):
        await again.receive(timeout=0.5)  # nothing twice

    await again.say("Bin wieder da", client_id="after-crash")
    await again.say("Bin wieder da", client_id="after-crash")  # a retry after the crash
    heard = await dana.until(
        lambda f: f.get("from") == "citizen" and f.get("text") == "Bin wieder da"
    )
    assert heard["seq"] > seen + 2
    with pytest.raises(TimeoutError):
        await dana.until(lambda f: f.get("from") == "citizen", timeout=1.0)  # not duplicated
    await dana.send({"type": "close", "conversation_id": conversation_id})
    await dana.close()
    await again.close()


async def test_queues_states_and_logs_survive_a_redis_restart(
    service_dir: Path, rasa_server: Service
) -> None:
    redis = start_redis(service_dir, "redis-aof", appendonly=True)
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    gateway = start_gateway(service_dir, "gateway-aof", redis_url, rasa_server.port)
    try:
        assert add_agent(redis_url, "emil", "Emil Hahn", "--skills", "general").returncode == 0
        emil = await AgentClient.open(gateway.url, "emil", PASSWORD)
        citizen = await citizen_asking_for_a_person(ws(gateway))
        conversation_id = citizen.session["conversation_id"]
        await emil.queue_with(conversation_id)
        before = [f["seq"] for f in citizen.durable()]
        await emil.close()
        await citizen.close()

        redis.stop()
        await asyncio.sleep(0.5)
        redis = start_redis(service_dir, "redis-aof", appendonly=True, port=redis.port)

        emil = await AgentClient.open(gateway.url, "emil", PASSWORD)
        item = await emil.queue_with(conversation_id)  # the queue survived
        assert item["reason"] == "citizen_request"
        again = await CitizenClient.open(ws(gateway), token=citizen.token)
        assert again.session["state"] == "queued"  # the state survived
        replay = [await again.receive() for _ in before]
        assert [f["seq"] for f in replay] == before  # the log survived
        await emil.accept(conversation_id)
        await again.until(lambda f: f.get("state") == "with_agent")
        await emil.close()
        await again.close()
    finally:
        gateway.stop()
        redis.stop()
