"""Choose the NLU pipeline by measurement: a fixed held-out split, several pipelines, one report.

Run in the bot environment (`make nlu-eval`). The training data in data/bot is checked for
hygiene, split per intent (Rasa's stratified split, fixed seed, 25 % held out and never trained
on), and every candidate pipeline is trained with `rasa train nlu` on the training part and
scored with `rasa test nlu` on the held-out part. Each model is also asked about bad input
(gibberish, emoji, a very long message, an invalid case number) so the fallback threshold can be
chosen from the same figures. Everything is written under .cache/nlu-eval (git-ignored); the
report goes to .cache/nlu-eval/report.md and stdout. The project's model is never touched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "bot"
PIPELINES = ROOT / "bot" / "nlu_pipelines"
OUT = ROOT / ".cache" / "nlu-eval"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "muenchen-dev-questions.jsonl"
# Messages written apart from the training data and never trained on (tests/nlu/challenge.yml).
CHALLENGE = ROOT / "tests" / "nlu" / "challenge.yml"
RASA = Path(sys.executable).parent / "rasa"

TRAIN_FRACTION = 0.75
SEED = 2026
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
DAMAGE_CATEGORIES = {
    "schlagloch",
    "strassenbeleuchtung",
    "muell",
    "graffiti",
    "spielplatz",
    "sonstiges",
}

# Bad input from issue 4: it must end in the fallback path (nlu_fallback) or a re-prompt.
GIBBERISH = ["xkcd", "asdf jklö", "qwxz plmk vbnt", "🙂🙂", "???", "hjkl", "aaaaaa", "fghfgh"]
LONG_MESSAGE = ("Sehr geehrte Damen und Herren, ich schreibe Ihnen wegen eines Problems. " * 60)[
    :4000
]
BAD_CASE_NUMBER = "MM-12"
# Not gibberish, but the bot must not go wrong here either: a re-prompt is fine, a wrong entity not.
EDGE_CASES = ["123", "Hallo, I need einen Termin für my Reisepass", "ok ok ok xyz"]
# Realistic messages outside the training data: where each one should end.
SPOT_CHECKS = {
    "Ich brauche einen neuen Perso": "ask_question",
    "Sperrmüll": "ask_question",
    "Solarmodule auf dem Dach erlaubt?": "pv_advice",
    "Die Laterne in der Amselstraße ist kaputt": "report_damage",
    "Wie weit ist meine Meldung MM-2026-000999?": "check_status",
    "I lost my passport": "ask_question",
    "Can I talk to a real person?": "request_human",
    "Hello, I have a question": "greet",
    "This bot is stupid": "complain",
    "Ich möchte mich für die schnelle Hilfe bedanken, der Chat ist klasse": "feedback",
}


def normalise(text: str) -> str:
    """Case- and punctuation-free form, to compare examples with each other."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def check_data(data: Any) -> list[str]:
    """Problems that make the data unfit: leaked test questions, contradictions, bad synonyms."""
    problems = []
    if SHARED_EVAL.exists():
        leaked = {
            normalise(json.loads(line)["query"])
            for line in SHARED_EVAL.read_text().splitlines()
            if line
        }
        problems += [
            f"copied from ../shared/eval: {m.get('text')!r}"
            for m in data.intent_examples
            if normalise(m.get("text")) in leaked
        ]
    lines = (line.strip() for line in CHALLENGE.read_text().splitlines())
    challenge = {normalise(line[2:]) for line in lines if line.startswith("- ")}
    problems += [
        f"also in the challenge set: {m.get('text')!r}"
        for m in data.intent_examples
        if normalise(m.get("text")) in challenge
    ]
    seen: dict[str, str] = {}
    for message in data.intent_examples:
        key, intent = normalise(message.get("text")), message.get("intent")
        if seen.setdefault(key, intent) != intent:
            problems.append(f"{message.get('text')!r} is both {seen[key]} and {intent}")
    synonyms = {k.lower(): v for k, v in data.entity_synonyms.items()}
    for message in data.entity_examples:
        for entity in message.get("entities"):
            if entity["entity"] != "damage_category":
                continue
            value = synonyms.get(entity["value"].lower(), entity["value"].lower())
            if value not in DAMAGE_CATEGORIES:
                problems.append(f"damage_category {entity['value']!r} maps to no canonical value")
    for intent, count in sorted(data.number_of_examples_per_intent.items()):
        if count < 40:
            problems.append(f"{intent} has only {count} examples")
    return problems


def same_pipeline(candidate: Path) -> bool:
    """A candidate identical to config.yml's pipeline is measured once, as config."""
    import yaml

    def pipeline(path: Path) -> Any:
        return yaml.safe_load(path.read_text())["pipeline"]

    return bool(pipeline(candidate) == pipeline(ROOT / "config.yml"))


