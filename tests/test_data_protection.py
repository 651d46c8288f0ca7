"""Export, erasure, deletion records and the audit log (docs/data-protection.md), end to end.

Real gateways, Redis and Rasa. After an erasure every key of Redis and every
value is searched for the conversation id and the token: nothing may be left.
Agents of their own (dora, dieter, dagmar), so other modules' views are not disturbed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.agent_client import AgentClient, login
from tests.citizen_client import CitizenClient
from tests.services import CASE_API_TOKEN, ROOT, Service, free_port, rasa_headers, start_gateway
from tests.test_handover import PASSWORD, add_agent

pytestmark = pytest.mark.rasa

GENEROUS = {"PRIVACY_REQUESTS_PER_MINUTE": "10000"}


@pytest.fixture(scope="module")
def privacy_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = start_gateway(service_dir, "gateway-privacy", redis_url, rasa_server.port,
                            env=GENEROUS)  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def closed_gateway(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    """After hours: a citizen who asks for a person leaves a message (a ticket)."""
    service = start_gateway(service_dir, "gateway-privacy-closed", redis_url, rasa_server.port,
                            env={**GENEROUS, "SERVICE_HOURS": "Mo 00:00-00:01"})  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def privacy_agents(redis_url: str) -> None:
    for username, name, role in [("dora", "Dora Lenz", "agent"),
                                 ("dagmar", "Dagmar Wolf", "supervisor")]:  # fmt: skip
        done = add_agent(redis_url, username, name, "--skills", "general", "--role", role,
                         "--capacity", "20")  # fmt: skip
        assert done.returncode == 0, done.stderr


def ws(service: Service) -> str:
    return service.url.replace("http://", "ws://") + "/ws/chat"


async def post(
    service: Service, path: str, token: str | None, body: Any = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        if body is not None:
            kwargs["json"] = body
        return await client.post(path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


async def supervisor_token(service: Service) -> str:
    response = await login(service.url, "dagmar", PASSWORD)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def chatting_citizen(service: Service, text: str = "Hallo") -> CitizenClient:
    citizen = await CitizenClient.open(ws(service))
    await citizen.say(text)
    await citizen.bot_reply()
    return citizen


async def traces_of(redis: Redis, *needles: str) -> list[str]:
    """Every key whose name or value contains one of `needles` (SCAN of the whole keyspace)."""
    found = []
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        if kind == "string":
            values: list[Any] = [await redis.get(key)]
        elif kind == "hash":
            values = [json.dumps(await redis.hgetall(key), ensure_ascii=False)]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        elif kind == "stream":
            values = [json.dumps(await redis.xrange(key), ensure_ascii=False)]
        else:
            values = []
        text = key + "\n" + "\n".join(str(v) for v in values if v is not None)
        if any(needle in text for needle in needles):
            found.append(key)
    return found


def token_key(token: str) -> str:
    return "bs:token:" + hashlib.sha256(token.encode()).hexdigest()


# --- the citizen's export -------------------------------------------------------------------


async def test_a_citizen_downloads_their_conversation_as_json_and_as_a_readable_page(
    privacy_gateway: Service,
) -> None:
    citizen = await chatting_citizen(privacy_gateway, "Brauche ich eine Genehmigung für Solar?")
    cid = citizen.session["conversation_id"]

    response = await post(privacy_gateway, "/api/conversation/export", citizen.token, {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    bundle = response.json()
    (conversation,) = bundle["conversations"]
    assert conversation["conversation_id"] == cid
    texts = [e.get("text") for e in conversation["events"] if e["type"] == "message"]
    assert "Brauche ich eine Genehmigung für Solar?" in texts
    assert any(e.get("from") == "bot" for e in conversation["events"])
    assert conversation["understanding"][0]["intent"]["name"]
    assert citizen.token not in response.text

    page = await post(privacy_gateway, "/api/conversation/export", citizen.token,
                      {"format": "html"})  # fmt: skip
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="de">' in html and "<h1>Ihr Gespräch mit dem Bürgerservice</h1>" in html
    assert "Brauche ich eine Genehmigung für Solar?" in html and "<script" not in html
    await citizen.close()


async def test_html_export_escapes_what_the_citizen_typed(privacy_gateway: Service) -> None:
    citizen = await chatting_citizen(privacy_gateway, "<img src=x onerror=alert(1)> Hallo")
    page = await post(privacy_gateway, "/api/conversation/export", citizen.token,
                      {"format": "html"})  # fmt: skip
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    await citizen.close()


# --- the citizen's erasure ------------------------------------------------------------------------


async def test_a_citizen_erases_their_conversation_everywhere_and_for_good(
    privacy_gateway: Service, privacy_agents: None, redis: Redis, redis_url: str
) -> None:
    """Bot turns, handover, an agent holding it, a case reported in it: erased, all of it."""
    dora = await AgentClient.open(privacy_gateway.url, "dora", PASSWORD)
    citizen = await chatting_citizen(privacy_gateway)
    cid, token = citizen.session["conversation_id"], citizen.token
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: f.get("state") == "queued")
    await dora.queue_with(cid)
    assigned = await dora.accept(cid)
    assert assigned["type"] == "assigned"
    await dora.say(cid, "Guten Tag, ich bin Dora.")
    await citizen.until(lambda f: f.get("from") == "agent")
    await citizen.send({"type": "csat", "score": 4, "comment": "gut"})
    case = await post(privacy_gateway, "/api/cases", CASE_API_TOKEN, {
        "category": "schlagloch", "location": "Hauptstraße 3", "description": "Loch",
        "email": f"erase.{uuid.uuid4().hex[:6]}@example.org", "conversation_id": cid,
    })  # fmt: skip
    assert case.status_code == 201, case.text
    number = case.json()["case_number"]
    await asyncio.sleep(0.3)
    assert await traces_of(redis, cid)

    erased = await post(privacy_gateway, "/api/conversation/erase", token, {"confirm": True})
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert counts["conversations"] == 1 and counts["conversation_events"] >= 6
    assert counts["nlu_entries"] >= 1 and counts["assignments"] == 1
    assert counts["case_links"] == 1  # signed tokens: no token key was stored to delete

    # Open sockets are told: the citizen's, and the agent's, who loses the chat.
    told = await citizen.until(lambda f: f.get("type") == "state" and f.get("state") == "closed")
    assert told["reason"] == "erased"
    ended = await dora.until(
        lambda f: f.get("conversation_id") == cid and f.get("reason") == "erased"
    )
    assert ended["type"] == "state"
    await asyncio.sleep(0.5)  # let every socket's bookkeeping settle (replica sets, presence)
    await citizen.close()

    assert await traces_of(redis, cid, token, hashlib.sha256(token.encode()).hexdigest()) == []
    # The case stays with the city, without its link to the erased conversation.
    case_data = await redis.hgetall(f"bs:case:{{{number}}}")
    assert case_data and "conversation_id" not in case_data

    # Final: the token starts a new conversation and erases nothing more.
    again = await CitizenClient.open(ws(privacy_gateway), token=token)
    assert again.session["conversation_id"] != cid and again.session["seq"] == 0
    await again.close()
    replay = await post(privacy_gateway, "/api/conversation/erase", token, {"confirm": True})
    assert replay.status_code == 401 and replay.json()["error"] == "unauthorized"

    # The deletion record: what and how much, never the content or the id in clear.
    supervisor = await supervisor_token(privacy_gateway)
    async with httpx.AsyncClient(base_url=privacy_gateway.url, timeout=30) as client:
        records = await client.get("/api/admin/deletions",
                                   headers={"Authorization": f"Bearer {supervisor}"})  # fmt: skip
    record = next(r for r in records.json()["items"] if r["id"] == erased.json()["record"])
    assert record["by"] == "citizen" and record["via"] == "widget"
    assert record["subject"].startswith("conversation:") and cid not in json.dumps(record)
    await dora.close()


async def test_erasure_leaves_rasa_without_a_tracker_of_the_conversation(
    privacy_gateway: Service, rasa_server: Service, redis: Redis
) -> None:
    citizen = await chatting_citizen(privacy_gateway)
    cid = citizen.session["conversation_id"]

    async def user_turns() -> list[Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            url = f"{rasa_server.url}/conversations/{cid}/tracker"
            tracker = (await client.get(url, headers=rasa_headers())).json()
        return [e for e in tracker.get("events", []) if e.get("event") == "user"]

    assert await user_turns()  # Rasa has it (in Redis) before ...
    erased = await post(privacy_gateway, "/api/conversation/erase", citizen.token,
                        {"confirm": True})  # fmt: skip
    assert erased.status_code == 200
    await citizen.close()
    assert not await redis.exists(f"bs:rasa:tracker:{cid}")
    assert await user_turns() == []  # ... and not after (asking Rasa starts an empty one)


async def test_forged_missing_and_other_citizens_tokens_erase_nothing(
    privacy_gateway: Service, redis: Redis
) -> None:
    lena = await chatting_citizen(privacy_gateway)
    max_ = await chatting_citizen(privacy_gateway)
    lena_id = lena.session["conversation_id"]
    for token in ["forged-" + uuid.uuid4().hex, "x" * 2000, lena.token[:-2] + "AA"]:
        response = await post(privacy_gateway, "/api/conversation/erase", token, {"confirm": True})
        assert response.status_code == 401, (token, response.text)
        assert response.json()["error"] == "unauthorized"
    no_header = await post(privacy_gateway, "/api/conversation/erase", None, {"confirm": True})
    assert no_header.status_code == 401
    empty = await post(privacy_gateway, "/api/conversation/erase", None, {"confirm": True},
                       headers={"Authorization": "Bearer"})  # fmt: skip
    assert empty.status_code == 401
    in_url = await post(privacy_gateway, f"/api/conversation/erase?token={lena.token}", None,
                        {"confirm": True})  # fmt: skip
    assert in_url.status_code == 401
    basic = await post(privacy_gateway, "/api/conversation/export", None, {},
                       headers={"Authorization": f"Basic {lena.token}"})  # fmt: skip
    assert basic.status_code == 401
    assert await redis.exists(f"bs:conv:{{{lena_id}}}:log")

    # Max's token erases Max's conversation, never Lena's.
    assert (await post(privacy_gateway, "/api/conversation/erase", max_.token,
                       {"confirm": True})).status_code == 200  # fmt: skip
    assert await redis.exists(f"bs:conv:{{{lena_id}}}", f"bs:conv:{{{lena_id}}}:log") == 2
    exported = await post(privacy_gateway, "/api/conversation/export", lena.token, {})
    assert exported.json()["conversations"][0]["conversation_id"] == lena_id
    await lena.close()
    await max_.close()


async def chunks(n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x"


async def test_malformed_and_oversized_requests_are_refused_and_erase_nothing(
    privacy_gateway: Service, redis: Redis
) -> None:
    citizen = await chatting_citizen(privacy_gateway)
    cid, path = citizen.session["conversation_id"], "/api/conversation/erase"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": {}}, 400, "bad_request"),  # no confirmation
        ({"json": {"confirm": False}}, 400, "bad_request"),
        ({"json": {"confirm": True, "extra": 1}}, 400, "bad_request"),
        ({"content": b"{not json"}, 400, "bad_request"),
        ({"content": b"[1, 2]"}, 400, "bad_request"),
        ({"json": {"confirm": True, "pad": "x" * 5000}}, 413, "too_large"),
        ({"content": chunks(3000)}, 413, "too_large"),  # chunked, no length
    ]
    for kwargs, status, error in cases:
        response = await post(privacy_gateway, path, citizen.token, **kwargs)
        assert (response.status_code, response.json()["error"]) == (status, error), kwargs
    bad_format = await post(privacy_gateway, "/api/conversation/export", citizen.token,
                            {"format": "pdf"})  # fmt: skip
    assert bad_format.status_code == 400
    assert await redis.exists(f"bs:conv:{{{cid}}}:log")
    await citizen.close()


async def test_export_and_erasure_requests_are_limited_per_client_across_replicas(
    service_dir: Path, redis_url: str, privacy_gateway: Service
) -> None:
    """Two replicas share one count per address; refused before the token is looked at."""
    env = {"PRIVACY_REQUESTS_PER_MINUTE": "4"}
    one = start_gateway(service_dir, "gateway-privacy-limit-a", redis_url, free_port(), env=env)
    two = start_gateway(service_dir, "gateway-privacy-limit-b", redis_url, free_port(), env=env)
    try:
        redis = Redis.from_url(redis_url, decode_responses=True)
        async for key in redis.scan_iter(match="bs:privacy-requests:*"):
            await redis.delete(key)
        statuses = []
        for n in range(6):
            service = one if n % 2 else two
            response = await post(service, "/api/conversation/export", "unknown", {})
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 401, 429, 429]
        assert response.headers["retry-after"] == "60"
        async for key in redis.scan_iter(match="bs:privacy-requests:*"):
            assert 0 < await redis.ttl(key) <= 60
            await redis.delete(key)
        await redis.aclose()
    finally:
        one.stop()
        two.stop()


# --- the city's export and erasure ----------------------------------------------------------


async def leave_a_message(service: Service, contact: str) -> tuple[CitizenClient, str]:
    """A citizen after hours who leaves a message with `contact`; returns the ticket id."""
    citizen = await CitizenClient.open(ws(service))
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await citizen.until(lambda f: "niemand" in f.get("text", ""))
    await citizen.say(f"Bitte rufen Sie mich wegen meines Bauantrags an: {contact}")
    saved = await citizen.until(lambda f: "Vorgang T-" in f.get("text", ""))
    return citizen, saved["text"].split("Vorgang ")[1].split(")")[0]


async def test_a_supervisor_exports_and_erases_a_person_found_by_phone_number(
    closed_gateway: Service, privacy_gateway: Service, privacy_agents: None, redis: Redis
) -> None:
    phone = f"0170 {uuid.uuid4().int % 10**7:07d}"
    citizen, ticket_id = await leave_a_message(closed_gateway, phone)
    cid = citizen.session["conversation_id"]
    supervisor = await supervisor_token(privacy_gateway)
    # Written differently, the same number.
    international = "+49 " + phone[1:].replace(" ", "-")
    exported = await post(privacy_gateway, "/api/admin/person/export", supervisor,
                          {"phone": international})  # fmt: skip
    assert exported.status_code == 200, exported.text
    bundle = exported.json()
    assert [t["id"] for t in bundle["tickets"]] == [ticket_id]
    assert [c["conversation_id"] for c in bundle["conversations"]] == [cid]

    refused = await post(privacy_gateway, "/api/admin/person/erase", supervisor, {"phone": phone})
    assert refused.status_code == 400  # no confirmation: nothing erased
    assert await redis.exists(f"bs:ticket:{ticket_id}")
    erased = await post(privacy_gateway, "/api/admin/person/erase", supervisor,
                        {"phone": phone, "confirm": True})  # fmt: skip
    assert erased.status_code == 200, erased.text
    record = erased.json()["record"]
    assert record["erased"]["tickets"] == 1 and record["erased"]["conversations"] == 1
    assert record["by"] == "dagmar" and record["subject"].startswith("phone:")
    assert phone not in json.dumps(record) and phone.replace(" ", "") not in json.dumps(record)
    await citizen.close()
    await asyncio.sleep(0.3)
    assert await traces_of(redis, cid, ticket_id) == []
    again = await post(privacy_gateway, "/api/admin/person/erase", supervisor,
                       {"phone": phone, "confirm": True})  # fmt: skip
    assert again.status_code == 404


async def test_the_admin_api_refuses_agents_strangers_and_malformed_requests(
    privacy_gateway: Service, privacy_agents: None, redis: Redis
) -> None:
    citizen = await chatting_citizen(privacy_gateway)
    cid = citizen.session["conversation_id"]
    agent = (await login(privacy_gateway.url, "dora", PASSWORD)).json()["token"]
    supervisor = await supervisor_token(privacy_gateway)
    body = {"conversation_id": cid, "confirm": True}
    for path in ["/api/admin/person/erase", "/api/admin/person/export"]:
        assert (await post(privacy_gateway, path, agent, body)).status_code == 403
        assert (await post(privacy_gateway, path, None, body)).status_code == 401
        assert (await post(privacy_gateway, path, "forged." + agent[7:], body)).status_code == 401
        assert (await post(privacy_gateway, path, citizen.token, body)).status_code == 401
    for bad in [{}, {"conversation_id": cid, "email": "a@b.de", "confirm": True},
                {"email": "kein-at-zeichen", "confirm": True}, {"case_number": "42"},
                {"conversation_id": cid, "whatever": 1}]:  # fmt: skip
        response = await post(privacy_gateway, "/api/admin/person/erase", supervisor, bad)
        assert response.status_code == 400, bad
    huge = await post(privacy_gateway, "/api/admin/person/erase", supervisor,
                      {"email": "a" * 3000 + "@example.org", "confirm": True})  # fmt: skip
    assert huge.status_code == 413
    async with httpx.AsyncClient(base_url=privacy_gateway.url, timeout=30) as client:
        as_agent = await client.get(
            "/api/admin/audit", headers={"Authorization": f"Bearer {agent}"}
        )
    assert as_agent.status_code == 403
    assert await redis.exists(f"bs:conv:{{{cid}}}:log")
    await citizen.close()


async def test_the_admin_command_exports_and_erases_a_person_by_e_mail(
    privacy_gateway: Service, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    email = f"Lena.{uuid.uuid4().hex[:6]}@Example.org"
    citizen = await chatting_citizen(privacy_gateway)
    cid = citizen.session["conversation_id"]
    case = await post(privacy_gateway, "/api/cases", CASE_API_TOKEN, {
        "category": "muell", "location": "Parkweg", "description": "Sperrmüll",
        "email": email, "conversation_id": cid,
    })  # fmt: skip
    number = case.json()["case_number"]
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "handover.admin", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    out = tmp_path / "export.json"
    exported = admin("export-person", "--email", email.lower(), "--out", str(out), "--by", "dsb")
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    bundle = json.loads(out.read_text())
    assert [c["case_number"] for c in bundle["cases"]] == [number]
    assert bundle["cases"][0]["description"] == "Sperrmüll"
    assert [c["conversation_id"] for c in bundle["conversations"]] == [cid]

    unconfirmed = admin("erase-person", "--email", email)
    assert unconfirmed.returncode == 2 and await redis.exists(f"bs:case:{{{number}}}")
    erased = admin("erase-person", "--email", email, "--yes", "--by", "dsb")
    assert erased.returncode == 0, erased.stderr
    record = json.loads(erased.stdout.strip().splitlines()[-1])
    assert record["erased"]["cases"] == 1 and record["erased"]["conversations"] == 1
    assert email.lower() not in erased.stdout and record["by"] == "dsb"
    told = await citizen.until(lambda f: f.get("type") == "state" and f.get("state") == "closed")
    assert told["reason"] == "erased"  # the command told the gateway's open socket
    await citizen.close()
    await asyncio.sleep(0.3)
    assert await traces_of(redis, cid, number) == []
    assert admin("erase-person", "--email", email, "--yes").returncode == 1
    assert admin("erase-person", "--phone", "abc", "--yes").returncode == 2

    records = admin("deletion-records", "--limit", "20")
    assert record["id"] in records.stdout and email.lower() not in records.stdout


# --- the audit log -------------------------------------------------------------------------


async def test_reads_exports_and_erasures_are_in_the_audit_log_for_supervisors(
    privacy_gateway: Service, privacy_agents: None
) -> None:
    dora = await AgentClient.open(privacy_gateway.url, "dora", PASSWORD)
    citizen = await chatting_citizen(privacy_gateway)
    cid = citizen.session["conversation_id"]
    await citizen.say("Ich möchte mit einem Mitarbeiter sprechen")
    await dora.queue_with(cid)
    await dora.accept(cid)
    supervisor = await supervisor_token(privacy_gateway)
    exported = await post(privacy_gateway, "/api/admin/person/export", supervisor,
                          {"conversation_id": cid})  # fmt: skip
    assert exported.status_code == 200
    await asyncio.sleep(0.3)  # the accept's audit entry is written after the `assigned` frame

    async def audit() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=privacy_gateway.url, timeout=30) as client:
            response = await client.get(
                "/api/admin/audit?limit=200", headers={"Authorization": f"Bearer {supervisor}"}
            )
        assert response.status_code == 200
        return list(response.json()["items"])

    entries = [e for e in await audit() if e.get("conversation_id") == cid]
    seen = {(e["action"], e["actor"]) for e in entries}
    assert {("accept", "dora"), ("read_transcript", "dora"), ("export", "dagmar")} <= seen
    assert all("text" not in e for e in entries)

    erased = await post(privacy_gateway, "/api/conversation/erase", citizen.token,
                        {"confirm": True})  # fmt: skip
    assert erased.status_code == 200
    after = await audit()
    assert not [e for e in after if e.get("conversation_id") == cid]
    pseudonymous = [
        e for e in after if str(e.get("conversation_id", "")).startswith("conversation:")
    ]
    assert {"accept", "read_transcript", "export", "erase"} <= {e["action"] for e in pseudonymous}
    # Newest first (the citizen's erasure), and reading the log is audited too.
    assert (after[0]["action"], after[0]["actor"]) == ("erase", "citizen")
    assert ("read_audit_log", "dagmar") in {(e["action"], e["actor"]) for e in after}
    await citizen.close()
    await dora.close()
