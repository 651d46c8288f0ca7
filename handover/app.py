"""The gateway's FastAPI application: demo page, widget, citizen socket, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

# Each channel module registers its adapter when imported.
import handover.channels.mail
import handover.channels.matrix
import handover.channels.messenger
import handover.channels.telegram
import handover.channels.web
import handover.channels.whatsapp  # noqa: F401
from handover.agents.auth import AgentAuth
from handover.agents.desk import AgentDesk
from handover.agents.directory import AgentDirectory, ensure_demo_agent
from handover.agents.knowledge_search import add_knowledge_api
from handover.agents.login_limits import LoginRefused
from handover.agents.passwords import PasswordPool, PasswordPoolBusy
from handover.agents.presence import Presence
from handover.agents.queues import Queues
from handover.agents.service_hours import ServiceHours
from handover.agents.sessions import AgentSessions
from handover.agents.sign_in import add_agent_sign_in, make_agent_sign_in
from handover.agents.socket import serve_agent
from handover.applications.api import BODY_LIMIT as APPLICATION_BODY_LIMIT
from handover.applications.api import PV_PATH, add_application_api
from handover.cases.api import add_case_api
from handover.cases.store import CaseBook, LookupThrottle
from handover.channels.base import OutboxChannel, SocketHandler, enabled_adapters
from handover.channels.inbox import ChannelInbox
from handover.channels.outbox import Outbox
from handover.cobrowse.relay import CobrowseRelay
from handover.cobrowse.sessions import CobrowseSessions
from handover.conversation.bus import EventBus
from handover.conversation.delivery import ConversationHub
from handover.conversation.log import ConversationLog
from handover.conversation.routing import Gateway
from handover.conversation.timeline import Timeline
from handover.ops.body_limit import BodyLimit, BodyTooLarge, too_large_response
from handover.ops.client_keys import CLIENT_KEY, ClientKeys
from handover.ops.rate_limit import Budgets
from handover.ops.redis_connection import PrimaryWatch, connect
from handover.ops.security_headers import SecurityHeaders
from handover.portal import add_portal_pages
from handover.privacy.api import PrivacyApiError, PrivacyServices, add_privacy_api, supervisor
from handover.rasa.auth import RasaCredentials
from handover.rasa.client import RasaBot
from handover.settings import PROJECT_ROOT, Settings, get_settings

log = structlog.get_logger(__name__)

WIDGET_DIR = PROJECT_ROOT / "widget"
COBROWSE_DIR = WIDGET_DIR / "dist"
COBROWSE_BUNDLES = {
    "citizen.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

# Bodies far below MAX_BODY_BYTES are all these routes ever need: a case number and a
# verifier, or a username and a password. Smaller limits mean less to buffer per request.
# An application carries an upload of up to 5 MB: its route alone may take that much.
ROUTE_BODY_LIMITS = {
    "/api/cases/lookup": 2048,
    "/api/agent/login": 2048,
    PV_PATH: APPLICATION_BODY_LIMIT,
}


async def _announce_when_ready(settings: Settings, bot: RasaBot, demo_login: str) -> None:
    """Print where to point a browser once the bot answers (Rasa loads for a while)."""
    while not await bot.is_ready():
        await asyncio.sleep(1.0)
    await bot.warm_up()
    url = settings.gateway_url
    print(
        "\n  Bürgerservice-Assistent is ready.\n"
        f"    Demo portal with the chat widget:  {url}/\n"
        f"    Agent console:                    {url}/agent\n"
        f"    Health:                           {url}/healthz\n" + demo_login,
        flush=True,
    )


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        rasa_credentials = (
            RasaCredentials(settings.rasa_jwt_secret) if settings.rasa_jwt_secret else None
        )
        bot = RasaBot(http, settings.rasa_replica_urls, settings.rasa_timeout_s, rasa_credentials)
        bus = EventBus(redis, ConversationHub(), settings.retention_s)
        await bus.start()
        conversation_log = ConversationLog(
            redis, settings.retention_s, bus.host_id, settings.conversation_token_secret,
            nlu_retention_s=settings.nlu_retention_s, csat_retention_s=settings.csat_retention_s,
            wait_replicas=settings.redis_wait_replicas,
        )  # fmt: skip
        timeline = Timeline(conversation_log, bus)
        passwords = PasswordPool(settings.password_hash_workers)
        agents = AgentDirectory(redis, passwords)
        sessions = AgentSessions(redis)
        await sessions.start()
        desk = AgentDesk(
            redis, timeline, Queues(redis, settings.retention_s), agents,
            Presence(redis, settings.presence_ttl_s), bot, ServiceHours(settings.service_hours),
            settings.default_queue, auto_assign=settings.auto_assign,
            ticket_retention_s=settings.ticket_retention_s,
        )  # fmt: skip
        app.state.privacy = PrivacyServices.create(redis, conversation_log, settings, bus)
        desk.audit = app.state.privacy.audit
        app.state.gateway = Gateway(timeline, bot, desk)
        app.state.desk = desk
        app.state.bus = bus
        app.state.auth = AgentAuth(redis, agents, settings)
        app.state.agent_sessions = sessions
        sign_in = make_agent_sign_in(redis, agents, app.state.auth, settings)
        app.state.agent_sign_in = sign_in[0] if sign_in else None
        app.state.redis = redis
        app.state.cases = CaseBook(redis, settings.case_retention_s)
        app.state.case_lookups = LookupThrottle(
            redis, settings.case_lookup_max_failures, settings.case_lookup_window_s,
            settings.case_lookup_pair_delay_s, settings.case_lookup_pair_max_delay_s,
        )  # fmt: skip
        app.state.client_keys = await ClientKeys.load(redis)
        app.state.budgets = Budgets(redis, settings, app.state.client_keys.of)
        cobrowse = CobrowseSessions(redis, timeline)
        desk.cobrowse = cobrowse
        timeline.after_change.append(cobrowse.after_change)
        app.state.cobrowse_relay = CobrowseRelay(
            redis, cobrowse, conversation_log, app.state.auth, app.state.budgets, settings
        )
        app.state.channel_inbox = ChannelInbox(
            app.state.gateway, app.state.privacy.pseudonyms, app.state.budgets,
            settings.retention_s, settings.max_text_chars,
        )  # fmt: skip
        messengers = [c for c in channels if isinstance(c, OutboxChannel)]
        outboxes = _start_outboxes(messengers, redis, conversation_log, bus.host_id, http, settings)
        desk.reply_windows = {c.name: c.reply_window_s for c in messengers if c.reply_window_s}
        if settings.whatsapp_template_name:
            desk.template_text = settings.whatsapp_template_text
        for channel in channels:
            await channel.start(app.state.channel_inbox)
        app.state.outboxes = {name: outbox for name, (outbox, _) in outboxes.items()}
        app.state.grace_tasks = set()
        demo_login = ""
        if settings.demo_agent:
            await ensure_demo_agent(agents, settings.demo_agent, settings.data_dir)
            # The password stays in its 0600 file: the console output may end up in a log.
            secret = settings.data_dir / "demo-agent-password"
            demo_login = (
                f"    Demo agent (supervisor):           {settings.demo_agent}, password in "
                f"{secret}\n"
            )
        announce = asyncio.create_task(_announce_when_ready(settings, bot, demo_login))
        app.state.primary_watch = PrimaryWatch(settings)
        primary_watch = asyncio.create_task(app.state.primary_watch.run())
        try:
            yield
        finally:
            announce.cancel()
            for task in [announce, primary_watch, *app.state.grace_tasks]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for outbox, task in outboxes.values():
                await outbox.stop(task)
            for channel in channels:
                await channel.stop()
            await app.state.gateway.drain()
            await sessions.stop()
            await bus.stop()
            passwords.close()
            await http.close()
            if sign_in:
                await sign_in[1].aclose()
            await redis.aclose()
            knowledge.close()

    app = FastAPI(title="Bürgerservice gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The web socket and every messenger channel whose settings are complete.
    channels = enabled_adapters(settings)
    for channel in channels:
        app.include_router(channel.router())
    # The widget script is 47 KB and loads on every page of the city portal: gzip makes it
    # about 15 KB. Websockets are not touched by this middleware.
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.get("/", include_in_schema=False)
    async def demo_page() -> Response:
        # Its Content-Security-Policy comes from SecurityHeaders, as every page's does.
        return FileResponse(WIDGET_DIR / "demo.html", media_type="text/html; charset=utf-8")

    @app.get("/widget.js", include_in_schema=False)
    async def widget_script() -> Response:
        response = FileResponse(
            WIDGET_DIR / "chat-widget.js", media_type="text/javascript; charset=utf-8"
        )
        # Short: embedders get fixes within minutes; the ETag makes revalidation cheap.
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    @app.get("/agent", include_in_schema=False, name="agent_console")
    async def agent_console() -> Response:
        return FileResponse(
            WIDGET_DIR / "agent-console.html", media_type="text/html; charset=utf-8"
        )

    @app.get("/agent-console.js", include_in_schema=False)
    async def agent_console_script() -> Response:
        return FileResponse(
            WIDGET_DIR / "agent-console.js", media_type="text/javascript; charset=utf-8"
        )

    @app.get("/cobrowse/{name}", include_in_schema=False)
    async def cobrowse_bundle(name: str) -> Response:
        """The co-browse scripts (rrweb and ours, built by `make cobrowse`): loaded only
        after the citizen agreed, or when an agent opens the view."""
        media = COBROWSE_BUNDLES.get(name)
        path = COBROWSE_DIR / name
        if media is None or not path.is_file():
            return JSONResponse({"error": "not_found"}, status_code=404)
        response = FileResponse(path, media_type=media)
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    @app.get("/healthz")
    async def health(request: Request) -> JSONResponse:
        """Redis is required (503 without it); a missing bot only degrades the service."""
        gateway: Gateway = request.app.state.gateway
        try:
            await request.app.state.redis.ping()
            redis_ok = True
        except RedisError:
            redis_ok = False
        rasa_ok = await gateway.bot.is_ready()
        body = {
            "status": "ok" if redis_ok and rasa_ok else "degraded" if redis_ok else "unavailable",
            "redis": "ok" if redis_ok else "unavailable",
            "rasa": "ok" if rasa_ok else "unavailable",
        }
        if settings.redis_sentinels:  # which primary the sentinels name (after a failover)
            body["redis_primary"] = request.app.state.primary_watch.primary or "unknown"
        return JSONResponse(body, status_code=200 if redis_ok else 503)

    @app.get("/api/admin/channel-failures")
    async def channel_failures(request: Request, limit: int = 100) -> JSONResponse:
        """Replies the messengers refused for good, newest first, per channel (supervisors)."""
        try:
            await supervisor(request)
            if not 1 <= limit <= 1000:
                raise PrivacyApiError(400, "bad_request", "limit: 1 to 1000.")
        except PrivacyApiError as exc:
            return exc.response()
        outboxes: dict[str, Outbox] = request.app.state.outboxes
        return JSONResponse(
            {name: await outbox.failures(limit) for name, outbox in outboxes.items()}
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_exception_handler(BodyTooLarge, too_large_response)
    add_case_api(app, settings)
    add_application_api(app, settings)
    add_portal_pages(app)
    add_privacy_api(app)
    add_agent_sign_in(app, settings)
    knowledge = add_knowledge_api(app, settings)

    @app.post("/api/agent/login")
    async def agent_login(body: LoginBody, request: Request) -> JSONResponse:
        """Limits first (429, no hash), then the password in the pool (401 if wrong)."""
        # Counted under a keyed hash: no address is kept in clear (30 days for known ones).
        address = request.app.state.client_keys.of(request.client.host if request.client else "")
        try:
            result = await request.app.state.auth.login(body.username, body.password, address)
        except LoginRefused as refused:
            log.info("agent_login_refused", scope=refused.scope)
            return JSONResponse(
                {"error": "rate_limited", "message": refused.message,
                 "retry_after_s": refused.retry_after_s},
                status_code=429, headers={"Retry-After": str(refused.retry_after_s)},
            )  # fmt: skip
        except PasswordPoolBusy:
            return JSONResponse(
                {"error": "busy", "message": "Zu viele Anmeldungen gleichzeitig. Bitte "
                 "versuchen Sie es gleich noch einmal.", "retry_after_s": 1},
                status_code=503, headers={"Retry-After": "1"},
            )  # fmt: skip
        if result is None:
            return JSONResponse(
                {"error": "unauthorized", "message": "Benutzername oder Passwort ist falsch."},
                status_code=401,
            )
        token, agent = result
        return JSONResponse({"token": token, "agent": agent.public()})

    async def agent_socket(websocket: WebSocket, state: State) -> None:

        def schedule_grace(username: str) -> None:
            task = asyncio.create_task(_requeue_after_grace(state.desk, username, settings))
            state.grace_tasks.add(task)
            task.add_done_callback(state.grace_tasks.discard)

        await serve_agent(
            websocket, state.auth, state.agent_sessions, state.desk, state.bus, settings,
            schedule_grace,
        )  # fmt: skip

    http = SecurityHeaders(BodyLimit(app, settings.max_body_bytes, ROUTE_BODY_LIMITS))
    sockets = {path: handler for channel in channels for path, handler in channel.sockets().items()}

    async def cobrowse_view(websocket: WebSocket, state: State) -> None:
        await state.cobrowse_relay.serve_agent(websocket)

    sockets |= {"/ws/agent": agent_socket, "/ws/cobrowse/agent": cobrowse_view}
    return GatewayApp(app, sockets, http)


class GatewayApp:
    """The ASGI entry point: sockets go straight to their handlers, the rest to FastAPI.

    Sockets skip FastAPI's middleware stack on purpose: each frame sent through it
    passes several wrapper layers, which cost a measurable share of the relay's
    CPU (docs/benchmarks.md). HTTP keeps FastAPI's validation and error handling,
    inside `http`: the body limit and the security headers, outermost so that even
    FastAPI's own 500 responses carry the headers.
    """

    def __init__(
        self,
        api: FastAPI,
        sockets: dict[str, SocketHandler],
        http: ASGIApp | None = None,
    ):
        self.api = api
        self.state = api.state
        self._sockets = sockets
        self._http: ASGIApp = http or api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = self._sockets.get(scope["path"])
            if handler is not None:
                # Bot turns started from this connection inherit the citizen's client
                # key; Rasa's metadata carries it to the action server (rasa/client.py).
                token = CLIENT_KEY.set(self.state.client_keys.of_scope(scope))
                try:
                    await handler(WebSocket(scope, receive, send), self.state)
                finally:
                    CLIENT_KEY.reset(token)
                return
            await self.api(scope, receive, send)
            return
        await self._http(scope, receive, send)


def _start_outboxes(
    channels: list[OutboxChannel],
    redis: Redis,
    conversation_log: ConversationLog,
    host_id: str,
    http: aiohttp.ClientSession,
    settings: Settings,
) -> dict[str, tuple[Outbox, asyncio.Task[None]]]:
    """Each channel's outbox sender, running until the app stops."""
    started = {}
    for channel in channels:
        channel.http = http
        outbox = Outbox(redis, conversation_log, channel, host_id, lease_s=settings.outbox_lease_s,
                        failed_retention_s=settings.retention_s)  # fmt: skip
        started[channel.name] = (outbox, asyncio.create_task(outbox.run()))
    return started


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


async def _requeue_after_grace(desk: AgentDesk, username: str, settings: Settings) -> None:
    """An agent whose last socket closed gets `agent_grace_s` to come back."""
    await asyncio.sleep(settings.agent_grace_s)
    try:
        await desk.requeue_if_gone(username)
    except RedisError as exc:
        log.error("requeue_failed", agent=username, error=repr(exc))
