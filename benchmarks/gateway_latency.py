"""The gateway's added latency per bot turn (issue: walking skeleton).

40 concurrent conversations (BENCH_CONVERSATIONS) each send the same sequence of short German
messages, once through the gateway's citizen socket and once straight to
Rasa's gateway channel with the gateway's JWT (the "rest" side: Rasa alone; the
stock REST channel is off since issue 12), against the same Rasa server. Rounds alternate
(REST, gateway, REST, gateway, ...) so drift on the shared 2-core machine hits
both sides alike. A turn is timed from sending the message to receiving the
bot's reply. The gateway side pays for its real work: JSON validation, three
Redis writes (citizen event, parse data, bot event) and the socket frames.

Like people, each conversation waits 0.5–1.5 s (seeded, the same on both
sides) before its next message: about 39 turns/s in all, half the bot's capacity at
p95 ≤ 200 ms (80 turns/s since issue 16's changes, `make bench BENCH=capacity`). Above
capacity (50 conversations before those changes, when capacity was 30 turns/s) the
figure is queueing noise; at 55 conversations (≈ 67 % of capacity) the gateway's CPU
competes with Rasa's on two cores and shows in the tail (docs/benchmarks.md).
12 rounds (BENCH_ROUNDS) give ~3,800 turns per side. Without pauses
(`BENCH_SATURATED=1`) Rasa always has a queue; latency is then queueing time
and any CPU the gateway takes on this shared 2-core machine shows up
multiplied by the queue length, which measures Rasa's throughput, not the
gateway's latency.

Target: the gateway adds at most 5 ms at p95.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid

import httpx
from websockets.asyncio.client import connect

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from tests.services import rasa_headers

CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "40"))
TURNS = 8
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "12"))
MESSAGES = ["Hallo", "Bist du ein Bot?", "Danke", "Wie wird das Wetter morgen?", "Tschüss"]


def pauses(conversation: int, paced: bool) -> list[float]:
    """Think times before each turn; the same for a conversation on both sides."""
    if not paced:
        return [0.0] * TURNS
    rng = random.Random(conversation)
    return [rng.uniform(0.5, 1.5) for _ in range(TURNS)]


async def rest_conversation(
    client: httpx.AsyncClient, rasa_url: str, think: list[float]
) -> list[float]:
    sender = uuid.uuid4().hex
    timings = []
    for turn in range(TURNS):
        await asyncio.sleep(think[turn])
        started = time.perf_counter()
        response = await client.post(
            f"{rasa_url}/webhooks/gateway/webhook",
            json={"sender": sender, "message": MESSAGES[turn % len(MESSAGES)]},
            headers=rasa_headers(),
        )
        response.raise_for_status()
        assert response.json()["messages"], "Rasa sent no reply"
        timings.append(time.perf_counter() - started)
    return timings


async def socket_conversation(ws_url: str, think: list[float]) -> list[float]:
    timings = []
    async with connect(ws_url) as socket:
        await socket.send(json.dumps({"type": "hello"}))
        assert json.loads(await socket.recv())["type"] == "session"
        for turn in range(TURNS):
            await asyncio.sleep(think[turn])
            frame = {"type": "message", "client_id": uuid.uuid4().hex}
            frame["text"] = MESSAGES[turn % len(MESSAGES)]
            started = time.perf_counter()
            await socket.send(json.dumps(frame))
            while True:
                event = json.loads(await socket.recv())
                if event["type"] == "error":
                    raise RuntimeError(f"gateway error: {event}")
                if event["type"] == "message" and event["from"] == "bot":
                    break
            timings.append(time.perf_counter() - started)
    return timings


async def measure(rasa_url: str, ws_url: str, paced: bool) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"rest": [], "gateway": []}
    limits = httpx.Limits(max_connections=CONVERSATIONS)
    think = [pauses(n, paced) for n in range(CONVERSATIONS)]
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        # Warm-up: first turns load lazily initialised parts of Rasa.
        no_pause = pauses(0, paced=False)
        await asyncio.gather(*(rest_conversation(client, rasa_url, no_pause) for _ in range(5)))
        await asyncio.gather(*(socket_conversation(ws_url, no_pause) for _ in range(5)))
        for _ in range(ROUNDS):
            for side in ("rest", "gateway"):
                runs = (
                    [rest_conversation(client, rasa_url, t) for t in think]
                    if side == "rest"
                    else [socket_conversation(ws_url, t) for t in think]
                )
                for timings in await asyncio.gather(*runs):
                    results[side].extend(timings)
    return results


def report(results: dict[str, list[float]]) -> dict[str, float]:
    rest, gateway = results["rest"], results["gateway"]
    figures = {
        "turns_per_side": len(rest),
        "rest_p50_ms": percentile(rest, 50) * 1000,
        "rest_p95_ms": percentile(rest, 95) * 1000,
        "gateway_p50_ms": percentile(gateway, 50) * 1000,
        "gateway_p95_ms": percentile(gateway, 95) * 1000,
        "rest_mean_ms": statistics.fmean(rest) * 1000,
        "gateway_mean_ms": statistics.fmean(gateway) * 1000,
    }
    figures["added_p50_ms"] = figures["gateway_p50_ms"] - figures["rest_p50_ms"]
    figures["added_p95_ms"] = figures["gateway_p95_ms"] - figures["rest_p95_ms"]
    return figures


def run() -> dict[str, float]:
    with running_assistant("bench-gateway-") as assistant:
        assert assistant.gateway is not None
        ws_url = f"ws://127.0.0.1:{assistant.gateway.port}/ws/chat"
        shapes = {
            shape: report(asyncio.run(measure(assistant.rasa.url, ws_url, paced=shape == "paced")))
            for shape in (("saturated",) if os.environ.get("BENCH_SATURATED") else ("paced",))
        }
    for shape, figures in shapes.items():
        print(f"Gateway latency per bot turn, {CONVERSATIONS} concurrent conversations, {shape}")
        print(f"  {'':24}{'p50':>10}{'p95':>10}{'mean':>10}")
        for side, label in (("rest", "Rasa directly"), ("gateway", "through the gateway")):
            print(
                f"  {label:24}{figures[side + '_p50_ms']:>8.1f}ms"
                f"{figures[side + '_p95_ms']:>8.1f}ms{figures[side + '_mean_ms']:>8.1f}ms"
            )
        print(
            f"  {'added by the gateway':24}{figures['added_p50_ms']:>8.1f}ms"
            f"{figures['added_p95_ms']:>8.1f}ms   ({figures['turns_per_side']} turns per side)"
        )
    print("  target: added p95 ≤ 5 ms")
    return {f"{shape}_{key}": value for shape, f in shapes.items() for key, value in f.items()}


if __name__ == "__main__":
    run()
