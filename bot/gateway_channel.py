"""Rasa input channel for the gateway: one turn, one round trip.

Rasa's stock REST channel returns only the bot's messages. The gateway also
needs what Rasa understood of the citizen's message (intent, confidence,
entities) to store with the citizen's event and to show agents after a
handover. This channel answers a turn with both, so the gateway never makes a
second call per turn.

Request (POST ``/webhooks/gateway/webhook``)::

    {"sender": "<conversation id>", "message": "Hallo",
     "message_id": "<conversation id>:<seq>", "metadata": {"channel": "web", "language": "de"}}

Response::

    {"messages": [{"text": ..., "buttons": [...], "custom": {...}}, ...],
     "parse": {"intent": {"name", "confidence"}, "entities": [...], "intent_ranking": [...]}}

Only the gateway may call it: channel blueprints are outside Rasa's own API
authentication, so the webhook checks the same credential itself, an
`Authorization: Bearer <JWT>` signed (HS256, with an expiry) with the secret
Rasa's API uses (RASA_JWT_SECRET, or `jwt_secret:` in credentials.yml). Without
a secret configured it refuses every call: a missing setting never opens it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.gateway_auth import is_gateway

logger = logging.getLogger(__name__)

# The gateway enforces its own frame limit; this bound only protects Rasa from
# a misbehaving client on loopback.
MAX_MESSAGE_CHARS = 20_000
# Enough alternatives for an agent to see what else the bot considered.
INTENT_RANKING_SIZE = 5


def _bad_request(reason: str) -> HTTPResponse:
    return response.json({"error": "bad_request", "message": reason}, status=400)


def _summary(parse_data: dict[str, Any]) -> dict[str, Any]:
    """What the gateway keeps of a parse: intent, entities and the runners-up."""
    return {
        "intent": parse_data.get("intent") or {},
        "entities": parse_data.get("entities") or [],
        "intent_ranking": (parse_data.get("intent_ranking") or [])[:INTENT_RANKING_SIZE],
    }


def _unauthorized() -> HTTPResponse:
    return response.json(
        {"error": "unauthorized", "message": "This channel answers the gateway only."},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


class GatewayInput(InputChannel):
    """The channel the gateway (``handover/``) talks to."""

    def __init__(self, jwt_secret: str | None = None) -> None:
        self._jwt_secret = jwt_secret
        if not jwt_secret:
            logger.error("No RASA_JWT_SECRET: the gateway channel refuses every call.")

    @classmethod
    def name(cls) -> str:
        return "gateway"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        secret = (credentials or {}).get("jwt_secret") or os.environ.get("RASA_JWT_SECRET")
        return cls(secret or None)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("gateway_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not is_gateway(request, self._jwt_secret):
                return _unauthorized()
            try:
                body = request.json
            except Exception:  # sanic raises InvalidUsage for broken JSON
                return _bad_request("body is not JSON")
            if not isinstance(body, dict):
                return _bad_request("body must be a JSON object")
            sender = body.get("sender")
            text = body.get("message")
            message_id = body.get("message_id")
            metadata = body.get("metadata")
            metadata = {} if metadata is None else metadata
            if not isinstance(sender, str) or not sender:
                return _bad_request("'sender' must be a non-empty string")
            if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
                return _bad_request(
                    f"'message' must be a string of at most {MAX_MESSAGE_CHARS} characters"
                )
            if message_id is not None and not isinstance(message_id, str):
                return _bad_request("'message_id' must be a string")
            if not isinstance(metadata, dict):
                return _bad_request("'metadata' must be an object")

            processor = request.app.ctx.agent.processor
            if processor is None:
                return response.json(
                    {"error": "no_model", "message": "Rasa has no model loaded."}, status=503
                )
            collector = CollectingOutputChannel()
            message = UserMessage(
                text,
                collector,
                sender,
                input_channel=self.name(),
                metadata=metadata,
                message_id=message_id,
            )
            # Parse here and hand the result on: Rasa then skips its own parse of
            # the message (same work, done once) and we have the parse data
            # without reading the tracker back.
            message.parse_data = await processor.parse_message(message)
            await on_new_message(message)
            return response.json(
                {"messages": collector.messages, "parse": _summary(message.parse_data)}
            )

        return webhook
