"""Where a bot turn's time goes, per turn type (issue 16).

For each kind of conversation of the capacity benchmark (small talk, a knowledge
question with follow-ups, the PV advisor's form), BENCH_PROFILE_CONVERSATIONS
citizens send it back to back through the citizen socket for BENCH_PROFILE_S
seconds, so Rasa is saturated. Measured per turn: the CPU time of each process
(Rasa, the action server with its Sanic worker, the gateway, Redis) from the
kernel's accounting, and Rasa's time split by what it was doing, from py-spy's
samples of Rasa's stacks (a sampling profiler: it does not slow Rasa down much).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import psutil

from benchmarks.assistant import running_assistant
from benchmarks.capacity import (
    PV_FORM,
    SMALL_TALK,
    Script,
    Step,
    back_to_back,
    citizen,
    knowledge,
)

SECONDS = float(os.environ.get("BENCH_PROFILE_S", "20"))
CONVERSATIONS_AT_ONCE = int(os.environ.get("BENCH_PROFILE_CONVERSATIONS", "16"))
# Every knowledge conversation opens with another concern (benchmarks/capacity.py says why).
KINDS: dict[str, Script] = {
    "intent": lambda n: SMALL_TALK, "knowledge": knowledge, "form": lambda n: PV_FORM,
}  # fmt: skip
# What a sample of Rasa's stack was doing: the first rule whose marker is in the stack.
RASA_PARTS = [
    ("lock store", ("lock_store.py",)),
    ("tracker store (read, merge, write)", ("tracker_store.py",)),
    ("action server call (tracker to JSON, HTTP, events back)", ("rasa/core/actions/action.py",)),
    ("NLU: entity tagger (DIET)", ("entity_tagger.py", "diet_classifier.py")),
    ("NLU: intent classifier (TF-IDF, logistic regression)", ("intent_classifier.py",)),
    ("NLU: tokenizer, featurizers, regexes, guards", ("parse_message (rasa/core/processor.py",)),
    ("policies (rule, memoization)", ("rasa/core/policies/", "predict_next_with_tracker")),
    ("channel, processor, Sanic (the rest of a request)", ("handle_request",)),
]  # fmt: skip
OTHER = "outside requests (event loop, GC)"
# Rasa's event loop waiting for work: not CPU, left out of the split.
IDLE_LEAF = "serve (sanic/server/runners.py"


def processes(root: psutil.Process) -> dict[str, list[psutil.Process]]:
    found: dict[str, list[psutil.Process]] = {"rasa": [], "actions": [], "gateway": [], "redis": []}
    for child in root.children(recursive=True):
        command = " ".join(child.cmdline())
        if "bot.rasa_server" in command:
            found["rasa"].append(child)
        elif "actions.server" in command or "sanic" in command.lower():
            found["actions"].append(child)
        elif "-m handover" in command:
            found["gateway"].append(child)
        elif "redis-server" in command:
            found["redis"].append(child)
    # The action server's Sanic worker is a child of the server process.
    for server in list(found["actions"]):
        found["actions"] += [c for c in server.children(recursive=True)
                             if c not in found["actions"]]  # fmt: skip
    return found


def cpu_seconds(group: list[psutil.Process]) -> float:
    total = 0.0
    for process in group:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def rasa_parts(samples: Path) -> Counter[str]:
    parts: Counter[str] = Counter()
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack.rsplit(";", 1)[-1].startswith(IDLE_LEAF):
            continue
        part = next((name for name, markers in RASA_PARTS
                     if any(m in stack for m in markers)), OTHER)  # fmt: skip
        parts[part] += int(count)
    return parts


def profile_kind(ws_url: str, kind: str, pids: dict[str, list[psutil.Process]],
                 spy: str | None, out: Path) -> dict[str, float]:  # fmt: skip
    before = {name: cpu_seconds(group) for name, group in pids.items()}
    recorder = None
    samples = out / f"rasa-{kind}.txt"
    if spy and pids["rasa"]:
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(pids["rasa"][0].pid), "--duration", str(int(SECONDS)),
             "--rate", "100", "--format", "raw", "--output", str(samples), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    step = asyncio.run(back_to_back(ws_url, KINDS[kind], CONVERSATIONS_AT_ONCE, SECONDS))
    used = {name: cpu_seconds(group) - before[name] for name, group in pids.items()}
    if recorder is not None:
        recorder.wait(timeout=60)
    turns = len(step.turns)
    figures = {f"{kind}_turns_per_s": turns / SECONDS, f"{kind}_p50_ms": step.p(50)}
    print(f"\n{kind}: {turns / SECONDS:.1f} turns/s saturated ({CONVERSATIONS_AT_ONCE} "
          f"conversations), p50 {step.p(50):.1f} ms, errors {step.errors}")  # fmt: skip
    print("  CPU per turn: " + ", ".join(f"{name} {1000 * s / turns:.2f} ms"
                                          for name, s in used.items()))  # fmt: skip
    for name, seconds in used.items():
        figures[f"{kind}_{name}_cpu_ms"] = 1000 * seconds / turns
    if recorder is not None and samples.exists():
        parts = rasa_parts(samples)
        total = sum(parts.values())
        rasa_ms = 1000 * used["rasa"] / turns
        print(f"  Rasa's {rasa_ms:.2f} ms by part (py-spy, {total} samples):")
        for name, _ in [*RASA_PARTS, (OTHER, ())]:
            share = parts[name] / total if total else 0.0
            print(f"    {share:6.1%}  {share * rasa_ms:5.2f} ms  {name}")
    return figures


async def warm_up(ws_url: str) -> None:
    step = Step(0)
    await asyncio.gather(*(citizen(ws_url, script(1_000_000), random.Random(0), step, (0.0, 0.0))
                           for script in KINDS.values()))  # fmt: skip


def run() -> dict[str, float]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed (make venv installs it): CPU per process only")
        spy = None
    figures: dict[str, float] = {}
    out = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    with running_assistant("bench-profile-") as assistant:
        assert assistant.gateway is not None
        ws_url = f"ws://127.0.0.1:{assistant.gateway.port}/ws/chat"
        pids = processes(psutil.Process())
        # Loaded on first use (the knowledge action's lemmatizer, Rasa's policies' caches).
        asyncio.run(warm_up(ws_url))
        for kind in KINDS:
            figures |= profile_kind(ws_url, kind, pids, spy, out)
    return figures


if __name__ == "__main__":
    run()
