"""A citizen-socket client for tests: speaks the wire protocol over a real websocket."""

from __future__ import annotations

import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.frame_socket import Frame, FrameSocket


class CitizenClient(FrameSocket):
    def __init__(self, connection: ClientConnection) -> None:
        super().__init__(connection)
        self.session: Frame = {}

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str | None = None,
        after: int | None = None,
        lang: str | None = None,
        hello: Any = True,
    ) -> CitizenClient:
        """Connect and say hello (token and `after` in the first frame, never in the URL).

        `hello`: True sends the hello of `token`/`after`/`lang`; a dict or a string
        is sent as the first frame instead; None sends nothing (the server waits
        HELLO_TIMEOUT_S).
        """
        url = f"{ws_url}?lang={lang}" if lang else ws_url
        client = cls(await connect(url, max_size=2**22))
        if hello is True:
            frame = {"type": "hello", "token": token, "after": after, "lang": lang}
            await client.send({k: v for k, v in frame.items() if v is not None})
        elif hello is not None:
            await client.send(hello)
        client.session = await client.receive(timeout=15.0)
        assert client.session["type"] == "session", client.session
        return client

    @classmethod
    async def converse(cls, ws_url: str, texts: list[str], timeout: float = 60.0) -> Frame:
        """One conversation: each text waits for the bot's answer to it; the session frame."""
        client = await cls.open(ws_url)
        try:
            for text in texts:
                await client.answer(text, timeout=timeout)
        finally:
            await client.close()
        return client.session

    @property
    def token(self) -> str:
        return str(self.session["token"])

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "client_id": client_id, "text": text})
        return client_id

    async def bot_reply(self, timeout: float = 30.0) -> Frame:
        return await self.until(
            lambda f: f.get("type") == "message" and f.get("from") == "bot", timeout
        )

    async def answer(self, text: str, timeout: float = 30.0) -> Frame:
        """Say `text`; the bot's first message after it, not a later one of an earlier turn."""
        client_id = await self.say(text)
        ack = await self.until(
            lambda f: f.get("type") == "ack" and f.get("client_id") == client_id, timeout
        )
        return await self.until(
            lambda f: (
                f.get("type") == "message"
                and f.get("from") == "bot"
                and f.get("seq", 0) > ack["seq"]
            ),
            timeout,
        )

    def durable(self) -> list[Frame]:
        return [f for f in self.frames if "seq" in f and f["type"] not in ("ack", "session")]
