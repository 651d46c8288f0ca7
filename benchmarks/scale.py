"""Scale-out on this machine: bot turns with one and two Rasa replicas, relay through nginx
with one and three gateway replicas, in one run (docs/operations.md).

1. Bot turns: 16 conversations send intent-only turns back to back ("Hallo", "Bist du ein
   Bot?", "Danke") for BENCH_SCALE_SECONDS each way: through a gateway whose RASA_URLS names
   one Rasa replica, then through one that names two (each replica with its own action
   server, trackers and locks in the same Redis). Turns per second and p95.
2. Relay: 500 conversations already with 25 agents (as handover_delivery sets them up), every
   citizen sending a burst of 20 through nginx (the cluster layout's configuration), to one
   gateway replica and then to three. Messages per second until the agents have them all.

This machine has two cores, and the load generator shares them: a second Rasa can use the
second core, a third gateway no core of its own. On n cores the ratios would approach the
number of replicas until Redis (one core, ~100k simple commands/s) or nginx is the limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from benchmarks.handover_delivery import (
    BURST,
    CONVERSATIONS,
    PASSWORD,
    AgentSide,
    citizen_messages,
    drain,
    set_up,
)
from benchmarks.latency import percentile
from handover.ops.cluster import Layout, nginx_config
from handover.ops.private_files import private_directory, write_private_file
from tests.agent_client import connect_agent, login
from tests.citizen_client import CitizenClient
from tests.services import (
    UNLIMITED_ADDRESS,
    Service,
    free_port,
    http_ok,
    start,
    start_actions,
    start_gateway,
    start_rasa,
    start_redis,
)

SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "20"))
TALKERS = 16
TURNS = ["Hallo", "Bist du ein Bot?", "Danke"]


async def bot_turns(gateway: Service) -> dict[str, float]:
    ws = gateway.url.replace("http://", "ws://") + "/ws/chat"
    latencies: list[float] = []
    stop = time.monotonic() + SECONDS

    async def talk(n: int) -> None:
        citizen = await CitizenClient.open(ws)
        try:
            turn = n
            while time.monotonic() < stop:
                started = time.perf_counter()
                await citizen.answer(TURNS[turn % len(TURNS)], 60)
                latencies.append(time.perf_counter() - started)
                turn += 1
        finally:
            await citizen.close()

    await asyncio.gather(*(talk(n) for n in range(4)))  # warm-up, not counted
    latencies.clear()
    stop = time.monotonic() + SECONDS
    began = time.monotonic()
    await asyncio.gather(*(talk(n) for n in range(TALKERS)))
    elapsed = time.monotonic() - began
    return {"turns_per_s": len(latencies) / elapsed,
            "p95_ms": percentile(latencies, 95) * 1000}  # fmt: skip


async def relay(public_url: str, usernames: list[str], conversations: list[Any]) -> float:
    """Messages per second from all citizens' bursts until the agents have them all."""
    ws_base = public_url.replace("http://", "ws://")
    agents = AgentSide()
    agent_sockets = []
    for username in usernames:
        token = (await login(public_url, username, PASSWORD)).json()["token"]
        agent_sockets.append(await connect_agent(public_url, token, max_size=2**24))
    tasks = [asyncio.create_task(agents.run(s)) for s in agent_sockets]
    citizens = []
    for _, token in conversations:
        socket = await connect(f"{ws_base}/ws/chat")
        await socket.send(json.dumps({"type": "hello", "token": token}))
        json.loads(await socket.recv())
        citizens.append(socket)
    tasks += [asyncio.create_task(drain(s)) for s in citizens]
    await asyncio.sleep(1.0)
    agents.expected = len(conversations) * BURST
    sent: dict[str, float] = {}
    started = time.perf_counter()
    await asyncio.gather(*(citizen_messages(s, sent, [0.0] * BURST) for s in citizens))
    await asyncio.wait_for(agents.arrived.wait(), 180)
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    for socket in citizens + agent_sockets:
        await socket.close()
    return len(conversations) * BURST / elapsed


