"""Co-browsing over the real sockets of two gateway replicas, a real Rasa and a real Redis.

Consent is stepped and enforced by the gateway, not only by the widget: a forged,
replayed or stale yes is refused; a page nobody agreed to share, a view by anyone but
the assigned agent and a pointer without its own yes are refused; what the page sends
is masked again on the way; the session ends when the agent lets go of the conversation
or the page is gone. The citizen's page and the agent's view are on different replicas.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from handover import keys
from tests.agent_client import AgentClient
from tests.citizen_client import CitizenClient
from tests.frame_socket import Frame, FrameSocket
from tests.services import Service, start_gateway
from tests.test_cobrowse_redaction import PATH, meta, snapshot
from tests.test_handover import PASSWORD, add_agent, taken_over_by

pytestmark = pytest.mark.rasa

REFUSED = "cobrowse_refused"
PAGE_CLEAR = json.dumps({PATH: ["power_kwp", "listed"]})


@pytest.fixture(scope="module")
def cobrowse_agents(redis_url: str) -> None:
    for username, name in (("cb-alina", "Alina Berger"), ("cb-olga", "Olga Kraus")):
        done = add_agent(redis_url, username, name, "--skills", "general", "--capacity", "20")
        assert done.returncode == 0, done.stderr


def cobrowse_gateway(service_dir: Path, redis_url: str, rasa_port: int, name: str) -> Service:
    return start_gateway(service_dir, name, redis_url, rasa_port, env={
        "COBROWSE_CLEAR_FIELDS": PAGE_CLEAR, "COBROWSE_GRACE_S": "1.5",
        "COBROWSE_MAX_FRAME_BYTES": "65536",
    })  # fmt: skip


@pytest.fixture(scope="module")
def replica_a(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    service = cobrowse_gateway(service_dir, redis_url, rasa_server.port, "gateway-cobrowse-a")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def replica_b(service_dir: Path, redis_url: str, rasa_server: Service) -> Iterator[Service]:
    """A second gateway on the same Redis: the page and the view may be on either."""
    service = cobrowse_gateway(service_dir, redis_url, rasa_server.port, "gateway-cobrowse-b")
    yield service
    service.stop()


def ws(service: Service, path: str) -> str:
    return service.url.replace("http://", "ws://") + path


class Shared:
    """One conversation taken over by Alina, with her agent socket and the citizen's."""

    def __init__(self, citizen: CitizenClient, alina: AgentClient, cid: str) -> None:
        self.citizen, self.alina, self.cid = citizen, alina, cid

    async def ask(self, step: str = "view") -> str:
        await self.alina.send({"type": "cobrowse_request", "conversation_id": self.cid,
                               "step": step})  # fmt: skip
        asked = await self.citizen.until(lambda f: f.get("type") == "cobrowse"
                                         and f["state"] == "requested")  # fmt: skip
        assert asked["step"] == step and asked["agent"] == {"name": "Alina Berger"}
        return str(asked["request_id"])

    async def agree(self, step: str = "view") -> None:
        request_id = await self.ask(step)
        await self.citizen.send({"type": "cobrowse_answer", "request_id": request_id,
                                 "accept": True})  # fmt: skip
        await self.citizen.until(lambda f: f.get("type") == "cobrowse" and f["state"] == "accepted"
                                 and f["step"] == step)  # fmt: skip


@pytest.fixture
async def shared(replica_a: Service, cobrowse_agents: None) -> AsyncIterator[Shared]:
    alina = await AgentClient.open(replica_a.url, "cb-alina", PASSWORD)
    citizen, cid = await taken_over_by(alina, ws(replica_a, "/ws/chat"))
    yield Shared(citizen, alina, cid)
    await citizen.close()
    await alina.close()


async def page_socket(service: Service, token: str) -> FrameSocket:
    page = FrameSocket(await connect(ws(service, "/ws/cobrowse"), max_size=2**22))
    await page.send({"type": "hello", "token": token})
    return page


async def view_socket(service: Service, token: str, cid: str) -> FrameSocket:
    view = FrameSocket(await connect(ws(service, "/ws/cobrowse/agent"), max_size=2**22))
    await view.send({"type": "auth", "token": token, "conversation_id": cid})
    return view


