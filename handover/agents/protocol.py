"""The agent socket's client frames (DESIGN.md, "Agent API"), one model per frame.

The first frame is `auth` and nothing else; every later frame is one of `AgentFrame`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from handover.conversation.protocol import parse_frame

# A signed token is ~100 characters; anything much longer is not one of ours.
MAX_TOKEN_CHARS = 512

ConversationId = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class AuthFrame(BaseModel):
    """The socket's first frame: the token of `POST /api/agent/login`, never in the URL."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]


_auth_frame: TypeAdapter[AuthFrame] = TypeAdapter(AuthFrame)


def parse_auth_frame(raw: str) -> AuthFrame:
    """The `auth` frame, or `BadFrame` for anything else (the socket then closes 4401)."""
    return parse_frame(raw, _auth_frame, ("auth",))


class _AgentFrame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    conversation_id: ConversationId


class AcceptFrame(_AgentFrame):
    type: Literal["accept"]


class AgentMessageFrame(_AgentFrame):
    type: Literal["message"]
    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    text: Text


class AgentTypingFrame(_AgentFrame):
    type: Literal["typing"]
    active: bool


class NoteFrame(_AgentFrame):
    type: Literal["note"]
    text: Text


class TransferFrame(_AgentFrame):
    type: Literal["transfer"]
    queue: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]


class HandbackFrame(_AgentFrame):
    type: Literal["handback"]


class CloseFrame(_AgentFrame):
    type: Literal["close"]


class TemplateFrame(_AgentFrame):
    """Send the configured template message (WhatsApp, outside its 24-hour window)."""

    type: Literal["template"]
    client_id: Annotated[str, Field(min_length=1, max_length=64)]


class CobrowseRequestFrame(_AgentFrame):
    """Ask the citizen to share her page (`view`), then to let the agent point (`pointer`)."""

    type: Literal["cobrowse_request"]
    step: Literal["view", "pointer"]


class CobrowseEndFrame(_AgentFrame):
    type: Literal["cobrowse_end"]


class CobrowseLinkFrame(_AgentFrame):
    """Offer the citizen a page of the portal (a path of its origin) to open."""

    type: Literal["cobrowse_link"]
    path: Annotated[str, Field(pattern=r"^/([^/\\\s][^\s]{0,510})?$")]


AgentFrame = Annotated[
    AcceptFrame
    | AgentMessageFrame
    | AgentTypingFrame
    | NoteFrame
    | TemplateFrame
    | TransferFrame
    | HandbackFrame
    | CloseFrame
    | CobrowseRequestFrame
    | CobrowseEndFrame
    | CobrowseLinkFrame,
    Field(discriminator="type"),
]
_agent_frame: TypeAdapter[AgentFrame] = TypeAdapter(AgentFrame)
AGENT_FRAME_TYPES = (
    "accept", "message", "typing", "note", "template", "transfer", "handback", "close",
    "cobrowse_request", "cobrowse_end", "cobrowse_link",
)  # fmt: skip


def parse_agent_frame(raw: str) -> AgentFrame:
    return parse_frame(raw, _agent_frame, AGENT_FRAME_TYPES)


def conversation_named_in(raw: str) -> str | None:
    """The `conversation_id` a frame names, even one that is otherwise invalid.

    Lets an error about a refused frame say which conversation it concerns.
    """
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    named = frame.get("conversation_id") if isinstance(frame, dict) else None
    return named if isinstance(named, str) and 0 < len(named) <= 64 else None
