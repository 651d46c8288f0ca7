"""What the actions read from a conversation's tracker: language and the citizen's words."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from knowledge_index.expansion import looks_english

SUMMARY_CHARS = 140
FEEDBACK_BUTTONS = [{"title": "Ja", "payload": "/affirm"}, {"title": "Nein", "payload": "/deny"}]
FEEDBACK_BUTTONS_EN = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]


def is_english(tracker: Tracker) -> bool:
    """English when the widget says so, or when the citizen writes English."""
    metadata = tracker.latest_message.get("metadata") or {}
    if metadata.get("language") == "en":
        return True
    return looks_english(last_citizen_text(tracker))


def citizen_texts(tracker: Tracker) -> list[str]:
    """What the citizen typed, in order (button payloads are not words)."""
    texts = (str(e.get("text") or "") for e in tracker.events if e.get("event") == "user")
    return [text for text in texts if text and not text.startswith("/")]


def last_citizen_text(tracker: Tracker) -> str:
    """The latest message the citizen typed; after a button click, the one before it."""
    texts = citizen_texts(tracker)
    return texts[-1] if texts else ""


def ask_feedback(dispatcher: CollectingDispatcher, english: bool) -> None:
    """ "Hat Ihnen das geholfen?" with ja/nein buttons; the answer is stored with the turn."""
    dispatcher.utter_message(
        text="Did that help you?" if english else "Hat Ihnen das geholfen?",
        buttons=FEEDBACK_BUTTONS_EN if english else FEEDBACK_BUTTONS,
    )


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """A single line of at most `limit` characters, for an agent's queue view."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + " …"
