"""Request body limits, enforced while the body streams in (pure ASGI middleware).

A route that calls `await request.body()` and checks the length afterwards has
already buffered whatever the client sent: a 200 MB body cost the gateway
~380 MB of memory (issue 12). Here a declared `Content-Length` above the route's
limit is refused before a byte of the body is read, and a chunked (or lying)
body is counted as it arrives: the chunk that passes the limit raises
`BodyTooLarge` inside the route's read, and the caller gets `413` with
`Connection: close`, so uvicorn stops reading the rest. Nothing the route would
have stored is stored: it never gets a body.

Uvicorn's flow control pauses reading once ~64 KiB wait unread, so memory per
refused request stays at the limit plus one buffer.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE_BODY = orjson.dumps({"error": "too_large"})


class BodyTooLarge(HTTPException):
    """The request body passed its route's limit; raised from `receive` while reading.

    An `HTTPException` so FastAPI's own body parsing re-raises it unchanged
    instead of turning it into a 400; `too_large_response` renders it.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large")
        self.limit = limit


async def send_too_large(send: Send) -> None:
    """The one 413 the gateway gives for any over-long body, closing the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE_BODY)).encode()),
                # Uvicorn closes the connection after this response instead of
                # waiting for (and buffering) the rest of the body.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE_BODY})


class BodyLimit:
    """Refuse HTTP request bodies above a per-route limit, before and while they arrive.

    `routes` maps exact paths to their own limit (a route that needs more, or
    much less, than `default`); every other path gets `default`.
    """

    def __init__(self, app: ASGIApp, default: int, routes: Mapping[str, int] | None = None):
        self.app = app
        self.default = default
        self.routes = dict(routes or {})

    def limit_for(self, path: str) -> int:
        return self.routes.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_too_large(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            # Raised past the app's own handlers (e.g. read by a middleware).
            if not started:
                await send_too_large(send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; a malformed one counts as unbounded (uvicorn refuses it)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 19 else 1 << 62
    return None


async def too_large_response(request: object, exc: Exception) -> Response:
    """FastAPI's handler for `BodyTooLarge` raised inside a route's body read."""
    return Response(
        TOO_LARGE_BODY,
        status_code=413,
        media_type="application/json",
        headers={"Connection": "close"},
    )
