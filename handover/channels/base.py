"""Channel adapters: one per way citizens reach the gateway (DESIGN.md, "Channels").

An adapter turns its channel's inbound traffic into the gateway's citizen message
model, and the gateway's durable events into its channel's send API. Every adapter
brings its routes (`router`, `sockets`) and what runs beside them (`start`, `stop`).
The web channel (channels/web.py) is a socket: the citizen's own connection takes
the events, frame by frame, with replay by seq. Every messenger channel
(`OutboxChannel`) is a webhook in and an outbox out:

- **In** (`router`): verify the request (401/403 and nothing stored on failure), read
  it, hand each message to the `ChannelInbox`, which de-duplicates by the provider's
  message id (the conversation log's client id), stores it and answers at once; the
  bot turn runs afterwards, so a slow bot never makes the provider retry.
- **Out** (`send`): the outbox worker (channels/outbox.py) hands the adapter every
  event the citizen is to receive, in order; the adapter renders it (with the text
  fallbacks of channels/rendering.py where the channel has no buttons) and calls the
  provider, raising `SendFailed` with what it learnt (retry later, or never).

Adapters are looked up by `name` in `REGISTRY`; one without its settings is off and
says so at start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import structlog
from fastapi import APIRouter, WebSocket
from starlette.datastructures import State

from handover.settings import Settings

if TYPE_CHECKING:
    from handover.channels.inbox import ChannelInbox

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One durable event (with its `seq`) for the citizen at `recipient`."""

    conversation_id: str
    recipient: str
    language: str
    event: dict[str, Any]
    # The conversation's meta fields (a channel's facts for replies, e.g. an e-mail thread).
    meta: dict[str, str] = field(default_factory=dict)


class SendFailed(Exception):
    """The provider did not take a message.

    `permanent`: it never will (blocked by the user, a malformed request): the outbox
    records it for supervisors and goes on. Otherwise the outbox retries, after
    `retry_after_s` when the provider said how long to wait (429).
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after_s = retry_after_s


# Serves one socket connection; `State` is the app's state (gateway, budgets, …).
SocketHandler = Callable[[WebSocket, State], Awaitable[None]]


class ChannelAdapter(ABC):
    """A way citizens reach the gateway: its routes and what runs beside them.

    Made when the app is made (its routes are part of it).
    """

    name: ClassVar[str]
    # The settings it needs (environment variable names), all non-empty, or it is off.
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing(cls, settings: Settings) -> list[str]:
        return [name for name in cls.required if not getattr(settings, name.lower())]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> ChannelAdapter:
        """The adapter for a deployment whose settings have everything in `required`."""

    def router(self) -> APIRouter:
        """The channel's HTTP routes (a messenger's webhooks, under /channels/<name>)."""
        return APIRouter()

    def sockets(self) -> dict[str, SocketHandler]:
        """The channel's websocket paths and their handlers."""
        return {}

    async def start(self, inbox: ChannelInbox) -> None:  # noqa: B027 (most need none)
        """Start what receives without a route (an SMTP listener, a Matrix sync)."""

    async def stop(self) -> None:  # noqa: B027
        """Stop what `start` started."""


class OutboxChannel(ChannelAdapter):
    """A channel whose replies go out through its outbox to a provider's send API.

    The HTTP session it sends with is given in the app's lifespan (`http`). Its
    webhooks find the inbox at `request.app.state.channel_inbox`.
    """

    http: aiohttp.ClientSession | None = None
    # Consecutive replies of one conversation go out as one message (`send_batch`): an
    # e-mail per bot turn, not per sentence.
    batches_replies: ClassVar[bool] = False
    # How long after the citizen's last message the channel takes free text (WhatsApp's
    # customer-service window); after it, only a template message. None: no limit.
    reply_window_s: ClassVar[int | None] = None

    def session(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError(
                f"The {self.name} channel sends before the app started: set its `http` first."
            )
        return self.http

    @abstractmethod
    async def send(self, delivery: Delivery) -> None:
        """Send one event to the citizen; `SendFailed` if the provider did not take it."""

    async def send_batch(self, deliveries: list[Delivery]) -> None:
        """Send consecutive events of one conversation as one message (`batches_replies`)."""
        raise NotImplementedError(f"{self.name} sends one event at a time")


REGISTRY: dict[str, type[ChannelAdapter]] = {}


def register(adapter: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Class decorator: make an adapter known under its `name`."""
    if REGISTRY.get(adapter.name, adapter) is not adapter:
        raise RuntimeError(f"two channel adapters are named {adapter.name!r}")
    REGISTRY[adapter.name] = adapter
    return adapter


def enabled_adapters(
    settings: Settings, report: Callable[..., Any] = log.info
) -> list[ChannelAdapter]:
    """Every registered channel whose settings are complete; the others say why they are off."""
    adapters = []
    for name, adapter in sorted(REGISTRY.items()):
        missing = adapter.missing(settings)
        if missing:
            report("channel_off", channel=name, missing=missing)
            continue
        adapters.append(adapter.from_settings(settings))
        report("channel_on", channel=name)
    return adapters