async def refused(socket: FrameSocket) -> tuple[Frame, int | None]:
    """The error frame and the close code of a socket the gateway refuses."""
    error = await socket.receive()
    try:
        await asyncio.wait_for(socket.connection.recv(), 10)
    except ConnectionClosed as closed:
        return error, closed.rcvd.code if closed.rcvd else None
    raise AssertionError("the socket stayed open")


async def cobrowse_events(redis: Redis, cid: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(keys.conversation_log(cid))
    events = [json.loads(fields["e"]) for _, fields in entries]
    return [e for e in events if e["type"] == "cobrowse"]


async def test_no_page_and_no_view_without_consent(shared: Shared, replica_b: Service) -> None:
    error, code = await refused(await page_socket(replica_b, shared.citizen.token))
    assert (error["code"], code) == ("cobrowse_refused", 4403)
    error, code = await refused(await view_socket(replica_b, shared.alina.token, shared.cid))
    assert (error["code"], code) == ("cobrowse_refused", 4403)
    await shared.ask()
    error, code = await refused(await page_socket(replica_b, shared.citizen.token))
    assert code == 4403  # asked is not agreed


async def test_a_forged_replayed_or_stale_yes_is_refused_and_stores_nothing(
    shared: Shared, redis: Redis
) -> None:
    first = await shared.ask()
    await shared.citizen.send({"type": "cobrowse_answer", "request_id": "forged", "accept": True})
    error = await shared.citizen.until(lambda f: f["type"] == "error")
    assert error["code"] == "cobrowse_refused"
    second = await shared.ask()  # a new request replaces the first
    await shared.citizen.send({"type": "cobrowse_answer", "request_id": first, "accept": True})
    assert (await shared.citizen.until(lambda f: f["type"] == "error"))[
        "code"
    ] == "cobrowse_refused"
    await shared.citizen.send({"type": "cobrowse_answer", "request_id": second, "accept": False})
    await shared.citizen.until(lambda f: f.get("type") == "cobrowse" and f["state"] == "declined")
    await shared.citizen.send({"type": "cobrowse_answer", "request_id": second, "accept": True})
    assert (await shared.citizen.until(lambda f: f["type"] == "error"))[
        "code"
    ] == "cobrowse_refused"
    states = [e["state"] for e in await cobrowse_events(redis, shared.cid)]
    assert states == ["requested", "requested", "declined"]
    assert await redis.exists(keys.conversation_cobrowse(shared.cid)) == 0
    malformed = {"type": "cobrowse_answer", "request_id": "x" * 65, "accept": True}
    await shared.citizen.send(malformed)
    assert (await shared.citizen.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"


async def test_only_the_assigned_agent_may_ask_or_watch(
    shared: Shared, replica_a: Service, replica_b: Service
) -> None:
    olga = await AgentClient.open(replica_a.url, "cb-olga", PASSWORD)
    try:
        await olga.send({"type": "cobrowse_request", "conversation_id": shared.cid, "step": "view"})
        error = await olga.until(lambda f: f["type"] == "error")
        assert error["code"] == "cobrowse_refused" and error["conversation_id"] == shared.cid
        await shared.agree()
        error, code = await refused(await view_socket(replica_b, olga.token, shared.cid))
        assert code == 4403
        error, code = await refused(await view_socket(replica_b, "forged.token", shared.cid))
        assert code == 4401
    finally:
        await olga.close()
    error, code = await refused(await page_socket(replica_b, "forged.token"))
    assert code == 4401


async def test_the_page_reaches_the_view_on_another_replica_masked_again(
    shared: Shared, replica_a: Service, replica_b: Service, redis: Redis
) -> None:
    await shared.agree()
    page = await page_socket(replica_a, shared.citizen.token)
    assert (await page.receive())["type"] == "session"
    view = await view_socket(replica_b, shared.alina.token, shared.cid)
    assert (await view.receive())["type"] == "session"
    # Whoever opens the view gets a fresh snapshot: the page is asked for one.
    assert (await page.until(lambda f: f["type"] == "snapshot"))["type"] == "snapshot"
    await page.send({"type": "events", "events": [meta(), snapshot()]})
    typed = {"type": 3, "timestamp": 5, "data": {"source": 5, "id": 11, "text": "Meyer"}}
    power = {"type": 3, "timestamp": 6, "data": {"source": 5, "id": 12, "text": "10"}}
    await page.send({"type": "events", "events": [typed, power]})
    frames = [await view.until(lambda f: f["type"] == "events") for _ in range(2)]
    relayed = json.dumps(frames)
    assert "Meyer" not in relayed and "Lena Meyer" not in relayed and "email=" not in relayed
    assert [e["data"]["id"] for e in frames[1]["events"]] == [12]
    # The transcript says who saw which page when, and nothing of what it showed.
    pages = [e for e in await cobrowse_events(redis, shared.cid) if e["state"] == "page"]
    assert [(p["path"], p["agent"]["name"]) for p in pages] == [(PATH, "Alina Berger")]
    assert "Meyer" not in json.dumps(await cobrowse_events(redis, shared.cid))

    # Bad input from the page: a clear error, the socket stays, nothing is relayed.
    await page.send("{not json")
    assert (await page.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"
    await page.send({"type": "events", "events": "nope"})
    assert (await page.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"
    await page.send({"type": "events", "events": [{"type": 3, "timestamp": 7,
                     "data": {"source": 1, "positions": []}, "pad": "x" * 70_000}]})  # fmt: skip
    assert (await page.until(lambda f: f["type"] == "error"))["code"] == "too_large"
    await page.connection.send(json.dumps({"type": "events", "events": []}).encode())  # binary
    assert (await page.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"

    # Without the second yes, no pointer; with it, the pointer reaches the page.
    await view.send({"type": "guide", "kind": "pointer", "x": 10, "y": 20})
    assert (await view.until(lambda f: f["type"] == "error"))["code"] == "cobrowse_refused"
    await shared.agree("pointer")
    await view.send({"type": "guide", "kind": "highlight", "node": 12})
    guide = await page.until(lambda f: f["type"] == "guide")
    assert guide == {"type": "guide", "kind": "highlight", "node": 12}
    await view.send({"type": "guide", "kind": "type", "text": "hacked"})  # the agent never types
    assert (await view.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"

    # A hand-back ends the session: both sockets are told and closed, and it is recorded.
    await shared.alina.send({"type": "handback", "conversation_id": shared.cid})
    await page.until(lambda f: f["type"] == "end")
    await view.until(lambda f: f["type"] == "end")
    ended = (await cobrowse_events(redis, shared.cid))[-1]
    assert (ended["state"], ended["by"], ended["reason"]) == ("ended", "system", "hand_back")
    assert await redis.exists(keys.conversation_cobrowse(shared.cid)) == 0


async def test_closing_the_page_ends_sharing_after_the_grace_time_not_on_the_next_page(
    shared: Shared, replica_a: Service, replica_b: Service, redis: Redis
) -> None:
    await shared.agree()
    first = await page_socket(replica_a, shared.citizen.token)
    await first.receive()
    await first.close()
    # The next page of the portal opens its socket within the grace time: sharing goes on.
    second = await page_socket(replica_b, shared.citizen.token)
    assert (await second.receive())["type"] == "session"
    await asyncio.sleep(2.5)
    assert await redis.exists(keys.conversation_cobrowse(shared.cid)) == 1
    await second.close()  # the tab is closed
    await shared.citizen.until(lambda f: f.get("type") == "cobrowse" and f["state"] == "ended", 10)
    ended = (await cobrowse_events(redis, shared.cid))[-1]
    assert (ended["by"], ended["reason"]) == ("citizen", "page_closed")


async def test_the_citizen_ends_it_and_the_agent_may_offer_a_page_only_while_watching(
    shared: Shared, redis: Redis
) -> None:
    link = {"type": "cobrowse_link", "conversation_id": shared.cid, "path": "/portal/x"}
    await shared.alina.send(link)
    assert (await shared.alina.until(lambda f: f["type"] == "error"))["code"] == "cobrowse_refused"
    await shared.agree()
    await shared.alina.send({**link, "path": "//evil.example/phish"})
    assert (await shared.alina.until(lambda f: f["type"] == "error"))["code"] == "bad_frame"
    await shared.alina.send(link)
    offered = await shared.citizen.until(lambda f: f.get("type") == "cobrowse"
                                         and f["state"] == "link")  # fmt: skip
    assert offered["path"] == "/portal/x"
    await shared.citizen.send({"type": "cobrowse_end"})
    ended = await shared.citizen.until(lambda f: f.get("type") == "cobrowse"
                                       and f["state"] == "ended")  # fmt: skip
    assert (ended["by"], ended["reason"]) == ("citizen", "citizen_ended")
    assert await redis.exists(keys.conversation_cobrowse(shared.cid)) == 0
