"""E-mail: an SMTP listener in, an SMTP relay out.

In: the city's mail system delivers mail for `EMAIL_ADDRESS` to the gateway's SMTP
listener (`EMAIL_LISTEN_HOST:EMAIL_LISTEN_PORT`, aiosmtpd on the gateway's event loop).
Only relays in `EMAIL_TRUSTED_RELAYS` may deliver (they check SPF/DKIM; the listener is
not an MX on the internet), only to `EMAIL_ADDRESS` (550 for any other recipient), at
most `EMAIL_MAX_BYTES` (552 beyond). The mail is parsed off the event loop; its
`Message-ID` de-duplicates it (a relay that retries is answered once). The text is the
plain part, or the HTML part as text; quoted earlier mails and signatures are cut off
(`reply_text`). Automatic mail (`Auto-Submitted`, bulk, out-of-office) is accepted and
dropped, so two robots never answer each other.

Out: one mail per bot turn (consecutive replies are batched), plain text, from
`EMAIL_ADDRESS` through `EMAIL_SMTP_HOST`, `In-Reply-To`/`References` naming the
citizen's last mail so mail programs thread it, `Auto-Submitted: auto-replied`.
Choices are a numbered list; the citizen answers with the number.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import ipaddress
import re
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from html.parser import HTMLParser
from typing import Any, ClassVar

import aiosmtplib
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter

from handover.channels.base import Delivery, OutboxChannel, SendFailed, register
from handover.channels.inbox import ChannelInbox, Inbound
from handover.channels.rendering import Rendered, render
from handover.settings import Settings

log = structlog.get_logger(__name__)

# Lines where a quoted earlier mail begins, in German and English mail programs.
_QUOTE_HEADER = re.compile(
    r"^\s*(Am .{4,80}schrieb .{1,120}:|On .{4,80}wrote:|-{2,}\s*(Original|Ursprüngliche)"
    r"|(Von|From):\s.+@|_{8,})",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^-- ?$")


class _HtmlText(HTMLParser):
    """HTML mail as text: block elements become line breaks, scripts and styles vanish."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag == "blockquote":
            self._skip += 1  # a quoted earlier mail
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "blockquote"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


def reply_text(text: str) -> str:
    """What the citizen wrote: without quoted earlier mails and without the signature."""
    kept = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_HEADER.match(line) or _SIGNATURE.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def is_automatic(message: EmailMessage) -> bool:
    """Auto-replies, bulk mail and mailing lists (RFC 3834 and common practice)."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (auto != "no" or precedence in ("bulk", "list", "junk", "auto_reply")
            or "List-Id" in message or "X-Autoreply" in message)  # fmt: skip


def read_mail(raw: bytes, address: str) -> Inbound | None:
    """The citizen's message in a mail (None for automatic mail). CPU work: not on the loop."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    if is_automatic(message):
        return None
    senders = getaddresses([str(message.get("From", ""))])
    sender = senders[0][1].strip().lower() if senders else ""
    if "@" not in sender or sender == address:
        raise ValueError("a mail without a sender")
    message_id = str(message.get("Message-ID", "")).strip()
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        text = html_text(content) if body.get_content_type() == "text/html" else content
    text = reply_text(str(text))
    subject = " ".join(str(message.get("Subject", "")).split())[:200]
    # The id de-duplicates: a relay's retry has the same Message-ID. No id: the content does.
    key = hashlib.sha256((message_id or f"{sender}\n{subject}\n{text}").encode()).hexdigest()[:40]
    facts = (("email_thread", message_id[:998]), ("email_subject", subject))
    return Inbound("email", sender, key, text=text, unsupported=not text,
                   numbered_choices=True, facts=facts)  # fmt: skip


