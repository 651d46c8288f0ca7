"""Bot turn capacity: offered turns per second against p95, through the citizen socket.

Issue 16. One Rasa and one action server behind the gateway. Citizens arrive
as a Poisson stream; each has one short conversation of a realistic kind,
in turn: small talk (intent-only turns), a knowledge question with
follow-ups, or the PV advisor's form. A citizen waits for the bot's reply,
thinks 0.5–1.5 s (seeded), and sends the next message. The offered load is
raised step by step (BENCH_CAPACITY_RATES, turns/s) for STEP_S each; a step
counts the turns begun after its first WARM_S. The capacity is the highest
offered load whose p95 stays within TARGET_P95_MS; the ladder stops at the
first step beyond it.

Before the ladder, the saturated throughput: SATURATED_CONVERSATIONS citizens
each send the mix back to back (no thinking time, a new conversation after each
script) for SATURATED_S; its turns per second are the issue's first target.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from benchmarks.assistant import running_assistant
from benchmarks.latency import percentile
from knowledge_index.sources import load_articles
from tests.citizen_client import CitizenClient

TARGET_P95_MS = 200.0
STEP_S = float(os.environ.get("BENCH_CAPACITY_STEP_S", "30"))
WARM_S = 5.0
RATES = [
    float(r)
    for r in os.environ.get("BENCH_CAPACITY_RATES", "10,20,30,40,50,60,70,80,90").split(",")
]
ARTICLES = Path(__file__).resolve().parent.parent / "data" / "knowledge"
# (kind of each turn, message); one conversation per citizen, the kinds in turn.
SMALL_TALK = [("intent", "Hallo"), ("intent", "Bist du ein Bot?"), ("intent", "Danke"),
              ("intent", "Tschüss")]  # fmt: skip
PV_FORM = [("form", "Brauche ich eine Genehmigung für eine Solaranlage?"), ("form", "Auf dem Dach"),
           ("form", "Einfamilienhaus"), ("form", "Nein"), ("form", "8 kWp")]  # fmt: skip


@cache
def openers() -> list[str]:
    """A concern per keyword of the default knowledge base's articles, shuffled (seeded).

    Each knowledge conversation opens with a new one, as citizens' do: the action server
    remembers its last few queries, and one question asked over and over would measure
    that memory instead of a search.
    """
    keywords = [k for d in load_articles(ARTICLES).documents for k in d.keywords]
    random.Random(16).shuffle(keywords)
    return [f"{keyword}: was muss ich tun?" for keyword in keywords]


def knowledge(n: int) -> list[tuple[str, str]]:
    opener = openers()[n % len(openers())]
    return [("knowledge", opener), ("knowledge", "Was kostet das?"),
            ("knowledge", "Welche Unterlagen brauche ich dafür?"), ("intent", "Danke")]  # fmt: skip


def script(n: int) -> list[tuple[str, str]]:
    """Citizen n's conversation: small talk, a knowledge question, the form, in turn."""
    kind = n % 3
    return SMALL_TALK if kind == 0 else knowledge(n // 3) if kind == 1 else PV_FORM


TURNS_PER_CITIZEN = statistics.fmean(len(script(n)) for n in range(3))
SATURATED_CONVERSATIONS = int(os.environ.get("BENCH_SATURATED_CONVERSATIONS", "20"))
SATURATED_S = float(os.environ.get("BENCH_SATURATED_S", "30"))
THINK_S = (0.5, 1.5)


@dataclass
class Step:
    rate: float
    turns: list[tuple[str, float]] = field(default_factory=list)  # (kind, seconds)
    errors: int = 0

    def p(self, q: float, kind: str | None = None) -> float:
        values = [s for k, s in self.turns if kind in (None, k)]
        return percentile(values, q) * 1000 if values else float("nan")


async def citizen(
    ws_url: str,
    script: list[tuple[str, str]],
    rng: random.Random,
    step: Step,
    window: tuple[float, float],
    think_s: tuple[float, float] = THINK_S,
) -> None:
    """One conversation; its turns begun inside `window` count for `step`."""
    failures = (OSError, TimeoutError, AssertionError, RuntimeError)
    try:
        client = await CitizenClient.open(ws_url)
    except failures:
        step.errors += 1
        return
    try:
        for kind, text in script:
            began = time.perf_counter()
            await client.answer(text, timeout=60)
            if window[0] <= began < window[1]:
                step.turns.append((kind, time.perf_counter() - began))
            await asyncio.sleep(rng.uniform(*think_s))
    except failures:
        step.errors += 1
    finally:
        await client.close()


async def offer(ws_url: str, rate: float, seed: int) -> Step:
    """Citizens arrive at rate / TURNS_PER_CITIZEN a second for STEP_S; all are waited for."""
    step = Step(rate)
    rng = random.Random(seed)
    started = time.perf_counter()
    # Turns begun after the arrivals stop meet a falling load: they do not count.
    window = (started + WARM_S, started + STEP_S)
    arrivals = rate / TURNS_PER_CITIZEN
    citizens: list[asyncio.Task[None]] = []
    n = 0
    while time.perf_counter() - started < STEP_S:
        citizens.append(asyncio.create_task(
            citizen(ws_url, script(n), random.Random(rng.random()), step, window)
        ))  # fmt: skip
        n += 1
        await asyncio.sleep(rng.expovariate(arrivals))
    await asyncio.gather(*citizens)
    return step


Script = Callable[[int], list[tuple[str, str]]]


async def back_to_back(
    ws_url: str, scripts: Script, conversations: int, seconds: float, warm_s: float = 0.0
) -> Step:
    """`conversations` citizens, each one conversation after another without pauses, for
    `seconds`; citizen n says `scripts(n)`. Turns begun in the first `warm_s` do not count."""
    step = Step(0)
    started = time.perf_counter()
    window = (started + warm_s, started + seconds)
    citizens = itertools.count()

    async def one_after_another() -> None:
        while time.perf_counter() < window[1]:
            n = next(citizens)
            await citizen(ws_url, scripts(n), random.Random(n), step, window, think_s=(0.0, 0.0))

    await asyncio.gather(*(one_after_another() for _ in range(conversations)))
    return step


def report_saturated(step: Step) -> dict[str, float]:
    done = len(step.turns) / (SATURATED_S - WARM_S)
    kinds = ("intent", "knowledge", "form")
    print(f"Saturated: {SATURATED_CONVERSATIONS} conversations back to back for "
          f"{SATURATED_S:.0f} s: {done:.1f} turns/s, p50 {step.p(50):.1f} ms, "
          f"p95 {step.p(95):.1f} ms ("
          + ", ".join(f"{k} p50 {step.p(50, k):.1f} ms" for k in kinds)
          + f"), errors {step.errors}")  # fmt: skip
    return {"saturated_turns_per_s": done, "saturated_p50_ms": step.p(50),
            "saturated_p95_ms": step.p(95)}  # fmt: skip


def report(steps: list[Step]) -> dict[str, float]:
    print(f"Bot turn capacity through the citizen socket (one Rasa, one action server), "
          f"{STEP_S:.0f} s per step, target p95 ≤ {TARGET_P95_MS:.0f} ms")  # fmt: skip
    header = f"  {'offered/s':>10}{'done/s':>9}{'p50':>9}{'p95':>9}"
    kinds = ("intent", "knowledge", "form")
    print(header + "".join(f"{k + ' p95':>16}" for k in kinds) + "  errors")
    figures: dict[str, float] = {}
    capacity = 0.0
    for step in steps:
        done = len(step.turns) / (STEP_S - WARM_S)
        per_kind = "".join(f"{step.p(95, k):>14.1f}ms" for k in kinds)
        print(f"  {step.rate:>10.0f}{done:>9.1f}{step.p(50):>7.1f}ms{step.p(95):>7.1f}ms{per_kind}"
              f"  {step.errors}")  # fmt: skip
        key = f"at_{step.rate:g}"
        figures[f"{key}_p50_ms"] = step.p(50)
        figures[f"{key}_p95_ms"] = step.p(95)
        figures[f"{key}_done_per_s"] = done
        if step.p(95) <= TARGET_P95_MS and not step.errors:
            capacity = step.rate
    figures["capacity_turns_per_s"] = capacity
    print(f"  capacity (highest offered load with p95 ≤ {TARGET_P95_MS:.0f} ms): "
          f"{capacity:g} turns/s; 70 % of it: {0.7 * capacity:.1f} turns/s")  # fmt: skip
    return figures


async def ladder(ws_url: str) -> tuple[Step, list[Step]]:
    warm_up = Step(0)
    await asyncio.gather(*(citizen(ws_url, script(n), random.Random(0), warm_up, (0.0, 0.0))
                           for n in range(3)))  # fmt: skip
    saturated = await back_to_back(ws_url, script, SATURATED_CONVERSATIONS, SATURATED_S, WARM_S)
    await asyncio.sleep(3)  # the queues drain before the ladder begins
    steps = []
    for n, rate in enumerate(RATES):
        step = await offer(ws_url, rate, seed=n)
        steps.append(step)
        if step.p(95) > TARGET_P95_MS:
            break
    return saturated, steps


def run() -> dict[str, float]:
    with running_assistant("bench-capacity-") as assistant:
        assert assistant.gateway is not None
        ws_url = f"ws://127.0.0.1:{assistant.gateway.port}/ws/chat"
        saturated, steps = asyncio.run(ladder(ws_url))
    return {**report_saturated(saturated), **report(steps)}


if __name__ == "__main__":
    run()
