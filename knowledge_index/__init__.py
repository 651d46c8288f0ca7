"""Knowledge index: answers from a city's service catalogue.

Sources (Markdown articles, DLDB JSON) become chunks; chunks are searched by a
dense (sentence-transformers + faiss) and a German lexical index whose scores are
fused and calibrated into three bands: answer, "Meinen Sie …?" candidates, none.
"""

from __future__ import annotations

from knowledge_index.documents import Chunk, Document, Section
from knowledge_index.errors import BuildError, SourceError
from knowledge_index.search import Band, Hit, KnowledgeIndex, SearchResult

__all__ = [
    "Band",
    "BuildError",
    "Chunk",
    "Document",
    "Hit",
    "KnowledgeIndex",
    "SearchResult",
    "Section",
    "SourceError",
]