def split(data: Any, seed: int) -> tuple[Path, Path]:
    """Rasa's split preserves the share of each intent; the seed makes it the same every time."""
    train, test = data.train_test_split(train_frac=TRAIN_FRACTION, random_seed=seed)
    folder = OUT / "split"
    folder.mkdir(parents=True, exist_ok=True)
    train_file, test_file = folder / "train.yml", folder / "test.yml"
    train.persist_nlu(str(train_file))
    test.persist_nlu(str(test_file))
    return train_file, test_file


def run(command: list[str], log: Path, env: dict[str, str]) -> float:
    """Run a Rasa command, keep its output in a log, and return its wall-clock seconds."""
    started = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(
            command, check=True, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )
    return time.perf_counter() - started


def spacy_env(config: Path, env: dict[str, str]) -> dict[str, str] | None:
    """spaCy is not in the bot's lock: a spaCy pipeline runs with .cache/spacy-site, if present."""
    if "SpacyNLP" not in config.read_text():
        return env
    site = ROOT / ".cache" / "spacy-site"
    model = ROOT / ".cache" / "spacy-de-lookup"
    if not site.exists():
        return None
    env = {**env, "PYTHONPATH": f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}"}
    if not model.exists():
        script = (
            "import spacy; nlp = spacy.blank('de'); "
            "nlp.add_pipe('lemmatizer', config={'mode': 'lookup'}); "
            f"nlp.initialize(); nlp.to_disk({str(model)!r})"
        )
        subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT)
    return env


