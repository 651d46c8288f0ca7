"""The gateway's FastAPI application: demo page, widget, citizen socket, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from handover.agent_auth import AgentAuth
from handover.agent_desk import AgentDesk
from handover.agent_sign_in import add_agent_sign_in, make_agent_sign_in
from handover.agent_socket import serve_agent
from handover.agents import AgentDirectory, ensure_demo_agent
from handover.case_api import add_case_api
from handover.cases import CaseBook, LookupThrottle
from handover.citizen_socket import serve_citizen
from handover.conversation_log import ConversationLog
from handover.delivery import ConversationHub
from handover.event_bus import EventBus
from handover.gateway import Gateway
from handover.knowledge_api import add_knowledge_api
from handover.presence import Presence
from handover.queues import Queues
from handover.rasa_bot import RasaBot
from handover.redis_connection import connect
from handover.service_hours import ServiceHours
from handover.settings import PROJECT_ROOT, Settings, get_settings
from handover.timeline import Timeline

log = structlog.get_logger(__name__)

WIDGET_DIR = PROJECT_ROOT / "widget"

# The demo portal runs no third-party code; the widget talks only to its own origin.
DEMO_PAGE_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)


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
        bot = RasaBot(http, settings.rasa_url, settings.rasa_timeout_s)
        bus = EventBus(redis, ConversationHub(), settings.retention_s)
        await bus.start()
        timeline = Timeline(ConversationLog(redis, settings.retention_s, bus.host_id), bus)
        agents = AgentDirectory(redis)
        desk = AgentDesk(
            redis, timeline, Queues(redis), agents, Presence(redis, settings.presence_ttl_s),
            bot, ServiceHours(settings.service_hours), settings.default_queue,
            auto_assign=settings.auto_assign,
        )  # fmt: skip
        app.state.gateway = Gateway(timeline, bot, desk)
        app.state.desk = desk
        app.state.bus = bus
        app.state.auth = AgentAuth(redis, agents, settings)
        sign_in = make_agent_sign_in(redis, agents, app.state.auth, settings)
        app.state.agent_sign_in = sign_in[0] if sign_in else None
        app.state.redis = redis
        app.state.cases = CaseBook(redis, settings.case_retention_s)
        app.state.case_lookups = LookupThrottle(
            redis, settings.case_lookup_max_failures, settings.case_lookup_window_s
        )
        app.state.grace_tasks = set()
        demo_login = ""
        if settings.demo_agent:
            password = await ensure_demo_agent(agents, settings.demo_agent, settings.data_dir)
            demo_login = (
                f"    Demo agent (supervisor):           {settings.demo_agent} / {password}\n"
            )
        announce = asyncio.create_task(_announce_when_ready(settings, bot, demo_login))
        try:
            yield
        finally:
            announce.cancel()
            for task in [announce, *app.state.grace_tasks]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.gateway.drain()
            await bus.stop()
            await http.close()
            if sign_in:
                await sign_in[1].aclose()
            await redis.aclose()
            knowledge.close()

    app = FastAPI(title="Bürgerservice gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The widget script is 47 KB and loads on every page of the city portal: gzip makes it
    # about 15 KB. Websockets are not touched by this middleware.
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.get("/", include_in_schema=False)
    async def demo_page() -> Response:
        response = FileResponse(WIDGET_DIR / "demo.html", media_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = DEMO_PAGE_CSP
        return response

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
        response = FileResponse(
            WIDGET_DIR / "agent-console.html", media_type="text/html; charset=utf-8"
        )
        response.headers["Content-Security-Policy"] = DEMO_PAGE_CSP
        return response

    @app.get("/agent-console.js", include_in_schema=False)
    async def agent_console_script() -> Response:
        return FileResponse(
            WIDGET_DIR / "agent-console.js", media_type="text/javascript; charset=utf-8"
        )

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
        return JSONResponse(body, status_code=200 if redis_ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    add_case_api(app, settings)
    add_agent_sign_in(app, settings)
    knowledge = add_knowledge_api(app, settings)

    @app.post("/api/agent/login")
    async def agent_login(body: LoginBody, request: Request) -> JSONResponse:
        result = await request.app.state.auth.login(body.username, body.password)
        if result is None:
            return JSONResponse(
                {"error": "unauthorized", "message": "Benutzername oder Passwort ist falsch."},
                status_code=401,
            )
        token, agent = result
        return JSONResponse({"token": token, "agent": agent.public()})

    async def citizen_socket(websocket: WebSocket) -> None:
        query = websocket.query_params
        token = query.get("token") or None
        after = query.get("after") or ""
        # A malformed `after` replays everything rather than refusing the socket.
        last_seen = int(after) if after.isdigit() and len(after) < 20 else None
        await serve_citizen(
            websocket,
            app.state.gateway,
            settings,
            token if token and len(token) <= 128 else None,
            last_seen,
            query.get("lang"),
        )

    async def agent_socket(websocket: WebSocket) -> None:
        state = app.state
        token = websocket.query_params.get("token", "")
        agent = await state.auth.agent_for(token) if token and len(token) <= 512 else None

        def schedule_grace(username: str) -> None:
            task = asyncio.create_task(_requeue_after_grace(state.desk, username, settings))
            state.grace_tasks.add(task)
            task.add_done_callback(state.grace_tasks.discard)

        await serve_agent(websocket, agent, state.desk, state.bus, settings, schedule_grace)

    return GatewayApp(app, {"/ws/chat": citizen_socket, "/ws/agent": agent_socket})


class GatewayApp:
    """The ASGI entry point: sockets go straight to their handlers, the rest to FastAPI.

    Sockets skip FastAPI's middleware stack on purpose: each frame sent through it
    passes several wrapper layers, which cost a measurable share of the relay's
    CPU (docs/benchmarks.md). HTTP keeps FastAPI's validation and error handling.
    """

    def __init__(self, api: FastAPI, sockets: dict[str, Callable[[WebSocket], Awaitable[None]]]):
        self.api = api
        self.state = api.state
        self._sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = self._sockets.get(scope["path"])
            if handler is not None:
                await handler(WebSocket(scope, receive, send))
                return
        await self.api(scope, receive, send)


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
