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
from knowledge_index.examples import NEAREST, WORDS, ExampleIndex
from knowledge_index.expansion import expand, looks_english
from knowledge_index.facets import Facet, FacetPassage, passage_for
from knowledge_index.offices import OfficeDirectory, load_saved_offices
from knowledge_index.params import METHODS, Params, default_params, fuse, top_margin
from knowledge_index.thesaurus import DEBIAN_FILE, expand_unknown
from knowledge_index.translation import is_english_keywords, load_table, translate

MAX_QUERY_CHARS = 1000
DENSE_CANDIDATES = 200
# Services ranked per search beyond the top hits, so a conversation's topic can be placed.
RANKED = 20
# Queries whose scores are kept (a turn searches the same words up to three times).
RECENT_QUERIES = 8

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
    # The best services by fused score, more than `hits` holds: how a known topic stands.
    ranking: tuple[tuple[str, float], ...] = ()
    # The band by the catalogue's own text alone, without the example questions, for the
    # service ranked first (None: the index has none, so `band`). Citizens' phrasings make
    # a few words of a follow-up look sure of a service whose examples happen to use them
    # ("so eine Parkerlaubnis").
    catalogue_band: Band | None = None

    @property
    def band_by_catalogue(self) -> Band:
        return self.band if self.catalogue_band is None else self.catalogue_band

    def score_of(self, doc_id: str) -> float:
        """The fused score of `doc_id` (0 when it is not among the ranked services)."""
        return next((score for ranked, score in self.ranking if ranked == doc_id), 0.0)


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

    def __init__(self, path: Path, thesaurus: Path | None = DEBIAN_FILE) -> None:
        self.path = path
        # Synonyms for query words the catalogue does not use (knowledge_index/thesaurus.py).
        self.thesaurus = thesaurus
        self._recent_scores: dict[str, dict[str, NDArray[np.float32]]] = {}
        manifest = json.loads((path / "manifest.json").read_text())
        self.manifest = manifest
        self.documents = _load_documents(path / "documents.json")
        self.chunks = _load_chunks(path / "chunks.json")
        self.doc_ids = [d.id for d in self.documents]
        self._position = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        self.chunk_doc = np.asarray([self._position[c.doc_id] for c in self.chunks], dtype=np.int64)
        self._index_doc_ranges()
        title = lexical.load(path / "title.pkl")
        bm25 = lexical.load(path / "bm25.pkl")
        char = lexical.load(path / "char.pkl")
        assert isinstance(bm25, lexical.BM25Index) and isinstance(char, lexical.CharNgramIndex)
        assert isinstance(title, lexical.BM25Index)
        self.bm25, self.char, self.title = bm25, char, title
        self.vectors = VectorIndex.load(path / "dense.faiss")
        self.overviews = VectorIndex.load(path / "overview.faiss")
        self.encoder = Encoder(manifest["model"])
        self.params = Params.load(path / "params.json")
        # Older builds have no offices.json: an empty directory then.
        self.offices = OfficeDirectory(load_saved_offices(path / "offices.json"))
        # English words → the catalogue's German words (knowledge_index/translation.py).
        self.english = load_table(path / "english.json")
        # Citizens' example questions per service (knowledge_index/examples.py), if any.
        self.examples = ExampleIndex.load(path)
        # The shipped fit without example methods, for SearchResult.catalogue_band.
        self.catalogue_params = default_params() if self.examples is not None else None

    @classmethod
    def load(cls, path: Path) -> KnowledgeIndex:
        """Load the index at `path` (a build directory or the `current` symlink)."""
        return cls(path.resolve())

    def _knows(self, word: str) -> bool:
        """Whether the body index has the word itself (stop words count as known)."""
        return not self.bm25.analyse(word) or self.bm25.uses(word)

    def _is_english(self, text: str) -> bool:
        """An English sentence, or a few English words as typed into a search box."""
        return looks_english(text) or is_english_keywords(text, self.english, self.bm25.uses)

    def _index_doc_ranges(self) -> None:
        """Chunks of a document are contiguous: per-document maxima are one reduceat."""
        starts = np.flatnonzero(np.r_[True, self.chunk_doc[1:] != self.chunk_doc[:-1]])
        if not np.array_equal(self.chunk_doc[starts], np.arange(len(self.doc_ids))):
            raise ValueError(f"{self.path}: chunks are not grouped by document in order")
        self.doc_starts = starts
        self.doc_ends = np.r_[starts[1:], len(self.chunk_doc)]

    def _per_doc(self, chunk_scores: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.maximum.reduceat(chunk_scores, self.doc_starts)

    def _doc_level(self, method: str, chunk_scores: NDArray[np.float32]) -> NDArray[np.float32]:
        """A document's score for one method.

        Dense: the similarity to the document's overview (title, keywords, summary),
        the text the encoder was fine-tuned on; measured better than the best chunk
        (hit@1 0.51 vs 0.44 on the Munich dev questions). Lexical: the best chunk.
        """
        if method == "dense":
            return chunk_scores[self.doc_starts]
        return self._per_doc(chunk_scores)

    def chunk_scores(self, query: str) -> dict[str, NDArray[np.float32]]:
        """Per-chunk scores of every method (dense: cosine of the top candidates, else 0).

        The last few queries are remembered: one turn asks for the service and then for its
        facet's passage with the same words. Callers must not change the arrays.
        """
        cached = self._recent_scores.get(query)
        if cached is None:
            cached = self._chunk_scores(query)
            self._recent_scores[query] = cached
            if len(self._recent_scores) > RECENT_QUERIES:
                self._recent_scores.pop(next(iter(self._recent_scores)))
        return cached

    def clear_recent(self) -> None:
        """Forget the remembered queries' scores (after the indexes they came from changed)."""
        self._recent_scores.clear()

    def _expanded(self, query: str) -> str:
        """The query with the glossary's words and, if English, the catalogue's German ones."""
        expanded = expand(query)
        if self._is_english(query):
            german = translate(query, self.english)
            expanded = f"{expanded} {' '.join(german)}" if german else expanded
        return expanded

    def prime(self, queries: list[str]) -> None:
        """Embed `queries` in batches before they are scored one by one (see Encoder.prime)."""
        self.encoder.prime([self._expanded(q) for q in queries])

    def _chunk_scores(self, query: str) -> dict[str, NDArray[np.float32]]:
        expanded = self._expanded(query)
        # Synonyms only for the word-matching methods; the encoder reads the words as written.
        lexical_query = expanded
        if self.thesaurus is not None:
            synonyms = expand_unknown(expanded, self._knows, self.thesaurus)
            lexical_query = f"{expanded} {' '.join(synonyms)}" if synonyms else expanded
        dense = np.zeros(len(self.chunks), dtype=np.float32)
        vector = self.encoder.encode_query(expanded)
        scores, ids = self.vectors.search(vector, DENSE_CANDIDATES)
        valid = ids >= 0
        dense[ids[valid]] = np.maximum(scores[valid], 0)
        # Overview chunks get their score from the per-document overview index, so
        # every candidate service has one (not only those among the top chunks).
        scores, ids = self.overviews.search(vector, DENSE_CANDIDATES)
        valid = ids >= 0
        dense[self.doc_starts[ids[valid]]] = np.maximum(scores[valid], 0)
        scores_of: dict[str, NDArray[np.float32]] = {"dense": dense}
        fits = [self.params, *([self.catalogue_params] if self.catalogue_params else [])]
        weights = {m: max(fit.weights.get(m, 0.0) for fit in fits) for m in METHODS}
        zero = np.zeros(len(self.chunks), dtype=np.float32)
        # Methods the fitted fusion gives no weight cost nothing at query time.
        scores_of["bm25"] = self.bm25.scores(lexical_query) if weights.get("bm25") else zero
        scores_of["char"] = self.char.scores(expanded) if weights.get("char") else zero
        title = np.zeros(len(self.chunks), dtype=np.float32)
        if weights.get("title"):
            # One entry per document: its score goes to the document's overview chunk.
            title[self.doc_starts] = self.title.scores(lexical_query)
        scores_of["title"] = title
        # Example questions score a whole service: on its overview chunk, as the title does.
        for method in (NEAREST, WORDS):
            scores_of[method] = np.zeros(len(self.chunks), dtype=np.float32)
        if self.examples is not None:
            if weights.get(NEAREST):
                scores_of[NEAREST][self.doc_starts] = self.examples.nearest(vector)
            if weights.get(WORDS):
                scores_of[WORDS][self.doc_starts] = self.examples.matching_words(lexical_query)
        return scores_of

    def doc_scores(self, query: str) -> dict[str, NDArray[np.float32]]:
        return {name: self._doc_level(name, s) for name, s in self.chunk_scores(query).items()}

    def search(self, query: str, k: int = 5) -> SearchResult:
        """Top-k services for `query`, each with its best passage, and a confidence band."""
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not text or not re.search(r"\w", text):
            return SearchResult(query=query, band=Band.NONE, confidence=0.0)
        per_chunk = self.chunk_scores(text)
        chunk_fused = fuse(per_chunk, self.params.weights)
        per_doc = {m: self._doc_level(m, per_chunk[m]) for m in METHODS}
        doc_fused = fuse(per_doc, self.params.weights)
        ranked = np.argsort(-doc_fused)[:RANKED]
        order = ranked[:k]
        sentence = looks_english(text)
        english = self._is_english(text)
        band, confidence, _ = _band(doc_fused, self.params, sentence)
        catalogue_band = None
        if self.catalogue_params is not None:
            by_catalogue = fuse(per_doc, self.catalogue_params.weights)
            catalogue_band, _, best = _band(by_catalogue, self.catalogue_params, sentence)
            if catalogue_band is Band.ANSWER and best != order[0]:
                # Sure of another service than the one ranked first: not sure of that one.
                catalogue_band = Band.SUGGEST
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
            query=query,
            band=band,
            confidence=confidence,
            hits=hits,
            english=english,
            ranking=tuple((self.doc_ids[i], float(doc_fused[i])) for i in ranked),
            catalogue_band=catalogue_band,
        )

    def document(self, doc_id: str) -> Document | None:
        """The service `doc_id`, or None when the index does not hold it."""
        position = self._position.get(doc_id)
        return None if position is None else self.documents[position]

    def facet_passage(self, doc_id: str, facet: Facet, query: str = "") -> FacetPassage | None:
        """The passage of `doc_id` that answers `facet` (see `facets.passage_for`)."""
        position = self._position.get(doc_id)
        if position is None:
            return None
        start, end = int(self.doc_starts[position]), int(self.doc_ends[position])
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if text and re.search(r"\w", text):
            relevance = fuse(self.chunk_scores(text), self.params.weights)[start:end].tolist()
        else:
            relevance = [0.0] * (end - start)
        return passage_for(self.chunks[start:end], facet, relevance)

    def hit_for(self, doc_id: str, query: str = "") -> Hit | None:
        """The service `doc_id` (a "Meinen Sie …?" choice) with the passage best for `query`."""
        doc = self._position.get(doc_id)
        if doc is None:
            return None
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
        indexes = range(int(self.doc_starts[doc]), int(self.doc_ends[doc]))
        if wanted is not None:
            matching = [i for i in indexes if self.chunks[i].kind is wanted]
            if matching:
                return self.chunks[max(matching, key=lambda i: chunk_fused[i])]
        # Prefer a passage of the text over the keyword overview when it scores about as well.
        body = [i for i in indexes if self.chunks[i].kind is not SectionKind.OVERVIEW]
        if body:
            return self.chunks[max(body, key=lambda i: chunk_fused[i])]
        return self.chunks[indexes[0]]


def _band(fused: NDArray[np.float32], params: Params, sentence: bool) -> tuple[Band, float, int]:
    """The band, confidence and top service's position of fused service scores under `params`.

    English sentences score lower than German ones of the same certainty: the words the
    dictionary leaves untranslated dilute them. A few English keywords, translated word
    for word, score as German keywords do and keep the German thresholds.
    """
    top, margin, best = top_margin(fused)
    confidence = params.confidence(top, margin)
    answer_threshold, suggest_threshold = params.thresholds(sentence)
    if confidence >= answer_threshold:
        return Band.ANSWER, confidence, best
    if confidence >= suggest_threshold:
        return Band.SUGGEST, confidence, best
    return Band.NONE, confidence, best


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
            appointment_url=d.get("appointment_url", ""),
            duration_min=d.get("duration_min"),
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
