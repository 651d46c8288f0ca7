"""Bot turn latency against the length of the conversation, through the citizen socket.

One citizen, one conversation of 100 intent-only turns, one after the other
(no think time: the figures are the work of a turn). Rasa replays and stores
the whole tracker every turn, so some growth per turn is Rasa's design; Rasa
3.6's own tracker merge made it quadratic (p50 ≈ 430 ms at turns 81–100), which
bot/tracker_events.py removes. Printed: p50 and p95 per block of 20 turns,
and the growth between the first and the last block.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from tests.citizen_client import CitizenClient

TURNS = 100
BLOCK = 20
MESSAGES = ["Hallo", "Bist du ein Bot?", "Danke", "Tschüss"]


async def measure(ws_url: str) -> list[float]:
    await CitizenClient.converse(ws_url, MESSAGES)  # warm-up
    citizen = await CitizenClient.open(ws_url)
    times = []
    for turn in range(TURNS):
        started = time.perf_counter()
        await citizen.answer(MESSAGES[turn % len(MESSAGES)])
        times.append((time.perf_counter() - started) * 1000)
    await citizen.close()
    return times


def run() -> dict[str, float]:
    with running_assistant("bench-length-") as assistant:
        assert assistant.gateway is not None
        times = asyncio.run(measure(f"ws://127.0.0.1:{assistant.gateway.port}/ws/chat"))
    figures: dict[str, float] = {}
    print(f"Bot turn latency by position in one conversation of {TURNS} turns (citizen socket)")
    print(f"  {'turns':16}{'p50':>10}{'p95':>10}")
    for start in range(0, TURNS, BLOCK):
        block = times[start : start + BLOCK]
        label = f"{start + 1}–{start + BLOCK}"
        figures[f"turns_{start + 1}_{start + BLOCK}_p50_ms"] = statistics.median(block)
        figures[f"turns_{start + 1}_{start + BLOCK}_p95_ms"] = percentile(block, 95)
        print(f"  {label:16}{statistics.median(block):>8.1f}ms{percentile(block, 95):>8.1f}ms")
    first, last = times[:BLOCK], times[-BLOCK:]
    figures["growth_p50_ms"] = statistics.median(last) - statistics.median(first)
    print(f"  growth of p50 from the first to the last {BLOCK} turns: "
          f"{figures['growth_p50_ms']:.1f} ms")  # fmt: skip
    return figures


if __name__ == "__main__":
    run()
