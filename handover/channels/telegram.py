"""Telegram: the Bot API's webhook in, `sendMessage` out.

In: Telegram POSTs each update to `/channels/telegram` with the secret set by
`setWebhook` (`python -m handover.admin telegram-webhook`) in
`X-Telegram-Bot-Api-Secret-Token`; a request without it, or with another, is refused
(401) before its body is read. `update_id` names the update: a retried delivery is
stored once. Text messages and button presses (`callback_query`) are read; stickers,
voice messages, locations and the like get a polite answer saying what the bot reads.

Out: buttons become an inline keyboard whose `callback_data` says which event's
which button was pressed (`<seq>:<index>`, well inside Telegram's 64 bytes; the
payload itself stays in the log), links become URL buttons, `state` and CSAT events
become sentences (channels/rendering.py). Telegram wants the bot token in the API
URL's path; it is never logged (aiohttp logs no URLs, and errors are logged by
their type and Telegram's description only).
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar

import aiohttp
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handover.channels.base import Delivery, OutboxChannel, SendFailed, register
from handover.channels.inbox import ChannelInbox, Inbound
from handover.channels.rendering import Rendered, choice_id, fit, read_choice_id, render
from handover.settings import Settings

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_BUTTON_TEXT = 64


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class User(_Loose):
    id: int
    language_code: str | None = None


class Chat(_Loose):
    id: int
    type: str = "private"


class Message(_Loose):
    message_id: int
    chat: Chat
    from_: User | None = Field(None, alias="from")
    text: str | None = None


class CallbackQuery(_Loose):
    id: str
    from_: User = Field(alias="from")
    data: str | None = None


class Update(_Loose):
    """One webhook delivery; kinds the bot does not take (edits, polls, …) are ignored."""

    update_id: int
    message: Message | None = None
    callback_query: CallbackQuery | None = None


@register
class TelegramChannel(OutboxChannel):
    name: ClassVar[str] = "telegram"
    required: ClassVar[tuple[str, ...]] = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")

    def __init__(self, api_url: str, token: str, secret: str, timeout_s: float) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._secret = secret.encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel:
        return cls(settings.telegram_api_url, settings.telegram_bot_token,
                   settings.telegram_webhook_secret, settings.channel_send_timeout_s)  # fmt: skip

    # --- in ---------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/channels/telegram", include_in_schema=False)
        async def webhook(request: Request) -> JSONResponse:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(given, self._secret):
                log.warning("channel_refused", channel=self.name, reason="secret")
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            try:
                update = Update.model_validate_json(await request.body())
                inbound = self._inbound(update)
            except (ValidationError, ValueError) as exc:
                log.warning("channel_bad_update", channel=self.name, error=type(exc).__name__)
                return JSONResponse({"error": "bad_request"}, status_code=400)
            if inbound is None:
                return JSONResponse({"ok": True})  # an update kind the bot does not take
            inbox: ChannelInbox = request.app.state.channel_inbox
            await inbox.receive_all([inbound])
            if update.callback_query is not None:
                await self._answer_callback(update.callback_query.id)
            return JSONResponse({"ok": True})

        return router

    def _inbound(self, update: Update) -> Inbound | None:
        message_id = f"u{update.update_id}"
        if update.callback_query is not None:
            query = update.callback_query
            return Inbound(self.name, str(query.from_.id), message_id,
                           answers=read_choice_id(query.data or ""),
                           language=query.from_.language_code)  # fmt: skip
        if update.message is None:
            return None
        message = update.message
        if message.chat.type != "private":
            return None  # groups and channels are not citizens' conversations
        language = message.from_.language_code if message.from_ else None
        text = (message.text or "").strip()
        if not text:
            return Inbound(self.name, str(message.chat.id), message_id, language=language,
                           unsupported=True)  # fmt: skip
        if text.split("@", 1)[0] == "/start":
            text = "Hallo"  # Telegram's first message; a slash would be read as an intent
        return Inbound(self.name, str(message.chat.id), message_id, text=text, language=language)

    # --- out --------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> None:
        rendered = render(delivery.event, delivery.language)
        if not rendered.text:
            return
        body: dict[str, Any] = {"chat_id": int(delivery.recipient),
                                "text": fit(rendered.text, MAX_TEXT)}  # fmt: skip
        keyboard = _keyboard(rendered, delivery.conversation_id, int(delivery.event["seq"]))
        if keyboard:
            body["reply_markup"] = {"inline_keyboard": keyboard}
        await self._call("sendMessage", body)

    async def _answer_callback(self, query_id: str) -> None:
        """Stop the button's spinner; best effort, nothing depends on it."""
        try:
            await self._call("answerCallbackQuery", {"callback_query_id": query_id})
        except (SendFailed, aiohttp.ClientError, TimeoutError) as exc:
            log.info("telegram_callback_unanswered", error=type(exc).__name__)

    async def set_webhook(self, url: str) -> None:
        """Tell Telegram where to deliver updates, and with which secret."""
        await self._call("setWebhook", {
            "url": url, "secret_token": self._secret.decode(),
            "allowed_updates": ["message", "callback_query"],
        })  # fmt: skip

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session().post(
            f"{self._base}/{method}", json=body, timeout=self._timeout
        ) as response:
            try:
                answer: dict[str, Any] = await response.json(content_type=None)
            except ValueError:
                answer = {}
        if response.status == 200 and answer.get("ok"):
            return answer
        description = str(answer.get("description", ""))[:200] or f"HTTP {response.status}"
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        if response.status == 429:
            raise SendFailed(description, retry_after_s=float(retry_after or 1))
        # 400 (e.g. chat not found) and 403 (the user blocked the bot) will not change.
        permanent = response.status in (400, 401, 403, 404)
        raise SendFailed(f"{method}: {description}", permanent=permanent)


def _keyboard(rendered: Rendered, conversation_id: str, seq: int) -> list[list[dict[str, str]]]:
    """Choices as callback buttons (`choice_id`), links as URL buttons."""
    rows = [
        [
            {
                "text": fit(c.title, MAX_BUTTON_TEXT),
                "callback_data": choice_id(conversation_id, seq, c.index),
            }
        ]
        for c in rendered.choices
    ]
    rows += [[{"text": fit(link.title, MAX_BUTTON_TEXT), "url": link.url}]
             for link in rendered.links]  # fmt: skip
    return rows