def start_nginx(tmp: Path, gateways: tuple[int, ...]) -> Service:
    run_dir = tmp / f"nginx-{len(gateways)}"
    private_directory(run_dir)
    layout = Layout(public_port=free_port(), actions_port=free_port(), gateways=gateways,
                    actions=(free_port(),))  # fmt: skip
    config = run_dir / "nginx.conf"
    write_private_file(config, nginx_config(layout, run_dir))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    service = start([nginx, "-c", str(config), "-p", str(run_dir), "-g", "daemon off;"],
                    layout.public_port, f"nginx-{len(gateways)}", tmp)  # fmt: skip
    service.wait_ready(lambda: http_ok(f"{service.url}/healthz"), 30, "nginx")
    return service


def run() -> dict[str, Any]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        raise RuntimeError("nginx is not installed (make run-cluster installs Debian's nginx)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    started: list[Service] = []

    def keep(service: Service) -> Service:
        started.append(service)
        return service

    figures: dict[str, Any] = {}
    try:
        redis = keep(start_redis(tmp))
        redis_url = f"redis://127.0.0.1:{redis.port}/0"
        rasas = []
        for name in ("a", "b"):
            folder = tmp / f"rasa-{name}"
            folder.mkdir()
            actions = keep(start_actions(folder))
            rasas.append(keep(start_rasa(folder, actions, redis_url)))
        # The tests' short presence TTL (3 s) would take busy agents for gone under the
        # burst; a deployment's defaults apply.
        quiet = {"LOG_LEVEL": "warning", **UNLIMITED_ADDRESS, "PRESENCE_TTL_S": "30",
                 "AGENT_GRACE_S": "60", "CITIZEN_MESSAGE_LIMITS": "100000/minute"}  # fmt: skip
        one = keep(start_gateway(tmp, "gateway-one-rasa", redis_url, rasas[0].port,
                                 env={**quiet, "RASA_URLS": rasas[0].url}))  # fmt: skip
        both = f"{rasas[0].url},{rasas[1].url}"
        two = keep(start_gateway(tmp, "gateway-two-rasas", redis_url, rasas[0].port,
                                 env={**quiet, "RASA_URLS": both}))  # fmt: skip
        figures["bot_one_rasa"] = asyncio.run(bot_turns(one))
        figures["bot_two_rasas"] = asyncio.run(bot_turns(two))

        gateways = [two] + [
            keep(start_gateway(tmp, f"gateway-{n}", redis_url, rasas[0].port, env=quiet))
            for n in (3, 4)
        ]
        usernames, conversations = asyncio.run(set_up(redis_url))
        nginx_one = keep(start_nginx(tmp, (gateways[0].port,)))
        figures["relay_one_gateway_msg_s"] = asyncio.run(
            relay(nginx_one.url, usernames, conversations)
        )
        nginx_three = keep(start_nginx(tmp, tuple(g.port for g in gateways)))
        figures["relay_three_gateways_msg_s"] = asyncio.run(
            relay(nginx_three.url, usernames, conversations)
        )
    finally:
        for service in reversed(started):
            service.stop()
    bot1, bot2 = figures["bot_one_rasa"], figures["bot_two_rasas"]
    relay1, relay3 = figures["relay_one_gateway_msg_s"], figures["relay_three_gateways_msg_s"]
    figures["bot_ratio"] = bot2["turns_per_s"] / bot1["turns_per_s"]
    figures["relay_ratio"] = relay3 / relay1
    print(f"Bot turns, {TALKERS} conversations back to back for {SECONDS:.0f} s each way")
    print(f"  one Rasa replica   {bot1['turns_per_s']:7.1f} turns/s   p95 {bot1['p95_ms']:7.1f} ms")
    print(f"  two Rasa replicas  {bot2['turns_per_s']:7.1f} turns/s   p95 {bot2['p95_ms']:7.1f} ms"
          f"   ratio {figures['bot_ratio']:.2f}")  # fmt: skip
    print(f"Relay through nginx, {CONVERSATIONS} conversations × {BURST} messages")
    print(f"  one gateway        {relay1:7.0f} messages/s")
    print(f"  three gateways     {relay3:7.0f} messages/s   ratio {figures['relay_ratio']:.2f}")
    return figures


if __name__ == "__main__":
    run()
