"""The co-browse sockets: the citizen's page → the agent's view, the agent's guidance back.

`/ws/cobrowse` carries one page of the citizen's (rrweb events, redacted here before they
go anywhere) and `/ws/cobrowse/agent` the assigned agent's view of it. The two may be on
different replicas: they meet on two Redis pub/sub channels of the conversation, so what
the page shows is relayed live and never stored. Each socket subscribes on a pub/sub
connection of its own (sessions are few: one per agent at a time).

Back-pressure: a console that falls behind (a slow network, a busy laptop) loses its
backlog, not the citizen's time: the relay drops what is queued for it beyond
`AGENT_BACKLOG_BYTES`, asks the page for a full snapshot and sends the console nothing
until it comes. The page itself never waits for the console; the widget drops its own
queue and snapshots afresh when its socket backs up (widget/cobrowse/citizen.js).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import WebSocket, WebSocketDisconnect
from redis.asyncio import Redis

from handover import keys
from handover.agents.auth import AgentAuth
from handover.cobrowse.protocol import (
    ClearGuide,
    HighlightGuide,
    PointerGuide,
    SnapshotWanted,
    parse_agent_frame,
    parse_agent_hello,
    parse_citizen_hello,
    parse_events,
)
from handover.cobrowse.redaction import FULL_SNAPSHOT, PageRedactor
from handover.cobrowse.sessions import CobrowseRefused, CobrowseSessions, Session, Side
from handover.conversation.log import ConversationLog
from handover.conversation.protocol import first_frame_text, frame_text
from handover.conversation.states import State
from handover.errors import GatewayError, RateLimited
from handover.ops import metrics
from handover.ops.background_tasks import BackgroundTasks
from handover.ops.rate_limit import Budgets, address_key
from handover.settings import Settings

log = structlog.get_logger(__name__)

CLOSE_BAD_HELLO = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429
HELLO_MAX_BYTES = 4096
HELLO_TIMEOUT_S = 10.0
# How often an open socket renews the session (and learns that it ended).
BEAT_S = 5.0
# Frames larger than this are parsed and redacted off the event loop.
INLINE_BYTES = 32 * 1024
# What may wait for a console before it loses its backlog and waits for a fresh snapshot.
AGENT_BACKLOG_BYTES = 8 * 1024 * 1024
SNAPSHOT_WANTED = '{"type":"snapshot"}'
END = '{"type":"end"}'
# A published page frame starts with one of these (the app's Redis client decodes text).
FULL, INCREMENTAL = "F", "I"


def prepared(redactor: PageRedactor, raw: str) -> str | None:
    """A page's frame as published to the agent: marked full or incremental, redacted."""
    kept = redactor.redact(parse_events(raw))
    if not kept:
        return None
    full = any(event.get("type") == FULL_SNAPSHOT for event in kept)
    frame = orjson.dumps({"type": "events", "events": kept}).decode()
    return (FULL if full else INCREMENTAL) + frame


class AgentBacklog:
    """What waits for one console, bounded in bytes; on overflow it waits for a full snapshot."""

    def __init__(self, max_bytes: int = AGENT_BACKLOG_BYTES) -> None:
        self.max_bytes = max_bytes
        self._frames: asyncio.Queue[str] = asyncio.Queue()
        self._bytes = 0
        self.waiting_for_full = False
        self.dropped = 0

    def offer(self, payload: str) -> bool:
        """Queue a published page frame; False when the backlog overflowed just now."""
        if self.waiting_for_full and not payload.startswith(FULL):
            self.dropped += 1
            return True
        if self._bytes + len(payload) > self.max_bytes:
            self.dropped += self._frames.qsize() + 1
            while not self._frames.empty():
                self._frames.get_nowait()
            self._bytes = 0
            self.waiting_for_full = True
            return False
        self.waiting_for_full = False
        self._frames.put_nowait(payload)
        self._bytes += len(payload)
        return True

    async def next(self) -> str:
        payload = await self._frames.get()
        self._bytes -= len(payload)
        return payload[1:]


