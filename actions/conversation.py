"""What the actions read from a conversation's tracker: language and the citizen's words."""

from __future__ import annotations

from rasa_sdk import Tracker

from knowledge_index.expansion import looks_english

SUMMARY_CHARS = 140


def is_english(tracker: Tracker) -> bool:
    """English when the widget says so, or when the citizen writes English."""
    metadata = tracker.latest_message.get("metadata") or {}
    if metadata.get("language") == "en":
        return True
    return looks_english(last_citizen_text(tracker))


def last_citizen_text(tracker: Tracker) -> str:
    """The latest message the citizen typed (button payloads are not words)."""
    for event in reversed(tracker.events):
        text = str(event.get("text") or "") if event.get("event") == "user" else ""
        if text and not text.startswith("/"):
            return text
    return ""


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """A single line of at most `limit` characters, for an agent's queue view."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + " …"
