"""A citizen-socket client for tests: speaks the wire protocol over a real websocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]


class CitizenClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[Frame] = []
        self.session: Frame = {}

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str | None = None,
        after: int | None = None,
        lang: str | None = None,
    ) -> CitizenClient:
        query = {
            k: v for k, v in {"token": token, "after": after, "lang": lang}.items() if v is not None
        }
        url = f"{ws_url}?{urlencode(query)}" if query else ws_url
        client = cls(await connect(url, max_size=2**22))
        client.session = await client.receive()
        assert client.session["type"] == "session", client.session
        return client

    @property
    def token(self) -> str:
        return str(self.session["token"])

    async def receive(self, timeout: float = 20.0) -> Frame:
        frame: Frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Callable[[Frame], bool], timeout: float = 20.0) -> Frame:
        """Receive until a frame matches; earlier frames stay in `frames`."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive(timeout)
                if predicate(frame):
                    return frame

    async def send(self, frame: Frame | str) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "client_id": client_id, "text": text})
        return client_id

    async def bot_reply(self, timeout: float = 30.0) -> Frame:
        return await self.until(
            lambda f: f.get("type") == "message" and f.get("from") == "bot", timeout
        )

    def durable(self) -> list[Frame]:
        return [f for f in self.frames if "seq" in f and f["type"] not in ("ack", "session")]

    async def close(self) -> None:
        await self.connection.close()
