"""Durable events as a messenger shows them: text, choices and links.

The web widget draws `state` and `csat_request` events as UI; a messenger has only
messages, so each becomes a sentence in the citizen's language. Buttons become
choices the channel can offer natively (inline keyboards, quick replies) or, where it
cannot, a numbered list the citizen answers with a digit (`choice_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handover.conversation.citizen_texts import citizen_text

# The start of the conversation id in a choice's id: a choice of an earlier conversation's
# message is told apart from the current one's (ids stay far below every channel's limit,
# Telegram's 64 bytes of callback data the smallest).
CONVERSATION_TAG = 12
CSAT_SCORES = (1, 2, 3, 4, 5)
# The payload a CSAT choice carries; read back by the channel inbox.
CSAT_PAYLOAD = "csat:{score}"


@dataclass(frozen=True, slots=True)
class Choice:
    title: str
    payload: str
    index: int  # its place among the event's buttons (channels name it in callbacks)


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """An event as text with optional choices and links; empty text: nothing to send."""

    text: str
    choices: list[Choice] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def as_plain_text(self, language: str) -> str:
        """For channels without buttons: numbered choices and links written out."""
        parts = [self.text] if self.text else []
        if self.choices:
            parts.append("\n".join(f"{i}. {c.title}" for i, c in enumerate(self.choices, 1)))
            parts.append(citizen_text("choose_by_number", language))
        parts.extend(f"{link.title}: {link.url}" for link in self.links)
        return "\n\n".join(parts)


def render(event: dict[str, Any], language: str) -> Rendered:
    """What the citizen is to see of a durable event on a messenger."""
    kind = event.get("type")
    if kind == "message":
        text = str(event.get("text") or "")
        agent = (event.get("agent") or {}).get("name")
        if event.get("from") == "agent" and agent:
            text = f"{agent}: {text}"
        choices = [
            Choice(str(b.get("title", "")), str(b.get("payload", "")), i)
            for i, b in enumerate(event.get("buttons") or [])
        ]
        links = [
            Link(str(link.get("title", "")), str(link["url"]))
            for link in event.get("links") or []
            if str(link.get("url", "")).startswith(("https://", "http://"))
        ]
        return Rendered(text, choices, links)
    if kind == "csat_request":
        choices = [
            Choice(str(score), CSAT_PAYLOAD.format(score=score), score - 1) for score in CSAT_SCORES
        ]
        return Rendered(citizen_text("csat_request", language), choices)
    if kind == "state":
        return Rendered(_state_text(event, language))
    return Rendered("")


def _state_text(event: dict[str, Any], language: str) -> str:
    state, reason = event.get("state"), event.get("reason")
    if state == "queued":
        if reason == "position":
            return ""  # the widget updates its line; a messenger would be flooded
        minutes = max(1, round(int(event.get("eta_s") or 60) / 60))
        return citizen_text("queued", language, position=str(event.get("position", 1)),
                            minutes=str(minutes))  # fmt: skip
    if state == "with_agent":
        name = (event.get("agent") or {}).get("name") or "Jemand"
        return citizen_text("with_agent", language, agent=str(name))
    if state == "bot":
        return citizen_text("back_to_bot", language)
    if state == "closed":
        return citizen_text("closed", language)
    return ""


def choice_for(text: str, choices: list[Choice]) -> Choice | None:
    """The choice a citizen named by its number (\"2\") or its title, if any."""
    answer = text.strip().rstrip(".").casefold()
    if answer.isdigit() and 1 <= int(answer) <= len(choices):
        return choices[int(answer) - 1]
    return next((c for c in choices if c.title.casefold() == answer), None)


def choice_id(conversation_id: str, seq: int, index: int) -> str:
    """What a channel sends back when the citizen takes a choice: `<conversation>:<seq>:<index>`."""
    return f"{conversation_id[:CONVERSATION_TAG]}:{seq}:{index}"


def read_choice_id(value: str) -> tuple[str, int, int]:
    """The parts of a `choice_id`; ValueError for anything else (a forged or foreign id)."""
    parts = value.split(":")
    if len(parts) != 3 or not (parts[0].isalnum() and parts[1].isdigit() and parts[2].isdigit()):
        raise ValueError("an id that names no choice")
    return parts[0], int(parts[1]), int(parts[2])


def fit(text: str, limit: int) -> str:
    """`text` cut to a channel's limit, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def with_links(rendered: Rendered) -> str:
    """The text with its links written out, for channels with buttons but no link buttons."""
    return Rendered(rendered.text, [], rendered.links).as_plain_text("de")
