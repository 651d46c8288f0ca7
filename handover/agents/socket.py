"""The agent socket, `GET /ws/agent` (DESIGN.md, "Agent API").

The token never travels in the URL: the first frame is `{"type":"auth","token"}`.
A socket without a valid one within AUTH_TIMEOUT_S is closed with 4401 before
anything is read or stored for it. Afterwards the token is checked again when
the agent's account changes on any replica (agents/sessions.py), on every
presence beat, and at its expiry: a socket whose token is no longer valid is
closed with 4401 and processes no further frame.

After authentication: the agent's queues, open tickets, and every conversation they
already have (a reconnect within the grace period finds everything as it
was); a supervisor also gets every agent's presence and load. Afterwards the
views are sent again whenever any replica reports a change, and a conversation
that left the agent without their doing on this socket is announced with
`unassigned`. Each assigned conversation is a subscription of its own, with seq
de-duplication and gap filling as on the citizen side; all of them write
through one lock so frames never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import structlog
from fastapi import WebSocket, WebSocketDisconnect

from handover.agents.auth import AgentAuth, AgentSession
from handover.agents.desk import AgentDesk
from handover.agents.directory import Agent
from handover.agents.protocol import (
    AcceptFrame,
    AgentMessageFrame,
    AgentTypingFrame,
    CloseFrame,
    CobrowseEndFrame,
    CobrowseLinkFrame,
    CobrowseRequestFrame,
    HandbackFrame,
    NoteFrame,
    TemplateFrame,
    TransferFrame,
    conversation_named_in,
    parse_agent_frame,
    parse_auth_frame,
)
from handover.agents.sessions import AgentSessions
from handover.channels.web import CLOSE_TOO_SLOW
from handover.cobrowse.sessions import CobrowseRefused, CobrowseSessions
from handover.conversation.bus import EventBus
from handover.conversation.delivery import Subscriber
from handover.conversation.protocol import first_frame_text, frame_text
from handover.errors import GatewayError, RateLimited
from handover.ops import metrics
from handover.ops.rate_limit import TokenBucket
from handover.settings import Settings

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
# A console sends `auth` right after the socket opens; 5 s covers a slow phone
# network and keeps unauthenticated sockets from lingering.
AUTH_TIMEOUT_S = 5.0
# Agents are authenticated staff with busy consoles (typing indicators, several
# chats); the bucket only stops a runaway client, not a fast colleague.
AGENT_FRAME_BURST = 300
AGENT_FRAMES_PER_MINUTE = 3000
# Queue changes arrive in bursts (an accept moves every position); coalesce them.
QUEUE_DEBOUNCE_S = 0.05
# Reason of an `unassigned` frame when the agent let go of the conversation
# themselves, on another of their connections (a second tab).
RELEASED_ELSEWHERE = "released"


class AgentConnection:
    def __init__(
        self,
        websocket: WebSocket,
        session: AgentSession,
        desk: AgentDesk,
        bus: EventBus,
        settings: Settings,
        recheck: Callable[[], Awaitable[AgentSession | None]],
    ) -> None:
        self.websocket = websocket
        self.agent: Agent = session.agent
        self.expires_at = session.expires_at
        self._recheck = recheck
        # Set once the token is no longer valid: no further frame is acted on.
        self.revoked = False
        self.account_changed = asyncio.Event()
        self.desk = desk
        self.bus = bus
        self.settings = settings
        self.socket_id = uuid.uuid4().hex
        self._send_lock = asyncio.Lock()
        self._subscriptions: dict[str, tuple[AsyncExitStack, asyncio.Task[None]]] = {}
        # Following and unfollowing happen in the receive loop and in the change
        # watcher; one at a time, so a conversation is never followed twice.
        self._following = asyncio.Lock()
        self._letting_go: set[str] = set()
        self._agents_sent: list[dict[str, Any]] | None = None
        self.changed = asyncio.Event()

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send one frame; nothing once the socket is revoked (a frame in flight is dropped)."""
        text = frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False)
        async with self._send_lock:
            if not self.revoked:
                await self.websocket.send_text(text)

    async def send_queue(self) -> None:
        items = await self.desk.queue_items(self.agent)
        await self.send({"type": "queue", "items": items})

    async def send_agents(self) -> None:
        """A supervisor's view of every agent's presence and load, when it changed."""
        if not self.agent.is_supervisor:
            return
        items = await self.desk.agents_overview()
        if items != self._agents_sent:
            self._agents_sent = items
            await self.send({"type": "agents", "items": items})

    async def follow(self, conversation_id: str) -> None:
        async with self._following:
            await self._follow(conversation_id)

    async def _follow(self, conversation_id: str) -> None:
        """Send the transcript, then the conversation's live events after it.

        Subscribe first and read the transcript second: an event arriving in
        between is in the transcript or in the queue, and the seq check sends it once.
        """
        if conversation_id in self._subscriptions:
            return  # the change watcher got here first and sent `assigned`
        subscriber = Subscriber(self.settings.send_queue_frames, for_agent_in=conversation_id)
        stack = AsyncExitStack()
        await stack.enter_async_context(self.bus.subscribe(conversation_id, subscriber))
        try:
            assignment = await self.desk.assignment(conversation_id)
            transcript = assignment["transcript"]
            subscriber.last_seq = transcript[-1]["seq"] if transcript else 0
            await self.send(assignment)
            if self.desk.audit is not None:
                await self.desk.audit.record(
                    "read_transcript", actor=self.agent.username, role=self.agent.role,
                    conversation_id=conversation_id,
                )  # fmt: skip
        except BaseException:
            await stack.aclose()
            raise
        task = asyncio.create_task(
            subscriber.pump(
                self.send,
                lambda seq: self.desk.timeline.log.events_after(conversation_id, seq),
                self._close_too_slow,
            )
        )
        self._subscriptions[conversation_id] = (stack, task)

    async def _close_too_slow(self) -> None:
        log.warning("agent_too_slow", agent=self.agent.username)
        await self.websocket.close(CLOSE_TOO_SLOW, "Client too slow; reconnect.")

    async def unfollow(self, conversation_id: str) -> None:
        async with self._following:
            await self._unfollow(conversation_id)

    async def _unfollow(self, conversation_id: str) -> None:
        entry = self._subscriptions.pop(conversation_id, None)
        if entry is not None:
            stack, task = entry
            task.cancel()
            await stack.aclose()

    async def sync_assignments(self, connecting: bool = False) -> None:
        """Follow every conversation the agent has; drop those they no longer have.

        A dropped one is announced with `unassigned` and the reason recorded when
        it was taken away. On connect, those taken away while the agent was not
        connected are announced once (then forgotten).
        """
        queues, username = self.desk.queues, self.agent.username
        async with self._following:
            assigned = set(await queues.assigned_to(username))
            gone = set(self._subscriptions) - assigned
            reasons = await queues.unassigned_reasons(username) if gone or connecting else {}
            for conversation_id in sorted(gone):
                await self._unfollow(conversation_id)
                if conversation_id not in self._letting_go:
                    await self._send_unassigned(
                        conversation_id, reasons.get(conversation_id, RELEASED_ELSEWHERE)
                    )
            if connecting:
                missed = sorted(set(reasons) - assigned)
                for conversation_id in missed:
                    await self._send_unassigned(conversation_id, reasons[conversation_id])
                await queues.forget_unassigned(username, missed)
            for conversation_id in sorted(assigned - set(self._subscriptions)):
                await self._follow(conversation_id)

    async def _send_unassigned(self, conversation_id: str, reason: str) -> None:
        await self.send(
            {"type": "unassigned", "conversation_id": conversation_id, "reason": reason}
        )

    async def watch_changes(self) -> None:
        while True:
            await self.changed.wait()
            await asyncio.sleep(QUEUE_DEBOUNCE_S)
            self.changed.clear()
            await self.sync_assignments()
            await self.send_queue()
            await self.send_agents()

    async def revoke(self) -> None:
        """The token is no longer valid: act on nothing more, close with 4401."""
        if self.revoked:
            return
        self.revoked = True
        log.info("agent_socket_revoked", agent=self.agent.username)
        # The client may be gone already, or the socket closing for another reason.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await self.websocket.close(CLOSE_UNAUTHORIZED, "Signed out or token expired; log in.")

    async def check_token(self) -> None:
        if not self.revoked and await self._recheck() is None:
            await self.revoke()

    async def watch_account(self) -> None:
        """Re-check the token whenever any replica announces a change of the account."""
        while True:
            await self.account_changed.wait()
            self.account_changed.clear()
            await self.check_token()

    async def expire(self) -> None:
        await asyncio.sleep(max(0.0, self.expires_at - time.time()))
        await self.revoke()

    async def keep_present(self) -> None:
        # Refresh well within the TTL so one slow Redis call does not drop presence.
        while True:
            # Also the fallback for a revocation announcement pub/sub did not deliver.
            await self.check_token()
            if self.revoked:
                return
            await self.desk.presence.refresh(self.agent.username, self.socket_id)
            # Nobody announces the agents of a replica that was killed: their presence just
            # expires. A supervisor's view is therefore also re-read on this beat (and sent
            # only when it changed).
            await self.send_agents()
            await asyncio.sleep(self.desk.presence.ttl_s / 3)

    async def handle(self, raw: str) -> None:
        """Act on one client frame; an error names the conversation the frame named."""
        try:
            await self._handle(raw)
        except GatewayError as exc:
            exc.conversation_id = conversation_named_in(raw)
            raise

    async def _handle(self, raw: str) -> None:
        if self.revoked:
            return
        frame = parse_agent_frame(raw)
        desk, agent, cid = self.desk, self.agent, frame.conversation_id
        match frame:
            case AcceptFrame():
                await desk.accept(agent, cid)
                if desk.audit is not None:
                    await desk.audit.record("accept", actor=agent.username, role=agent.role,
                                            conversation_id=cid)  # fmt: skip
                await self.follow(cid)
                await self.send_queue()
            case AgentMessageFrame():
                seq = await desk.message(agent, cid, frame.client_id, frame.text)
                await self.send({"type": "ack", "conversation_id": cid,
                                 "client_id": frame.client_id, "seq": seq})  # fmt: skip
            case AgentTypingFrame():
                await desk.typing(agent, cid, frame.active)
            case NoteFrame():
                await desk.note(agent, cid, frame.text)
            case TransferFrame():
                await self._let_go(cid, desk.transfer(agent, cid, frame.queue))
            case HandbackFrame():
                await self._let_go(cid, desk.hand_back(agent, cid))
            case CloseFrame():
                await self._let_go(cid, desk.close(agent, cid))
            case TemplateFrame():
                seq = await desk.template(agent, cid, frame.client_id)
                await self.send({"type": "ack", "conversation_id": cid,
                                 "client_id": frame.client_id, "seq": seq})  # fmt: skip
            case CobrowseRequestFrame():
                await self._cobrowse().request(agent, cid, frame.step)
            case CobrowseEndFrame():
                await self._cobrowse().stop(agent, cid)
            case CobrowseLinkFrame():
                await self._cobrowse().link(agent, cid, frame.path)

    def _cobrowse(self) -> CobrowseSessions:
        if self.desk.cobrowse is None:
            raise CobrowseRefused("Bildschirm ansehen ist hier nicht eingerichtet.")
        return self.desk.cobrowse

    async def _let_go(self, conversation_id: str, action: Awaitable[None]) -> None:
        """The agent's own transfer, hand-back or close: stop following, say nothing.

        While the action runs, the change watcher may already see the conversation
        gone; it must not announce the agent's own doing as `unassigned`.
        """
        self._letting_go.add(conversation_id)
        try:
            await action
            await self.unfollow(conversation_id)
        finally:
            self._letting_go.discard(conversation_id)

    async def close_all(self) -> None:
        for conversation_id in list(self._subscriptions):
            with contextlib.suppress(Exception):  # Redis may be the reason we are closing
                await self._unfollow(conversation_id)


