"""Retention is enforced everywhere: after full conversations no key is left without a TTL.

Real gateways (one open, one after hours), Redis and Rasa. Each category has a
retention of its own here, so a key that expires with the wrong one is caught.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from handover.privacy.retention import DAY_S, may_live_forever
from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.services import CASE_API_TOKEN, Service, start_gateway
from tests.test_handover import PASSWORD, add_agent

pytestmark = pytest.mark.rasa

RETENTION = {"RETENTION_DAYS": "30", "NLU_RETENTION_DAYS": "7", "CSAT_RETENTION_DAYS": "14",
             "TICKET_RETENTION_DAYS": "10", "CASE_RETENTION_DAYS": "180",
             "APPLICATION_RETENTION_DAYS": "120",
             "AUDIT_RETENTION_DAYS": "90", "DELETION_RECORD_RETENTION_DAYS": "365"}  # fmt: skip


# Key families a conversation writes (docs/data-protection.md), and the shared keys ours touch.
FAMILIES = ("bs:conv:", "bs:token:", "bs:ticket", "bs:case:", "bs:audit:", "bs:deletions:",
            "bs:privacy-requests:", "bs:case-lookups:", "bs:application")  # fmt: skip
TOUCHED = {"bs:queue:general", "bs:queues", "bs:waits:general", "bs:agent:rita:conversations",
           "bs:agent:rita:unassigned", "bs:tickets:open"}  # fmt: skip


@pytest.fixture(scope="module")
def open_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-retention", redis_url, rasa_server.port,
                            env=RETENTION)  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def closed_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-retention-closed", redis_url, rasa_server.port,
                            env={**RETENTION, "SERVICE_HOURS": "Mo 00:00-00:01"})  # fmt: skip
    yield service
    service.stop()


def ws(service: Service) -> str:
    return service.url.replace("http://", "ws://") + "/ws/chat"


def cap_days(key: str) -> int:
    """The longest TTL a key may have, by its category (RETENTION above)."""
    if key.endswith(":nlu"):
        return 7
    if key.endswith(":csat"):
        return 14
    if key.startswith("bs:ticket:") or key == "bs:tickets:open":
        return 30 if key == "bs:tickets:open" else 10  # the list is shared with other gateways
    if key.startswith("bs:case:"):
        return 180
    if key.startswith("bs:application:"):
        return 120
    if key.startswith("bs:application-numbers:"):
        return 366  # as the case numbers
    if key.startswith("bs:audit:"):
        return 90
    if key.startswith("bs:deletions:"):
        return 365
    if key.startswith("bs:case-numbers:"):
        return 366  # the numbers issued this year (never reissued), until the year ends
    return 30


async def mentions(redis: Redis, key: str, needles: set[str]) -> bool:
    kind = await redis.type(key)
    if kind == "string":
        values = [await redis.get(key) or ""]
    elif kind == "hash":
        values = [*(await redis.hgetall(key)).items()]
    elif kind == "list":
        values = await redis.lrange(key, 0, -1)
    elif kind == "set":
        values = list(await redis.smembers(key))
    elif kind == "zset":
        values = await redis.zrange(key, 0, -1)
    elif kind == "stream":
        values = await redis.xrange(key)
    else:
        values = []
    text = key + str(values)
    return any(needle in text for needle in needles)


async def test_after_a_full_conversation_every_key_expires_within_its_retention(
    open_gateway: Service, closed_gateway: Service, redis_url: str, redis: Redis
) -> None:
    done = add_agent(redis_url, "rita", "Rita Ahrens", "--skills", "general", "--role",
                     "supervisor", "--capacity", "20")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rita = await AgentClient.open(open_gateway.url, "rita", PASSWORD)

    # Bot, handover, agent, a case reported in it, closed, rated.
    citizen = await CitizenClient.open(ws(open_gateway))
    cid = str(citizen.session["conversation_id"])
    await citizen.say("Hallo")
    await citizen.bot_reply()
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: f.get("state") == "queued")
    await rita.queue_with(cid)
    assert (await rita.accept(cid))["type"] == "assigned"
    await rita.say(cid, "Guten Tag!")
    await citizen.until(lambda f: f.get("from") == "agent")
    await citizen.say("Danke, das hilft.")
    async with httpx.AsyncClient(base_url=open_gateway.url, timeout=30) as client:
        case = await client.post("/api/cases", json={
            "category": "graffiti", "location": "Rathausplatz", "description": "Graffiti",
            "email": f"r.{uuid.uuid4().hex[:6]}@example.org", "conversation_id": cid,
        }, headers={"Authorization": f"Bearer {CASE_API_TOKEN}"})  # fmt: skip
        # An application sent from the portal while the chat is open, with its upload.
        application = await client.post(
            "/api/applications/pv",
            data={"first_name": "Rita", "last_name": "Roth", "email": "rita@example.org",
                  "street": "Rathausplatz 1", "postal_code": "12345", "city": "Musterstadt",
                  "installation_type": "dach", "power_kwp": "7", "listed_building": "nein",
                  "grid_operator": "unbekannt", "confirm": "ja"},
            files={"upload": ("plan.pdf", b"%PDF-1.4 plan", "application/pdf")},
            headers={"Authorization": f"Bearer {citizen.token}"},
        )  # fmt: skip
    assert case.status_code == 201
    assert application.status_code == 201, application.text
    await rita.send({"type": "close", "conversation_id": cid})
    await citizen.until(lambda f: f["type"] == "csat_request")
    await citizen.send({"type": "csat", "score": 5, "comment": "Prima"})

    # After hours: a message left as a ticket, then rated.
    late = await CitizenClient.open(ws(closed_gateway))
    late_id = str(late.session["conversation_id"])
    await late.say("Ich möchte mit einem Mitarbeiter sprechen")
    await late.until(lambda f: "niemand" in f.get("text", ""))
    await late.say("Bitte melden Sie sich unter lena.spaet@example.org")
    saved = await late.until(lambda f: "Vorgang T-" in f.get("text", ""))
    ticket_id = saved["text"].split("Vorgang ")[1].split(")")[0]
    await late.until(lambda f: f["type"] == "csat_request")
    await late.send({"type": "csat", "score": 3})
    await asyncio.sleep(0.5)
    await citizen.close()
    await late.close()
    await rita.close()
    await asyncio.sleep(0.5)

    needles = {cid, late_id, ticket_id, case.json()["case_number"]}
    concerned, unexpiring = [], []
    async for key in redis.scan_iter(match="bs:*", count=1000):
        ttl = await redis.ttl(key)
        # Other modules' tests also drive Queues without a retention; what these
        # conversations touched is every per-conversation family and these keys.
        touched = key.startswith(FAMILIES) or key in TOUCHED
        if ttl == -1 and touched and not may_live_forever(key):
            unexpiring.append(key)
        if await mentions(redis, key, needles):
            concerned.append((key, ttl))
            assert not may_live_forever(key), f"{key} names a conversation yet never expires"
    assert unexpiring == [], "keys without an expiry (handover/privacy/retention.py UNEXPIRING)"
    names = {key for key, _ in concerned}
    number = application.json()["number"]
    assert f"bs:application:{{{number}}}" in names
    upload_ttl = await redis.ttl(f"bs:application:{{{number}}}:upload")
    assert 0 < upload_ttl <= 120 * DAY_S
    for expected in [f"bs:conv:{{{cid}}}:log", f"bs:conv:{{{cid}}}:nlu",
                     f"bs:conv:{{{cid}}}:csat", f"bs:ticket:{ticket_id}",
                     "bs:tickets:open"]:  # fmt: skip
        assert expected in names, (expected, sorted(names))
    for key, ttl in concerned:
        assert 0 < ttl <= cap_days(key) * DAY_S, (key, ttl)
