"""Several Rasa replicas behind one gateway (RASA_URLS): a conversation keeps its replica,
and when that replica dies the next one continues the dialogue from the shared tracker
store; when it is back, its conversations go back to it. The lock store is in Redis too.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from handover import keys
from handover.rasa.replicas import RasaReplicas
from tests.citizen_client import CitizenClient
from tests.services import Service, rasa_ready, start_gateway, start_rasa

IDS = [f"conversation-{n}" for n in range(6000)]


def test_the_ring_shares_conversations_evenly_and_moves_few_when_a_replica_joins() -> None:
    two = RasaReplicas(["http://a:5005", "http://b:5005"])
    shares = Counter(two.owner(cid) for cid in IDS)
    assert all(0.42 < count / len(IDS) < 0.58 for count in shares.values()), shares
    three = RasaReplicas(["http://a:5005", "http://b:5005", "http://c:5005"])
    moved = [cid for cid in IDS if three.owner(cid) != two.owner(cid)]
    assert all(three.owner(cid) == "http://c:5005" for cid in moved)
    assert 0.25 < len(moved) / len(IDS) < 0.42  # about a third: only what the new one takes


def test_a_replica_that_is_down_is_tried_last_until_it_is_back() -> None:
    ring = RasaReplicas(["http://a:5005/", "http://b:5005", "http://c:5005"])
    cid = next(cid for cid in IDS if ring.owner(cid) == "http://a:5005")
    normal = ring.order(cid)
    assert normal[0] == "http://a:5005" and sorted(normal) == sorted(ring.urls)
    assert ring.mark_down("http://a:5005") and not ring.mark_down("http://a:5005")
    assert ring.order(cid) == [*normal[1:], "http://a:5005"]
    assert ring.mark_up("http://a:5005")
    assert ring.order(cid) == normal
    with pytest.raises(ValueError):
        RasaReplicas([" ", ""])


@pytest.fixture(scope="module")
def replicas(service_dir: Path, action_server: Service, redis_url: str) -> Iterator[list[Service]]:
    started = []
    try:
        for name in ("rasa-a", "rasa-b"):  # each with its own folder (endpoints file, log)
            (service_dir / name).mkdir()
            started.append(start_rasa(service_dir / name, action_server, redis_url, wait=False))
        for rasa in started:  # loading side by side
            rasa_ready(rasa)
        yield started  # the test replaces a replica it restarts: stopped here too
    finally:
        for rasa in started:
            rasa.stop()


@pytest.fixture(scope="module")
def replicated_gateway(
    service_dir: Path, redis_url: str, replicas: list[Service]
) -> Iterator[Service]:
    urls = ",".join(rasa.url for rasa in replicas)
    service = start_gateway(service_dir, "gateway-rasa-replicas", redis_url, replicas[0].port,
                            env={"RASA_URLS": urls})  # fmt: skip
    yield service
    service.stop()


async def replicas_up(gateway: Service) -> int:
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url + "/metrics")).text
    line = next(line for line in text.splitlines() if line.startswith("gateway_rasa_replicas_up"))
    return int(float(line.split()[-1]))


@pytest.mark.rasa
async def test_a_form_continues_on_the_next_replica_and_goes_back_when_its_own_returns(
    service_dir: Path,
    action_server: Service,
    redis_url: str,
    replicas: list[Service],
    replicated_gateway: Service,
) -> None:
    ring = RasaReplicas([rasa.url for rasa in replicas])
    ws_url = replicated_gateway.url.replace("http://", "ws://") + "/ws/chat"
    citizen = await CitizenClient.open(ws_url)
    while ring.owner(citizen.session["conversation_id"]) != replicas[0].url:
        await citizen.close()
        citizen = await CitizenClient.open(ws_url)
    cid = citizen.session["conversation_id"]
    try:
        assert "Wo genau" in (await citizen.answer("Ich möchte ein Schlagloch melden", 60))["text"]
        # Its replica dies mid-form (no goodbye): the next one continues the same form.
        replicas[0].stop(signal.SIGKILL)
        reply = await citizen.answer("Goethestraße 12, vor der Bäckerei", 60)
        assert "Beschreiben" in reply["text"], reply
        assert await replicas_up(replicated_gateway) == 1
        # Back on its port: the gateway finds it again and the conversation goes back to it.
        replicas[0] = start_rasa(service_dir / "rasa-a", action_server, redis_url,
                                 port=replicas[0].port)  # fmt: skip
        deadline = time.monotonic() + 20
        while await replicas_up(replicated_gateway) != 2:
            assert time.monotonic() < deadline, "the gateway did not find the replica again"
            await asyncio.sleep(0.5)
        reply = await citizen.answer("Ein tiefes Loch, etwa 30 cm breit", 60)
        assert "E-Mail" in reply["text"], reply
    finally:
        await citizen.close()
    log = replicated_gateway.log()
    assert "rasa_replica_down" in log and "rasa_replica_back" in log
    # Rasa's turn locks are in the same Redis, and none is left behind.
    redis = Redis.from_url(redis_url)
    try:
        assert redis.exists(keys.RASA_LOCK_PREFIX + cid) == 0
        assert redis.exists(keys.RASA_TRACKER_PREFIX + cid) == 1
    finally:
        redis.close()
