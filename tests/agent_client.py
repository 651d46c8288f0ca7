"""An agent for tests: logs in over HTTP and speaks the agent socket protocol."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.frame_socket import Frame, FrameSocket


async def login(base_url: str, username: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{base_url}/api/agent/login",
            json={"username": username, "password": password},
            timeout=60,
        )


def agent_ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws/agent"


async def connect_agent(base_url: str, token: str, **options: Any) -> ClientConnection:
    """An agent socket that has sent its `auth` frame (the token never goes into the URL)."""
    socket = await connect(agent_ws_url(base_url), **options)
    await socket.send(json.dumps({"type": "auth", "token": token}))
    return socket


class AgentClient(FrameSocket):
    token: str = ""

    @classmethod
    async def open(cls, base_url: str, username: str, password: str) -> AgentClient:
        response = await login(base_url, username, password)
        assert response.status_code == 200, response.text
        return await cls.with_token(base_url, response.json()["token"])

    @classmethod
    async def with_token(cls, base_url: str, token: str) -> AgentClient:
        agent = cls(await connect_agent(base_url, token))
        agent.token = token
        hello = await agent.receive()
        assert hello["type"] == "hello", hello
        return agent

    async def queue_with(self, conversation_id: str, timeout: float = 20.0) -> Frame:
        """The first queue view that lists the conversation; returns its item."""
        frame = await self.until(
            lambda f: (
                f["type"] == "queue"
                and any(i["conversation_id"] == conversation_id for i in f["items"])
            ),
            timeout,
        )
        return next(i for i in frame["items"] if i["conversation_id"] == conversation_id)

    async def accept(self, conversation_id: str) -> Frame:
        await self.send({"type": "accept", "conversation_id": conversation_id})
        return await self.until(
            lambda f: (
                f["type"] in ("assigned", "error")
                and (f["type"] == "error" or f["conversation_id"] == conversation_id)
            )
        )

    async def say(self, conversation_id: str, text: str) -> None:
        await self.send({"type": "message", "conversation_id": conversation_id,
                         "client_id": uuid.uuid4().hex, "text": text})  # fmt: skip

    async def settle(self, quiet_s: float = 1.0) -> list[Frame]:
        """Receive until nothing arrives for `quiet_s`; returns what arrived."""
        received = []
        while True:
            try:
                received.append(await self.receive(quiet_s))
            except TimeoutError:
                return received

    async def agents_view(self, predicate: Callable[[dict[str, Frame]], bool]) -> dict[str, Frame]:
        """A supervisor's first `agents` frame, by agent id, that satisfies `predicate`."""
        frame = await self.until(
            lambda f: f["type"] == "agents" and predicate({a["id"]: a for a in f["items"]})
        )
        return {a["id"]: a for a in frame["items"]}
