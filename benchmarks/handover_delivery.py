"""Citizen → agent delivery through one gateway process (issue: handover service).

500 conversations are with 25 agents (20 each), all connected to one gateway
process; the load generator holds every citizen and agent socket. Figures:

- delivery latency: citizens write like people (a message every 0.5–1.5 s,
  ≈ 500 messages/s in all); time from the citizen's send to the agent's receipt.
- relay throughput: every citizen sends a burst at once; messages per second
  until the agents have received them all.
- memory per idle citizen connection, and 5,000 idle connections held: the
  gateway's resident memory before and after opening them.

Targets: p95 ≤ 20 ms; ≥ 5,000 messages/s; ≤ 30 KB per idle connection.
No Rasa is involved: the conversations are set up as already handed over.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from benchmarks.latency import percentile
from handover.agents.directory import AgentDirectory
from handover.agents.queues import agent_conversations_key
from handover.conversation.log import ConversationLog
from handover.ops.redis_connection import connect as connect_redis
from handover.settings import Settings
from tests.agent_client import connect_agent, login
from tests.services import Service, free_port, start_gateway, start_redis

AGENTS = 25
PER_AGENT = 20
CONVERSATIONS = AGENTS * PER_AGENT
LATENCY_MESSAGES = 8
BURST = 20
IDLE = 5000
PASSWORD = "bench-password-1234"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def set_up(redis_url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Agents and conversations already with them; returns usernames and (id, token)."""
    redis = connect_redis(Settings(redis_url=redis_url))
    directory, log = AgentDirectory(redis), ConversationLog(redis, 3600)
    usernames, conversations = [], []
    for a in range(AGENTS):
        username = f"bench{a:02d}"
        await directory.save(username=username, password=PASSWORD, name=f"Agent {a}",
                             skills=["general"], capacity=PER_AGENT)  # fmt: skip
        usernames.append(username)
        for _ in range(PER_AGENT):
            conversation = await log.start(channel="web", language="de")
            await redis.hset(f"bs:conv:{{{conversation.id}}}", mapping={
                "state": "with_agent", "queue": "general", "agent": username,
                "agent_name": f"Agent {a}"})  # fmt: skip
            await redis.sadd(agent_conversations_key(username), conversation.id)
            conversations.append((conversation.id, conversation.token))
    await redis.aclose()
    return usernames, conversations


