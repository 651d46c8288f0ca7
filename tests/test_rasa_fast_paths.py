"""Our replacements for Rasa's tracker merge and two hot paths give Rasa's own results.

The comparison runs with the bot's Python, where Rasa is (tests/in_bot_venv/rasa_equivalence.py).
"""

from __future__ import annotations

import os
import subprocess

from bot.tracker_events import merged_events
from tests.services import BOT_VENV, ROOT


def test_the_merge_and_the_fast_paths_give_what_rasa_gives() -> None:
    done = subprocess.run(
        [str(BOT_VENV / "bin" / "python"), "tests/in_bot_venv/rasa_equivalence.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_the_stores_a_turn_awaits_behave_as_rasas_and_connections_are_kept(
    redis_url: str,
) -> None:
    done = subprocess.run(
        [str(BOT_VENV / "bin" / "python"), "tests/in_bot_venv/turn_stores.py", redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        done.stdout[-2000:] + done.stderr[-3000:]
    )


def _event(n: int, kind: str = "action") -> dict[str, object]:
    return {"event": kind, "timestamp": float(n), "name": f"e{n}"}


def test_a_turn_of_the_last_session_keeps_what_came_before_it() -> None:
    stored = [_event(0, "slot"), _event(1), _event(2)]
    assert merged_events(stored, [_event(1), _event(2), _event(3)]) == [*stored, _event(3)]


def test_a_turn_holding_the_whole_history_replaces_it() -> None:
    stored = [_event(0), _event(1)]
    assert merged_events(stored, [*stored, _event(2)]) == [*stored, _event(2)]
    assert merged_events([], [_event(5)]) == [_event(5)]


def test_unaligned_events_are_kept_once_each_in_stored_order() -> None:
    stored = [_event(0), _event(1), _event(2)]
    turn = [_event(0), _event(2), _event(3), _event(3)]
    assert merged_events(stored, turn) == [*stored, _event(3)]
    assert merged_events(stored, []) == stored
