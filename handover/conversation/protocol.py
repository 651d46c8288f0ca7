"""The citizen socket's wire protocol (DESIGN.md, "Wire protocol"), one model per frame.

Client frames are validated here, at the edge; everything behind this module
works with typed frames only. Unknown fields are ignored, as the contract says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from handover.errors import BadFrame, FrameTooLarge

T = TypeVar("T")
ConversationState = Literal["bot", "queued", "with_agent", "closed"]
Sender = Literal["citizen", "bot", "agent"]


class _ClientFrame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HelloFrame(_ClientFrame):
    """The first frame: which conversation to resume and the last seq the client has.

    Credentials travel here, never in the URL (URLs end up in access logs).
    """

    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    after: Annotated[int, Field(strict=True, ge=0)] | None = None
    lang: Annotated[str, Field(max_length=16)] | None = None


class MessageFrame(_ClientFrame):
    type: Literal["message"]
    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    text: str | None = None
    payload: Annotated[str, Field(max_length=512)] | None = None

    @model_validator(mode="after")
    def _text_or_payload(self) -> MessageFrame:
        if not (self.text and self.text.strip()) and not self.payload:
            raise ValueError("a message needs a non-empty text or a payload")
        return self


class TypingFrame(_ClientFrame):
    type: Literal["typing"]
    active: bool


class CsatFrame(_ClientFrame):
    type: Literal["csat"]
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=2000)] | None = None


class EndFrame(_ClientFrame):
    type: Literal["end"]


class CobrowseAnswerFrame(_ClientFrame):
    """The citizen's yes or no to the agent's co-browse request `request_id`."""

    type: Literal["cobrowse_answer"]
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    accept: bool


class CobrowseEndFrame(_ClientFrame):
    """The citizen stops sharing her page ("Beenden" on the banner)."""

    type: Literal["cobrowse_end"]


ClientFrame = Annotated[
    MessageFrame | TypingFrame | CsatFrame | EndFrame | CobrowseAnswerFrame | CobrowseEndFrame,
    Field(discriminator="type"),
]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
CLIENT_FRAME_TYPES = ("message", "typing", "csat", "end", "cobrowse_answer", "cobrowse_end")
# The first frame may be a hello, or already a client frame (then there was no hello).
OpeningFrame = Annotated[
    HelloFrame
    | MessageFrame
    | TypingFrame
    | CsatFrame
    | EndFrame
    | CobrowseAnswerFrame
    | CobrowseEndFrame,
    Field(discriminator="type"),
]
_opening_frame: TypeAdapter[OpeningFrame] = TypeAdapter(OpeningFrame)
OPENING_FRAME_TYPES = ("hello", *CLIENT_FRAME_TYPES)


def frame_text(message: Mapping[str, Any], max_bytes: int, too_large: str) -> str:
    """The text of one received websocket message, checked before any parsing.

    Binary frames are no part of the protocol; a frame over `max_bytes` raises
    `FrameTooLarge` with the sentence `too_large` (in the reader's language).
    """
    raw = message.get("text")
    if raw is None:
        raise BadFrame("Binary frames are not part of the protocol; send JSON text.")
    if len(raw.encode()) > max_bytes:
        raise FrameTooLarge(too_large)
    return str(raw)


async def first_frame_text(
    websocket: WebSocket, timeout_s: float, max_bytes: int, too_large: str
) -> str:
    """The text of a socket's first message (hello, auth), checked as `frame_text` does.

    Raises TimeoutError when none comes within `timeout_s`, WebSocketDisconnect when
    the client leaves first, and the `GatewayError`s of `frame_text`.
    """
    message = await asyncio.wait_for(websocket.receive(), timeout_s)
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return frame_text(message, max_bytes, too_large)


def parse_frame(raw: str, adapter: TypeAdapter[T], types: tuple[str, ...]) -> T:
    """Validate one frame against `adapter`, or raise `BadFrame` saying what is wrong with it."""
    try:
        data = orjson.loads(raw)
    except ValueError:
        raise BadFrame("Frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadFrame("Frame must be a JSON object.")
    frame_type = data.get("type")
    if frame_type not in types:
        raise BadFrame(f"Unknown frame type {frame_type!r}; expected one of {types}.")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or frame_type
        raise BadFrame(f"Invalid {frame_type} frame: {where}: {first['msg']}.") from None


def parse_client_frame(raw: str) -> ClientFrame:
    return parse_frame(raw, _client_frame, CLIENT_FRAME_TYPES)


def parse_opening_frame(raw: str) -> OpeningFrame:
    """The socket's first frame: a `hello`, or any client frame."""
    return parse_frame(raw, _opening_frame, OPENING_FRAME_TYPES)


def utc_now() -> str:
    """ISO 8601 UTC timestamp with milliseconds, as every durable event carries."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- server frames ------------------------------------------------------------
# Durable events are stored in the conversation log as plain dicts (see
# conversation/log.py) and sent as they are; these builders fix their shapes.


class Button(BaseModel):
    title: str
    payload: str


class Link(BaseModel):
    title: str
    url: str


def session_frame(
    conversation_id: str, token: str, state: ConversationState, seq: int
) -> dict[str, Any]:
    return {
        "type": "session",
        "conversation_id": conversation_id,
        "token": token,
        "state": state,
        "seq": seq,
    }


def ack_frame(client_id: str, seq: int) -> dict[str, Any]:
    return {"type": "ack", "client_id": client_id, "seq": seq}


def error_frame(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def message_event(
    sender: Sender,
    text: str,
    *,
    buttons: list[Button] | None = None,
    links: list[Link] | None = None,
    client_id: str | None = None,
    payload: str | None = None,
) -> dict[str, Any]:
    """A durable `message` event without `seq` (the log assigns it)."""
    event: dict[str, Any] = {"type": "message", "ts": utc_now(), "from": sender, "text": text}
    if buttons:
        event["buttons"] = [button.model_dump() for button in buttons]
    if links:
        event["links"] = [link.model_dump() for link in links]
    if client_id is not None:
        event["client_id"] = client_id
    if payload is not None:
        event["payload"] = payload
    return event
