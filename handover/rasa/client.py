"""The gateway's client of the Rasa server, over the bot's custom `gateway` channel.

One HTTP round trip per citizen turn returns the bot's messages and what Rasa
understood (bot/gateway_channel.py). Transport failures become `BotUnavailable`
so the socket layer can tell the citizen in one place.

aiohttp rather than httpx here: this call is on every turn's hot path, and
aiohttp's client costs a fraction of the CPU per request (measured with the
gateway latency benchmark; see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from handover.conversation.protocol import Button, Link
from handover.errors import BotUnavailable
from handover.ops import metrics
from handover.ops.client_keys import CLIENT_KEY
from handover.rasa.auth import RasaCredentials
from handover.rasa.replicas import RasaReplicas

WEBHOOK_PATH = "/webhooks/gateway/webhook"
log = structlog.get_logger(__name__)
# The first turn after start loads TensorFlow graphs in Rasa and the encoder in the actions.
WARM_UP_QUESTION = "Was kostet ein Personalausweis?"
WARM_UP_TIMEOUT_S = 120.0
# How often a Rasa replica taken as down is asked whether it answers again.
PROBE_S = 2.0


@dataclass(frozen=True, slots=True)
class BotMessage:
    text: str
    buttons: list[Button] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    custom: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HandoverRequest:
    """The bot's decision to pass the conversation to a person (a custom `handover` payload)."""

    reason: str
    queue: str  # "" for the default queue
    summary: str = ""
    language: str = ""  # the language the citizen wrote in, when the bot noticed one


