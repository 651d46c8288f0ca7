"""Local HTTP servers that answer like the messengers' send APIs, for tests and benchmarks.

The providers' clouds cannot be reached from here, so each channel is pointed at one of
these (`TELEGRAM_API_URL`, `WHATSAPP_API_URL`, `MESSENGER_API_URL`). Each speaks its
real API's shape (paths, authentication, JSON bodies, success and error answers) and,
on request, fails the way the provider does (5xx, 429 with its wait, 403 for a user
who blocked the bot, or an outage of some seconds). It runs on a thread of its own, so
gateways in other processes and the test's event loop can both use it.
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
    recipient: str
    text: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class ProviderApi:
    """What every fake provider shares: the server thread, the record, the failures."""

    name = "provider"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[Call] = []
        self.refused: list[Call] = []  # requests answered with an error
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._down_until = 0.0
        self._down_status = 503
        self._lock = threading.Lock()
        self._ids = itertools.count(1000)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # --- what a provider defines -------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error_body(self, status: int, description: str, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------

    def start(self) -> ProviderApi:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the {self.name} test server did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def fail_next(self, times: int, status: int, description: str = "", **extra: Any) -> None:
        """The next `times` calls fail with `status` and the provider's error body."""
        body = self.error_body(status, description or f"Error {status}", **extra)
        with self._lock:
            self._failures.extend([(status, body)] * times)

    def down_for(self, seconds: float, status: int = 503) -> None:
        """Every call fails with `status` for the next `seconds` (a provider outage)."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
            self._down_status = status

    def all_sent(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.recipient]

    def sent(self, recipient: int | str, predicate: Callable[[Call], bool] = bool) -> list[Call]:
        return [c for c in self.all_sent() if c.recipient == str(recipient) and predicate(c)]

    async def wait_for(
        self, recipient: int | str, predicate: Callable[[Call], bool], timeout: float = 30.0
    ) -> Call:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sent(recipient, predicate)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        texts = [c.text[:80] for c in self.sent(recipient)]
        raise AssertionError(f"no such message to {recipient} within {timeout} s; sent: {texts}")

    def answer(self, call: Call, result: dict[str, Any]) -> web.Response:
        """Record the call and answer it: with the failure queued or the outage, else `result`."""
        with self._lock:
            if time.monotonic() < self._down_until:
                self.refused.append(call)
                body = self.error_body(self._down_status, "Service Unavailable")
                return web.json_response(body, status=self._down_status)
            if self._failures:
                status, body = self._failures.pop(0)
                self.refused.append(call)
                return web.json_response(body, status=status)
            self.calls.append(call)
        return web.json_response(result)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()


class TelegramApi(ProviderApi):
    """Telegram's Bot API: `POST /bot<token>/<method>`, `{"ok": true, "result": …}`."""

    name = "Telegram"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._handle)

    def error_body(self, status: int, description: str, **extra: Any) -> dict[str, Any]:
        return {"ok": False, "error_code": status, "description": description, **extra}

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(self.error_body(401, "Unauthorized"), status=401)
        method, body = request.match_info["method"], await request.json()
        sending = method == "sendMessage"
        call = Call(method, str(body.get("chat_id", "")) if sending else "",
                    str(body.get("text", "")), body)  # fmt: skip
        if not sending:
            return self.answer(call, {"ok": True, "result": True})
        return self.answer(call, {"ok": True, "result": {
            "message_id": next(self._ids), "date": int(time.time()), "text": call.text,
            "chat": {"id": body.get("chat_id"), "type": "private"}}})  # fmt: skip


class GraphApi(ProviderApi):
    """Meta's Graph API as WhatsApp Cloud and Messenger use it: a Bearer token, JSON bodies,
    `{"error": {"message", "type", "code", "fbtrace_id"}}` on failure."""

    name = "Graph"

    def __init__(self, token: str, phone_number_id: str = "") -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{node}/messages", self._handle)

    def error_body(self, status: int, description: str, **extra: Any) -> dict[str, Any]:
        code = extra.pop("code", {429: 4, 403: 10}.get(status, 2))
        return {"error": {"message": description, "type": "OAuthException", "code": code,
                          "fbtrace_id": "Atest", **extra}}  # fmt: skip

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}" or request.query:
            # Credentials belong in the header; a token in the query is refused here.
            return web.json_response(self.error_body(401, "Invalid OAuth access token"),
                                     status=401)  # fmt: skip
        node, body = request.match_info["node"], await request.json()
        if node == "me":  # Messenger: /me/messages
            message = body.get("message") or {}
            call = Call("send", str((body.get("recipient") or {}).get("id", "")),
                        str(message.get("text", "")), body)  # fmt: skip
            return self.answer(call, {"recipient_id": call.recipient,
                                      "message_id": f"m_{next(self._ids)}"})  # fmt: skip
        if node != self.phone_number_id or body.get("messaging_product") != "whatsapp":
            return web.json_response(self.error_body(400, "Unsupported post request"), status=400)
        kind = body.get("type")
        text = (body.get("text") or {}).get("body") if kind == "text" else (
            ((body.get("interactive") or {}).get("body") or {}).get("text"))  # fmt: skip
        call = Call("send", str(body.get("to", "")), str(text or ""), body)
        return self.answer(call, {"messaging_product": "whatsapp",
                                  "contacts": [{"input": call.recipient, "wa_id": call.recipient}],
                                  "messages": [{"id": f"wamid.{next(self._ids)}"}]})  # fmt: skip


class SmtpRelay:
    """A real SMTP server (aiosmtpd) standing for the city's relay: it keeps what it is given.

    `fail_next(n, code)` answers the next n mails with that code (451: try later; 550: never).
    """

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.messages: list[Any] = []  # email.message.EmailMessage
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpRelay:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def fail_next(self, times: int, code: int) -> None:
        with self._lock:
            reply = f"{code} 4.3.0 Try again later" if code < 500 else f"{code} 5.7.1 Refused"
            self._failures.extend([reply] * times)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        import email.policy

        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            self.messages.append(email.message_from_bytes(envelope.content,
                                                          policy=email.policy.default))  # fmt: skip
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    async def wait_for(self, address: str, predicate: Callable[[Any], bool],
                       timeout: float = 30.0) -> Any:  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if predicate(m)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        texts = [m.get_content()[:80] for m in self.to(address)]
        raise AssertionError(f"no such mail to {address} within {timeout} s; got: {texts}")
