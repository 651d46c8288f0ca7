"""Handover to people, end to end: real gateways, Redis, Rasa; agents over their socket."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from handover.agents.queues import Queues
from handover.conversation.log import ConversationLog
from handover.ops.redis_connection import connect as connect_redis
from handover.settings import Settings
from tests.agent_client import AgentClient, agent_ws_url, login
from tests.citizen_client import CitizenClient
from tests.services import ROOT, Service, start_gateway

pytestmark = pytest.mark.rasa

PASSWORD = "richtig-geheim-42"


def add_agent(
    redis_url: str, username: str, name: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handover.admin", "add-agent", "--username", username,
         "--password", PASSWORD, "--name", name, *args],
        cwd=ROOT, env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def agents(redis_url: str) -> None:
    for username, name, skills, role in [
        ("alina", "Alina Berger", "general,bauamt", "agent"),
        ("bernd", "Bernd Vogel", "general", "agent"),
        ("sabine", "Sabine Roth", "", "supervisor"),
        ("kim", "Kim Otto", "kfz", "agent"),
    ]:
        done = add_agent(redis_url, username, name, "--skills", skills, "--role", role,
                         "--capacity", "20")  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module", autouse=True)
def empty_general_queue(redis_url: str) -> None:
    """Queue positions here count from 1: chats other modules left waiting are taken out."""

    async def empty() -> None:
        redis = connect_redis(Settings(redis_url=redis_url))
        queues = Queues(redis)
        for conversation_id, _ in await queues.waiting("general"):
            await queues.remove("general", conversation_id)
        await redis.aclose()

    asyncio.run(empty())


@pytest.fixture(scope="module")
def second_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-b", redis_url, rasa_server.port)
    yield service
    service.stop()


@pytest.fixture
async def alina(gateway: Service, agents: None) -> AsyncIterator[AgentClient]:
    agent = await AgentClient.open(gateway.url, "alina", PASSWORD)
    yield agent
    await agent.close()


async def citizen_asking_for_a_person(ws_url: str) -> CitizenClient:
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Hallo")
    await citizen.bot_reply()
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: f["type"] == "state" and f["state"] == "queued")
    return citizen


async def taken_over_by(agent: AgentClient, ws_url: str) -> tuple[CitizenClient, str]:
    """A citizen who asked for a person, and whose chat `agent` has accepted."""
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    await agent.queue_with(conversation_id)
    await agent.accept(conversation_id)
    return citizen, str(conversation_id)


def test_the_admin_command_manages_accounts(redis_url: str, agents: None) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    listed = subprocess.run([sys.executable, "-m", "handover.admin", "list-agents"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "alina\tAlina Berger\tagent\tgeneral,bauamt\t20" in listed.stdout
    bad = add_agent(redis_url, "x y", "Someone")
    assert bad.returncode == 2 and "username" in bad.stderr


async def test_login_gives_a_token_and_the_agent(gateway: Service, agents: None) -> None:
    response = await login(gateway.url, "alina", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["agent"] == {"id": "alina", "name": "Alina Berger", "role": "agent",
                             "skills": ["general", "bauamt"]}  # fmt: skip
    assert len(body["token"]) > 40


async def test_wrong_passwords_get_401_then_429_with_a_growing_wait(
    gateway: Service, agents: None
) -> None:
    statuses = [(await login(gateway.url, "kim", "falsch")).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]  # the free attempts
    refused = await login(gateway.url, "kim", "falsch")  # refused without a password check
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    await asyncio.sleep(1.0)
    assert (await login(gateway.url, "kim", PASSWORD)).status_code == 200


@pytest.mark.parametrize("token", ["", "forged.token.value", "a" * 100])
async def test_a_bad_token_closes_the_agent_socket_with_4401(gateway: Service, token: str) -> None:
    async with connect(agent_ws_url(gateway.url)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_citizen_token_is_no_agent_token(gateway: Service, ws_url: str) -> None:
    citizen = await CitizenClient.open(ws_url)
    async with connect(agent_ws_url(gateway.url)) as socket:
        await socket.send(json.dumps({"type": "auth", "token": citizen.token}))
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    await citizen.close()


async def test_lenas_handover_from_bot_to_agent_and_back(
    ws_url: str, alina: AgentClient, redis_url: str
) -> None:
    citizen = await citizen_asking_for_a_person(ws_url)
    conversation_id = citizen.session["conversation_id"]
    queued = next(f for f in citizen.frames if f.get("state") == "queued")
    assert queued["position"] == 1 and queued["reason"] == "citizen_request"
    assert isinstance(queued["eta_s"], int) and queued["eta_s"] >= 0  # from recent real waits

    item = await alina.queue_with(conversation_id)
    assert item["reason"] == "citizen_request" and item["queue"] == "general"
    assert item["preview"] == "Ich möchte mit einem Mitarbeiter sprechen"
    assert (item["language"], item["channel"]) == ("de", "web")

    assigned = await alina.accept(conversation_id)
    assert assigned["type"] == "assigned"
    transcript = assigned["transcript"]
    citizen_turns = [e for e in transcript if e.get("from") == "citizen"]
    assert [e["nlu"]["intent"]["name"] for e in citizen_turns] == ["greet", "request_human"]
    assert all(e["nlu"]["intent"]["confidence"] > 0.5 for e in citizen_turns)
    assert [e["seq"] for e in transcript] == sorted(e["seq"] for e in transcript)
    assert any(e.get("from") == "bot" for e in transcript)
    assert assigned["context"]["reason"] == "citizen_request"
    assert assigned["context"]["language"] == "de"

    joined = await citizen.until(lambda f: f.get("state") == "with_agent")
    assert joined["agent"] == {"name": "Alina Berger"}

    await alina.say(conversation_id, "Guten Tag, hier ist Alina. Wie kann ich helfen?")
    reply = await citizen.until(lambda f: f["type"] == "message" and f["from"] == "agent")
    assert reply["agent"] == {"name": "Alina Berger"} and reply["text"].startswith("Guten Tag")

    await citizen.send({"type": "typing", "active": True})
    typing = await alina.until(lambda f: f["type"] == "typing")
    assert typing == {"type": "typing", "from": "citizen", "active": True,
                      "conversation_id": conversation_id}  # fmt: skip
    await citizen.say("Mein Haus steht unter Denkmalschutz.")
    heard = await alina.until(lambda f: f["type"] == "message" and f.get("from") == "citizen")
    assert heard["conversation_id"] == conversation_id and "Denkmalschutz" in heard["text"]

    await alina.send({"type": "typing", "conversation_id": conversation_id, "active": True})
    assert (await citizen.until(lambda f: f["type"] == "typing"))["from"] == "agent"

    await alina.send({"type": "note", "conversation_id": conversation_id,
                      "text": "Denkmal: Bauamt fragen"})  # fmt: skip
    note = await alina.until(lambda f: f["type"] == "note")
    assert note["internal"] is True and note["conversation_id"] == conversation_id

    await alina.send({"type": "handback", "conversation_id": conversation_id})
    back = await citizen.until(lambda f: f.get("state") == "bot")
    assert back["reason"] == "handback"
    await citizen.say("Danke")
    assert "gern" in (await citizen.bot_reply())["text"].lower()  # Rasa answers again
    assert not any(f["type"] == "note" for f in citizen.frames)  # notes stay internal
    await citizen.close()


async def test_closing_asks_the_citizen_for_a_rating_and_stores_it(
    ws_url: str, alina: AgentClient, redis_url: str
) -> None:
    citizen, conversation_id = await taken_over_by(alina, ws_url)
    await alina.send({"type": "close", "conversation_id": conversation_id})
    closed = await citizen.until(lambda f: f.get("state") == "closed")
    assert closed["reason"] == "agent_closed"
    await citizen.until(lambda f: f["type"] == "csat_request")
    await citizen.send({"type": "csat", "score": 5, "comment": "Super Hilfe"})
    await asyncio.sleep(0.3)
    redis = connect_redis(Settings(redis_url=redis_url))
    meta = await redis.hgetall(f"bs:conv:{{{conversation_id}}}:csat")
    await redis.aclose()
    assert (meta["csat_score"], meta["csat_comment"]) == ("5", "Super Hilfe")
    await citizen.close()


async def test_only_the_assigned_agent_may_write(
    ws_url: str, gateway: Service, alina: AgentClient
) -> None:
    citizen, conversation_id = await taken_over_by(alina, ws_url)
    bernd = await AgentClient.open(gateway.url, "bernd", PASSWORD)
    await bernd.say(conversation_id, "Hallo, hier Bernd")
    error = await bernd.until(lambda f: f["type"] == "error")
    assert error["code"] == "not_assigned"
    again = await bernd.accept(conversation_id)
    assert again["type"] == "error" and again["code"] == "already_taken"
    await bernd.close()
    await alina.send({"type": "close", "conversation_id": conversation_id})
    await citizen.close()


async def test_a_transfer_puts_the_chat_in_another_queue(
    ws_url: str, gateway: Service, alina: AgentClient
) -> None:
    citizen, conversation_id = await taken_over_by(alina, ws_url)
    await alina.send({"type": "transfer", "conversation_id": conversation_id, "queue": "nowhere"})
    assert (await alina.until(lambda f: f["type"] == "error"))["code"] == "unknown_queue"
    await alina.send({"type": "transfer", "conversation_id": conversation_id, "queue": "bauamt"})
    moved = await citizen.until(lambda f: f.get("state") == "queued" and f["reason"] == "transfer")
    assert moved["position"] == 1
    item = await alina.queue_with(conversation_id)  # alina has the bauamt skill too
    assert item["queue"] == "bauamt"
    await alina.say(conversation_id, "Noch da?")
    assert (await alina.until(lambda f: f["type"] == "error"))["code"] == "not_assigned"
    await alina.accept(conversation_id)
    await alina.send({"type": "close", "conversation_id": conversation_id})
    await citizen.close()


async def test_bad_agent_frames_get_errors_and_the_socket_stays_open(alina: AgentClient) -> None:
    for frame, code in [
        ("kein json", "bad_frame"),
        ('{"type":"dance","conversation_id":"x"}', "bad_frame"),
        ('{"type":"message","conversation_id":"x","client_id":"c","text":""}', "bad_frame"),
        ('{"type":"note","conversation_id":"x","text":"' + "x" * 5000 + '"}', "too_large"),
    ]:
        await alina.send(frame)
        assert (await alina.until(lambda f: f["type"] == "error"))["code"] == code
    await alina.send({"type": "accept", "conversation_id": "does-not-exist"})
    assert (await alina.until(lambda f: f["type"] == "error"))["code"] == "already_taken"


async def test_agents_see_only_queues_of_their_skills(
    ws_url: str, gateway: Service, agents: None
) -> None:
    sabine = await AgentClient.open(gateway.url, "sabine", PASSWORD)  # supervisor: everything
    citizen = await citizen_asking_for_a_person(ws_url)  # queue "general"
    conversation_id = citizen.session["conversation_id"]
    await sabine.queue_with(conversation_id)
    kim = await AgentClient.open(gateway.url, "kim", PASSWORD)  # kfz only
    queue = await kim.until(lambda f: f["type"] == "queue")
    assert all(item["queue"] == "kfz" for item in queue["items"])
    refused = await kim.accept(conversation_id)
    assert refused["type"] == "error" and refused["code"] == "not_assigned"
    await citizen.send({"type": "end"})
    await citizen.until(lambda f: f.get("state") == "closed")
    for agent in (sabine, kim):
        await agent.close()
    await citizen.close()


async def test_a_citizen_and_an_agent_on_different_replicas_talk_live(
    ws_url: str, second_gateway: Service, agents: None
) -> None:
    bernd = await AgentClient.open(second_gateway.url, "bernd", PASSWORD)  # on replica B
    citizen = await citizen_asking_for_a_person(ws_url)  # on replica A
    conversation_id = citizen.session["conversation_id"]
    await bernd.queue_with(conversation_id)
    await bernd.accept(conversation_id)
    await citizen.until(lambda f: f.get("state") == "with_agent")
    await bernd.say(conversation_id, "Hallo von Replik B")
    assert (await citizen.until(lambda f: f.get("from") == "agent"))["text"] == "Hallo von Replik B"
    await citizen.say("Antwort an Replik B")
    heard = await bernd.until(lambda f: f["type"] == "message" and f.get("from") == "citizen")
    assert heard["text"] == "Antwort an Replik B"
    await bernd.send({"type": "close", "conversation_id": conversation_id})
    await citizen.close()
    await bernd.close()


async def test_two_agents_accepting_at_once_never_both_win(
    redis_url: str, gateway: Service, second_gateway: Service, agents: None
) -> None:
    redis = connect_redis(Settings(redis_url=redis_url))
    log, queues = ConversationLog(redis, 3600), Queues(redis)
    alina = await AgentClient.open(gateway.url, "alina", PASSWORD)
    bernd = await AgentClient.open(second_gateway.url, "bernd", PASSWORD)
    outcomes = []
    for _ in range(100):
        conversation = await log.start(channel="web", language="de")
        queued = {"state": "queued", "queue": "general", "reason": "test"}
        await redis.hset(f"bs:conv:{{{conversation.id}}}", mapping=queued)
        await queues.enqueue("general", conversation.id)
        results = await asyncio.gather(alina.accept(conversation.id), bernd.accept(conversation.id))
        winners = [(agent, r) for agent, r in zip((alina, bernd), results, strict=True)
                   if r["type"] == "assigned"]  # fmt: skip
        losers = [r for r in results if r["type"] == "error"]
        outcomes.append((len(winners), [r["code"] for r in losers]))
        winner = winners[0][0] if winners else None
        if winner is not None:
            await winner.send({"type": "close", "conversation_id": conversation.id})
    assert outcomes == [(1, ["already_taken"])] * 100
    await alina.close()
    await bernd.close()
    await redis.aclose()


@pytest.fixture(scope="module")
def own_queue_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    """A gateway whose handovers go to a queue no other test uses."""
    for username, name in [("greta", "Greta Lang"), ("hans", "Hans Ebert")]:
        assert add_agent(redis_url, username, name, "--skills", "nachfrage").returncode == 0
    service = start_gateway(service_dir, "gateway-own-queue", redis_url, rasa_server.port,
                            env={"DEFAULT_QUEUE": "nachfrage"})  # fmt: skip
    yield service
    service.stop()


async def test_an_agent_who_drops_gets_a_grace_period_then_the_chat_goes_back_to_the_queue(
    own_queue_gateway: Service,
) -> None:
    gateway = own_queue_gateway
    greta = await AgentClient.open(gateway.url, "greta", PASSWORD)
    earlier = await citizen_asking_for_a_person(ws(gateway))  # waits in the normal band
    citizen = await citizen_asking_for_a_person(ws(gateway))
    conversation_id = citizen.session["conversation_id"]
    await greta.queue_with(conversation_id)
    await greta.accept(conversation_id)
    await greta.close()

    # Back within the grace period (1.5 s in tests): nothing changed.
    greta = await AgentClient.open(gateway.url, "greta", PASSWORD)
    again = await greta.until(
        lambda f: f["type"] == "assigned" and f["conversation_id"] == conversation_id
    )
    assert again["context"]["reason"] == "citizen_request"
    await asyncio.sleep(2.5)
    await greta.say(conversation_id, "Ich bin noch da.")
    await citizen.until(lambda f: f.get("from") == "agent")
    await greta.close()

    # Gone for longer: the conversation goes back to the head of its queue,
    # ahead of one that has waited since before it.
    lost = await citizen.until(lambda f: f.get("state") == "queued", timeout=15)
    assert lost["reason"] == "agent_disconnected" and lost["position"] == 1
    assert any("unterbrochen" in f.get("text", "") for f in citizen.frames)
    hans = await AgentClient.open(gateway.url, "hans", PASSWORD)
    head = await hans.until(lambda f: f["type"] == "queue" and len(f["items"]) == 2)
    assert [i["conversation_id"] for i in head["items"]] == [
        conversation_id,
        earlier.session["conversation_id"],
    ]
    for waiting in (conversation_id, earlier.session["conversation_id"]):
        await hans.accept(waiting)
        await hans.send({"type": "close", "conversation_id": waiting})
    await hans.close()
    await citizen.close()
    await earlier.close()


def ws(service: Service) -> str:
    return service.url.replace("http://", "ws://") + "/ws/chat"


@pytest.fixture(scope="module")
def after_hours_gateway(
    service_dir: Path, redis_url: str, rasa_server: Service
) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-after-hours", redis_url, rasa_server.port,
                            env={"SERVICE_HOURS": "Mo 00:00-00:01"})  # fmt: skip
    yield service
    service.stop()


async def test_after_hours_the_citizen_leaves_a_message_that_agents_see(
    after_hours_gateway: Service, gateway: Service, agents: None
) -> None:
    ws_url = after_hours_gateway.url.replace("http://", "ws://") + "/ws/chat"
    citizen = await CitizenClient.open(ws_url)
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    offline = await citizen.until(lambda f: "niemand" in f.get("text", ""))
    assert "Mo 00:00-00:01" in offline["text"]
    await citizen.say("Ich brauche Hilfe mit meinem Bauantrag.")
    ask = await citizen.until(
        lambda f: "E-Mail-Adresse" in f.get("text", "") and f["seq"] > offline["seq"]
    )
    assert ask["from"] == "bot"
    await citizen.say("Erreichbar unter lena@example.org")
    saved = await citizen.until(lambda f: "Vorgang T-" in f.get("text", ""))
    await citizen.until(lambda f: f.get("state") == "closed")
    ticket_id = saved["text"].split("Vorgang ")[1].split(")")[0]

    sabine = await AgentClient.open(gateway.url, "sabine", PASSWORD)
    tickets = await sabine.until(lambda f: f["type"] == "tickets")
    ticket = next(t for t in tickets["items"] if t["id"] == ticket_id)
    assert ticket["contact"] == "lena@example.org"
    assert (
        "Bauantrag" in ticket["text"]
        and ticket["conversation_id"] == citizen.session["conversation_id"]
    )
    await sabine.close()
    await citizen.close()


async def test_the_agent_api_is_not_reachable_with_bad_input(gateway: Service) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{gateway.url}/api/agent/login", json={"username": "alina"})
        assert response.status_code == 422


async def test_the_operator_sees_queues_waits_messages_and_replicas_in_the_metrics(
    gateway: Service, ws_url: str, agents: None
) -> None:
    alina = await AgentClient.open(gateway.url, "alina", PASSWORD)
    try:
        citizen, _ = await taken_over_by(alina, ws_url)
        await citizen.close()
    finally:
        await alina.close()
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url + "/metrics")).text
    for metric in (
        'gateway_queue_length{queue="general"}',
        'gateway_queue_wait_seconds_count{queue="general"}',
        'gateway_channel_messages_total{channel="web",direction="in"}',
        "gateway_rasa_replicas_up 1.0",
        'gateway_open_sockets{side="citizen"}',
        "gateway_bot_turn_seconds_count",
    ):
        assert metric in text, metric
