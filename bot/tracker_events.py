"""Merging a turn's tracker into the stored one in linear time (no Rasa import: testable anywhere).

Rasa 3.6's RedisTrackerStore.save merges the stored tracker (every session)
with the turn's tracker (the last session only, as `retrieve` returns it). If
the turn's events do not replay to exactly the stored ones it falls back to
comparing each event with every stored one: O(n²) per turn. Every conversation
the gateway starts takes that path, because Rasa stores the
`session_started_metadata` slot *before* `action_session_start`, and
`retrieve` cuts it off with everything before the session's start. A turn then
cost Rasa ~4–5 ms more per earlier turn (p50 ≈ 430 ms at turns 81–100 through
the citizen socket, `make bench BENCH=conversation_length`). This merge gives
the same events in linear time.
"""

from __future__ import annotations

import json
from typing import Any

Event = dict[str, Any]


def merged_events(stored: list[Event], turn: list[Event]) -> list[Event]:
    """The stored events followed by the turn's events not stored yet.

    Common cases in one pass: the turn holds all stored events (one session)
    or a suffix of them (the last session); otherwise each event is kept once,
    compared by its serialised form as Rasa compares `as_dict()`.
    """
    if turn[: len(stored)] == stored:  # nothing stored yet, too
        return list(turn)
    if turn:
        start = _suffix_start(stored, turn)
        if start is not None:
            return stored[:start] + turn
    seen = {_identity(event) for event in stored}
    merged = list(stored)
    for event in turn:
        identity = _identity(event)
        if identity not in seen:
            seen.add(identity)
            merged.append(event)
    return merged


def _suffix_start(stored: list[Event], turn: list[Event]) -> int | None:
    """Where in `stored` the turn's events begin, if the stored ones after it are their prefix."""
    first = turn[0]
    for start in range(len(stored) - 1, -1, -1):
        if stored[start] == first:
            rest = stored[start:]
            return start if turn[: len(rest)] == rest else None
    return None


def _identity(event: Event) -> str:
    return json.dumps(event, sort_keys=True, default=str)