class CobrowseRelay:
    def __init__(
        self,
        redis: Redis,
        sessions: CobrowseSessions,
        conversations: ConversationLog,
        auth: AgentAuth,
        budgets: Budgets,
        settings: Settings,
    ) -> None:
        self._redis: Any = redis
        self.sessions = sessions
        self._conversations = conversations
        self._auth = auth
        self._budgets = budgets
        self._settings = settings
        self._tasks = BackgroundTasks(
            lambda exc: log.warning("cobrowse_end_failed", error=repr(exc))
        )

    # --- the citizen's page ---------------------------------------------------------

    async def serve_citizen(self, websocket: WebSocket) -> None:
        await websocket.accept()
        address = address_key(websocket.client.host if websocket.client else "")
        if not await self._budgets.take("address_connection", address):
            await _close(websocket, RateLimited("Zu viele Verbindungen."), CLOSE_RATE_LIMITED)
            return
        try:
            hello = parse_citizen_hello(await _first_frame(websocket))
        except GatewayError as exc:
            await _close(websocket, exc, CLOSE_BAD_HELLO)
            return
        except (WebSocketDisconnect, TimeoutError):
            return
        conversation = await self._conversations.resume(hello.token)
        if conversation is None:
            await _close(websocket, CobrowseRefused("Unbekanntes Gespräch."), CLOSE_UNAUTHORIZED)
            return
        cid = conversation.id
        session = await self.sessions.session(cid)
        if session is None or not session.view:
            await _close(websocket, CobrowseRefused("Sie teilen diese Seite nicht."),
                         CLOSE_FORBIDDEN)  # fmt: skip
            return
        await self.sessions.beat(cid, "citizen")
        clear_fields = self._settings.cobrowse_clear_fields
        await websocket.send_json(
            {"type": "session", "agent": {"name": session.agent_name},
             "pointer": session.pointer, "clear_fields": clear_fields}
        )  # fmt: skip
        metrics.OPEN_SOCKETS.labels(side="cobrowse_citizen").inc()
        try:
            async with self._listening(keys.cobrowse_to_citizen(cid)) as pubsub:
                await _alongside(
                    self._from_page(websocket, cid, session),
                    _forward(pubsub, websocket),
                    self._beat(websocket, cid, "citizen"),
                )
        finally:
            metrics.OPEN_SOCKETS.labels(side="cobrowse_citizen").dec()
            self._tasks.spawn(self._end_if_gone(cid, "citizen", "page_closed"))

    async def _from_page(self, websocket: WebSocket, cid: str, session: Session) -> None:
        redactor = PageRedactor(self._settings.cobrowse_clear_fields)
        path = ""
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                raw = frame_text(message, self._settings.cobrowse_max_frame_bytes,
                                 "Diese Seite ist zu groß zum Teilen.")  # fmt: skip
                if not await self._budgets.take("cobrowse_kib", cid, cost=len(raw) // 1024 + 1):
                    raise RateLimited("Zu viele Änderungen auf einmal; gleich geht es weiter.")
                if len(raw) > INLINE_BYTES:
                    payload = await asyncio.to_thread(prepared, redactor, raw)
                else:
                    payload = prepared(redactor, raw)
            except GatewayError as exc:
                metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
                await websocket.send_json(exc.as_frame())
                continue
            if redactor.path and redactor.path != path:
                path = redactor.path
                await self.sessions.saw_page(cid, session, path)
                session = await self.sessions.session(cid) or session
            if payload is not None:
                await self._redis.publish(keys.cobrowse_to_agent(cid), payload)

    # --- the agent's view -----------------------------------------------------------

    async def serve_agent(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            hello = parse_agent_hello(await _first_frame(websocket))
        except GatewayError as exc:
            await _close(websocket, exc, CLOSE_BAD_HELLO)
            return
        except (WebSocketDisconnect, TimeoutError):
            return
        agent_session = await self._auth.session_for(hello.token)
        if agent_session is None:
            await _close(websocket, CobrowseRefused("Bitte melden Sie sich neu an."),
                         CLOSE_UNAUTHORIZED)  # fmt: skip
            return
        agent, cid = agent_session.agent, hello.conversation_id
        session = await self.sessions.session(cid)
        meta = await self._conversations.meta(cid)
        if (
            session is None or not session.view or session.agent != agent.username
            or meta.get("agent") != agent.username
            or State.of_meta(meta) is not State.WITH_AGENT
        ):  # fmt: skip
            await _close(websocket, CobrowseRefused("Die Bürgerin oder der Bürger teilt "
                         "diese Seite nicht mit Ihnen."), CLOSE_FORBIDDEN)  # fmt: skip
            return
        await self.sessions.beat(cid, "agent")
        await websocket.send_json({"type": "session", "path": session.path,
                                   "pointer": session.pointer})  # fmt: skip
        metrics.OPEN_SOCKETS.labels(side="cobrowse_agent").inc()
        backlog = AgentBacklog()
        try:
            async with self._listening(keys.cobrowse_to_agent(cid)) as pubsub:
                # Whoever joins (first, late or again) starts from a fresh snapshot.
                await self._redis.publish(keys.cobrowse_to_citizen(cid), SNAPSHOT_WANTED)
                await _alongside(
                    self._from_console(websocket, cid),
                    self._fill(pubsub, backlog, cid),
                    _drain(backlog, websocket),
                    self._beat(websocket, cid, "agent"),
                )
        finally:
            metrics.OPEN_SOCKETS.labels(side="cobrowse_agent").dec()
            self._tasks.spawn(self._end_if_gone(cid, "agent", "console_closed"))

    async def _from_console(self, websocket: WebSocket, cid: str) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                frame = parse_agent_frame(frame_text(message, HELLO_MAX_BYTES, "Frame too large."))
                if not await self._budgets.take("cobrowse_guide", cid):
                    raise RateLimited("Too many guide frames; slow down.")
                match frame:
                    case SnapshotWanted():
                        await self._redis.publish(keys.cobrowse_to_citizen(cid), SNAPSHOT_WANTED)
                    case PointerGuide() | HighlightGuide() | ClearGuide():
                        session = await self.sessions.session(cid)
                        if session is None or not session.pointer:
                            raise CobrowseRefused(
                                "Zeigen und Hervorheben braucht die Zustimmung der Bürgerin "
                                "oder des Bürgers."
                            )
                        await self._redis.publish(keys.cobrowse_to_citizen(cid),
                                                  frame.model_dump_json())  # fmt: skip
            except GatewayError as exc:
                metrics.CLIENT_ERRORS.labels(code=exc.code).inc()
                await websocket.send_json(exc.as_frame())

    async def _fill(self, pubsub: Any, backlog: AgentBacklog, cid: str) -> None:
        async for message in pubsub.listen():
            data: str = message["data"]
            if data.startswith("{"):  # the end, from sessions.end
                backlog.offer(INCREMENTAL + data)
                continue
            if not backlog.offer(data):
                log.info("cobrowse_console_behind", conversation_id=cid, dropped=backlog.dropped)
                await self._redis.publish(keys.cobrowse_to_citizen(cid), SNAPSHOT_WANTED)

    # --- both -----------------------------------------------------------------------

    @asynccontextmanager
    async def _listening(self, channel: str) -> AsyncIterator[Any]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        try:
            yield pubsub
        finally:
            with contextlib.suppress(Exception):  # Redis may be why the socket ends
                await pubsub.unsubscribe()
                await pubsub.aclose()

    async def _beat(self, websocket: WebSocket, cid: str, side: Side) -> None:
        """Renew the session while the socket is open; close the socket once it ended."""
        while await self.sessions.beat(cid, side):
            await asyncio.sleep(BEAT_S)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_text(END)
            await websocket.close(1000, "Co-browsing ended.")

    async def _end_if_gone(self, cid: str, side: Side, reason: str) -> None:
        """A side's socket closed: end the session unless it is back within the grace time
        (the citizen's next page of the portal opens a new socket)."""
        grace = self._settings.cobrowse_grace_s
        await asyncio.sleep(grace)
        gone = await self.sessions.gone_since(cid, side)
        if gone is not None and gone >= grace:
            await self.sessions.end(cid, by=side, reason=reason)

    async def drain(self, timeout: float) -> None:
        await self._tasks.wait(timeout)


async def _first_frame(websocket: WebSocket) -> str:
    return await first_frame_text(websocket, HELLO_TIMEOUT_S, HELLO_MAX_BYTES, "Frame too large.")


async def _close(websocket: WebSocket, error: GatewayError, code: int) -> None:
    metrics.CLIENT_ERRORS.labels(code=error.code).inc()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_json(error.as_frame())
        await websocket.close(code, error.code)


async def _forward(pubsub: Any, websocket: WebSocket) -> None:
    """Guidance, snapshot requests and the end, to the citizen's page."""
    async for message in pubsub.listen():
        await websocket.send_text(message["data"])
        if message["data"] == END:
            await websocket.close(1000, "Co-browsing ended.")
            return


async def _drain(backlog: AgentBacklog, websocket: WebSocket) -> None:
    while True:
        frame = await backlog.next()
        await websocket.send_text(frame)
        if frame == END:
            await websocket.close(1000, "Co-browsing ended.")
            return


async def _alongside(*work: Any) -> None:
    """Run coroutines until the first ends (the socket closed, or the session ended)."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if (
                not task.cancelled()
                and (exc := task.exception()) is not None
                and not (isinstance(exc, WebSocketDisconnect | RuntimeError))
            ):
                raise exc
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
