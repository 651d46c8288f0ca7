"""Security headers on every HTTP response of the gateway (pure ASGI middleware).

Pages the gateway serves (the demo portal, the agent console, anything HTML)
get a Content-Security-Policy that lets them load only the gateway's own
scripts and styles and connect only to the gateway's own origin: `'self'` plus
the exact ws/wss origin of the request (browsers before CSP 3 do not count
ws: as 'self'), never any ws host. Everything else (JSON, the widget script,
metrics) gets `default-src 'none'`. Nothing may frame the gateway's pages: the
widget is a script on the city's portal, not a frame, and the console is a page
of its own, so `frame-ancestors 'none'` (and X-Frame-Options for old browsers).

A route that sets a header itself keeps its own value.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A Host header as browsers send it: a name or IPv4 address, or a bracketed IPv6
# address, with an optional port. Anything else is not put into the policy.
_HOST = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::\d{1,5})?"
    r"|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?"
)

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self'{ws}; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
RESOURCE_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# One year; sent only over HTTPS (a trusted proxy's X-Forwarded-Proto counts).
HSTS = "max-age=31536000"


def websocket_origin(scope: Scope) -> str | None:
    """The ws:// or wss:// origin of the request's own host, or None if its Host is odd."""
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    text = host.decode("latin-1")
    if not _HOST.fullmatch(text):
        return None
    return f"{'wss' if scope.get('scheme') == 'https' else 'ws'}://{text.lower()}"


def content_security_policy(scope: Scope, content_type: str) -> str:
    if not content_type.startswith("text/html"):
        return RESOURCE_POLICY
    origin = websocket_origin(scope)
    return PAGE_POLICY.format(ws=f" {origin}" if origin else "")


class SecurityHeaders:
    """Add nosniff, Referrer-Policy, CSP, X-Frame-Options (and HSTS over HTTPS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault(
                    "Content-Security-Policy",
                    content_security_policy(scope, headers.get("content-type", "")),
                )
                if scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