class AgentSide:
    """All agent sockets; records when each citizen message arrives."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.arrived = asyncio.Event()
        self.expected = 0

    async def run(self, socket: ClientConnection) -> None:
        async for raw in socket:
            frame = json.loads(raw)
            if frame.get("type") == "message" and frame.get("from") == "citizen":
                self.received[frame["text"]] = time.perf_counter()
                if len(self.received) >= self.expected:
                    self.arrived.set()


async def citizen_messages(
    socket: ClientConnection, sent: dict[str, float], pauses: list[float]
) -> None:
    for pause in pauses:
        await asyncio.sleep(pause)
        text = uuid.uuid4().hex
        sent[text] = time.perf_counter()
        await socket.send(json.dumps({"type": "message", "client_id": text, "text": text}))


async def drain(socket: ClientConnection) -> None:
    async for _ in socket:
        pass


async def measure(
    gateway: Service, usernames: list[str], conversations: list[tuple[str, str]]
) -> dict[str, Any]:
    ws_base = gateway.url.replace("http://", "ws://")
    agents = AgentSide()
    agent_sockets = []
    for username in usernames:
        token = (await login(gateway.url, username, PASSWORD)).json()["token"]
        agent_sockets.append(await connect_agent(gateway.url, token, max_size=2**24))
    agent_tasks = [asyncio.create_task(agents.run(s)) for s in agent_sockets]
    citizens = [await connect(f"{ws_base}/ws/chat") for _ in conversations]
    for socket, (_, token) in zip(citizens, conversations, strict=True):
        await socket.send(json.dumps({"type": "hello", "token": token}))
        json.loads(await socket.recv())  # session
    citizen_tasks = [asyncio.create_task(drain(s)) for s in citizens]
    await asyncio.sleep(1.0)  # let agents finish receiving their assignments

    # Delivery latency at a human pace.
    sent: dict[str, float] = {}
    rng = random.Random(7)
    agents.expected = CONVERSATIONS * LATENCY_MESSAGES
    await asyncio.gather(*(
        citizen_messages(s, sent, [rng.uniform(0.5, 1.5) for _ in range(LATENCY_MESSAGES)])
        for s in citizens
    ))  # fmt: skip
    await asyncio.wait_for(agents.arrived.wait(), 60)
    latencies = [agents.received[text] - started for text, started in sent.items()]

    # Relay throughput: everyone at once.
    agents.received.clear()
    agents.arrived.clear()
    agents.expected = CONVERSATIONS * BURST
    sent.clear()
    started, cpu_before = time.perf_counter(), cpu_s(gateway.process.pid)
    await asyncio.gather(*(citizen_messages(s, sent, [0.0] * BURST) for s in citizens))
    await asyncio.wait_for(agents.arrived.wait(), 120)
    burst_s = time.perf_counter() - started
    burst_cpu_s = cpu_s(gateway.process.pid) - cpu_before

    for task in citizen_tasks + agent_tasks:
        task.cancel()
    for socket in citizens + agent_sockets:
        await socket.close()
    return {
        "messages": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "throughput_msg_s": CONVERSATIONS * BURST / burst_s,
        # The load generator shares the 2 cores: what one gateway process relays
        # per second of its own CPU is its capacity when it has a core to itself.
        "gateway_cpu_busy": burst_cpu_s / burst_s,
        "msg_per_gateway_cpu_s": CONVERSATIONS * BURST / burst_cpu_s,
    }


HELLO = json.dumps({"type": "hello"})


async def idle_connections(gateway: Service) -> dict[str, Any]:
    url = gateway.url.replace("http://", "ws://") + "/ws/chat"
    # Warm up allocator and code paths so the baseline is not the cold process.
    warm = [await connect(url) for _ in range(50)]
    for socket in warm:
        await socket.send(HELLO)
        await socket.recv()
        await socket.close()
    await asyncio.sleep(1.0)
    before = rss_kb(gateway.process.pid)
    sockets = []
    for start in range(0, IDLE, 250):
        batch = await asyncio.gather(*(connect(url) for _ in range(start, min(IDLE, start + 250))))
        await asyncio.gather(*(socket.send(HELLO) for socket in batch))
        await asyncio.gather(*(socket.recv() for socket in batch))
        sockets.extend(batch)
    await asyncio.sleep(2.0)
    after = rss_kb(gateway.process.pid)
    alive = sum(1 for socket in sockets if socket.state.name == "OPEN")
    for socket in sockets:
        await socket.close()
    return {"idle_connections": alive, "kb_per_idle_connection": (after - before) / IDLE,
            "gateway_rss_mb": after / 1024}  # fmt: skip


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-handover-"))
    redis = start_redis(tmp)
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    gateway = start_gateway(
        tmp, "gateway", redis_url, free_port(),
        env={"LOG_LEVEL": "warning", "CITIZEN_MESSAGE_LIMITS": "6000/minute",
             "SEND_QUEUE_FRAMES": "4096"},
    )  # fmt: skip
    try:
        usernames, conversations = asyncio.run(set_up(redis_url))
        figures = asyncio.run(measure(gateway, usernames, conversations))
        figures.update(asyncio.run(idle_connections(gateway)))
    finally:
        gateway.stop()
        redis.stop()
    print(f"Citizen → agent delivery, {CONVERSATIONS} conversations, {AGENTS} agents, 1 gateway")
    print(
        f"  latency ({figures['messages']} messages at a human pace): "
        f"p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms   (target p95 ≤ 20 ms)"
    )
    print(
        f"  relay throughput: {figures['throughput_msg_s']:,.0f} messages/s with the gateway "
        f"{figures['gateway_cpu_busy']:.0%} busy; {figures['msg_per_gateway_cpu_s']:,.0f} "
        "messages per gateway CPU-second   (target ≥ 5,000/s)"
    )
    print(f"  idle citizen connections held: {figures['idle_connections']:,}; "
          f"{figures['kb_per_idle_connection']:.1f} KB each   (target ≤ 30 KB); "
          f"gateway RSS {figures['gateway_rss_mb']:.0f} MB")  # fmt: skip
    return figures


if __name__ == "__main__":
    run()
