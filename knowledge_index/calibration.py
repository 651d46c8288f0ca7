"""Questions the fusion and confidence are fit on, from the source's own example questions.

A handful of development questions cannot tell a right top service from a wrong one near
the answer threshold (docs/knowledge.md); the example questions are thousands. Each file
of examples is one writer's: its questions are searched with the other files' examples
only, so each is scored as a new citizen's question would be, whose service the index
knows from other people's phrasings. Questions the city does not answer (the NLU's
out-of-scope examples) are added as questions without a service, so the bands also
learn what must not be answered or offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml
from numpy.typing import NDArray

from knowledge_index.errors import SourceError
from knowledge_index.examples import ExampleIndex, ExampleQuestion
from knowledge_index.expansion import looks_english
from knowledge_index.params import Example

if TYPE_CHECKING:
    from knowledge_index.search import KnowledgeIndex

OUT_OF_SCOPE = "out_of_scope"
# Fewer example questions than this fit nothing reliable: the shipped defaults then stay
# (and give the example methods no weight).
MIN_CALIBRATION = 200
# Questions embedded in one go before they are scored (within the encoder's query cache).
PRIMED = 512


def cross_scored(
    index: KnowledgeIndex, examples: list[ExampleQuestion], vectors: NDArray[np.float32]
) -> list[Example]:
    """Every example, scored with the examples of the other groups only.

    None when there are fewer than MIN_CALIBRATION examples or only one group (writer).
    """
    if len({e.group for e in examples}) < 2 or len(examples) < MIN_CALIBRATION:
        return []
    position = {doc_id: i for i, doc_id in enumerate(index.doc_ids)}
    scored = []
    for asked in by_other_writers(index, examples, vectors):
        scored += scored_questions(index, [(e.text, {position[e.service]}) for e in asked])
    return scored


def by_other_writers(
    index: KnowledgeIndex, examples: list[ExampleQuestion], vectors: NDArray[np.float32]
) -> Iterator[list[ExampleQuestion]]:
    """Each writer's examples, while `index` holds the other writers' examples only.

    The caller puts the build's own examples back when done (`ExampleIndex.load`).
    """
    for group in sorted({e.group for e in examples}):
        others = [i for i, e in enumerate(examples) if e.group != group]
        index.examples = ExampleIndex.build(
            [examples[i] for i in others], index.doc_ids, vectors[others]
        )
        index.clear_recent()
        yield [e for e in examples if e.group == group]


def out_of_scope_questions(path: Path | None) -> list[str]:
    """The examples of the `out_of_scope` intent of a Rasa NLU file (none without one)."""
    if path is None or not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SourceError(path, f"not YAML: {exc}") from exc
    questions = []
    for item in data.get("nlu", []) if isinstance(data, dict) else []:
        if isinstance(item, dict) and item.get("intent") == OUT_OF_SCOPE:
            for line in str(item.get("examples", "")).splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    questions.append(text)
    return questions


def scored_questions(index: KnowledgeIndex, questions: list[tuple[str, set[int]]]) -> list[Example]:
    """(text, right services' positions) pairs scored by every method, embedded in batches."""
    scored = []
    for start in range(0, len(questions), PRIMED):
        batch = questions[start : start + PRIMED]
        index.prime([text for text, _ in batch])
        scored += [
            Example(scores=index.doc_scores(text), expected=expected, english=looks_english(text))
            for text, expected in batch
        ]
    return scored
