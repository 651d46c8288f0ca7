"""Citizens and agents that keep going while processes die under them, and count.

Each reconnects through nginx whenever its socket drops (as the widget and the console
do, with the token and `after`), sends again what was not acknowledged with the same
client id, and keeps what it received by seq, so the test can compare with the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.agent_client import login

Frame = dict[str, Any]


async def _connected(url: str, first: Frame, deadline_s: float = 60) -> ClientConnection:
    """Open a socket and send its first frame, retrying while nginx or a replica is away."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    while True:
        try:
            socket = await connect(url, open_timeout=5, max_size=2**22)
            await socket.send(json.dumps(first))
            return socket
        except (OSError, InvalidStatus, ConnectionClosed, TimeoutError):
            if loop.time() > give_up:
                raise
            await asyncio.sleep(0.5)


@dataclass
class ChaosCitizen:
    ws_url: str
    token: str = ""
    conversation_id: str = ""
    events: dict[int, Frame] = field(default_factory=dict)  # durable events received, by seq
    pending: dict[str, str] = field(default_factory=dict)  # client id → text, not yet acked
    acked: set[str] = field(default_factory=set)
    sent: int = 0
    refused: int = 0  # refused with a reason (over budget): the widget shows it, never stores it
    reconnects: int = 0
    state: str = "bot"
    socket: ClientConnection | None = None
    bot_replies: int = 0

    async def open(self) -> None:
        hello: Frame = {"type": "hello"}
        if self.token:
            hello |= {"token": self.token, "after": max(self.events, default=0)}
        self.socket = await _connected(self.ws_url, hello)
        session = json.loads(await asyncio.wait_for(self.socket.recv(), 30))
        assert session["type"] == "session", session
        self.token, self.conversation_id = session["token"], session["conversation_id"]
        for client_id, text in list(self.pending.items()):  # not acknowledged: again
            await self.socket.send(json.dumps({"type": "message", "client_id": client_id,
                                               "text": text}))  # fmt: skip

    async def say(self, text: str) -> str:
        client_id = uuid.uuid4().hex
        self.pending[client_id] = text
        self.sent += 1
        if self.socket is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.socket.send(json.dumps({"type": "message", "client_id": client_id,
                                                   "text": text}))  # fmt: skip
        return client_id

    async def run(self) -> None:
        """Receive until cancelled; reconnect whenever the socket drops."""
        while True:
            try:
                assert self.socket is not None
                async for raw in self.socket:
                    self._take(json.loads(raw))
            except ConnectionClosed:
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)
            await self.open()

    def _take(self, frame: Frame) -> None:
        if frame.get("type") == "ack":
            if self.pending.pop(frame.get("client_id", ""), None) is not None:
                self.acked.add(frame["client_id"])
        elif frame.get("type") == "error" and frame.get("code") in ("rate_limited", "too_large"):
            # As the widget does: the oldest message not yet acknowledged was refused.
            oldest = next(iter(self.pending), None)
            if oldest is not None:
                del self.pending[oldest]
                self.refused += 1
        elif isinstance(frame.get("seq"), int):
            self.events.setdefault(frame["seq"], frame)
            if frame.get("type") == "state":
                self.state = frame["state"]
            if frame.get("from") == "bot":
                self.bot_replies += 1


@dataclass
class ChaosAgent:
    base_url: str
    username: str
    password: str
    replies: dict[str, str] = field(default_factory=dict)  # reply client id → conversation
    acked: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    heard: dict[str, set[str]] = field(default_factory=dict)  # conversation → citizen client ids
    reconnects: int = 0
    socket: ClientConnection | None = None
    token: str = ""

    async def open(self) -> None:
        if not self.token:
            response = await login(self.base_url, self.username, self.password)
            assert response.status_code == 200, response.text
            self.token = response.json()["token"]
        url = self.base_url.replace("http://", "ws://") + "/ws/agent"
        self.socket = await _connected(url, {"type": "auth", "token": self.token})

    async def run(self) -> None:
        while True:
            try:
                assert self.socket is not None
                async for raw in self.socket:
                    await self._take(json.loads(raw))
            except ConnectionClosed:
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)
            await self.open()

    async def _take(self, frame: Frame) -> None:
        kind, cid = frame.get("type"), frame.get("conversation_id", "")
        if kind == "assigned":
            self.assigned.add(cid)
            for event in frame.get("transcript") or []:
                await self._answer(cid, event)
            # Replies sent but never acknowledged (the socket dropped): again, same id.
            for client_id, conversation in list(self.replies.items()):
                if conversation == cid and client_id not in self.acked:
                    await self._send(cid, client_id)
        elif kind == "ack":
            self.acked.add(frame.get("client_id", ""))
        elif kind == "message":
            await self._answer(cid, frame)

    async def _answer(self, cid: str, event: Frame) -> None:
        """Answer each citizen message once: the reply's id is derived from the message's."""
        if event.get("type") != "message" or event.get("from") != "citizen":
            return
        heard = self.heard.setdefault(cid, set())
        client_id = str(event.get("client_id", ""))
        if client_id in heard:
            return
        heard.add(client_id)
        reply = f"re-{client_id}"
        self.replies[reply] = cid
        await self._send(cid, reply)

    async def _send(self, cid: str, client_id: str) -> None:
        if self.socket is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self.socket.send(json.dumps({"type": "message", "conversation_id": cid,
                                               "client_id": client_id,
                                               "text": f"Antwort {client_id[-6:]}"}))  # fmt: skip
