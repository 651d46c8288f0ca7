"""Example questions per service: how citizens put a concern, matched at query time.

A catalogue says what a service is; it rarely says how a citizen in that situation
talks ("mir wurde der Geldbeutel geklaut, da war mein Perso drin"). A few questions per
service in citizens' words close that gap: a new question is compared with them by the
encoder (its nearest example per service) and by BM25 over each service's examples, two
more retrieval methods whose weight the fusion fit decides. The examples are data a
city's editors keep beside the catalogue (docs/knowledge.md, "Example questions"); a
line naming a service the source does not hold is skipped, so one folder can serve
several catalogues.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from knowledge_index import lexical
from knowledge_index.errors import SourceError, json_lines

KINDS = frozenset({"situation", "question", "keywords", "english"})
MAX_TEXT_CHARS = 1000
# The two methods' names in the fusion (knowledge_index/params.py).
NEAREST, WORDS = "examples", "exwords"


@dataclass(frozen=True)
class ExampleQuestion:
    service: str
    text: str
    kind: str
    # The file it came from: one writer's phrasings (knowledge_index/calibration.py).
    group: str = ""


def example_files(folder: Path | None) -> list[Path]:
    """The JSONL files of `folder` (none when it is unset or missing)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"))


def load_examples(folder: Path | None, services: set[str]) -> list[ExampleQuestion]:
    """The examples of `folder` for the given services, checked line by line."""
    examples = []
    for path in example_files(folder):
        for number, item in json_lines(path):
            if not isinstance(item, dict):
                raise SourceError(path, f"line {number} is not an object")
            for key in ("service", "text"):
                if not isinstance(item.get(key), str) or not item[key].strip():
                    raise SourceError(path, f"line {number} has no text", key)
            if item.get("kind") not in KINDS:
                raise SourceError(path, f"line {number}: one of {sorted(KINDS)}", "kind")
            if len(item["text"]) > MAX_TEXT_CHARS:
                raise SourceError(path, f"line {number} is over {MAX_TEXT_CHARS} chars", "text")
            if item["service"] in services:
                examples.append(
                    ExampleQuestion(item["service"], item["text"], item["kind"], path.stem)
                )
    return examples


class ExampleIndex:
    """The examples of one build: their vectors and a BM25 index of each service's examples."""

    def __init__(
        self, owners: NDArray[np.int64], vectors: NDArray[np.float32], services: NDArray[np.int64],
        words: lexical.BM25Index, documents: int,
    ) -> None:  # fmt: skip
        self.owners = owners  # the document position of each example
        self.vectors = vectors
        self.services = services  # document positions that have examples, BM25 row order
        self.starts = np.searchsorted(owners, services)  # each service's first example
        self.words = words
        self.documents = documents

    @classmethod
    def build(
        cls, examples: list[ExampleQuestion], doc_ids: list[str], vectors: NDArray[np.float32]
    ) -> ExampleIndex:
        """The index of `examples`, whose encoder vectors are the rows of `vectors`."""
        position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        unsorted = np.asarray([position[e.service] for e in examples], dtype=np.int64)
        # Grouped by service, so a service's best example is one reduceat.
        order = np.argsort(unsorted, kind="stable")
        owners, vectors = unsorted[order], np.ascontiguousarray(vectors[order])
        services = np.unique(owners)
        texts: dict[int, list[str]] = {}
        for index in order.tolist():
            texts.setdefault(int(unsorted[index]), []).append(examples[index].text)
        words = lexical.BM25Index().fit([" ".join(texts[int(s)]) for s in services])
        return cls(owners, vectors, services, words, len(doc_ids))

    def save(self, folder: Path) -> None:
        np.savez(folder / "examples.npz", owners=self.owners, vectors=self.vectors,
                 services=self.services, documents=np.asarray(self.documents))  # fmt: skip
        lexical.save(self.words, folder / "exwords.pkl")

    @classmethod
    def load(cls, folder: Path) -> ExampleIndex | None:
        """The build's examples, or None when it has none (older builds, no examples)."""
        if not (folder / "examples.npz").exists():
            return None
        words = lexical.load(folder / "exwords.pkl")
        assert isinstance(words, lexical.BM25Index)
        with np.load(folder / "examples.npz") as arrays:
            return cls(arrays["owners"], arrays["vectors"], arrays["services"], words,
                       int(arrays["documents"]))  # fmt: skip

    def nearest(self, vector: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per document: the cosine of its example nearest to the query (0 without any)."""
        scores = np.zeros(self.documents, dtype=np.float32)
        if len(self.vectors):
            best = np.maximum.reduceat(self.vectors @ vector.ravel(), self.starts)
            scores[self.services] = np.maximum(best, 0)
        return scores

    def matching_words(self, text: str) -> NDArray[np.float32]:
        """Per document: BM25 of the query over all its examples taken as one text."""
        scores = np.zeros(self.documents, dtype=np.float32)
        if len(self.services):
            scores[self.services] = self.words.scores(text)
        return scores
