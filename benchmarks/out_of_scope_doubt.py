"""When a message the classifier calls "out of scope" still gets the catalogue's choices.

`python -m benchmarks.out_of_scope_doubt [--source CATALOGUE]` (after `make model knowledge`):
the classifier's out-of-scope verdicts on messages it never trained on (bot/nlu_doubt.py, in
the bot environment) meet the catalogue's confidence for them: the example questions it takes
for out of scope, each searched with the other writer's examples only (as the index's own
calibration scores them), and its out-of-scope examples classified out of fold. A pair of
thresholds (the classifier's confidence below, the catalogue's at or above) turns a refusal
into choices; the pair offers the most service questions their service among the choices
while at most MAX_OFFERED of the out-of-scope ones get choices. Chosen on four fifths
(service questions grouped by service), counted on the fifth, ten times over; the last line
is one JSON object. The action server's constants are in actions/knowledge.py; where the
classifier is sure, what the catalogue's own text is sure of is offered, not answered, and
the figures count what that changes. For a catalogue without example questions (the sample
city) only the out-of-scope side is counted, with the shipped constant.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from actions.knowledge import OUT_OF_SCOPE_UNSURE
from handover.settings import get_settings
from knowledge_index.calibration import by_other_writers
from knowledge_index.examples import ExampleIndex, load_examples
from knowledge_index.search import Band, KnowledgeIndex, SearchResult

ROOT = Path(__file__).resolve().parent.parent
MUNICH = ROOT.parent / "shared" / "data" / "muenchen-dldb" / "services_de.json"
# Below this the classifier's answer is nlu_fallback (config.yml's FallbackClassifier).
FALLBACK = 0.4
CLASSIFIER_BELOW = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.01)
CATALOGUE_FROM = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
# Out-of-scope messages that may get choices instead of the refusal.
MAX_OFFERED = 0.03
CHOICES = 3


@dataclass
class Doubt:
    """One message the classifier calls out of scope, with what the catalogue says of it."""

    nlu: float  # the classifier's confidence in "out of scope"
    confidence: float  # the catalogue's that its first service is right
    answered: bool  # the catalogue's own text is sure: answered today whatever the classifier
    offered: bool  # a service question whose service is among the first CHOICES
    key: str  # the service of a service question, the text of an out-of-scope one
    first: bool = False  # a service question whose service is ranked first


def _verdicts(texts: list[str], env: dict[str, str]) -> list[dict[str, object]]:
    """The classifier's verdict on each of `texts` (in order), then on its own examples."""
    bot_python = Path(os.environ.get("BOT_VENV", ROOT / ".venv-bot")) / "bin" / "python"
    run = subprocess.run(
        [str(bot_python), str(ROOT / "bot" / "nlu_doubt.py")],
        input="".join(json.dumps(text, ensure_ascii=False) + "\n" for text in texts),
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"kind"')]


def _index(source: Path, env: dict[str, str]) -> KnowledgeIndex:
    run = subprocess.run(
        [sys.executable, "-m", "knowledge_index", "build", "--source", str(source)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return KnowledgeIndex.load(Path(json.loads(run.stdout.splitlines()[-1])["path"]))


def doubts(source: Path) -> tuple[list[Doubt], list[Doubt], int]:
    """Service questions and out-of-scope messages the classifier calls out of scope.

    Also how many example questions the catalogue has (none for the sample city).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    index = _index(source, env)
    examples = load_examples(get_settings().knowledge_examples, set(index.doc_ids))
    verdicts = _verdicts([e.text for e in examples], env)
    asked_verdicts = [v for v in verdicts if v["kind"] == "service"]
    doubted = {
        example: float(str(verdict["confidence"]))
        for example, verdict in zip(examples, asked_verdicts, strict=True)
        if verdict["intent"] == "out_of_scope"
    }
    services = []
    if examples:
        vectors = index.encoder.encode([e.text for e in examples])
        for asked in by_other_writers(index, examples, vectors):
            for example in asked:
                nlu = doubted.get(example)
                if nlu is None:
                    continue
                result = index.search(example.text)
                ranked = [hit.doc_id for hit in result.hits[:CHOICES]]
                sure = result.band_by_catalogue is Band.ANSWER
                services.append(
                    Doubt(nlu, result.confidence, sure, example.service in ranked, example.service,
                          first=ranked[:1] == [example.service])
                )  # fmt: skip
    index.examples = ExampleIndex.load(index.path)
    index.clear_recent()
    outside = []
    searched: dict[str, SearchResult] = {}
    for verdict in verdicts:
        nlu = float(str(verdict["confidence"]))
        if (
            verdict["kind"] == "out_of_scope"
            and verdict["intent"] == "out_of_scope"
            and nlu >= FALLBACK
        ):
            text = str(verdict["text"])
            if text not in searched:
                searched[text] = index.search(text)
            result = searched[text]
            sure = result.band_by_catalogue is Band.ANSWER
            # Each message once per draw of the folds; `text` keeps a message's draws together.
            outside.append(Doubt(nlu, result.confidence, sure, False, text))
    return services, outside, len(examples)


def counts(
    services: list[Doubt], outside: list[Doubt], below: float, at_least: float
) -> tuple[int, int, int]:
    """Service questions offered theirs, offered others, and out-of-scope ones offered."""

    def turned(d: Doubt) -> bool:
        return not d.answered and d.nlu < below and d.confidence >= at_least

    right = sum(1 for d in services if turned(d) and d.offered)
    other = sum(1 for d in services if turned(d) and not d.offered)
    return right, other, sum(1 for d in outside if turned(d))


def surely_out_of_scope(
    services: list[Doubt], outside: list[Doubt], below: float
) -> dict[str, int]:
    """What the catalogue's own text answers where the classifier is sure: choices instead.

    Right and wrong answers to service questions that become choices, and out-of-scope
    verdicts answered with a service that become choices; those answered below `below` stay.
    """
    sure = [d for d in services if d.answered and d.nlu >= below]
    return {
        "sure_answers_right_now_offered": sum(1 for d in sure if d.first),
        "sure_answers_wrong_now_offered": sum(1 for d in sure if not d.first),
        "out_of_scope_answered_now_offered": sum(
            1 for d in outside if d.answered and d.nlu >= below
        ),
        "out_of_scope_answered_still": sum(1 for d in outside if d.answered and d.nlu < below),
    }


def choose(services: list[Doubt], outside: list[Doubt]) -> tuple[float, float]:
    """The pair that offers the most their service within the out-of-scope allowance."""
    allowed = MAX_OFFERED * len(outside)
    pairs = [(b, a) for b in CLASSIFIER_BELOW for a in CATALOGUE_FROM]
    within = [p for p in pairs if counts(services, outside, *p)[2] <= allowed]
    return max(
        within, key=lambda p: (counts(services, outside, *p)[0], -counts(services, outside, *p)[2])
    )


def _folds(keys: list[str], rng: random.Random) -> dict[str, int]:
    """Five folds of the distinct keys: a service's questions, a message's draws together."""
    distinct = sorted(set(keys))
    rng.shuffle(distinct)
    return {key: i % 5 for i, key in enumerate(distinct)}


def cross_validated(
    services: list[Doubt], outside: list[Doubt], repeats: int = 10
) -> dict[str, float]:
    """The choice made on four fifths, counted on the fifth, ten draws of the folds."""
    totals = [0, 0, 0]
    for repeat in range(repeats):
        rng = random.Random(repeat)
        fold = _folds([d.key for d in services], rng)
        outside_fold = _folds([d.key for d in outside], rng)
        for k in range(5):
            pair = choose(
                [d for d in services if fold[d.key] != k],
                [d for d in outside if outside_fold[d.key] != k],
            )
            held = counts(
                [d for d in services if fold[d.key] == k],
                [d for d in outside if outside_fold[d.key] == k],
                *pair,
            )
            totals = [t + h for t, h in zip(totals, held, strict=True)]
    return {
        "cv_offered_theirs": round(totals[0] / repeats / len(services), 3),
        "cv_offered_others": round(totals[1] / repeats / len(services), 3),
        "cv_out_of_scope_offered": round(totals[2] / repeats / len(outside), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=MUNICH)
    args = parser.parse_args(argv)
    services, outside, asked = doubts(args.source)
    print(f"{len(services)} of {asked} example questions of this catalogue called out of scope; "
          f"{len(outside)} verdicts of out-of-scope examples called so out of fold "
          f"({len({d.key for d in outside})} messages, several draws of the folds)")  # fmt: skip
    figures: dict[str, object] = {
        "example_questions": asked,
        "called_out_of_scope": len(services),
        "out_of_scope_examples": len(outside),
    }
    below = OUT_OF_SCOPE_UNSURE
    if services:  # a catalogue with example questions: the choice and its table
        print("classifier below | catalogue from | theirs offered | others offered | "
              "out of scope offered")  # fmt: skip
        for grid_below in CLASSIFIER_BELOW:
            for at_least in CATALOGUE_FROM:
                right, other, wrong = counts(services, outside, grid_below, at_least)
                print(f"{grid_below:.2f} | {at_least:.2f} | {right} | {other} | {wrong}")
        below, at_least = choose(services, outside)
        right, other, wrong = counts(services, outside, below, at_least)
        figures |= {"classifier_below": below, "catalogue_from": at_least,
                    "offered_theirs": right, "offered_others": other,
                    "out_of_scope_offered": wrong,
                    **cross_validated(services, outside)}  # fmt: skip
    figures |= surely_out_of_scope(services, outside, below)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
