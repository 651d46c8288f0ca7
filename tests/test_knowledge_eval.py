"""`python -m knowledge_index eval` on the real Munich catalogue meets the quality targets.

The command runs in the test's process (its `main`, stdout captured): a process of its own
spent ten seconds per run importing torch and loading the index.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_index.__main__ import main
from knowledge_index.translation import DEBIAN_FILE as DING

ROOT = Path(__file__).resolve().parent.parent
MUNICH = ROOT.parent / "shared" / "data" / "muenchen-dldb" / "services_de.json"
QUESTIONS = ROOT.parent / "shared" / "eval" / "muenchen-dev-questions.jsonl"

pytestmark = pytest.mark.skipif(
    not (MUNICH.exists() and QUESTIONS.exists()), reason="Munich data not beside the project"
)


def _last_line(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> dict[str, float]:
    """The JSON object `python -m knowledge_index eval ARGV` prints as its last stdout line."""
    capsys.readouterr()
    assert main(["eval", *argv]) == status
    last: dict[str, float] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return last


def test_eval_prints_the_metrics_as_its_last_line_and_meets_the_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = _last_line(
        capsys, "--cross-validate", "--source", str(MUNICH), "--questions", str(QUESTIONS)
    )
    assert {"n", "hit@1", "hit@5", "mrr@10", "false_answer_rate"} <= metrics.keys()
    assert metrics["n"] == 45
    # The target is hit@1 >= 0.75. The shipped fit is on the example questions
    # (data/examples), not on these: measured 0.91 (41 of 45) and hit@5 1.00, see
    # docs/knowledge.md. This guards against regressions (two questions of slack).
    assert metrics["hit@1"] >= 0.86, metrics
    assert metrics["hit@5"] >= 0.95, metrics
    # The index alone is sure of a service for two of the six questions no service answers
    # ("Rezept für Schweinebraten", "FC Bayern": single words of citizens' example phrasings);
    # the assistant declines them (tests/test_conversation_eval.py), as its classifier takes
    # them for out of scope and the catalogue's own text is not sure of a service.
    assert metrics["false_answer_rate"] <= 0.34, metrics
    # Fusion weights refit on 4/5 of these questions, each question ranked by weights that
    # never saw it: measured 0.84 / 0.98; the floor allows for a split's noise.
    assert metrics["cv_hit@1"] >= 0.78 and metrics["cv_hit@5"] >= 0.95, metrics


def _metrics_of(capsys: pytest.CaptureFixture[str], questions: str) -> dict[str, float]:
    """The eval's figures for one of the question files of tests/questions."""
    path = ROOT / "tests" / "questions" / questions
    return _last_line(capsys, "--source", str(MUNICH), "--questions", str(path))


def test_keyword_queries_find_their_service(capsys: pytest.CaptureFixture[str]) -> None:
    # What citizens type into a search box ("Perso verloren", "Angelschein"), written for this
    # test and never fitted on: the target is hit@1 >= 0.60; measured 0.89 (0.80
    # before the example questions).
    metrics = _metrics_of(capsys, "muenchen-keywords.jsonl")
    assert metrics["n"] == 45
    assert metrics["hit@1"] >= 0.82 and metrics["hit@5"] >= 0.90, metrics


@pytest.mark.skipif(not DING.exists(), reason="Debian's trans-de-en missing")
def test_english_questions_find_their_service(capsys: pytest.CaptureFixture[str]) -> None:
    # English questions of newcomers for services no other set uses, written for this test
    # before they were first searched: measured hit@1 1.00, hit@5 1.00 with the English
    # example questions of data/examples (0.59 / 0.79 with the Ding translations alone),
    # see docs/knowledge.md.
    metrics = _metrics_of(capsys, "muenchen-english.jsonl")
    assert metrics["n"] == 39
    assert metrics["hit@1"] >= 0.90 and metrics["hit@5"] >= 0.95, metrics
    # English as typed into a search box ("deregister vehicle"), written the same way:
    # measured hit@1 0.72, hit@5 0.92 (0.76 / 0.88 before the examples).
    keywords = _metrics_of(capsys, "muenchen-english-keywords.jsonl")
    assert keywords["n"] == 25
    assert keywords["hit@1"] >= 0.64 and keywords["hit@5"] >= 0.84, keywords


def test_eval_with_a_missing_source_fails_with_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = _last_line(capsys, "--source", "nowhere.json", "--questions", str(QUESTIONS), status=1)
    assert "nowhere.json" in str(failed["error"])
