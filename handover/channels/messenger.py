"""Facebook Messenger: Meta's webhook in, the Send API (`POST /me/messages`) out.

In (`/channels/messenger`): the handshake and signature of channels/meta.py; one POST
may carry several entries and messaging events, and each is handled. A message's `mid`
de-duplicates it. Text messages, quick replies (their payload names the event and
choice, `<conversation>:<seq>:<index>`) and postbacks are read; attachments get a
polite answer; echoes of the page's own messages, deliveries and reads are ignored.

Out: `messaging_type: RESPONSE` with text (cut at 2,000 characters, Messenger's limit)
and the choices as quick replies (at most 13, titles cut at 20 characters); links
written into the text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from handover.channels.base import Delivery, register
from handover.channels.inbox import Inbound
from handover.channels.meta import MetaChannel
from handover.channels.rendering import choice_id, fit, read_choice_id, render, with_links
from handover.settings import Settings

MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_TITLE = 20


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Loose):
    id: str


class QuickReply(_Loose):
    payload: str


class Message(_Loose):
    mid: str
    text: str | None = None
    quick_reply: QuickReply | None = None
    is_echo: bool = False
    attachments: list[dict[str, Any]] | None = None


class Postback(_Loose):
    payload: str = ""
    title: str = ""
    mid: str | None = None


class Messaging(_Loose):
    sender: Party
    timestamp: int = 0
    message: Message | None = None
    postback: Postback | None = None


class Entry(_Loose):
    messaging: list[Messaging] = []


class Notification(_Loose):
    object: str
    entry: list[Entry]


@register
class MessengerChannel(MetaChannel):
    name: ClassVar[str] = "messenger"
    required: ClassVar[tuple[str, ...]] = (
        "MESSENGER_PAGE_TOKEN", "MESSENGER_APP_SECRET", "MESSENGER_VERIFY_TOKEN",
    )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> MessengerChannel:
        return cls(f"{settings.messenger_api_url.rstrip('/')}/me/messages",
                   settings.messenger_page_token, settings.messenger_app_secret,
                   settings.messenger_verify_token, settings.channel_send_timeout_s)  # fmt: skip

    # --- in ---------------------------------------------------------------------------

    def read(self, body: bytes) -> list[Inbound]:
        return self._inbound(Notification.model_validate_json(body))

    def _inbound(self, notification: Notification) -> list[Inbound]:
        inbound: list[Inbound] = []
        for entry in notification.entry:
            for event in entry.messaging:
                one = self._one(event)
                if one is not None:
                    inbound.append(one)
        return inbound

    def _one(self, event: Messaging) -> Inbound | None:
        sender = event.sender.id
        if event.postback is not None:
            message_id = event.postback.mid or f"pb-{sender}-{event.timestamp}"
            return self._choice(sender, message_id, event.postback.payload, event.postback.title)
        message = event.message
        if message is None or message.is_echo:
            return None  # deliveries, reads, and the page's own messages
        if message.quick_reply is not None:
            return self._choice(sender, message.mid, message.quick_reply.payload,
                                message.text or "")  # fmt: skip
        if message.text and message.text.strip():
            return Inbound(self.name, sender, message.mid, text=message.text.strip())
        return Inbound(self.name, sender, message.mid, unsupported=True)

    def _choice(self, sender: str, message_id: str, payload: str, title: str) -> Inbound:
        return Inbound(self.name, sender, message_id, text=title,
                       answers=read_choice_id(payload))  # fmt: skip

    # --- out --------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> None:
        rendered = render(delivery.event, delivery.language)
        if not rendered.text:
            return
        message: dict[str, Any] = {"text": fit(with_links(rendered), MAX_TEXT)}
        seq = int(delivery.event["seq"])
        if rendered.choices:
            message["quick_replies"] = [
                {"content_type": "text", "title": fit(c.title, MAX_TITLE),
                 "payload": choice_id(delivery.conversation_id, seq, c.index)}
                for c in rendered.choices[:MAX_QUICK_REPLIES]
            ]  # fmt: skip
        body = {"recipient": {"id": delivery.recipient}, "messaging_type": "RESPONSE",
                "message": message}  # fmt: skip
        await self.post(body)
