"""How sure the classifier is where it says "out of scope", on messages it never trained on.

Run in the bot environment by benchmarks/out_of_scope_doubt.py, which sends the catalogue's
example questions (service questions all, never in the NLU data) as JSON strings, one a line,
and reads JSON lines back: the trained model's verdict on each, in order, then the project's
intent classifier's, trained on four fifths of the NLU data at a time, on the fifth's
out-of-scope examples. The action server's choice between a
refusal and the catalogue's choices is fitted on the two (actions/knowledge.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data
from sklearn.model_selection import StratifiedKFold

from bot.intent_classifier import TfidfIntentClassifier, intent_pipeline

ROOT = Path(__file__).resolve().parent.parent
OUT_OF_SCOPE = "out_of_scope"
CLASSIFIER = "bot.intent_classifier.TfidfIntentClassifier"


async def classified(model: Path, texts: list[str]) -> list[tuple[str, float]]:
    """(intent, confidence) of each text by the trained model, as the action server sees them."""
    agent = Agent.load(str(model))
    results = []
    for text in texts:
        intent = (await agent.parse_message(text))["intent"]
        results.append((str(intent["name"]), float(intent["confidence"])))
    return results


def classifier_config(config_file: Path) -> dict[str, Any]:
    """The intent classifier's settings in the pipeline of `config_file`, over its defaults."""
    pipeline = yaml.safe_load(config_file.read_text(encoding="utf-8"))["pipeline"]
    own = next(item for item in pipeline if item["name"] == CLASSIFIER)
    settings = {key: value for key, value in own.items() if key != "name"}
    return {**TfidfIntentClassifier.get_default_config(), **settings}


def out_of_fold(data: Path, config: dict[str, Any], folds: int, seed: int) -> list[dict[str, Any]]:
    """Each out-of-scope example classified by a classifier trained without its fold."""
    examples = [
        m
        for path in sorted(data.glob("nlu*.yml"))  # as bot/nlu_eval.py reads them
        for m in load_data(str(path)).intent_examples
        if m.get("text") and m.get("intent")
    ]
    texts = [str(m.get("text")) for m in examples]
    intents = [str(m.get("intent")) for m in examples]
    scored = []
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, intents)
    for train, test in splits:
        model = intent_pipeline(config).fit([texts[i] for i in train], [intents[i] for i in train])
        wanted = [i for i in test if intents[i] == OUT_OF_SCOPE]
        classes = [str(c) for c in model.classes_]
        for i, probabilities in zip(
            wanted, model.predict_proba([texts[i] for i in wanted]), strict=True
        ):
            best = int(probabilities.argmax())
            scored.append(
                {
                    "text": texts[i],
                    "intent": classes[best],
                    "confidence": float(probabilities[best]),
                }
            )
    return scored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "rasa" / "current.tar.gz")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bot")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--folds", type=int, default=5)
    # The folds' draw moves a few verdicts; several draws pooled steady the choice.
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    texts = [str(json.loads(line)) for line in sys.stdin if line.strip()]
    for intent, confidence in asyncio.run(classified(args.model, texts)):
        verdict = {"kind": "service", "intent": intent, "confidence": confidence}
        print(json.dumps(verdict))
    config = classifier_config(args.config)
    for seed in range(args.seeds):
        for item in out_of_fold(args.data, config, args.folds, seed):
            print(json.dumps({"kind": OUT_OF_SCOPE, "seed": seed, **item}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