async def authenticate(
    websocket: WebSocket, auth: AgentAuth, settings: Settings
) -> tuple[str, AgentSession] | None:
    """The token and session of the socket's first frame, an `auth` frame with a valid token.

    None (the caller closes with 4401) for no frame within AUTH_TIMEOUT_S, a
    binary, oversized, garbled or other frame, or a token that is not valid.
    """
    try:
        frame = parse_auth_frame(await first_frame_text(
            websocket, AUTH_TIMEOUT_S, settings.max_frame_bytes, "too large"
        ))  # fmt: skip
    except TimeoutError:
        reason = "timeout"
    except GatewayError as exc:
        reason = exc.code
    else:
        session = await auth.session_for(frame.token)
        if session is not None:
            return frame.token, session
        reason = "invalid_token"
    log.info("agent_auth_refused", reason=reason)
    metrics.CLIENT_ERRORS.labels(code="unauthorized").inc()
    return None


async def serve_agent(
    websocket: WebSocket,
    auth: AgentAuth,
    sessions: AgentSessions,
    desk: AgentDesk,
    bus: EventBus,
    settings: Settings,
    on_gone: Callable[[str], None],
) -> None:
    await websocket.accept()
    try:
        authenticated = await authenticate(websocket, auth, settings)
    except WebSocketDisconnect:
        return
    if authenticated is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "Invalid or expired token; log in again.")
        return
    token, session = authenticated
    agent = session.agent
    connection = AgentConnection(
        websocket, session, desk, bus, settings, recheck=lambda: auth.session_for(token)
    )
    frames = TokenBucket(burst=AGENT_FRAME_BURST, per_minute=AGENT_FRAMES_PER_MINUTE)
    bus.agent_watchers.add(connection.changed)
    metrics.OPEN_SOCKETS.labels(side="agent").inc()
    background: list[asyncio.Task[None]] = []
    with sessions.watch(agent.username, connection.account_changed.set):
        try:
            # A change announced between the token check and the watch is caught here.
            await connection.check_token()
            background = [
                asyncio.create_task(connection.watch_account()),
                asyncio.create_task(connection.expire()),
            ]
            if connection.revoked:
                return
            await desk.presence.refresh(agent.username, connection.socket_id)
            await bus.agents_changed()  # supervisors see the agent come online
            await connection.send({"type": "hello", "agent": agent.public()})
            await connection.send_queue()
            await connection.send_agents()
            await connection.send({"type": "tickets", "items": await desk.open_tickets(agent)})
            await connection.sync_assignments(connecting=True)
            background += [
                asyncio.create_task(connection.keep_present()),
                asyncio.create_task(connection.watch_changes()),
            ]
            await desk.assign_waiting()  # an agent who comes online may take what waits
            while not connection.revoked:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect" or connection.revoked:
                    break
                try:
                    raw = frame_text(message, settings.max_frame_bytes, "Frame too large.")
                    if not frames.take():
                        limited = RateLimited("Too many frames; slow down.")
                        limited.conversation_id = conversation_named_in(raw)
                        raise limited
                    await connection.handle(raw)
                except GatewayError as exc:
                    metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
                    await connection.send(exc.as_frame())
        except WebSocketDisconnect:
            pass
        finally:
            bus.agent_watchers.discard(connection.changed)
            for task in background:
                task.cancel()
            await connection.close_all()
            metrics.OPEN_SOCKETS.labels(side="agent").dec()
            with contextlib.suppress(Exception):
                await desk.presence.leave(agent.username, connection.socket_id)
                await bus.agents_changed()  # supervisors see the agent go
            on_gone(agent.username)
