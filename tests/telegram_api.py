"""A local HTTP server that answers like Telegram's Bot API, for tests.

Telegram's cloud cannot be reached from here, so the gateway's channel is pointed
(TELEGRAM_API_URL) at this server. It speaks the real API's shape: `POST
/bot<token>/<method>` with a JSON body, answers `{"ok": true, "result": …}`, and on
request fails the way Telegram does (`{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}` with 429, 5xx, 403). It runs on a thread of its own,
so gateways in other processes and the test's event loop can both use it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.services import free_port


@dataclass
class Call:
    method: str
    token: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class TelegramApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[Call] = []
        self.refused: list[Call] = []  # requests answered with an error
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1000)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> TelegramApi:
        ready = threading.Event()
        self._ready = ready
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Telegram test server did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def fail_next(self, times: int, status: int, **answer: Any) -> None:
        """The next `times` calls fail with `status` (e.g. 500, or 429 with retry_after)."""
        body = {"ok": False, "error_code": status, "description": answer.pop("description",
                f"Error {status}"), **answer}  # fmt: skip
        with self._lock:
            self._failures.extend([(status, body)] * times)

    def sent(
        self, chat_id: int, predicate: Callable[[Call], bool] = lambda call: True
    ) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == "sendMessage"
                    and c.body.get("chat_id") == chat_id and predicate(c)]  # fmt: skip

    async def wait_for(
        self, chat_id: int, predicate: Callable[[Call], bool], timeout: float = 30.0
    ) -> Call:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sent(chat_id, predicate)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        texts = [c.body.get("text", "")[:80] for c in self.sent(chat_id)]
        raise AssertionError(f"no such message to {chat_id} within {timeout} s; sent: {texts}")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        call = Call(method, token, await request.json())
        if token != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)  # fmt: skip
        with self._lock:
            if self._failures:
                status, body = self._failures.pop(0)
                self.refused.append(call)
                return web.json_response(body, status=status)
            self.calls.append(call)
        if method == "sendMessage":
            result: Any = {"message_id": next(self._message_ids),
                           "chat": {"id": call.body.get("chat_id"), "type": "private"},
                           "date": int(time.time()), "text": call.body.get("text", "")}  # fmt: skip
        else:
            result = True
        return web.json_response({"ok": True, "result": result})
