"""A JSON-frame websocket for tests: receive with a timeout, wait for a matching frame."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]


class FrameSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[Frame] = []

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

    async def close(self) -> None:
        await self.connection.close()
