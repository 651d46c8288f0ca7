"""Lexical indexes: BM25 over German terms, and TF-IDF over character n-grams.

Both keep their postings as scipy sparse matrices, so a query costs a few column
sums (BM25) or one sparse product (n-grams), also for 100,000 chunks.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer

from knowledge_index.analysis import fold, terms, vocabulary_of


class BM25Index:
    """Okapi BM25 with precomputed per-(chunk, term) weights.

    Scores are divided by the best a chunk could get for the query (sum of the
    query terms' idf * (k1 + 1)), so they fall in [0, 1] and mean "share of the
    query's information found" whatever the corpus: that makes them calibratable.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.vocabulary: frozenset[str] = frozenset()
        self.term_ids: dict[str, int] = {}
        self.idf: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self.weights: sp.csc_matrix = sp.csc_matrix((0, 0), dtype=np.float32)

    def analyse(self, text: str) -> list[str]:
        return terms(text, self.vocabulary)

    def uses(self, word: str) -> bool:
        """Whether the indexed texts use `word` (a stop word is used by none)."""
        analysed = self.analyse(word)
        return bool(analysed) and analysed[0] in self.term_ids

    def fit(self, texts: Sequence[str]) -> BM25Index:
        self.vocabulary = vocabulary_of(texts)
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = Counter(self.analyse(text))
            lengths[row] = sum(counts.values())
            for term, tf in counts.items():
                col = self.term_ids.setdefault(term, len(self.term_ids))
                rows.append(row)
                cols.append(col)
                tfs.append(tf)
        n = len(texts)
        tf_matrix = sp.csr_matrix(
            (np.asarray(tfs, dtype=np.float32), (rows, cols)), shape=(n, len(self.term_ids))
        )
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.term_ids))
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n else 1.0
        norm = self.k1 * (1 - self.b + self.b * lengths / max(avg, 1e-6))
        coo = tf_matrix.tocoo()
        tf = coo.data
        data = self.idf[coo.col] * tf * (self.k1 + 1) / (tf + norm[coo.row])
        self.weights = sp.csc_matrix((data.astype(np.float32), (coo.row, coo.col)), shape=coo.shape)
        return self

    def query_ids(self, text: str) -> list[int]:
        return [self.term_ids[t] for t in dict.fromkeys(self.analyse(text)) if t in self.term_ids]

    def scores(self, text: str) -> NDArray[np.float32]:
        """Normalised BM25 score of every chunk for `text`."""
        analysed = list(dict.fromkeys(self.analyse(text)))
        ids = [self.term_ids[t] for t in analysed if t in self.term_ids]
        n = self.weights.shape[0]
        if not ids:
            return np.zeros(n, dtype=np.float32)
        # Unknown query words count as information we did not find (idf of a df=0 term).
        unknown = len(analysed) - len(ids)
        best = float(self.idf[ids].sum() + unknown * np.log1p(n + 0.5)) * (self.k1 + 1)
        raw = np.asarray(self.weights[:, ids].sum(axis=1)).ravel()
        return (raw / best).astype(np.float32)


class CharNgramIndex:
    """Cosine over TF-IDF of character 3–5-grams: robust to compounds, inflection, typos."""

    def __init__(self) -> None:
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1,
            preprocessor=fold, dtype=np.float32,
        )  # fmt: skip
        self.matrix_t: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self._analyzer: Callable[[str], list[str]] | None = None
        self._idf: NDArray[np.float32] = np.zeros(0, dtype=np.float32)

    def fit(self, texts: Sequence[str]) -> CharNgramIndex:
        matrix = self.vectorizer.fit_transform(texts)
        self.matrix_t = sp.csr_matrix(matrix.T, dtype=np.float32)
        return self

    def __getstate__(self) -> dict[str, object]:
        # The analyzer is a closure (not picklable); it is rebuilt on first use.
        return {**self.__dict__, "_analyzer": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"_analyzer": None, "_idf": np.zeros(0, dtype=np.float32), **state})

    def scores(self, text: str) -> NDArray[np.float32]:
        """Cosine of every chunk to `text`.

        The query vector is the vectorizer's (same n-grams, sublinear tf, idf, l2 norm)
        but built directly: `TfidfVectorizer.transform` spends ~1 ms per call on input
        validation, more than the product itself for a catalogue of Munich's size.
        """
        n = self.matrix_t.shape[1]
        if self._analyzer is None:
            self._analyzer = self.vectorizer.build_analyzer()
            self._idf = self.vectorizer.idf_.astype(np.float32)
        vocabulary = self.vectorizer.vocabulary_
        counts = Counter(
            i for i in map(vocabulary.get, self._analyzer(text[:2000])) if i is not None
        )
        if not counts:
            return np.zeros(n, dtype=np.float32)
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        weights = (1 + np.log(tf)) * self._idf[ids]
        weights /= np.linalg.norm(weights)
        return np.asarray(self.matrix_t[ids].T @ weights, dtype=np.float32).ravel()


def save(obj: BM25Index | CharNgramIndex, path: Path) -> None:
    with path.open("wb") as file:
        pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> BM25Index | CharNgramIndex:
    with path.open("rb") as file:
        obj = pickle.load(file)  # our own artefact, written by `save` in the build
    if not isinstance(obj, BM25Index | CharNgramIndex):
        raise TypeError(f"{path} does not hold a lexical index")
    return obj
