"""Matrix: a bot account on the city's homeserver, one direct-message room per citizen.

A citizen invites the bot (`MATRIX_USER_ID`) to a room; the bot joins and answers there.
The room is the channel identity: one open conversation per room. The client is
matrix-nio (Client-Server API, no end-to-end encryption: the bot reads only rooms
without it, and says so in an encrypted one it cannot read).

In: one replica at a time syncs the account (a lease in Redis, so every event is read
once); its sync position is kept in Redis, so a restart neither misses nor repeats
events, and a first start begins from now instead of answering old history. An event's
`event_id` de-duplicates it. Text messages are read (`m.text`, `m.notice` from others);
images, files and the like get the polite answer.

Out: `m.notice` messages (what bots send, so other bots do not answer them) with the
choices as a numbered list and the links written out; the transaction id is derived from
the conversation and seq, so a send repeated after a crash is stored once by the
homeserver (Matrix de-duplicates by transaction id): never sent twice.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    JoinError,
    MegolmEvent,
    RoomMessage,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendError,
    SyncError,
    SyncResponse,
)

from handover import keys
from handover.channels.base import Delivery, OutboxChannel, SendFailed, register
from handover.channels.inbox import ChannelInbox, Inbound
from handover.channels.lease import Lease
from handover.channels.rendering import render
from handover.settings import Settings

log = structlog.get_logger(__name__)

# Matrix errors a retry will not mend.
PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE",
             "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"}  # fmt: skip
MAX_BODY = 16_000


@register
class MatrixChannel(OutboxChannel):
    name: ClassVar[str] = "matrix"
    required: ClassVar[tuple[str, ...]] = (
        "MATRIX_HOMESERVER_URL", "MATRIX_USER_ID", "MATRIX_ACCESS_TOKEN",
    )  # fmt: skip

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.user_id = settings.matrix_user_id
        self._client: AsyncClient | None = None
        self._sync: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MatrixChannel:
        return cls(settings)

    def router(self) -> APIRouter:
        return APIRouter()  # the bot syncs; nothing calls the gateway

    def client(self) -> AsyncClient:
        if self._client is None:
            # A sync long-polls for a third of the lease: requests may take that long.
            timeout = self.settings.channel_send_timeout_s + self.settings.outbox_lease_s
            config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False,
                                       request_timeout=timeout)  # fmt: skip
            client = AsyncClient(self.settings.matrix_homeserver_url, self.user_id, config=config)
            client.access_token = self.settings.matrix_access_token
            client.user_id = self.user_id
            self._client = client
        return self._client

    async def start(self, inbox: ChannelInbox) -> None:
        self._sync = asyncio.create_task(self._sync_forever(inbox))

    async def stop(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            await asyncio.gather(self._sync, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    # --- in ---------------------------------------------------------------------------

    async def _sync_forever(self, inbox: ChannelInbox) -> None:
        redis = inbox.log.redis
        lease = Lease(redis, keys.channel_receiver(self.name), inbox.log.host_id or "gateway",
                      self.settings.outbox_lease_s)  # fmt: skip
        cursor_key = keys.channel_cursor(self.name)
        poll_ms = int(self.settings.outbox_lease_s / 3 * 1000)
        while True:
            try:
                if not await lease.hold():
                    await asyncio.sleep(self.settings.outbox_lease_s / 3)
                    continue
                since = await redis.get(cursor_key)
                response = await self.client().sync(timeout=poll_ms if since else 0, since=since)
                if isinstance(response, SyncError):
                    log.warning("matrix_sync_failed", error=str(response.status_code))
                    await asyncio.sleep(2.0)
                    continue
                assert isinstance(response, SyncResponse)
                # The first sync of a deployment starts from now: invitations waiting are
                # taken, but no old history is answered.
                await self._handle(response, inbox, answer=bool(since))
                await redis.set(cursor_key, response.next_batch, ex=inbox.retention_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad round must not end the channel
                log.warning("matrix_sync_error", error=type(exc).__name__)
                await asyncio.sleep(2.0)

    async def _handle(self, response: SyncResponse, inbox: ChannelInbox, answer: bool) -> None:
        for room_id, invited in response.rooms.invite.items():
            if any(isinstance(e, InviteMemberEvent) and e.state_key == self.user_id
                   for e in invited.invite_state):  # fmt: skip
                joined = await self.client().join(room_id)
                if isinstance(joined, JoinError):
                    log.warning("matrix_join_failed", error=str(joined.status_code))
        if not answer:
            return
        messages = []
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                inbound = self._inbound(room_id, event)
                if inbound is not None:
                    messages.append(inbound)
        if messages:
            await inbox.receive_all(messages)

    def _inbound(self, room_id: str, event: Any) -> Inbound | None:
        if getattr(event, "sender", self.user_id) == self.user_id:
            return None  # the bot's own messages
        if isinstance(event, RoomMessageText | RoomMessageNotice):
            text = event.body.strip()
            if text:
                return Inbound(self.name, room_id, event.event_id, text=text,
                               numbered_choices=True)  # fmt: skip
        if isinstance(event, RoomMessage | MegolmEvent):
            return Inbound(self.name, room_id, event.event_id, unsupported=True)
        return None  # membership, topic, reactions, …

    # --- out --------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> None:
        body = render(delivery.event, delivery.language).as_plain_text(delivery.language)
        if not body:
            return
        content = {"msgtype": "m.notice", "body": body[:MAX_BODY]}
        txn = f"bs-{delivery.conversation_id}-{delivery.event['seq']}"
        answer = await self.client().room_send(
            delivery.recipient, "m.room.message", content, tx_id=txn, ignore_unverified_devices=True
        )
        if isinstance(answer, RoomSendError):
            code = str(answer.status_code or "")
            if code == "M_LIMIT_EXCEEDED":
                wait = (answer.retry_after_ms or 1000) / 1000
                raise SendFailed(code, retry_after_s=wait)
            raise SendFailed(f"{code}: {answer.message[:160]}", permanent=code in PERMANENT)