@dataclass(frozen=True, slots=True)
class BotTurn:
    messages: list[BotMessage]
    parse: dict[str, Any]

    @property
    def handover(self) -> HandoverRequest | None:
        for message in self.messages:
            request = (message.custom or {}).get("handover")
            if isinstance(request, dict):
                return HandoverRequest(
                    reason=str(request.get("reason") or "bot_decision"),
                    queue=str(request.get("queue") or ""),
                    summary=str(request.get("summary") or ""),
                    language=str(request.get("language") or ""),
                )
        return None

    @property
    def intent(self) -> str | None:
        name = self.parse.get("intent", {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def confidence(self) -> float | None:
        value = self.parse.get("intent", {}).get("confidence")
        return float(value) if isinstance(value, int | float) else None


def _bot_message(raw: dict[str, Any]) -> BotMessage | None:
    """Rasa's collected output message → ours; None for shapes we do not render."""
    custom = raw.get("custom") if isinstance(raw.get("custom"), dict) else None
    text = raw.get("text") or (custom or {}).get("text") or ""
    buttons = [
        Button(title=str(b["title"]), payload=str(b["payload"]))
        for b in raw.get("buttons") or []
        if isinstance(b, dict) and "title" in b and "payload" in b
    ]
    links = [
        Link(title=str(link["title"]), url=str(link["url"]))
        for link in (custom or {}).get("links") or []
        if isinstance(link, dict) and "title" in link and "url" in link
    ]
    if not text and not buttons and not links and custom is None:
        return None
    return BotMessage(text=str(text), buttons=buttons, links=links, custom=custom)


def with_client_key(metadata: dict[str, Any]) -> dict[str, Any]:
    """The turn's metadata plus the citizen's client key, when the turn has a citizen socket.

    The action server passes the key on to the case API, which counts status
    look-ups per client across the chat and the API. Only the key travels (a
    keyed hash, never the address): Rasa's tracker stores the metadata.
    """
    key = CLIENT_KEY.get()
    return {**metadata, "client_key": key} if key else metadata


class RasaBot:
    """The gateway's client of Rasa: one round trip per turn, to the conversation's replica.

    With several replicas (RASA_URLS), each conversation's calls go to its replica on the
    ring (rasa/replicas.py); one that refuses connections is skipped until a probe finds it
    answering again, and the next replica continues from the shared tracker store.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rasa_urls: str | list[str],
        timeout_s: float,
        credentials: RasaCredentials | None = None,
    ) -> None:
        self._session = session
        self._credentials = credentials
        urls = [rasa_urls] if isinstance(rasa_urls, str) else rasa_urls
        self.replicas = RasaReplicas(urls)
        self._count_up()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 2.0))
        self._probe: asyncio.Task[None] | None = None

    def _headers(self) -> dict[str, str]:
        """Rasa's API and the gateway channel refuse calls without the gateway's JWT."""
        return self._credentials.headers() if self._credentials else {}

    async def _call(
        self, conversation_id: str, method: str, path: str, **options: Any
    ) -> dict[str, Any]:
        """One call to the conversation's replica, or to the next one if it refuses the
        connection (the call never reached it). Raises aiohttp's errors, TimeoutError and
        ValueError (not JSON) as they come."""
        order = self.replicas.order(conversation_id)
        for n, base in enumerate(order):
            try:
                async with self._session.request(
                    method, base + path, headers=self._headers(), timeout=self._timeout,
                    **options,
                ) as response:  # fmt: skip
                    response.raise_for_status()
                    data: dict[str, Any] = await response.json(content_type=None) or {}
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                self._lost(base, exc)
                if n == len(order) - 1:
                    raise
                continue
            self._back(base)
            return data
        raise AssertionError("unreachable: RasaReplicas has at least one replica")

    def _lost(self, base: str, exc: Exception) -> None:
        metrics.RASA_REPLICA_ERRORS.labels(replica=base).inc()
        if self.replicas.mark_down(base):
            log.warning("rasa_replica_down", replica=base, error=type(exc).__name__)
            self._count_up()
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_down())

    def _back(self, base: str) -> None:
        """The replica answered: it takes its conversations again (if it was down)."""
        if self.replicas.mark_up(base):
            log.warning("rasa_replica_back", replica=base)
            self._count_up()

    def _count_up(self) -> None:
        metrics.RASA_REPLICAS_UP.set(len(self.replicas.urls) - len(self.replicas.down))

    async def _probe_down(self) -> None:
        """Ask the replicas taken as down every PROBE_S whether they answer again."""
        while self.replicas.down:
            await asyncio.sleep(PROBE_S)
            for base in self.replicas.down:
                if await self._ready(base):
                    self._back(base)

    async def turn(
        self, conversation_id: str, text: str, *, message_id: str, metadata: dict[str, Any]
    ) -> BotTurn:
        body = {
            "sender": conversation_id,
            "message": text,
            "message_id": message_id,
            "metadata": with_client_key(metadata),
        }
        try:
            data = await self._call(conversation_id, "POST", WEBHOOK_PATH, json=body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BotUnavailable(f"Rasa turn failed: {type(exc).__name__}") from exc
        messages = [m for raw in data.get("messages") or [] if (m := _bot_message(raw))]
        return BotTurn(messages=messages, parse=data.get("parse") or {})

    async def warm_up(self) -> None:
        """One throw-away knowledge turn per replica, so no citizen waits for a first turn."""
        for base in self.replicas.urls:
            body = {"sender": f"warm-up-{uuid.uuid4().hex}", "message": WARM_UP_QUESTION}
            try:
                async with self._session.post(
                    base + WEBHOOK_PATH,
                    json=body,
                    headers=self._headers(),
                    timeout=aiohttp.ClientTimeout(total=WARM_UP_TIMEOUT_S),
                ) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                pass  # a cold first turn is slow, not wrong

    async def _tracker_event(self, conversation_id: str, event: str) -> None:
        path = f"/conversations/{conversation_id}/tracker/events"
        try:
            await self._call(conversation_id, "POST", path, json={"event": event})
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # Routing follows the gateway's state, not Rasa's; a missed pause
            # only means Rasa's tracker does not show the human phase.
            log.warning("rasa_tracker_event_failed", event=event, error=repr(exc))

    async def pause(self, conversation_id: str) -> None:
        """A person takes over: Rasa's tracker stops predicting for this conversation."""
        await self._tracker_event(conversation_id, "pause")

    async def resume(self, conversation_id: str) -> None:
        await self._tracker_event(conversation_id, "resume")

    async def slots(self, conversation_id: str) -> dict[str, Any]:
        """Slots the bot has filled so far (form answers), for the agent; {} if unavailable."""
        path = f"/conversations/{conversation_id}/tracker"
        try:
            tracker = await self._call(
                conversation_id, "GET", path, params={"include_events": "NONE"}
            )
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}
        slots = tracker.get("slots") or {}
        return {name: value for name, value in slots.items() if value not in (None, [], "")}

    async def _ready(self, base: str) -> bool:
        health = base + WEBHOOK_PATH.rsplit("/", 1)[0] + "/"
        try:
            async with self._session.get(
                health, timeout=aiohttp.ClientTimeout(total=2.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def is_ready(self) -> bool:
        """At least one replica is up and has a model loaded."""
        for base in self.replicas.urls:
            if await self._ready(base):
                return True
        return False
