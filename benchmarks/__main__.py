"""`make bench`: run every benchmark, print its figures, end with one JSON line of all of them."""

from __future__ import annotations

import json
import sys

from benchmarks import (
    capacity,
    channels,
    cobrowse,
    conversation_length,
    dialogue_latency,
    gateway_latency,
    handover_delivery,
    knowledge_latency,
    login_load,
    scale,
    turn_profile,
    widget_timing,
)

BENCHMARKS = {
    "capacity": capacity.run,
    "channels": channels.run,
    "cobrowse": cobrowse.run,
    "conversation_length": conversation_length.run,
    "dialogue_latency": dialogue_latency.run,
    "gateway_latency": gateway_latency.run,
    "handover_delivery": handover_delivery.run,
    "knowledge_latency": knowledge_latency.run,
    "login_load": login_load.run,
    "scale": scale.run,
    "turn_profile": turn_profile.run,
    "widget_timing": widget_timing.run,
}


def main(names: list[str]) -> int:
    chosen = names or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"Unknown benchmark {unknown}; choose from {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    figures = {}
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        figures[name] = BENCHMARKS[name]()
    print(json.dumps(figures, default=lambda value: round(value, 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
