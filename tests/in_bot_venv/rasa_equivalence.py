"""Run with the bot's Python (Rasa 3.6): our replacements give what Rasa's own code gives.

tests/test_rasa_fast_paths.py runs this; it exits non-zero with the first difference.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import (
    DialogueStateTracker,
    get_trackers_for_conversation_sessions,
)
from rasa.shared.utils.common import all_subclasses

from bot import rasa_fast_paths
from bot.tracker_events import merged_events

clock = iter(range(1_000_000, 2_000_000))


def session(metadata: dict[str, Any] | None = None) -> list[Event]:
    """Rasa's session start as the gateway's first message makes it (metadata slot first)."""
    events: list[Event] = []
    if metadata:
        events.append(SlotSet("session_started_metadata", metadata, timestamp=next(clock)))
    events += [ActionExecuted("action_session_start", timestamp=next(clock)),
               SessionStarted(timestamp=next(clock))]  # fmt: skip
    if metadata:
        events.append(SlotSet("session_started_metadata", metadata, timestamp=next(clock)))
    return [*events, ActionExecuted("action_listen", timestamp=next(clock))]


def turn(text: str) -> list[Event]:
    return [
        UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=next(clock)),
        ActionExecuted("action_small_talk", policy="RulePolicy", confidence=1.0,
                       timestamp=next(clock)),
        BotUttered(f"Antwort auf {text}", {"buttons": None}, timestamp=next(clock)),
        ActionExecuted("action_listen", timestamp=next(clock)),
    ]  # fmt: skip


def tracker(events: list[Event]) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("c", copy.deepcopy(events))


def stored_dicts(events: list[Event]) -> list[dict[str, Any]]:
    return json.loads(json.dumps([event.as_dict() for event in events]))


def check_merge(name: str, prior: list[Event], current: DialogueStateTracker) -> None:
    rasa = RedisTrackerStore._merge_trackers(tracker(prior), current)
    ours = merged_events(stored_dicts(prior), [event.as_dict() for event in current.events])
    expected = stored_dicts(list(rasa.events))
    if ours != expected:
        sys.exit(f"merge {name}: {len(ours)} events, Rasa {len(expected)}")


def merges() -> None:
    meta = {"channel": "web", "language": "de"}
    first = session(meta) + turn("Hallo") + turn("Danke")
    # As `retrieve` returns it: the last session only, the leading slot cut off.
    last = get_trackers_for_conversation_sessions(tracker(first))[-1]
    last.update_with_events(turn("Noch eine Frage"), None)
    check_merge("last session of one (metadata slot first)", first, last)

    whole = tracker(first)
    whole.update_with_events(turn("Tschüss"), None)
    check_merge("whole tracker plus a turn", first, whole)

    two = first + session(meta) + turn("Wieder da")
    last_of_two = get_trackers_for_conversation_sessions(tracker(two))[-1]
    last_of_two.update_with_events(turn("Und weiter"), None)
    check_merge("last of two sessions", two, last_of_two)

    check_merge("a new tracker for a stored one", first, tracker(session() + turn("Neu")))
    check_merge("nothing stored yet", [], tracker(session(meta) + turn("Hallo")))
    gap = tracker(first[:3] + first[5:] + turn("Lücke"))
    check_merge("a tracker missing stored events", first, gap)


def resolutions() -> dict[str, Any]:
    names = [*sorted({cls.type_name for cls in all_subclasses(Event)}), "topic"]
    found: dict[str, Any] = {name: Event.resolve_by_type(name) for name in names}
    found["<unknown, default>"] = Event.resolve_by_type("no-such-event", SlotSet)
    try:
        Event.resolve_by_type("no-such-event")
    except ValueError as error:
        found["<unknown>"] = str(error)
    return found


RESPONSES: list[Any] = [
    {"events": [{"event": "slot", "name": "topic", "value": "x"}], "responses": [{"text": "a"}]},
    {"events": [], "responses": []},
    {"events": [{"event": 3}], "responses": []},
    {"events": "none", "responses": []},
    {"events": [{"name": "x"}], "responses": [{"text": 1}]},
    [],
]


def validations() -> list[str]:
    action = RemoteAction("action_x", None)
    results = []
    for response in RESPONSES:
        try:
            results.append(str(action._validate_action_result(copy.deepcopy(response))))
        except ValidationError as error:
            results.append(f"{error.message} @ {list(error.absolute_path)}")
    return results


def main() -> None:
    merges()
    before = (resolutions(), validations())
    rasa_fast_paths.install()
    rasa_fast_paths.install()  # twice: no second layer
    after = (resolutions(), validations())
    # Cached: asked again, the same answers.
    again = (resolutions(), validations())
    for label, got in (("installed", after), ("cached", again)):
        if got != before:
            sys.exit(f"fast paths ({label}) differ from Rasa's:\n{got}\n{before}")
    print("ok")


if __name__ == "__main__":
    main()
