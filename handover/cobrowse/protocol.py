"""The co-browse sockets' frames (docs/protocol.md, "Co-browsing").

Small frames are pydantic models as on the other sockets. The page's `events` frame is
large (a full snapshot of a page) and nested; it is read with orjson and checked only
for its outer shape here, the events themselves by redaction.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from handover.agents.protocol import MAX_TOKEN_CHARS, ConversationId
from handover.conversation.protocol import parse_frame
from handover.errors import BadFrame

# rrweb batches a page's changes; a frame with more events than this is not a page's.
MAX_EVENTS_PER_FRAME = 2000


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CitizenHello(_Frame):
    """The citizen page's first frame: its conversation token (never in the URL)."""

    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]


class AgentHello(_Frame):
    """The console's first frame: the agent's token and the conversation to watch."""

    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]
    conversation_id: ConversationId


class PointerGuide(_Frame):
    """Point at a place of the page (document coordinates, CSS pixels)."""

    type: Literal["guide"]
    kind: Literal["pointer"]
    x: Annotated[float, Field(ge=0, le=100_000)]
    y: Annotated[float, Field(ge=0, le=1_000_000)]


class HighlightGuide(_Frame):
    """Highlight one element, named by its rrweb node id."""

    type: Literal["guide"]
    kind: Literal["highlight"]
    node: Annotated[int, Field(strict=True, ge=1, le=10_000_000)]


class ClearGuide(_Frame):
    type: Literal["guide"]
    kind: Literal["clear"]


class SnapshotWanted(_Frame):
    """The console lost track (it fell behind): the page sends a full snapshot."""

    type: Literal["snapshot"]


Guide = Annotated[PointerGuide | HighlightGuide | ClearGuide, Field(discriminator="kind")]
AgentFrame = Annotated[Guide | SnapshotWanted, Field(discriminator="type")]
_agent_frame: TypeAdapter[AgentFrame] = TypeAdapter(AgentFrame)
_citizen_hello: TypeAdapter[CitizenHello] = TypeAdapter(CitizenHello)
_agent_hello: TypeAdapter[AgentHello] = TypeAdapter(AgentHello)


def parse_citizen_hello(raw: str) -> CitizenHello:
    return parse_frame(raw, _citizen_hello, ("hello",))


def parse_agent_hello(raw: str) -> AgentHello:
    return parse_frame(raw, _agent_hello, ("auth",))


def parse_agent_frame(raw: str) -> AgentFrame:
    return parse_frame(raw, _agent_frame, ("guide", "snapshot"))


def parse_events(raw: str) -> list[Any]:
    """The events of a page's `events` frame; `BadFrame` for anything else."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadFrame("Frame is not valid JSON.") from None
    if not isinstance(frame, dict) or frame.get("type") != "events":
        raise BadFrame("Expected an `events` frame.")
    events = frame.get("events")
    if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_FRAME:
        raise BadFrame(f"`events` must be a list of at most {MAX_EVENTS_PER_FRAME} events.")
    return events
