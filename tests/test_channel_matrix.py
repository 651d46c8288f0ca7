"""Matrix, end to end: a real Synapse homeserver (from PyPI, SQLite), a real gateway, Redis,
Rasa and action server; the citizen is a Matrix user with a client of her own (matrix-nio)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, RoomMessageNotice, RoomMessageText, SyncResponse
from redis.asyncio import Redis

from handover.conversation.log import ConversationLog
from tests.agent_client import AgentClient
from tests.channel_conversations import conversation_of, report_damage_and_ask_its_status
from tests.services import Service, start_gateway
from tests.synapse import register, start_synapse
from tests.test_handover import PASSWORD

pytestmark = pytest.mark.rasa

BOT = "buergerservice"


@pytest.fixture(scope="module")
def synapse(service_dir: Path) -> Iterator[Service]:
    server = start_synapse(service_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot_account(synapse: Service) -> dict[str, Any]:
    return register(synapse, BOT, "bot-password-123")


def matrix_gateway_env(synapse: Service, bot: dict[str, Any]) -> dict[str, str]:
    return {"MATRIX_HOMESERVER_URL": synapse.url, "MATRIX_USER_ID": bot["user_id"],
            "MATRIX_ACCESS_TOKEN": bot["access_token"], "OUTBOX_LEASE_S": "3"}  # fmt: skip


@pytest.fixture(scope="module")
def matrix_gateway(
    service_dir: Path, redis_url: str, rasa_server: Service, synapse: Service,
    bot_account: dict[str, Any], alina_account: None,
) -> Iterator[Service]:  # fmt: skip
    service = start_gateway(service_dir, "gateway-matrix", redis_url, rasa_server.port,
                            env=matrix_gateway_env(synapse, bot_account))  # fmt: skip
    yield service
    service.stop()


class Citizen:
    """A Matrix user with her own client: invites the bot, writes, reads what it says."""

    def __init__(self, client: AsyncClient, bot_id: str) -> None:
        self.client = client
        self.bot_id = bot_id
        self.room_id = ""
        self.heard: list[str] = []
        self._since: str | None = None

    @classmethod
    async def open(cls, synapse: Service, name: str, bot_id: str) -> Citizen:
        account = register(synapse, f"{name}{time.monotonic_ns()}", "citizen-password-1")
        client = AsyncClient(synapse.url, account["user_id"])
        client.access_token, client.user_id = account["access_token"], account["user_id"]
        citizen = cls(client, bot_id)
        await citizen._sync()
        created = await client.room_create(is_direct=True, invite=[bot_id])
        citizen.room_id = created.room_id  # type: ignore[union-attr]
        await citizen.until(lambda _: citizen.bot_joined(), 30)
        return citizen

    def bot_joined(self) -> bool:
        room = self.client.rooms.get(self.room_id)
        return room is not None and self.bot_id in room.users

    async def say(self, text: str, msgtype: str = "m.text", **content: Any) -> None:
        await self.client.room_send(self.room_id, "m.room.message",
                                    {"msgtype": msgtype, "body": text, **content})  # fmt: skip

    async def _sync(self) -> None:
        response = await self.client.sync(timeout=500, since=self._since)
        assert isinstance(response, SyncResponse), response
        self._since = response.next_batch
        room = response.rooms.join.get(self.room_id)
        for event in room.timeline.events if room else []:
            if (
                isinstance(event, RoomMessageNotice | RoomMessageText)
                and event.sender == self.bot_id
            ):
                self.heard.append(event.body)

    async def until(self, predicate: Callable[[list[str]], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.heard):
                return self.heard[-1] if self.heard else ""
            await self._sync()
        raise AssertionError(f"not heard within {timeout} s; heard: {self.heard}")

    async def close(self) -> None:
        await self.client.close()


@pytest.fixture
async def lena(
    matrix_gateway: Service, synapse: Service, bot_account: dict[str, Any]
) -> AsyncIterator[Citizen]:
    citizen = await Citizen.open(synapse, "lena", bot_account["user_id"])
    yield citizen
    await citizen.close()


async def test_the_bot_joins_answers_from_the_catalogue_and_a_number_chooses(lena: Citizen) -> None:
    await lena.say("Ich brauche einen neuen Personalausweis")
    await lena.until(lambda heard: any("Antworten Sie mit der Nummer" in h for h in heard))
    offer = next(h for h in lena.heard if "Antworten Sie mit der Nummer" in h)
    number = next(line.split(".")[0] for line in offer.splitlines() if line.endswith("Kosten"))
    await lena.say(number)
    await lena.until(lambda heard: any("€" in h for h in heard))
    await asyncio.sleep(1.0)
    await lena._sync()
    assert len(lena.heard) == len(set(lena.heard))  # nothing twice


async def test_a_picture_gets_told_what_the_bot_reads(lena: Citizen) -> None:
    await lena.say("foto.jpg", msgtype="m.image", url="mxc://musterstadt.test/abc")
    await lena.until(lambda heard: any("Textnachrichten" in h for h in heard))


async def test_a_damage_report_and_its_status_work(lena: Citizen, gateway: Service) -> None:
    """The forms run as on the web (the case is filed with the session's gateway)."""
    seen = len(lena.heard)

    async def heard(words: str) -> str:
        nonlocal seen
        await lena.until(lambda said: any(words in h for h in said[seen:]), 60)
        seen = next(i for i in range(seen, len(lena.heard)) if words in lena.heard[i]) + 1
        return lena.heard[seen - 1]

    await report_damage_and_ask_its_status(lena.say, heard)


async def test_a_person_takes_over_replies_closes_and_the_rating_is_stored(
    lena: Citizen, matrix_gateway: Service, redis: Redis
) -> None:
    agent = await AgentClient.open(matrix_gateway.url, "alina", PASSWORD)
    try:
        await lena.say("Ich möchte mit einem Mitarbeiter sprechen")
        await lena.until(lambda heard: any("Warteschlange" in h for h in heard))
        conversation_id = await conversation_of(redis, lena.room_id)
        item = await agent.queue_with(conversation_id)
        assert item["channel"] == "matrix"
        await agent.accept(conversation_id)
        await agent.say(conversation_id, "Guten Tag, hier ist Alina.")
        await lena.until(lambda heard: "Alina Berger: Guten Tag, hier ist Alina." in heard)
        await lena.say("Danke, das hilft mir.")
        await agent.until(lambda f: f["type"] == "message" and f.get("from") == "citizen"
                          and f.get("text") == "Danke, das hilft mir.")  # fmt: skip
        await agent.send({"type": "close", "conversation_id": conversation_id})
        await lena.until(lambda heard: any("zufrieden" in h for h in heard))
        await lena.say("5")
        await lena.until(lambda heard: any("Bewertung" in h for h in heard))
        assert (await ConversationLog(redis, 3600).csat(conversation_id))["csat_score"] == "5"
    finally:
        await agent.close()


async def test_a_message_written_while_the_gateway_was_down_is_answered_once(
    service_dir: Path, redis_url: str, rasa_server: Service, synapse: Service,
    bot_account: dict[str, Any], matrix_gateway: Service,
) -> None:  # fmt: skip
    citizen = await Citizen.open(synapse, "ben", bot_account["user_id"])
    try:
        matrix_gateway.stop()
        await citizen.say("Wo ist das Bürgerbüro?")
        restarted = start_gateway(service_dir, "gateway-matrix-2", redis_url, rasa_server.port,
                                  env=matrix_gateway_env(synapse, bot_account),
                                  port=matrix_gateway.port)  # fmt: skip
        try:
            await citizen.until(lambda heard: any("Bürgerbüro" in h for h in heard), 60)
            await asyncio.sleep(2.0)
            await citizen._sync()
            assert len(citizen.heard) == len(set(citizen.heard)), citizen.heard  # once
        finally:
            restarted.stop()
    finally:
        await citizen.close()
