"""WhatsApp Cloud API: Meta's webhook in, `POST /{phone-number-id}/messages` out.

In (`/channels/whatsapp`): the handshake and signature of channels/meta.py; one POST
may carry several entries, changes and messages, and each is handled. A message's
`wamid` de-duplicates it. Text messages and interactive replies (a reply button or a
list row: its id names the event and choice, `<conversation>:<seq>:<index>`) are read;
images, voice, stickers, locations and the like get a polite answer. Delivery
statuses are acknowledged and ignored.

Out: text (cut at 4,096 characters, link previews on); up to three choices as reply
buttons (titles cut at 20 characters), more as a list (up to ten rows, titles at 24);
links written into the text, since WhatsApp has no link buttons outside templates.
Outside WhatsApp's 24-hour customer-service window free-form messages are refused
(Graph error 131047); such a refusal is kept for supervisors like any other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from handover.channels.base import Delivery, register
from handover.channels.inbox import Inbound
from handover.channels.meta import MetaChannel
from handover.channels.rendering import Rendered, choice_id, fit, read_choice_id, render, with_links
from handover.settings import Settings

MAX_TEXT = 4096
MAX_INTERACTIVE_TEXT = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ROWS = 10
MAX_ROW_TITLE = 24


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Reply(_Loose):
    id: str
    title: str = ""


class Interactive(_Loose):
    type: str
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Text(_Loose):
    body: str


class Message(_Loose):
    id: str
    type: str
    from_: str = Field(alias="from")
    text: Text | None = None
    interactive: Interactive | None = None


class Value(_Loose):
    messages: list[Message] = []


class Change(_Loose):
    value: Value
    field: str = "messages"


class Entry(_Loose):
    changes: list[Change] = []


class Notification(_Loose):
    object: str
    entry: list[Entry]


@register
class WhatsAppChannel(MetaChannel):
    name: ClassVar[str] = "whatsapp"
    reply_window_s: ClassVar[int | None] = 24 * 3600
    required: ClassVar[tuple[str, ...]] = (
        "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppChannel:
        api, phone = settings.whatsapp_api_url.rstrip("/"), settings.whatsapp_phone_number_id
        channel = cls(f"{api}/{phone}/messages", settings.whatsapp_access_token,
                      settings.whatsapp_app_secret, settings.whatsapp_verify_token,
                      settings.channel_send_timeout_s)  # fmt: skip
        channel.template = (settings.whatsapp_template_name, settings.whatsapp_template_language)
        return channel

    # --- in ---------------------------------------------------------------------------

    def read(self, body: bytes) -> list[Inbound]:
        return self._inbound(Notification.model_validate_json(body))

    def _inbound(self, notification: Notification) -> list[Inbound]:
        """Every message of the delivery, in order (statuses and other fields ignored)."""
        inbound: list[Inbound] = []
        for entry in notification.entry:
            for change in entry.changes:
                if change.field != "messages":
                    continue
                inbound.extend(self._one(message) for message in change.value.messages)
        return inbound

    def _one(self, message: Message) -> Inbound:
        sender, message_id = message.from_, message.id
        if message.type == "text" and message.text and message.text.body.strip():
            return Inbound(self.name, sender, message_id, text=message.text.body.strip())
        if message.type == "interactive" and message.interactive:
            reply = message.interactive.button_reply or message.interactive.list_reply
            if reply is not None:
                return Inbound(self.name, sender, message_id, text=reply.title,
                               answers=read_choice_id(reply.id))  # fmt: skip
        return Inbound(self.name, sender, message_id, unsupported=True)

    # --- out --------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> None:
        rendered = render(delivery.event, delivery.language)
        if not rendered.text and not rendered.choices:
            return
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": delivery.recipient}  # fmt: skip
        if delivery.event.get("template"):
            # Outside the 24-hour window: the template WhatsApp approved, not free text.
            name, language = self.template
            body.update({"type": "template",
                         "template": {"name": name, "language": {"code": language}}})  # fmt: skip
            await self.post(body)
            return
        ids = [choice_id(delivery.conversation_id, int(delivery.event["seq"]), c.index)
               for c in rendered.choices]  # fmt: skip
        body.update(_message(rendered, ids, delivery.language))
        await self.post(body)


def _message(rendered: Rendered, ids: list[str], language: str) -> dict[str, Any]:
    """A text message, or an interactive one with reply buttons (≤ 3) or a list (≤ 10)."""
    text = with_links(rendered)
    choices = rendered.choices[:MAX_ROWS]
    if not choices:
        return {"type": "text", "text": {"body": fit(text, MAX_TEXT), "preview_url": True}}
    body = {"text": fit(text or "…", MAX_INTERACTIVE_TEXT)}
    if len(choices) <= MAX_BUTTONS:
        buttons = [{"type": "reply", "reply": {"id": i, "title": fit(c.title, MAX_BUTTON_TITLE)}}
                   for i, c in zip(ids, choices, strict=True)]  # fmt: skip
        interactive = {"type": "button", "body": body, "action": {"buttons": buttons}}
        return {"type": "interactive", "interactive": interactive}
    rows = [
        {"id": i, "title": fit(c.title, MAX_ROW_TITLE)} for i, c in zip(ids, choices, strict=True)
    ]
    label = "Auswählen" if language != "en" else "Choose"
    return {"type": "interactive", "interactive": {
        "type": "list", "body": body,
        "action": {"button": label, "sections": [{"title": label, "rows": rows}]}}}  # fmt: skip