class _Handler:
    """aiosmtpd's handler: who may deliver, to whom, and what becomes of a mail."""

    def __init__(self, channel: MailChannel, inbox: ChannelInbox) -> None:
        self.channel = channel
        self.inbox = inbox

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.channel.trusted(session.peer):
            log.warning("mail_refused", reason="untrusted_relay")
            return "550 5.7.1 Relaying denied"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.strip().lower() != self.channel.address:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        try:
            inbound = await asyncio.to_thread(read_mail, raw, self.channel.address)
        except (ValueError, TypeError, LookupError) as exc:
            log.warning("channel_bad_update", channel="email", error=type(exc).__name__)
            return "554 5.6.0 The message could not be read"
        if inbound is None:
            log.info("channel_message", channel="email", outcome="automatic")
            return "250 OK"
        await self.inbox.receive_all([inbound])
        return "250 OK"


@register
class MailChannel(OutboxChannel):
    name: ClassVar[str] = "email"
    required: ClassVar[tuple[str, ...]] = ("EMAIL_ADDRESS", "EMAIL_SMTP_HOST", "EMAIL_LISTEN_PORT")
    batches_replies: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.address = settings.email_address.strip().lower()
        self.settings = settings
        self._relays = [ipaddress.ip_network(n.strip(), strict=False)
                        for n in settings.email_trusted_relays.split(",") if n.strip()]  # fmt: skip
        self._server: asyncio.base_events.Server | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailChannel:
        return cls(settings)

    def router(self) -> APIRouter:
        return APIRouter()  # mail comes over SMTP, not a webhook

    def trusted(self, peer: Any) -> bool:
        host = peer[0] if isinstance(peer, tuple) else str(peer or "")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._relays)

    async def start(self, inbox: ChannelInbox) -> None:
        handler = _Handler(self, inbox)
        loop = asyncio.get_running_loop()
        limit = self.settings.email_max_bytes
        self._server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=limit, enable_SMTPUTF8=True,
                         hostname=self.address.partition("@")[2] or "localhost"),
            host=self.settings.email_listen_host, port=self.settings.email_listen_port,
        )  # fmt: skip
        log.info("mail_listening", host=self.settings.email_listen_host,
                 port=self.settings.email_listen_port)  # fmt: skip

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def send(self, delivery: Delivery) -> None:
        await self.send_batch([delivery])

    async def send_batch(self, deliveries: list[Delivery]) -> None:
        first = deliveries[0]
        rendered = [render(d.event, d.language) for d in deliveries]
        text = _mail_text(rendered, first.language)
        if not text:
            return
        message = EmailMessage()
        domain = self.address.partition("@")[2] or None
        name = self.settings.email_display_name
        message["From"] = f"{name} <{self.address}>" if name else self.address
        message["To"] = first.recipient
        subject = first.meta.get("email_subject") or (
            "Ihre Anfrage" if first.language != "en" else "Your enquiry")  # fmt: skip
        message["Subject"] = subject if subject.lower().startswith(("re:", "aw:")) else (
            f"Re: {subject}")  # fmt: skip
        message["Message-ID"] = make_msgid(domain=domain)
        thread = first.meta.get("email_thread", "")
        if thread:
            message["In-Reply-To"] = thread
            message["References"] = thread
        message["Auto-Submitted"] = "auto-replied"
        message.set_content(text)
        settings = self.settings
        try:
            await aiosmtplib.send(
                message, hostname=settings.email_smtp_host, port=settings.email_smtp_port,
                username=settings.email_smtp_user or None,
                password=settings.email_smtp_password or None,
                start_tls=settings.email_smtp_starttls, timeout=settings.channel_send_timeout_s,
            )  # fmt: skip
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendFailed("recipient refused", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx will not change; 4xx (greylisting, a full queue) will.
            raise SendFailed(f"SMTP {exc.code}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(type(exc).__name__) from exc


def _mail_text(rendered: list[Rendered], language: str) -> str:
    """A bot turn as one mail: its texts, the links, and the last choices as a numbered list."""
    text = "\n\n".join(r.text for r in rendered if r.text)
    links = [link for r in rendered for link in r.links]
    last_choices = next((r.choices for r in reversed(rendered) if r.choices), [])
    return Rendered(text, last_choices, links).as_plain_text(language)
