"""An agent for tests: logs in over HTTP and speaks the agent socket protocol."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]


async def login(base_url: str, username: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{base_url}/api/agent/login",
            json={"username": username, "password": password},
            timeout=60,
        )


class AgentClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[Frame] = []

    @classmethod
    async def open(cls, base_url: str, username: str, password: str) -> AgentClient:
        response = await login(base_url, username, password)
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        ws_url = base_url.replace("http://", "ws://") + f"/ws/agent?token={token}"
        agent = cls(await connect(ws_url))
        hello = await agent.receive()
        assert hello["type"] == "hello", hello
        return agent

    async def receive(self, timeout: float = 20.0) -> Frame:
        frame: Frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Callable[[Frame], bool], timeout: float = 20.0) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive(timeout)
                if predicate(frame):
                    return frame

    async def send(self, frame: Frame) -> None:
        await self.connection.send(json.dumps(frame))

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

    async def close(self) -> None:
        await self.connection.close()
