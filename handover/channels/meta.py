"""What WhatsApp Cloud and Facebook Messenger share: Meta's webhooks and Graph API.

- The subscription handshake: `GET /channels/<name>?hub.mode=subscribe&
  hub.verify_token=…&hub.challenge=…` is answered with the challenge when the verify
  token is ours, else 403.
- Every POST carries `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256 of the raw
  body bytes with the app secret; it is checked in constant time before the body is
  parsed, and a request without a valid one is refused with 401, nothing stored.
- Sends go to the Graph API with the token in an `Authorization: Bearer` header
  (Graph also takes it as `?access_token=`, but credentials never travel in URLs).
  Graph's errors say whether to retry: 429 and its rate-limit codes (4, 17, 32, 613,
  80007, 130429, 131048, 131056) and 5xx are retried; the rest (a user who cannot be
  reached, a message the API will not take) are refusals for good.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from handover.channels.base import OutboxChannel, SendFailed
from handover.channels.inbox import ChannelInbox, Inbound

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80007, 130429, 131048, 131056}


def signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is Meta's HMAC-SHA256 of `body` with `app_secret`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256=") :].strip().lower(), expected)


def handshake(request: Request, verify_token: str) -> Response:
    """Meta's subscription check: echo the challenge to the one who knows our verify token."""
    query = request.query_params
    given = query.get("hub.verify_token", "").encode()
    if query.get("hub.mode") == "subscribe" and hmac.compare_digest(given, verify_token.encode()):
        return PlainTextResponse(query.get("hub.challenge", "")[:256])
    return JSONResponse({"error": "forbidden"}, status_code=403)


def webhook_router(
    channel: str, app_secret: str, verify_token: str, read: Callable[[bytes], list[Inbound]]
) -> APIRouter:
    """`GET` (the handshake) and `POST` (signed notifications) at /channels/<channel>.

    `read` turns a verified body into the messages it carries (ValueError or a pydantic
    ValidationError for one that is not the provider's shape: 400).
    """
    router = APIRouter()
    path = f"/channels/{channel}"

    @router.get(path, include_in_schema=False)
    async def subscribe(request: Request) -> Response:
        return handshake(request, verify_token)

    @router.post(path, include_in_schema=False)
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not signature_valid(app_secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("channel_refused", channel=channel, reason="signature")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            inbound = read(body)
        except (ValidationError, ValueError) as exc:
            log.warning("channel_bad_update", channel=channel, error=type(exc).__name__)
            return JSONResponse({"error": "bad_request"}, status_code=400)
        inbox: ChannelInbox = request.app.state.channel_inbox
        await inbox.receive_all(inbound)
        return JSONResponse({"ok": True})

    return router


async def graph_post(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    body: dict[str, Any],
    timeout: aiohttp.ClientTimeout,
) -> dict[str, Any]:
    """POST `body` to the Graph API; `SendFailed` saying whether a retry can help."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(url, json=body, headers=headers, timeout=timeout) as response:
        try:
            answer: dict[str, Any] = await response.json(content_type=None)
        except ValueError:
            answer = {}
        status = response.status
        retry_after = response.headers.get("Retry-After")
    if status == 200 and "error" not in answer:
        return answer
    error = answer.get("error") or {}
    code = error.get("code")
    reason = f"{code or status}: {str(error.get('message', ''))[:180] or f'HTTP {status}'}"
    if status == 429 or code in RATE_LIMIT_CODES:
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise SendFailed(reason, retry_after_s=wait or 5.0)
    raise SendFailed(reason, permanent=status < 500)


class MetaChannel(OutboxChannel):
    """A channel on Meta's webhooks and Graph API; a subclass reads and writes its messages."""

    def __init__(
        self, send_url: str, token: str, app_secret: str, verify_token: str, timeout_s: float
    ) -> None:
        self._send_url = send_url
        self._token = token
        self._secret = app_secret
        self._verify_token = verify_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.template = ("", "de")  # an approved template's name and language, if any

    def router(self) -> APIRouter:
        return webhook_router(self.name, self._secret, self._verify_token, self.read)

    @abstractmethod
    def read(self, body: bytes) -> list[Inbound]:
        """The messages of a verified notification, in order."""

    async def post(self, body: dict[str, Any]) -> None:
        await graph_post(self.session(), self._send_url, self._token, body, self._timeout)
