"""Search a built index: fused retrieval, the precise passage, a confidence band.

Load once per process (`KnowledgeIndex.load` or `cached_index`); `search` is then
pure computation: query embedding, two sparse lexical lookups, one faiss search.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from knowledge_index import lexical
from knowledge_index.dense import Encoder, VectorIndex
from knowledge_index.documents import Chunk, Document, Section, SectionKind
from knowledge_index.expansion import expand, looks_english
from knowledge_index.params import METHODS, Params, fuse

MAX_QUERY_CHARS = 1000
DENSE_CANDIDATES = 200

_FEES = re.compile(
    r"\b(kost\w*|gebühr\w*|preis\w*|teuer|bezahl\w*|cost\w*|fee\w*|price|euro)\b", re.I
)
_OFFICE = re.compile(r"^\s*wo\b|\b(wohin|adresse|öffnungszeit\w*|zuständig\w*|telefon\w*|"
                     r"where|address|opening hours|office)\b", re.I)  # fmt: skip
_DOCUMENTS = re.compile(r"\b(unterlagen|dokument\w*|mitbringen|nachweis\w*|formular\w*|"
                        r"documents?|bring)\b", re.I)  # fmt: skip


class Band(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    NONE = "none"


@dataclass(frozen=True)
class Hit:
    doc_id: str
    title: str
    url: str
    score: float
    passage: Chunk


@dataclass(frozen=True)
class SearchResult:
    query: str
    band: Band
    confidence: float
    hits: list[Hit] = field(default_factory=list)
    english: bool = False


def wanted_section(query: str) -> SectionKind | None:
    """The structured field a question asks for: fees, documents or the office."""
    if _FEES.search(query):
        return SectionKind.FEES
    if _DOCUMENTS.search(query):
        return SectionKind.DOCUMENTS
    if _OFFICE.search(query):
        return SectionKind.OFFICE
    return None


class KnowledgeIndex:
    """A built index: documents, chunks, lexical and dense indexes, fitted params."""

    def __init__(self, path: Path) -> None:
        self.path = path
        manifest = json.loads((path / "manifest.json").read_text())
        self.manifest = manifest
        self.documents = _load_documents(path / "documents.json")
        self.chunks = _load_chunks(path / "chunks.json")
        self.doc_ids = [d.id for d in self.documents]
        position = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        self.chunk_doc = np.asarray([position[c.doc_id] for c in self.chunks], dtype=np.int64)
        bm25 = lexical.load(path / "bm25.pkl")
        char = lexical.load(path / "char.pkl")
        assert isinstance(bm25, lexical.BM25Index) and isinstance(char, lexical.CharNgramIndex)
        self.bm25, self.char = bm25, char
        self.vectors = VectorIndex.load(path / "dense.faiss")
        self.encoder = Encoder(manifest["model"])
        self.params = Params.load(path / "params.json")

    @classmethod
    def load(cls, path: Path) -> KnowledgeIndex:
        """Load the index at `path` (a build directory or the `current` symlink)."""
        return cls(path.resolve())

    def _per_doc(self, chunk_scores: NDArray[np.float32]) -> NDArray[np.float32]:
        out = np.zeros(len(self.doc_ids), dtype=np.float32)
        np.maximum.at(out, self.chunk_doc, chunk_scores)
        return out

    def chunk_scores(self, query: str) -> dict[str, NDArray[np.float32]]:
        """Per-chunk scores of every method (dense: cosine of the top candidates, else 0)."""
        expanded = expand(query)
        dense = np.zeros(len(self.chunks), dtype=np.float32)
        scores, ids = self.vectors.search(self.encoder.encode_query(query), DENSE_CANDIDATES)
        valid = ids >= 0
        dense[ids[valid]] = np.maximum(scores[valid], 0)
        return {
            "bm25": self.bm25.scores(expanded),
            "char": self.char.scores(expanded),
            "dense": dense,
        }

    def doc_scores(self, query: str) -> dict[str, NDArray[np.float32]]:
        return {name: self._per_doc(s) for name, s in self.chunk_scores(query).items()}

    def search(self, query: str, k: int = 5) -> SearchResult:
        """Top-k services for `query`, each with its best passage, and a confidence band."""
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not text or not re.search(r"\w", text):
            return SearchResult(query=query, band=Band.NONE, confidence=0.0)
        per_chunk = self.chunk_scores(text)
        chunk_fused = fuse(per_chunk, self.params.weights)
        doc_fused = fuse({m: self._per_doc(per_chunk[m]) for m in METHODS}, self.params.weights)
        order = np.argsort(-doc_fused)[:k]
        top = float(doc_fused[order[0]])
        second = float(doc_fused[order[1]]) if len(order) > 1 else 0.0
        confidence = self.params.confidence(top, top - second)
        if confidence >= self.params.answer_threshold:
            band = Band.ANSWER
        elif confidence >= self.params.suggest_threshold:
            band = Band.SUGGEST
        else:
            band = Band.NONE
        wanted = wanted_section(text)
        hits = [
            Hit(
                doc_id=self.doc_ids[i],
                title=self.documents[i].title,
                url=self.documents[i].url,
                score=float(doc_fused[i]),
                passage=self._best_passage(int(i), chunk_fused, wanted),
            )
            for i in order
        ]
        return SearchResult(
            query=query, band=band, confidence=confidence, hits=hits, english=looks_english(text)
        )

    def hit_for(self, doc_id: str, query: str = "") -> Hit | None:
        """The service `doc_id` (a "Meinen Sie …?" choice) with the passage best for `query`."""
        if doc_id not in self.doc_ids:
            return None
        doc = self.doc_ids.index(doc_id)
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if text:
            chunk_fused = fuse(self.chunk_scores(text), self.params.weights)
        else:
            chunk_fused = np.zeros(len(self.chunks), dtype=np.float32)
        document = self.documents[doc]
        passage = self._best_passage(doc, chunk_fused, wanted_section(text) if text else None)
        return Hit(doc_id, document.title, document.url, 1.0, passage)

    def _best_passage(
        self, doc: int, chunk_fused: NDArray[np.float32], wanted: SectionKind | None
    ) -> Chunk:
        indexes = np.flatnonzero(self.chunk_doc == doc)
        if wanted is not None:
            matching = [i for i in indexes if self.chunks[i].kind is wanted]
            if matching:
                return self.chunks[max(matching, key=lambda i: chunk_fused[i])]
        # Prefer a passage of the text over the keyword overview when it scores about as well.
        body = [i for i in indexes if self.chunks[i].kind is not SectionKind.OVERVIEW]
        if body:
            return self.chunks[max(body, key=lambda i: chunk_fused[i])]
        return self.chunks[int(indexes[0])]


def _load_documents(path: Path) -> list[Document]:
    return [
        Document(
            id=d["id"],
            title=d["title"],
            url=d["url"],
            summary=d["summary"],
            keywords=tuple(d["keywords"]),
            sections=tuple(
                Section(s["name"], s["text"], SectionKind(s["kind"])) for s in d["sections"]
            ),
            category=d["category"],
        )
        for d in json.loads(path.read_text())
    ]


def _load_chunks(path: Path) -> list[Chunk]:
    return [
        Chunk(
            id=c["id"],
            doc_id=c["doc_id"],
            title=c["title"],
            section=c["section"],
            kind=SectionKind(c["kind"]),
            text=c["text"],
        )
        for c in json.loads(path.read_text())
    ]


@lru_cache(maxsize=4)
def cached_index(path: Path) -> KnowledgeIndex:
    """The index at `path`, loaded once per process."""
    return KnowledgeIndex.load(path)
