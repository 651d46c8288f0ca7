"""The multi-node layout of `make run-cluster`, started as it starts it, on free ports:
nginx, three gateways, two Rasa replicas, two action servers, Redis with a replica and
three sentinels. Everything goes through nginx, as citizens' and agents' browsers would.

A citizen talks to the bot and is handed to an agent (whose socket may be on another
replica); then a gateway replica is killed (-9) and the citizen's and the agent's
sockets come back through nginx (to another replica) and receive exactly what they missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.sentinel import Sentinel

from handover import keys
from handover.ops.cluster import Layout, cluster_commands
from handover.ops.stack import ProcessCommand
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.chaos_clients import ChaosAgent, ChaosCitizen
from tests.citizen_client import CitizenClient
from tests.services import (
    ACTION_SERVER_TOKEN,
    CASE_API_TOKEN,
    RASA_JWT_SECRET,
    RASA_MODEL,
    UNLIMITED_ADDRESS,
    Service,
    free_port,
    http_ok,
    start,
)
from tests.test_handover import PASSWORD, add_agent

pytestmark = pytest.mark.rasa

# 200 conversations by default, as the issue asks; CHAOS_CONVERSATIONS scales it. A fifth
# talk to the bot; the others are with agents of up to 20 chats each.
CONVERSATIONS = int(os.environ.get("CHAOS_CONVERSATIONS", "200"))
AGENTS = -(-CONVERSATIONS * 4 // 5 // 20)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


@dataclass
class Cluster:
    layout: Layout
    services: dict[str, Service]
    commands: dict[str, ProcessCommand]
    ports: dict[str, int]
    tmp: Path

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.layout.public_port}"

    def start(self, name: str) -> None:
        """(Re)start process `name` where it was."""
        command = self.commands[name]
        self.services[name] = start(command.argv, self.ports[name], name, self.tmp,
                                    env=command.env)  # fmt: skip
        self.services[name].wait_ready(lambda: listening(self.ports[name]), 60, name)

    def primary(self) -> Redis:
        sentinels = [("127.0.0.1", port) for port in self.layout.sentinels]
        return Sentinel(sentinels).master_for("buergerservice", decode_responses=True)


@pytest.fixture(scope="module")
def cluster(service_dir: Path) -> Iterator[Cluster]:
    tmp = service_dir / "cluster"
    tmp.mkdir()
    layout = Layout(
        public_port=free_port(), actions_port=free_port(),
        gateways=(free_port(), free_port(), free_port()), rasas=(free_port(), free_port()),
        actions=(free_port(), free_port()), redis_primary=free_port(),
        redis_replica=free_port(), sentinels=(free_port(), free_port(), free_port()),
        # Conversations go to the least busy agent at once (no accept race to stage).
        # Every test client comes from 127.0.0.1: per-address budgets are tested elsewhere.
        extra_env={"SERVICE_HOURS": "always", "AGENT_GRACE_S": "30", "AUTO_ASSIGN": "true",
                   **UNLIMITED_ADDRESS},
    )  # fmt: skip
    settings = Settings(data_dir=tmp, rasa_model=RASA_MODEL, case_api_token=CASE_API_TOKEN,
                        rasa_jwt_secret=RASA_JWT_SECRET,
                        action_server_token=ACTION_SERVER_TOKEN)  # fmt: skip
    commands = cluster_commands(settings, layout)
    ports = {"redis-primary": layout.redis_primary, "redis-replica": layout.redis_replica,
             "nginx": layout.public_port,
             **{f"sentinel-{n}": p for n, p in enumerate(layout.sentinels)},
             **{f"actions-{n}": p for n, p in enumerate(layout.actions)},
             **{f"rasa-{n}": p for n, p in enumerate(layout.rasas)},
             **{f"gateway-{n}": p for n, p in enumerate(layout.gateways)}}  # fmt: skip
    started: dict[str, Service] = {}
    try:
        for name, command in commands.items():  # Redis first, nginx last: the dict's order
            started[name] = start(command.argv, ports[name], name, tmp, env=command.env)
            if name.startswith(("redis", "sentinel", "nginx")):
                started[name].wait_ready(lambda p=ports[name]: listening(p), 20, name)
        for name in commands:
            if name.startswith("rasa"):
                url = f"http://127.0.0.1:{ports[name]}/webhooks/gateway/"
                started[name].wait_ready(lambda u=url: http_ok(u), 300, name)
        public = f"http://127.0.0.1:{layout.public_port}"
        for name in commands:
            if name.startswith("gateway"):
                url = f"http://127.0.0.1:{ports[name]}/healthz"
                started[name].wait_ready(lambda u=url: http_ok(u), 60, name)
        started["nginx"].wait_ready(lambda: http_ok(public + "/healthz"), 30, "nginx")
        sentinels = ",".join(f"127.0.0.1:{p}" for p in layout.sentinels)
        for username, name in [
            ("cl-alina", "Alina Berger"),
            *((f"cl-agent-{n}", f"Agent {n}") for n in range(AGENTS)),
        ]:
            added = add_agent(f"redis+sentinel://{sentinels}/buergerservice", username, name,
                              "--skills", "general,buergerbuero", "--capacity", "20")  # fmt: skip
            assert added.returncode == 0, added.stderr
        yield Cluster(layout, started, commands, ports, tmp)
    finally:
        for service in reversed(list(started.values())):
            service.stop()


async def test_a_conversation_survives_a_gateway_replica_killed_behind_nginx(
    cluster: Cluster,
) -> None:
    layout, services, public = cluster.layout, cluster.services, cluster.public
    ws = public.replace("http://", "ws://") + "/ws/chat"
    async with httpx.AsyncClient(timeout=10) as http:
        health = (await http.get(public + "/healthz")).json()
    assert health["redis_primary"] == f"127.0.0.1:{layout.redis_primary}", health
    assert health["rasa"] == "ok"

    citizen = await CitizenClient.open(ws)
    alina = await AgentClient.open(public, "cl-alina", PASSWORD)
    try:
        reply = await citizen.answer("Was kostet ein Personalausweis?", 90)
        assert "Personalausweis" in reply["text"]
        await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
        cid = citizen.session["conversation_id"]
        # AUTO_ASSIGN: the only agent online takes it.
        await alina.until(lambda f: f.get("type") == "assigned" and f["conversation_id"] == cid, 90)
        await alina.say(cid, "Guten Tag, hier ist Alina.")
        heard = await citizen.until(lambda f: f.get("from") == "agent", 30)
        token, seen = citizen.token, int(heard["seq"])
    finally:
        await citizen.close()

    # A gateway replica dies without a goodbye; whoever was on it comes back through nginx.
    services["gateway-0"].stop(signal.SIGKILL)
    await alina.close()
    alina = await AgentClient.open(public, "cl-alina", PASSWORD)
    try:
        await alina.until(lambda f: f.get("type") == "assigned" and f["conversation_id"] == cid)
        await alina.say(cid, "Sind Sie noch da?")
        await asyncio.sleep(0.5)
        back = await CitizenClient.open(ws, token=token, after=seen)
        missed = await back.until(lambda f: f.get("from") == "agent", 30)
        assert missed["text"] == "Sind Sie noch da?" and missed["seq"] > seen
        await back.say("Ja, ich bin da.")
        heard = await alina.until(
            lambda f: f.get("from") == "citizen" and f.get("text") == "Ja, ich bin da.", 30
        )
        assert heard["conversation_id"] == cid
        await back.close()
    finally:
        await alina.close()


async def settled(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not settled: {what}"
        await asyncio.sleep(0.5)


async def test_under_load_a_killed_gateway_rasa_redis_primary_and_nginx_lose_nothing(
    cluster: Cluster,
) -> None:
    """CONVERSATIONS conversations, four fifths with agents, while a gateway replica, a Rasa replica
    and the Redis primary are killed (-9) and nginx is stopped and started again."""
    if cluster.services["gateway-0"].process.poll() is not None:
        cluster.start("gateway-0")  # the test above killed it
    ws = cluster.public.replace("http://", "ws://") + "/ws/chat"
    agents = [ChaosAgent(cluster.public, f"cl-agent-{n}", PASSWORD) for n in range(AGENTS)]
    for agent in agents:
        await agent.open()
    with_bot = CONVERSATIONS // 5
    citizens = [ChaosCitizen(ws) for _ in range(CONVERSATIONS)]
    for n in range(0, len(citizens), 20):
        await asyncio.gather(*(c.open() for c in citizens[n : n + 20]))
    tasks = [asyncio.create_task(x.run()) for x in [*agents, *citizens]]
    try:
        for n, citizen in enumerate(citizens[with_bot:]):
            await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
            if n % 10 == 9:
                await asyncio.sleep(0.5)  # Rasa takes about 20 turns a second on two cores
        await settled(lambda: all(c.state == "with_agent" for c in citizens[with_bot:]), 180,
                      "every handover taken by an agent")  # fmt: skip

        async def load() -> None:
            tick = 0
            while True:
                for citizen in citizens[with_bot:]:
                    await citizen.say(f"Frage {tick}")
                if tick % 5 == 0:
                    for citizen in citizens[:with_bot]:
                        await citizen.say("Was kostet ein Personalausweis?")
                tick += 1
                # One message every 4 s per conversation: within CITIZEN_MESSAGE_LIMITS.
                await asyncio.sleep(4.0)

        loader = asyncio.create_task(load())
        await asyncio.sleep(8)
        cluster.services["gateway-1"].stop(signal.SIGKILL)
        await asyncio.sleep(8)
        cluster.services["rasa-0"].stop(signal.SIGKILL)
        await asyncio.sleep(8)
        cluster.services["redis-primary"].stop(signal.SIGKILL)
        await asyncio.sleep(10)
        cluster.start("redis-primary")  # back as a replica of the promoted one
        await asyncio.sleep(4)
        cluster.services["nginx"].stop(signal.SIGTERM)
        await asyncio.sleep(3)
        cluster.start("nginx")
        await asyncio.sleep(8)
        loader.cancel()
        await settled(lambda: not any(c.pending for c in citizens), 120,
                      "every citizen message acknowledged: "
                      f"{sum(len(c.pending) for c in citizens)} pending")  # fmt: skip
        await settled(lambda: all(set(a.replies) <= a.acked for a in agents), 120,
                      "every agent reply acknowledged")  # fmt: skip

        # Every conversation goes on: the bot answers, the agents hear.
        before = [c.bot_replies for c in citizens[:with_bot]]
        for citizen in citizens:
            await citizen.say("Und noch eine Frage")
        await settled(lambda: all(c.bot_replies > b for c, b in
                                  zip(citizens[:with_bot], before, strict=True)), 120,
                      "the bot answers after the chaos")  # fmt: skip
        await settled(lambda: not any(c.pending for c in citizens), 60, "the last messages")
        # The agents answer those too: a reply still on its way when the clients stop is
        # not lost (the console sends it again), so wait until every one is acknowledged.
        await settled(lambda: all(set(a.replies) <= a.acked for a in agents), 60,
                      "every agent reply acknowledged, the last ones too")  # fmt: skip
        await asyncio.sleep(3)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    primary = cluster.primary()
    sent = sum(c.sent for c in citizens)
    acknowledged = set().union(*(c.acked for c in citizens))
    stored: Counter[str] = Counter()
    agent_messages = replies_recorded = undelivered = accepted_twice = 0
    recorded_replies: set[str] = set()
    for citizen in citizens:
        cid = citizen.conversation_id
        events = [{**json.loads(fields["e"]), "seq": int(entry.partition("-")[2])}
                  for entry, fields in primary.xrange(keys.conversation_log(cid))]  # fmt: skip
        for event in events:
            if event["type"] == "message" and event["from"] == "citizen":
                stored[event.get("client_id", "")] += 1
            elif event["type"] == "message" and event["from"] == "agent":
                agent_messages += 1
                undelivered += event["seq"] not in citizen.events
        # Agent messages are de-duplicated by their client id in the conversation's
        # clients hash ("agent:<id>" → the one seq it was stored at).
        clients = primary.hgetall(keys.conversation_clients(cid))
        replies = {k.removeprefix("agent:"): int(v) for k, v in clients.items()
                   if k.startswith("agent:")}  # fmt: skip
        recorded_replies |= set(replies)
        replies_recorded += len(set(replies.values()))
        states = [e["state"] for e in events if e["type"] == "state"]
        # Taken twice without leaving the agent between (a requeue after a lost agent and
        # a new accept is not that).
        accepted_twice += any(a == b == "with_agent" for a, b in pairwise(states))
    # Lost: acknowledged to the agent's console, yet not in the log (as for citizens). An
    # agent may also have answered a conversation the test before left in its queue.
    sent_replies = set().union(*(set(a.replies) & a.acked for a in agents))
    answered_elsewhere = {cid for a in agents for cid in a.replies.values()} - {
        c.conversation_id for c in citizens
    }
    for cid in answered_elsewhere:
        recorded_replies |= {k.removeprefix("agent:") for k in
                             primary.hkeys(keys.conversation_clients(cid))}  # fmt: skip
    lost = len([c for c in acknowledged if stored[c] == 0])
    duplicated = len([c for c, n in stored.items() if n > 1])
    lost_replies = len(sent_replies - recorded_replies)
    # More agent messages in the logs than distinct replies recorded: one was stored twice.
    duplicated_replies = agent_messages - replies_recorded
    report = {
        "conversations": len(citizens), "citizen messages sent": sent,
        "refused (over budget)": sum(c.refused for c in citizens),
        "acknowledged": len(acknowledged), "stored": sum(stored.values()),
        "agent replies": len(sent_replies), "agent messages stored": agent_messages,
        "lost": lost, "duplicated": duplicated, "agent replies lost": lost_replies,
        "agent replies duplicated": duplicated_replies,
        "agent messages not delivered to the citizen": undelivered,
        "conversations accepted twice": accepted_twice,
        "citizen reconnects": sum(c.reconnects for c in citizens),
        "agent reconnects": sum(a.reconnects for a in agents),
    }  # fmt: skip
    print("\nchaos:", json.dumps(report, ensure_ascii=False))
    assert (lost, duplicated, lost_replies, duplicated_replies, undelivered, accepted_twice) == (
        0, 0, 0, 0, 0, 0,
    ), report  # fmt: skip
