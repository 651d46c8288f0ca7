"""Domain errors and the one place that maps them to what a client sees.

Code raises these with a sentence meant for the person on the other end; the
socket handlers turn them into `error` frames (citizen and agent sockets) or
HTTP statuses here, so the mapping is not repeated at every call site.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """An error a client caused or must be told about; `code` is the wire code."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # Set by the agent socket when the refused frame named a conversation:
        # a console with several chats learns which one the error is about.
        self.conversation_id: str | None = None

    def as_frame(self) -> dict[str, Any]:
        frame = {"type": "error", "code": self.code, "message": self.message}
        if self.conversation_id is not None:
            frame["conversation_id"] = self.conversation_id
        return frame


class BadFrame(GatewayError):
    code = "bad_frame"
    http_status = 400


class FrameTooLarge(GatewayError):
    code = "too_large"
    http_status = 413


class RateLimited(GatewayError):
    code = "rate_limited"
    http_status = 429


class BotUnavailable(GatewayError):
    """Rasa did not answer a turn (down, timing out or failing)."""

    code = "bot_unavailable"
    http_status = 503


class OutsideWindow(GatewayError):
    """The messenger takes no free text now (WhatsApp, 24 hours after the citizen's last)."""

    code = "outside_window"
    http_status = 409


class NoTemplate(GatewayError):
    """A template message was asked for where none is configured or none is needed."""

    code = "no_template"
    http_status = 409


class ConversationClosed(GatewayError):
    code = "conversation_closed"
    http_status = 409


class AlreadyTaken(GatewayError):
    code = "already_taken"
    http_status = 409


class NotAssigned(GatewayError):
    code = "not_assigned"
    http_status = 403


class AtCapacity(GatewayError):
    code = "at_capacity"
    http_status = 409


class UnknownQueue(GatewayError):
    code = "unknown_queue"
    http_status = 400
