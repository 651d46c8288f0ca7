"""The multi-node layout of `make run-cluster`, started as it starts it, on free ports:
nginx, three gateways, two Rasa replicas, two action servers, Redis with a replica and
three sentinels. Everything goes through nginx, as citizens' and agents' browsers would.

A citizen talks to the bot and is handed to an agent (whose socket may be on another
replica); then a gateway replica is killed (-9) and the citizen's and the agent's
sockets come back through nginx (to another replica) and receive exactly what they missed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from handover.ops.cluster import Layout, cluster_commands
from handover.settings import Settings
from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.services import (
    ACTION_SERVER_TOKEN,
    CASE_API_TOKEN,
    RASA_JWT_SECRET,
    RASA_MODEL,
    Service,
    free_port,
    http_ok,
    start,
)
from tests.test_handover import PASSWORD, add_agent

pytestmark = pytest.mark.rasa


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(service_dir: Path) -> Iterator[tuple[Layout, dict[str, Service]]]:
    tmp = service_dir / "cluster"
    tmp.mkdir()
    layout = Layout(
        public_port=free_port(), actions_port=free_port(),
        gateways=(free_port(), free_port(), free_port()), rasas=(free_port(), free_port()),
        actions=(free_port(), free_port()), redis_primary=free_port(),
        redis_replica=free_port(), sentinels=(free_port(), free_port(), free_port()),
        extra_env={"SERVICE_HOURS": "always", "AGENT_GRACE_S": "30"},
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
        added = add_agent(f"redis+sentinel://{sentinels}/buergerservice", "cl-alina",
                          "Alina Berger", "--skills", "general,buergerbuero")  # fmt: skip
        assert added.returncode == 0, added.stderr
        yield layout, started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


async def test_a_conversation_survives_a_gateway_replica_killed_behind_nginx(
    cluster: tuple[Layout, dict[str, Service]],
) -> None:
    layout, services = cluster
    public = f"http://127.0.0.1:{layout.public_port}"
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
        await citizen.until(lambda f: f.get("type") == "state" and f["state"] == "queued", 90)
        cid = citizen.session["conversation_id"]
        await alina.queue_with(cid, 30)
        assert (await alina.accept(cid))["type"] == "assigned"
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
