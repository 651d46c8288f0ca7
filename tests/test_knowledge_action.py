"""The knowledge action when no index has been built (before `make knowledge`, or a broken one).

The action still runs for every service question and every out-of-scope request; without an
index it must decline what it would decline anyway and count only real misses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import catalogue, knowledge


def without_index(monkeypatch: pytest.MonkeyPatch, text: str, intent: str) -> tuple[list, list]:
    monkeypatch.setattr(catalogue, "INDEX", None)
    message = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    tracker = Tracker("c1", {}, message, [{"event": "user", **message}], False, None, {}, None)
    dispatcher = CollectingDispatcher()
    action = knowledge.ActionAnswerFromKnowledge()
    events: list[dict[str, Any]] = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def knowledge_miss(events: list[dict[str, Any]]) -> Any:
    return next(e["value"] for e in events if e.get("name") == "knowledge_miss")


def test_an_out_of_scope_request_is_declined_and_no_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    messages, events = without_index(monkeypatch, "Wie wird das Wetter morgen?", "out_of_scope")
    assert [m["response"] for m in messages] == ["utter_out_of_scope"]
    assert knowledge_miss(events) is False


def test_a_service_question_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    messages, events = without_index(monkeypatch, "Was kostet ein Reisepass?", "ask_question")
    assert messages[0]["text"] == knowledge.no_answer_text(english=False)
    assert knowledge_miss(events) is True
