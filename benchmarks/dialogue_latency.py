"""Per-turn latency of the dialogue through Rasa plus the action server, and training time.

One conversation at a time over Rasa's REST channel (so the figures are the
work of a turn, not queueing): an intent-only turn (a response from the
domain), a knowledge turn (the action searches the index for a concern not asked
before: the articles' keywords, as in benchmarks/capacity.py), and a form turn
(the PV advisor's validation action reads the answer and the form asks on).
Training time is a forced full `rasa train` of the project into a temporary
folder (`BENCH_TRAIN=0` skips it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import uuid

import httpx

from benchmarks.assistant import running_assistant
from benchmarks.capacity import openers
from benchmarks.latency import percentile
from tests.services import BOT_VENV, ROOT, rasa_headers

TURNS = 60
INTENT_ONLY = ["Hallo", "Danke schön", "Bist du ein Bot?", "Tschüss"]
KNOWLEDGE = [
    "Was kostet ein Reisepass?",
    "Wo melde ich meinen Hund an?",
    "Wie bekomme ich einen Kita-Platz?",
    "Welche Unterlagen brauche ich für die Ummeldung?",
    "Wie kann ich Sperrmüll anmelden?",
]
PV_START = "Brauche ich eine Genehmigung für eine Solaranlage?"
FORM_ANSWERS = ["Auf dem Dach", "Einfamilienhaus", "Nein", "8 kWp"]


def turn(client: httpx.Client, url: str, sender: str, text: str) -> float:
    """Milliseconds from sending `text` to having all of the bot's replies."""
    started = time.perf_counter()
    response = client.post(url, json={"sender": sender, "message": text}, headers=rasa_headers())
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    assert response.json()["messages"], f"no reply to {text!r}"
    return elapsed


def measure(rasa_url: str) -> dict[str, list[float]]:
    url = f"{rasa_url}/webhooks/gateway/webhook"
    times: dict[str, list[float]] = {"intent": [], "knowledge": [], "form": []}
    with httpx.Client(timeout=60) as client:
        for text in INTENT_ONLY + KNOWLEDGE:  # warm-up: first use of each code path
            turn(client, url, "warm-up", text)
        for i in range(TURNS):
            times["intent"].append(turn(client, url, uuid.uuid4().hex, INTENT_ONLY[i % 4]))
            # A concern never asked before: the action server remembers recent queries.
            times["knowledge"].append(turn(client, url, uuid.uuid4().hex, openers()[i]))
        while len(times["form"]) < TURNS:
            sender = uuid.uuid4().hex
            turn(client, url, sender, PV_START)
            times["form"] += [turn(client, url, sender, answer) for answer in FORM_ANSWERS]
    return times


def training_seconds() -> float:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        started = time.perf_counter()
        subprocess.run(
            [str(BOT_VENV / "bin" / "rasa"), "train", "--force", "--config", "config.yml",
             "--domain", "bot/domain.yml", "--data", "data/bot", "--out", out],
            cwd=ROOT, check=True, capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        return time.perf_counter() - started


def run() -> dict[str, float]:
    with running_assistant("bench-dialogue-", with_gateway=False) as assistant:
        times = measure(assistant.rasa.url)
    figures: dict[str, float] = {}
    print(f"Dialogue turn latency through Rasa + actions, one conversation at a time, {TURNS} each")

    print(f"  {'':16}{'p50':>10}{'p95':>10}{'mean':>10}")
    for kind, label in (("intent", "intent only"), ("knowledge", "knowledge"), ("form", "form")):
        values = times[kind]
        figures[f"{kind}_p50_ms"] = statistics.median(values)
        figures[f"{kind}_p95_ms"] = percentile(values, 95)
        print(f"  {label:16}{figures[f'{kind}_p50_ms']:>8.1f}ms{figures[f'{kind}_p95_ms']:>8.1f}ms"
              f"{statistics.fmean(values):>8.1f}ms")  # fmt: skip
    if os.environ.get("BENCH_TRAIN", "1") != "0":
        figures["training_s"] = training_seconds()
        seconds = figures["training_s"]
        print(f"  full training (rasa train --force): {seconds:.0f} s (target < 300 s)")
    return figures


if __name__ == "__main__":
    run()