def probe(model: Path, texts: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """Parse texts with a trained model in a child process (own TensorFlow, own spaCy path)."""
    script = (
        "import asyncio, json, sys\n"
        "from rasa.core.agent import Agent\n"
        "agent = Agent.load(sys.argv[1])\n"
        "texts = json.load(sys.stdin)\n"
        "async def main():\n"
        "    return [await agent.parse_message(t) for t in texts]\n"
        "out = []\n"
        "for p in asyncio.run(main()):\n"
        "    ranking = [r for r in p['intent_ranking'] if r['name'] != 'nlu_fallback']\n"
        "    out.append({'intent': p['intent']['name'], 'ranking': ranking[:2],\n"
        "                'entities': [(e['entity'], e.get('value'), e.get('extractor'))\n"
        "                             for e in p['entities']]})\n"
        "print('JSON' + json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model)],
        input=json.dumps(texts),
        text=True,
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("JSON"))
    return json.loads(line[4:])


def falls_back(parse: dict[str, Any], threshold: float, ambiguity: float) -> bool:
    """What Rasa's FallbackClassifier decides for this parse at another threshold."""
    ranking = parse["ranking"]
    top = ranking[0]["confidence"] if ranking else 0.0
    second = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
    return top < threshold or top - second < ambiguity


def train(name: str, config: Path, train_file: Path, folder: Path, env: dict[str, str]) -> float:
    """`rasa train nlu` on the training part; returns the wall-clock seconds."""
    print(f"{name}: training …", file=sys.stderr)
    seconds = run(
        [
            str(RASA),
            "train",
            "nlu",
            "--config",
            str(config),
            "--nlu",
            str(train_file),
            "--out",
            str(folder),
            "--fixed-model-name",
            name,
        ],
        folder / "train.log",
        env,
    )
    return seconds


def rasa_test(model: Path, nlu: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """`rasa test nlu` of one model on one file; returns Rasa's intent report."""
    # A report of an extractor the pipeline no longer has must not be read as this one's.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [
        str(RASA),
        "test",
        "nlu",
        "--nlu",
        str(nlu),
        "--model",
        str(model),
        "--out",
        str(out),
    ]
    run(command, out / "test.log", env)
    report: dict[str, Any] = json.loads((out / "intent_report.json").read_text())
    return report


def service_questions() -> list[str]:
    """The knowledge index's development questions that have an answer in the catalogue.

    Real service questions the NLU never saw: they are only read here, never trained on
    (check_data refuses copies). Each should reach the knowledge index (knowledge_path).
    """
    if not SHARED_EVAL.exists():
        return []
    rows = [json.loads(line) for line in SHARED_EVAL.read_text().splitlines() if line.strip()]
    return [row["query"] for row in rows if row.get("expected")]


def evaluate(
    config: Path, train_file: Path, test_file: Path, expected: list[tuple[str, str]]
) -> dict[str, Any] | None:
    """Train on the training part, test on the held-out part, probe bad input."""
    name = config.stem
    env = spacy_env(config, dict(os.environ))
    if env is None:
        print(f"{name}: skipped (spaCy not installed in .cache/spacy-site)", file=sys.stderr)
        return None
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    # A model trained on the same split with the same config is reused (with its measured time).
    stamp = hashlib.sha256(config.read_bytes() + train_file.read_bytes()).hexdigest()[:16]
    cached = folder / "trained.json"
    model = folder / f"{name}.tar.gz"
    previous = json.loads(cached.read_text()) if cached.exists() else {}
    if previous.get("fingerprint") == stamp and model.exists():
        seconds = previous["train_seconds"]
        print(f"{name}: trained before on this split ({seconds:.0f} s)", file=sys.stderr)
    else:
        seconds = train(name, config, train_file, folder, env)
        cached.write_text(json.dumps({"fingerprint": stamp, "train_seconds": seconds}))
    print(f"{name}: testing …", file=sys.stderr)
    report = rasa_test(model, test_file, folder / "results", env)
    challenge = rasa_test(model, CHALLENGE, folder / "challenge", env)
    bad = [*GIBBERISH, LONG_MESSAGE, BAD_CASE_NUMBER, *EDGE_CASES]
    questions = service_questions()
    texts = bad + list(SPOT_CHECKS) + questions + [t for t, _ in expected]
    parses = probe(model, texts, env)
    n_bad, n_spot = len(bad), len(bad) + len(SPOT_CHECKS)
    n_known = n_spot + len(questions)
    fallback = re.search(r"FallbackClassifier.*?threshold:\s*([\d.]+)", config.read_text(), re.S)
    ambiguity = re.search(r"ambiguity_threshold:\s*([\d.]+)", config.read_text())
    return {
        "name": name,
        "train_seconds": round(seconds, 1),
        "macro_f1": report["macro avg"]["f1-score"],
        "challenge_f1": challenge["macro avg"]["f1-score"],
        "accuracy": report.get("accuracy"),
        "per_intent": {
            k: v["f1-score"]
            for k, v in report.items()
            if isinstance(v, dict)
            and "support" in v
            and k not in {"macro avg", "weighted avg", "micro avg"}
        },
        "threshold": float(fallback.group(1)) if fallback else None,
        "ambiguity": float(ambiguity.group(1)) if ambiguity else 0.0,
        "bad": list(
            zip(
                ["4000 chars" if t == LONG_MESSAGE else t for t in bad], parses[:n_bad], strict=True
            )
        ),
        "spot": list(zip(SPOT_CHECKS.items(), parses[n_bad:n_spot], strict=True)),
        "questions": [p["intent"] for p in parses[n_spot:n_known]],
        "held_out": list(zip([i for _, i in expected], parses[n_known:], strict=True)),
    }


def sweep(result: dict[str, Any]) -> list[str]:
    """Per threshold: how much bad input falls back, how many right answers are lost to it."""
    rows = [
        "| threshold | gibberish → fallback | held-out right and kept | held-out → fallback |",
        "|---|---|---|---|",
    ]
    amb = result["ambiguity"]
    gibberish = [p for text, p in result["bad"] if text in GIBBERISH]
    for t in THRESHOLDS:
        caught = sum(falls_back(p, t, amb) for p in gibberish)
        kept = sum(
            not falls_back(p, t, amb) and p["ranking"] and p["ranking"][0]["name"] == want
            for want, p in result["held_out"]
        )
        lost = sum(falls_back(p, t, amb) for _, p in result["held_out"])
        n = len(result["held_out"])
        rows.append(
            f"| {t:.2f} | {caught}/{len(gibberish)} | {kept}/{n} ({kept / n:.1%}) | {lost}/{n} |"
        )
    return rows


def entity_f1(name: str) -> str:
    """Entity F1 per type from `rasa test nlu`, each type from the extractor that owns it."""
    owners = {"DIETClassifier": ("location", "damage_category"),
              "IntentGatedEntityTagger": ("location", "damage_category"),
              "CRFEntityExtractor": ("location", "damage_category"),
              "RegexEntityExtractor": ("case_number", "postal_code", "email")}  # fmt: skip
    parts = []
    for extractor, types in owners.items():
        path = OUT / name / "results" / f"{extractor}_report.json"
        report = json.loads(path.read_text()) if path.exists() else {}
        parts += [f"{t} {report[t]['f1-score']:.2f} ({report[t]['support']})"
                  for t in types if t in report]  # fmt: skip
    return ", ".join(parts)


def kept(result: dict[str, Any]) -> float:
    """Share of held-out messages whose intent is right and survives the fallback threshold."""
    t, amb = result["threshold"] or 0.0, result["ambiguity"]
    right = sum(
        not falls_back(p, t, amb) and p["ranking"] and p["ranking"][0]["name"] == want
        for want, p in result["held_out"]
    )
    return right / len(result["held_out"])


def knowledge_path(result: dict[str, Any]) -> str:
    """How many real service questions reach the knowledge index.

    ask_question and pv_advice search it directly; the fallback and out-of-scope requests
    search it too (docs/dialogue.md), and a confident answer wins there.
    """
    intents = result.get("questions") or []
    if not intents:
        return "-"
    direct = sum(i in {"ask_question", "pv_advice"} for i in intents)
    fallback = sum(i == "nlu_fallback" for i in intents)
    declined = sum(i == "out_of_scope" for i in intents)
    reached = direct + fallback + declined
    return f"{reached}/{len(intents)} ({fallback} by fallback, {declined} as out of scope)"


def render(results: list[dict[str, Any]], sizes: tuple[int, int], seed: int, chosen: str) -> str:
    """The report as Markdown: comparison, the chosen pipeline's details, bad input."""
    lines = [
        f"# NLU evaluation (held-out split: {sizes[0]} train / {sizes[1]} test examples,"
        f" seed {seed})",
        "",
        "| pipeline | intent macro-F1 | accuracy | right and above the fallback threshold"
        " | challenge set macro-F1 | service questions → knowledge | entity F1 (test support)"
        " | training (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ent = entity_f1(r["name"])
        lines.append(
            f"| {r['name']} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {kept(r):.1%}"
            f" | {r.get('challenge_f1', float('nan')):.3f} | {knowledge_path(r)} | {ent}"
            f" | {r['train_seconds']} |"
        )
    for r in results:
        if r["name"] != chosen:
            continue
        lines += [
            "",
            f"## {r['name']}: per-intent F1 (held out, before the fallback)",
            "",
            "| intent | F1 |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.3f} |" for k, v in sorted(r["per_intent"].items())]
        lines += [
            "",
            f"## {r['name']}: bad input (threshold {r['threshold']}, ambiguity {r['ambiguity']})",
            "",
            "| input | top intent (confidence) | result | entities |",
            "|---|---|---|---|",
        ]
        for text, p in r["bad"]:
            top = p["ranking"][0] if p["ranking"] else {"name": "-", "confidence": 0}
            lines.append(
                f"| `{text}` | {top['name']} ({top['confidence']:.2f}) | {p['intent']}"
                f" | {p['entities']} |"
            )
        lines += [
            "",
            f"## {r['name']}: spot checks (not in the data)",
            "",
            "| message | expected | result |",
            "|---|---|---|",
        ]
        for (text, want), p in r["spot"]:
            top = p["ranking"][0] if p["ranking"] else {"name": "-", "confidence": 0}
            lines.append(
                f"| {text} | {want} | {p['intent']} ({top['name']} {top['confidence']:.2f}) |"
            )
        lines += ["", f"## {r['name']}: fallback threshold sweep", "", *sweep(r)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pipelines", nargs="*", help="names in bot/nlu_pipelines (default: all) or config.yml"
    )
    parser.add_argument(
        "--chosen", default="config", help="pipeline whose details the report shows"
    )
    parser.add_argument(
        "--render", action="store_true", help="only re-render the report from results.json"
    )
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"seed of the held-out split (default {SEED})"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads((OUT / "results.json").read_text())
        sizes = tuple(saved["sizes"])
        report = render(saved["results"], sizes, saved.get("seed", SEED), args.chosen)
        (OUT / "report.md").write_text(report)
        print(report)
        return

    from rasa.shared.nlu.training_data.loading import load_data

    files = sorted(DATA.glob("nlu*.yml"))
    data = load_data(str(files[0]), language="de").merge(
        *(load_data(str(f), language="de") for f in files[1:])
    )
    problems = check_data(data)
    if problems:
        sys.exit("training data problems:\n  " + "\n  ".join(problems))
    train_file, test_file = split(data, args.seed)
    test_data = load_data(str(test_file), language="de")
    expected = [(m.get("text"), m.get("intent")) for m in test_data.intent_examples]
    configs = [ROOT / "config.yml", *sorted(PIPELINES.glob("*.yml"))]
    if args.pipelines:
        named = {c.stem: c for c in configs} | {c.name: c for c in configs}
        configs = [named[name] for name in args.pipelines]
    else:
        configs = configs[:1] + [c for c in configs[1:] if not same_pipeline(c)]
    n_test = len(expected)
    sizes = (len(data.intent_examples) - n_test, n_test)
    results = []
    for config in configs:
        if result := evaluate(config, train_file, test_file, expected):
            results.append(result)
            saved = {"sizes": sizes, "seed": args.seed, "results": results}
            (OUT / "results.json").write_text(json.dumps(saved, ensure_ascii=False, indent=1))
    report = render(results, sizes, args.seed, args.chosen)
    (OUT / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
